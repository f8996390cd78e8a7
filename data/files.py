"""Files written all at once or not at all.

A reader of the target path sees either the old file or the complete new one: the data goes
to a temporary file in the same directory (so the final rename stays on one file system and
is atomic), is fsynced, and is renamed over the target only when the writer finished without
an exception. On any exception, including KeyboardInterrupt, the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` when the block succeeds."""
    path = Path(path)
    # A short temporary name, so a long target name cannot make the temporary one too long.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".softreg-", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would make the output private
        with os.fdopen(descriptor, mode, **open_args) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
