"""The softreg command line: thin commands over softreg.model and softreg.data.

Each command parses its options, calls the library, renders the result with
softreg.cli.render, and turns the library's own errors into a one-paragraph message with
exit code 2 (bad input or usage) or 1 (a run that failed).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="softreg",
    help="Multinomial logistic (softmax) regression with a hand-derived, numerically checked gradient.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)

# Results go to stdout; progress, warnings and errors to stderr, so `--json` output and
# redirected results stay clean.
out = Console()
err = Console(stderr=True)

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print a one-paragraph error to stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=code)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"softreg {version('softreg')}")
        raise typer.Exit()


@app.callback()
def main_callback(
    show_version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """Multinomial logistic (softmax) regression with a hand-derived, numerically checked gradient."""


@app.command()
def gradcheck(
    dataset: Annotated[
        Optional[str],
        typer.Argument(help="Check step 4 on a real batch: a built-in name (iris, wine, digits, breast_cancer) or a data file."),
    ] = None,
    samples: Annotated[int, typer.Option(min=1, help="Rows of the random batch.")] = 20,
    features: Annotated[int, typer.Option(min=1, help="Features of the random batch.")] = 5,
    classes: Annotated[int, typer.Option(min=2, help="Classes K of the random batch.")] = 4,
    l2: Annotated[float, typer.Option(min=0.0, help="L2 penalty in the batch objective (step 4).")] = 0.1,
    eps: Annotated[float, typer.Option(min=1e-300, help="Finite-difference step (> 0).")] = 1e-6,
    rtol: Annotated[float, typer.Option(min=0.0, help="Relative tolerance: pass when |a-n| <= atol + rtol |n|.")] = 1e-6,
    atol: Annotated[float, typer.Option(min=0.0, help="Absolute tolerance.")] = 1e-8,
    seed: Annotated[int, typer.Option(help="Seed of the random batch, weights and parameters.")] = 0,
    dtype: Annotated[str, typer.Option(help="Precision of the analytic side: float64 or float32 (tolerances scaled).")] = "float64",
    sweep: Annotated[bool, typer.Option("--sweep", help="Also plot the worst error of steps 3 and 4 for eps from 1e-1 to 1e-10.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")] = False,
) -> None:
    """Prove the derivation: each step against central finite differences (exit 1 if any fails)."""
    import numpy as np

    from softreg.cli import render
    from softreg.data import DataError, load_dataset
    from softreg.model.gradcheck import check_derivation, eps_sweep, random_problem

    if dtype not in ("float64", "float32"):
        fail(f"--dtype must be float64 or float32, got '{dtype}'.")
    if dataset is None:
        X, y = random_problem(samples, features, classes, seed)
        n_classes = classes
        source = f"random batch: {samples} samples, {features} features, {classes} classes, seed {seed}"
    else:
        try:
            data = load_dataset(dataset)
        except DataError as error:
            fail(str(error))
        from sklearn.preprocessing import StandardScaler

        if not hasattr(data.X, "toarray"):
            X = StandardScaler().fit_transform(data.X)
        else:
            X = data.X.toarray()
        class_values, y = np.unique(data.y, return_inverse=True)
        n_classes = len(class_values)
        source = f"dataset {dataset}: {X.shape[0]} samples, {X.shape[1]} features, {n_classes} classes (standardized)"
    report = check_derivation(X, y, n_classes, l2=l2, eps=eps, rtol=rtol, atol=atol, seed=seed, dtype=dtype)
    sweep_result = eps_sweep(X, y, n_classes, l2=l2, seed=seed) if sweep else None

    if as_json:
        document = report.to_dict()
        document["source"] = source
        if sweep_result is not None:
            document["sweep"] = sweep_result
        out.print_json(json.dumps(document))
    else:
        out.print(f"{source}\nprecision: {report.tolerance_note}", highlight=False, soft_wrap=True)
        out.print(render.gradcheck_table(report))
        if sweep_result is not None:
            out.print(render.eps_sweep_chart(sweep_result))
        if report.passed:
            out.print("[bold green]All steps pass:[/] the derived gradient matches finite differences.")
        else:
            out.print(f"[bold red]FAILED:[/] {', '.join(report.failed_steps)}.")
            for check in report.checks:
                if not check.passed:
                    out.print(
                        f"  {check.step}: worst entry analytic {check.worst_analytic:.10g} vs numeric "
                        f"{check.worst_numeric:.10g}",
                        highlight=False,
                    )
    if not report.passed:
        raise typer.Exit(code=EXIT_RUN_FAILED)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
