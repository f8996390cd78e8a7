"""Where the CLI writes: results to stdout, progress, warnings and errors to stderr (so `--json`
output and redirected results stay clean), and the one way a command fails."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

def reader_left() -> None:
    """The stdout reader left early (``softreg train | head``): what had to be saved was saved
    before anything was printed, so end quietly with exit 0. Rich's default is exit 1 with
    nothing said."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush must not fail too
    raise SystemExit(0)


class _Console(Console):
    def on_broken_pipe(self) -> None:  # Rich's hook for exactly this
        reader_left()


out = _Console()
err = _Console(stderr=True)


def printable(text: str) -> str:
    """Text with its control characters (other than newline and tab) escaped: names read from
    files may hold terminal escape sequences, which must reach the terminal as text."""
    return "".join(f"\\x{ord(c):02x}" if (ord(c) < 32 and c not in "\n\t") or 127 <= ord(c) < 160 else c
                   for c in text)


def fail(message: str, code: int = 2) -> None:
    """Print a one-paragraph error to stderr and exit with ``code`` (2 bad input, 1 a failed run)."""
    # The message is plain text: brackets such as softreg[plot] must not be read as markup.
    err.print(f"[bold red]error:[/] {escape(printable(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def say(message: str, *, to=None) -> None:
    """A plain line (no markup, no highlighting, control characters escaped) to stderr or ``to``."""
    (to or err).print(printable(message), highlight=False, soft_wrap=True, markup=False)


def plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + ("es" if noun.endswith("s") else "s")


def unseen_levels_note(unseen: dict, *, strict_words: str) -> None:
    """One note per column of a table that held categories the model never saw (eval, predict)."""
    for column, count in unseen.items():
        err.print(f"[yellow]note:[/] column '{escape(column)}': {count} {plural(count, 'row')} held a category the "
                  f"model never saw; encoded as its other level (or all zeros).{strict_words}",
                  highlight=False, soft_wrap=True)


def abridged(names: list[str]) -> str:
    """All names up to 12, else the first 8, a count, and the last 2."""
    shown = names if len(names) <= 12 else names[:8] + [f"... {len(names) - 10} more ..."] + names[-2:]
    return ", ".join(shown)


def refuse_overwriting(output: str, target, inputs: dict, flag: str = "--out") -> None:
    """Exit 2 when writing ``target`` (named ``output``, set by ``flag``) would destroy an input:
    the file itself or one it consists of."""
    from softreg.data.dataset import overwrites_input

    for name, files in inputs.items():
        hit = overwrites_input(target, files)
        if hit is not None:
            what = f"{name} itself" if hit == files[0] and hit == Path(target).resolve() else f"'{hit}', part of {name}"
            fail(f"{output} '{target}' is {what}; writing there would destroy it. Choose another {flag}.")


def fmt(value: float, digits: int = 4) -> str:
    """A number for a table cell: fixed when moderate, scientific when tiny or huge."""
    if value is None:
        return "-"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    if value != 0 and (abs(value) < 10 ** -(digits - 1) or abs(value) >= 1e6):
        return f"{value:.{max(digits - 2, 1)}e}"
    return f"{value:.{digits}f}"
