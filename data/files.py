"""Files written all at once or not at all, and outputs that must not destroy what they name.

A reader of a target path sees either the old file or the complete new one: the data goes to
a temporary file in the same directory (so the final rename stays on one file system and is
atomic), is fsynced, and is renamed over the target only when the writer finished without an
exception. On any exception, including KeyboardInterrupt, the temporary file is removed.

Atomic replacement is for regular files (or a new path). A character device or a FIFO given
as an output (``/dev/null``, ``/dev/stdout``, a named pipe) is written straight to: renaming a
file over it would replace the device node with a regular file. Any other kind of file (a
directory, a block device, a socket) is refused before anything is written.

Several files that belong together (a prepared dataset) are replaced as a set
(:func:`replaced_together`): all are written to temporary files first, then renamed in the
order given, the last one a manifest that fingerprints the others, so that a reader can tell a
set whose renames were cut short from a whole one (:func:`fingerprint`).
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

FINGERPRINT_BYTES = 1 << 16  # hashed from each end of a file


class UnwritableOutput(OSError):
    """An output path that names a directory, a block device or a socket, or cannot be looked
    up at all (``kind``: "a directory", ..., or "unreachable")."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


def _kind(mode: int) -> str:
    """A file's kind in words, from its stat mode."""
    return ("a regular file" if stat.S_ISREG(mode) else "a directory" if stat.S_ISDIR(mode) else
            "a FIFO" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode) else
            "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")


def not_regular(path: str | Path) -> str | None:
    """What an input path is when it is not a regular file ("a FIFO", "a character device",
    ...), following links; None for a regular file or a missing one (its reader says that).
    Reading a FIFO, or a link to /dev/zero, would block or fill memory: inputs must be files."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def output_kind(path: str | Path) -> str:
    """'new' (nothing there), 'regular', or 'stream' (a character device or FIFO, written straight
    to); UnwritableOutput for any other kind of file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "new"
    except OSError as error:  # a name longer than the file system allows, a loop of links
        raise UnwritableOutput(f"'{path}' cannot be written ({error.strerror})", "unreachable") from None
    if stat.S_ISREG(mode):
        return "regular"
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return "stream"
    kind = _kind(mode)
    raise UnwritableOutput(f"'{path}' is {kind}; an output must be a regular file (or a new path), a character "
                           "device or a FIFO", kind)


class FileSet:
    """Files staged beside their targets, renamed over them by :meth:`commit` in the order staged."""

    def __init__(self) -> None:
        self.staged: list[tuple[str, Path]] = []

    @contextmanager
    def file(self, path: str | Path, mode: str = "wb", **open_args) -> Iterator[IO]:
        """A temporary file for writing, staged to replace ``path`` when the set commits."""
        path = Path(path)
        output_kind(path)  # refuses directories and devices before anything is written
        # A short temporary name, so a long target name cannot make the temporary one too long.
        descriptor, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".softreg-",
                                                 suffix=".tmp")
        self.staged.append((temporary, path))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp's 0600 would make the output private
        with os.fdopen(descriptor, mode, **open_args) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())

    def commit(self) -> None:
        for temporary, target in self.staged:
            os.replace(temporary, target)
        self.staged = []

    def discard(self) -> None:
        for temporary, _ in self.staged:
            Path(temporary).unlink(missing_ok=True)
        self.staged = []


@contextmanager
def replaced_together() -> Iterator[FileSet]:
    """A set of files that replace their targets after the block succeeds, in the order staged;
    on any exception none is replaced and every temporary file is removed. A failure during
    the renames themselves (a signal, a vanished folder) leaves the first targets new and the
    rest old: stage a manifest last that fingerprints the others, and readers can tell."""
    files = FileSet()
    try:
        yield files
        files.commit()
    except BaseException:
        files.discard()
        raise


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb", **open_args) -> Iterator[IO]:
    """Open a file for writing that replaces ``path`` when the block succeeds; a character
    device or FIFO at ``path`` is written straight to."""
    if output_kind(path) == "stream":
        with open(path, mode, **open_args) as handle:
            yield handle
        return
    with replaced_together() as files, files.file(path, mode, **open_args) as handle:
        yield handle


def fingerprint(path: str | Path) -> dict:
    """The size of a file and a hash of its first and last FINGERPRINT_BYTES (all of a small
    file): enough to tell one written by another run from the expected one without reading all
    of a large file."""
    import hashlib  # here, not with the module: `softreg info` starts without it

    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            handle.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(handle.read())
    return {"size": size, "sha256_ends": digest.hexdigest()}
