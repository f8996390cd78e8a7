"""One table from the library's exceptions to exit codes, and the words that turn parameters into flags.

The library speaks in parameters: an exception carries the key at fault (``error.key``) and
its message names settings the way a Python caller writes them, ``missing='drop'`` or
``target='COLUMN'``. Here those become flags (``--missing drop``, ``--target COLUMN``); a
message that starts with its key (``l2 must be ...``) gets the flag beside it
(``l2 (--l2) must be ...``). Exit code 2 is bad input or usage, 1 a run that failed.
"""

from __future__ import annotations

import functools
import re
from contextlib import contextmanager

import typer

from softreg.cli.console import fail

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1
# Parameters whose flag is not their name with dashes.
FLAGS = {"with_proba": "--proba", "output_format": "--format", "resume": "--resume", "out": "--out"}


@functools.cache
def exit_codes() -> tuple:
    """(exception type, exit code) pairs; the first matching type decides. Imported when an
    error is reported, not when the CLI starts."""
    from softreg.data.dataset import DataError
    from softreg.model.assess.calibration import UnscorableRows
    from softreg.model.engines.base import EngineError, EngineLost
    from softreg.model.run.config import ConfigError
    from softreg.model.run.errors import RunError, SaveError
    from softreg.model.run.persist import ModelFileError
    from softreg.model.run.predict import PredictionError
    from softreg.model.solve.result import TrainingDiverged

    return (
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


def library_errors() -> tuple:
    return tuple(kind for kind, _ in exit_codes())


@functools.cache
def hints() -> dict:
    """What the shell adds to a library error: the command that shows or makes what is missing."""
    from softreg.data.chunks import FeatureMismatch
    from softreg.model.run.errors import NeedsPreparedData

    return {
        FeatureMismatch: lambda error: " (`softreg info MODEL` lists the model's features)",
        NeedsPreparedData: lambda error: f" Run `softreg prepare {error.dataset} data.npy` once, then train on "
                                         "data.npy.",
    }


@functools.cache
def known_keys() -> frozenset:
    """Keys a message may name as key='value': the config's and the other commands' own."""
    from softreg.model.run.config import BY_KEY

    return frozenset(BY_KEY) | frozenset(FLAGS) | {"top_k", "chunk_rows"}


@functools.cache
def _setting_pattern():
    return re.compile(r"\b(" + "|".join(sorted(known_keys(), key=len, reverse=True)) + r")=(?:'([^']*)'|([^\s,;)']+))")


def flag(key: str) -> str:
    """The flag of a parameter: max_epochs -> --max-epochs."""
    return FLAGS.get(key, "--" + key.replace("_", "-"))


def in_flags(message: str, key: str | None = None) -> str:
    """A library message worded for the shell: key='value' -> --key value, and a message that
    starts with its key names the flag too."""
    message = _setting_pattern().sub(lambda m: f"{flag(m.group(1))} {m.group(2) if m.group(2) is not None else m.group(3)}",
                           message)
    leading = message.split(" ", 1)[0]
    if (key or leading) == leading and leading in known_keys() and message.startswith(f"{leading} must"):
        return message.replace(leading, f"{leading} ({flag(leading)})", 1)
    return message


def exit_code(error: BaseException) -> int:
    for kind, code in exit_codes():
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
    except library_errors() as error:  # evaluated only when an exception arrives
        hint = next((words(error) for kind, words in hints().items() if isinstance(error, kind)), "")
        fail(in_flags(str(error), getattr(error, "key", None)) + hint + suffix, exit_code(error))
