"""softreg gradcheck: each derivation step against central finite differences."""

from __future__ import annotations

import json
import math
from typing import Annotated, Optional

import typer

from softreg.cli.console import fail, out, say
from softreg.cli.errors import EXIT_RUN_FAILED, reported
from softreg.cli.options import AsJson

# The largest K whose Jacobian beside its finite differences stays legible in 80 columns (K = 6
# cuts numbers to "-0.…").
EXPLAIN_SCREEN_CLASSES = 5


def gradcheck(
    dataset: Annotated[Optional[str], typer.Argument(
        help="Check step 4 on a real batch: a built-in name or a data file. \\[default: a random batch]",
        show_default=False)] = None,
    samples: Annotated[int, typer.Option(min=1, help="Rows of the random batch.")] = 20,
    features: Annotated[int, typer.Option(min=1, help="Features of the random batch.")] = 5,
    classes: Annotated[Optional[int], typer.Option(min=2, help="Classes K of the random batch. \\[default: 4; 3 with --explain]",
                                                   show_default=False)] = None,
    l2: Annotated[float, typer.Option(min=0.0, help="L2 penalty in the batch objective (step 4).")] = 0.1,
    eps: Annotated[float, typer.Option(min=1e-300, max=0.1, help="Finite-difference step, in (0, 0.1].")] = 1e-6,
    rtol: Annotated[float, typer.Option(min=0.0, help="Relative tolerance: pass when |a-n| <= atol + rtol |n|.")] = 1e-6,
    atol: Annotated[float, typer.Option(min=0.0, help="Absolute tolerance.")] = 1e-8,
    seed: Annotated[int, typer.Option(help="Seed of the random batch, weights and parameters.")] = 0,
    dtype: Annotated[str, typer.Option(help="Precision of the analytic side: float64 or float32 (tolerances scaled).")] = "float64",
    sweep: Annotated[bool, typer.Option("--sweep", help="Also plot the worst error of steps 3 and 4 for eps from 1e-1 to 1e-10.")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Walk through the derivation for one sample (K = 3), every number written out.")] = False,
    logits: Annotated[Optional[str], typer.Option(help="With --explain: the sample's logits, e.g. 2,1,0.1. \\[default: drawn from --seed]",
                                                  show_default=False)] = None,
    label: Annotated[Optional[int], typer.Option(min=0, help="With --explain: the sample's class, 0..K-1. \\[default: drawn from --seed]",
                                                 show_default=False)] = None,
    as_json: AsJson = False,
) -> None:
    """Prove the derivation: each step against central finite differences (exit 1 if any fails)."""
    from softreg.model.gradcheck import check_derivation, check_settings, eps_sweep

    if explain:
        ignored = [flag for flag, given in (("DATASET", dataset is not None), ("--samples", samples != 20),
                                            ("--features", features != 5), ("--eps", eps != 1e-6),
                                            ("--rtol", rtol != 1e-6), ("--atol", atol != 1e-8),
                                            ("--dtype", dtype != "float64"), ("--sweep", sweep)) if given]
        if ignored:
            fail(f"--explain works one sample in float64 with its own checks; {', '.join(ignored)} "
                 f"{'does' if len(ignored) == 1 else 'do'} not apply to it (it takes --logits, --label, --classes, "
                 "--seed, --l2 and --json).")
        with reported():
            check_settings(l2=l2, seed=seed)  # as the other checks do, before any number is drawn
        return _explain(logits, label, classes, seed, l2, as_json)
    if logits is not None or label is not None:
        fail("--logits and --label choose the sample of --explain; add --explain.")
    classes = classes or 4

    if dtype not in ("float64", "float32"):
        fail(f"--dtype must be float64 or float32, got '{dtype}'.")
    with reported():
        check_settings(l2=l2, eps=eps, rtol=rtol, atol=atol, seed=seed)  # before the batch is made
    X, y, n_classes, source, standardize = _batch(dataset, samples, features, classes, seed)
    report = check_derivation(X, y, n_classes, l2=l2, eps=eps, rtol=rtol, atol=atol, seed=seed, dtype=dtype,
                              standardize=standardize)
    sweep_result = eps_sweep(X, y, n_classes, l2=l2, seed=seed, standardize=standardize) if sweep else None
    if as_json:
        document = {**report.to_dict(), "source": source, **({"sweep": sweep_result} if sweep_result else {})}
        out.print_json(json.dumps(document))
    else:
        _show(report, source, sweep_result)
    if not report.passed:
        raise typer.Exit(code=EXIT_RUN_FAILED)


def _batch(dataset, samples, features, classes, seed):
    """(X, y, K, words, standardize): the random batch, or a dataset's rows (a sparse one as stored)."""
    import numpy as np

    from softreg.data import load_dataset
    from softreg.model.gradcheck import check_batch_size, random_problem

    if dataset is None:
        X, y = random_problem(samples, features, classes, seed)
        return X, y, classes, f"random batch: {samples} samples, {features} features, {classes} classes, seed {seed}", True
    with reported():
        data = load_dataset(dataset)
        check_batch_size(*data.X.shape, f"dataset {dataset}")
    dense = not hasattr(data.X, "toarray")
    X = data.X if dense else data.X.toarray()
    class_values, y = np.unique(data.y, return_inverse=True)
    words = (f"dataset {dataset}: {X.shape[0]} samples, {X.shape[1]} features, {len(class_values)} classes "
             f"({'standardized' if dense else 'sparse, as stored'})")
    return X, y, len(class_values), words, dense


def _show(report, source: str, sweep_result) -> None:
    from softreg.cli import charts, render

    folded = ", standardization folded into the weights" if report.problem["standardized"] else ""
    say(f"{source}\nprecision: {report.tolerance_note}\nstep 4 runs training's own engine pass: "
        f"{report.problem['engine_blocks']} row blocks{folded}", to=out)
    out.print(render.gradcheck_table(report))
    if sweep_result is not None:
        out.print(charts.eps_sweep_chart(sweep_result))
    if report.passed:
        out.print("[bold green]All steps pass:[/] the derived gradient matches finite differences.")
        return
    out.print(f"[bold red]FAILED:[/] {', '.join(report.failed_steps)}.")
    for check in report.checks:
        if not check.passed:
            say(f"  {check.step}: worst entry analytic {check.worst_analytic:.10g} vs numeric "
                f"{check.worst_numeric:.10g}", to=out)


def _explain(logits: str | None, label: int | None, classes: int | None, seed: int, l2: float, as_json: bool) -> None:
    """`--explain`: the worked example, rendered or as JSON; exit 1 if a step fails."""
    from dataclasses import asdict

    from softreg.cli import render
    from softreg.model.gradcheck import explain_derivation

    values = None
    if logits is not None:
        try:
            values = [float(word) for word in logits.split(",")]
        except ValueError:
            fail(f"--logits must be numbers separated by commas (such as 2,1,0.1), got '{logits}'.")
        if len(values) < 2 or not all(math.isfinite(value) for value in values):
            fail(f"--logits needs at least 2 finite numbers (one per class), got '{logits}'.")
        if not math.isfinite(max(values) - min(values)):
            fail(f"--logits '{logits}' are too far apart for float64 (their differences overflow); keep them "
                 "within about 1e307 of each other.")
        if classes is not None and classes != len(values):
            fail(f"--classes {classes} but --logits gives {len(values)}: the logits set K; drop --classes.")
    size = len(values) if values is not None else (classes or 3)
    if size > EXPLAIN_SCREEN_CLASSES and not as_json:
        fail(f"--explain writes out {size} x {size} matrices, which do not fit an 80-column terminal beyond "
             f"K = {EXPLAIN_SCREEN_CLASSES}: choose at most {EXPLAIN_SCREEN_CLASSES} classes, or add --json for "
             "every number at any K.")
    if label is not None and label >= size:
        fail(f"--label must be a class of the sample, 0..{size - 1}, got {label}.")
    steps = explain_derivation(values, label, n_classes=classes or 3, seed=seed, l2=l2)
    if as_json:
        out.print_json(json.dumps({"passed": all(step.passed for step in steps),
                                   "steps": [asdict(step) for step in steps]}))
    else:
        for renderable in render.explain_steps(steps):
            out.print(renderable, highlight=False)
    if not all(step.passed for step in steps):
        raise typer.Exit(code=EXIT_RUN_FAILED)
