"""One table from the library's exceptions to exit codes, and the words that turn parameters into flags.

The library speaks in parameters: an exception carries the key at fault (``error.key``) and
its message names settings the way a Python caller writes them, ``missing='drop'`` or
``target='COLUMN'``. Here those become flags (``--missing drop``, ``--target COLUMN``); a
message that starts with its key (``l2 must be ...``) gets the flag beside it
(``l2 (--l2) must be ...``). Exit code 2 is bad input or usage, 1 a run that failed.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import typer

from softreg.cli.console import fail
from softreg.data.chunks import FeatureMismatch
from softreg.data.datasets import DataError
from softreg.model.assess.calibration import UnscorableRows
from softreg.model.engines.base import EngineError, EngineLost
from softreg.model.run.config import BY_KEY, ConfigError
from softreg.model.run.errors import NeedsPreparedData, RunError, SaveError
from softreg.model.run.persist import ModelFileError
from softreg.model.run.predict import PredictionError
from softreg.model.solve.result import TrainingDiverged

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1

# The first matching type decides the exit code.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (TrainingDiverged, EXIT_RUN_FAILED),
    (EngineLost, EXIT_RUN_FAILED),
    (SaveError, EXIT_RUN_FAILED),
    (ConfigError, EXIT_BAD_INPUT),
    (DataError, EXIT_BAD_INPUT),
    (RunError, EXIT_BAD_INPUT),
    (ModelFileError, EXIT_BAD_INPUT),
    (EngineError, EXIT_BAD_INPUT),
    (UnscorableRows, EXIT_BAD_INPUT),
    (PredictionError, EXIT_BAD_INPUT),
    # The estimator checks its parameters and data as scikit-learn estimators do, with ValueError.
    (ValueError, EXIT_BAD_INPUT),
)
LIBRARY_ERRORS = tuple(kind for kind, _ in EXIT_CODES)

# Parameters whose flag is not their name with dashes.
FLAGS = {"with_proba": "--proba", "output_format": "--format", "resume": "--resume", "out": "--out"}
# Keys a message may name as key='value': the config's and the other commands' own.
KEYS = set(BY_KEY) | set(FLAGS) | {"top_k", "chunk_rows"}
_SETTING = re.compile(r"\b(" + "|".join(sorted(KEYS, key=len, reverse=True)) + r")=(?:'([^']*)'|([^\s,;)']+))")


def flag(key: str) -> str:
    """The flag of a parameter: max_epochs -> --max-epochs."""
    return FLAGS.get(key, "--" + key.replace("_", "-"))


def in_flags(message: str, key: str | None = None) -> str:
    """A library message worded for the shell: key='value' -> --key value, and a message that
    starts with its key names the flag too."""
    message = _SETTING.sub(lambda m: f"{flag(m.group(1))} {m.group(2) if m.group(2) is not None else m.group(3)}",
                           message)
    leading = message.split(" ", 1)[0]
    if (key or leading) == leading and leading in KEYS and message.startswith(f"{leading} must"):
        return message.replace(leading, f"{leading} ({flag(leading)})", 1)
    return message


# What the shell adds to a library error: the command that shows or makes what is missing.
HINTS: dict[type[BaseException], object] = {
    FeatureMismatch: lambda error: " (`softreg info MODEL` lists the model's features)",
    NeedsPreparedData: lambda error: f" Run `softreg prepare {error.dataset} data.npy` once, then train on data.npy.",
}


def exit_code(error: BaseException) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(error, kind):
            return code
    return EXIT_BAD_INPUT


@contextmanager
def reported(suffix: str = ""):
    """Turn the library's errors into a one-paragraph message and its exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except LIBRARY_ERRORS as error:
        hint = next((words(error) for kind, words in HINTS.items() if isinstance(error, kind)), "")
        fail(in_flags(str(error), getattr(error, "key", None)) + hint + suffix, exit_code(error))
