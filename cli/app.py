"""The softreg command line: the Typer app, --version, and main() (signals, MemoryError).

Each command lives in its own module under softreg.cli.commands: it parses its options, calls
one library function, renders the result with softreg.cli.render, and lets softreg.cli.errors
turn the library's errors into a one-paragraph message with exit code 2 (bad input or usage)
or 1 (a run that failed). Command modules import the library inside their bodies, so
`softreg --help` loads neither scikit-learn nor scipy.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from softreg.cli.commands.compare import compare
from softreg.cli.commands.datasets import datasets
from softreg.cli.commands.evaluate import evaluate
from softreg.cli.commands.export import export
from softreg.cli.commands.gradcheck import gradcheck
from softreg.cli.commands.info import info
from softreg.cli.commands.path import path
from softreg.cli.commands.predict import predict
from softreg.cli.commands.prepare import prepare
from softreg.cli.commands.summary import summary
from softreg.cli.commands.train import train
from softreg.cli.console import err, out
from softreg.cli.errors import EXIT_RUN_FAILED
from softreg.cli.interrupt import INTERRUPTIONS, Interrupted

app = typer.Typer(
    name="softreg",
    help="Multinomial logistic (softmax) regression with a hand-derived, numerically checked gradient.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)
for command in (gradcheck, datasets, prepare):
    app.command()(command)
# train declares its own --help, in its Output panel: a panel holding only --help cost three of
# the 60 lines its help may take at 80 columns.
app.command(context_settings={"help_option_names": []})(train)
app.command("eval")(evaluate)
for command in (predict, compare, info, path, summary, export):
    app.command()(command)


def _version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"softreg {version('softreg')}")
        raise typer.Exit()


@app.callback()
def main_callback(
    show_version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """Multinomial logistic (softmax) regression with a hand-derived, numerically checked gradient."""


def main() -> None:
    """The console script: the app, with SIGINT and SIGTERM turned into a clean stop."""
    for stream in (sys.stdout, sys.stderr):
        # A terminal or pipe that cannot show a character (PYTHONIOENCODING=ascii) gets an escape, not a crash.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    with INTERRUPTIONS:
        try:
            app()
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
