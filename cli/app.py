"""The softreg command line: the Typer app, --version, and main() (signals, MemoryError).

Each command lives in its own module under softreg.cli.commands: it parses its options, calls
one library function, renders the result with softreg.cli.render, and lets softreg.cli.errors
turn the library's errors into a one-paragraph message with exit code 2 (bad input or usage)
or 1 (a run that failed). Command modules import the library inside their bodies, so
`softreg --help` loads neither scikit-learn nor scipy.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import Annotated

import typer

from softreg.cli.console import err, out
from softreg.cli.errors import EXIT_RUN_FAILED
from softreg.cli.interrupt import INTERRUPTIONS, Interrupted

# name -> (module under softreg.cli.commands, its function, extra app.command settings), in the
# order --help lists them. train declares its own --help, in its Output panel: a panel holding
# only --help cost three of the 60 lines its help may take at 80 columns.
COMMANDS: dict[str, tuple[str, str, dict]] = {
    "gradcheck": ("gradcheck", "gradcheck", {}),
    "datasets": ("datasets", "datasets", {}),
    "prepare": ("prepare", "prepare", {}),
    "train": ("train", "train", {"context_settings": {"help_option_names": []}}),
    "eval": ("evaluate", "evaluate", {}),
    "predict": ("predict", "predict", {}),
    "compare": ("compare", "compare", {}),
    "info": ("info", "info", {}),
    "path": ("path", "path", {}),
    "summary": ("summary", "summary", {}),
    "export": ("export", "export", {}),
}


def _version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"softreg {version('softreg')}")
        raise typer.Exit()


def main_callback(
    show_version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """Multinomial logistic (softmax) regression with a hand-derived, numerically checked gradient."""


def build_app(names: Iterable[str] = COMMANDS) -> typer.Typer:
    """The Typer app holding the named commands (all of them by default).

    Each time an app runs, Typer turns every registered function into a click command and
    evaluates its annotations: for all eleven commands that was about a third of
    `softreg info`'s start. main() therefore runs an app of the one command the user named;
    the group callback keeps it a group, so its usage, help and errors read as in the full app.
    """
    app = typer.Typer(
        name="softreg",
        help="Multinomial logistic (softmax) regression with a hand-derived, numerically checked gradient.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_show_locals=False,
        rich_markup_mode="rich",
    )
    app.callback()(main_callback)
    for name in names:
        module, function, settings = COMMANDS[name]
        command = getattr(importlib.import_module(f"softreg.cli.commands.{module}"), function)
        app.command(name, **settings)(command)
    return app


def __getattr__(name: str) -> typer.Typer:
    # `from softreg.cli.app import app` (the tests' CliRunner) gets the full app, built once, on first use.
    if name == "app":
        globals()["app"] = full_app = build_app()
        return full_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """The console script: the app, with SIGINT and SIGTERM turned into a clean stop."""
    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe that cannot show a character (PYTHONIOENCODING=ascii) gets an escape, not a crash.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    named = sys.argv[1] if len(sys.argv) > 1 else None
    with INTERRUPTIONS:
        try:
            build_app([named] if named in COMMANDS else COMMANDS)()
        except MemoryError:
            err.print("error: not enough memory for this run (the data or the model is too large for this machine); "
                      "try fewer rows or features, --dtype float32, or a sparse svmlight file.", highlight=False,
                      soft_wrap=True)
            sys.exit(EXIT_RUN_FAILED)
        except Interrupted as interruption:
            saved = INTERRUPTIONS.saved
            kept = f"{', '.join(saved)} had been saved before" if saved else "no output file was written or changed"
            err.print(f"interrupted by {interruption.name}; {kept}.", highlight=False, soft_wrap=True, markup=False)
            sys.exit(interruption.exit_code)


if __name__ == "__main__":
    main()
