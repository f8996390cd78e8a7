"""softreg compare: softreg and scikit-learn's LogisticRegression on the same split and penalty."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.markup import escape

from softreg.cli.console import err, out
from softreg.cli.errors import reported
from softreg.cli.options import AsJson, Missing, Target, WeightColumn, config_option

PANEL = "softreg's side"


def compare(
    dataset: Annotated[str, typer.Argument(help="Built-in name, synthetic[:...], or a data file.", show_default=False)],
    target: Target = None,
    l2: Annotated[float, config_option("l2", 1e-3, "softreg's L2 penalty; scikit-learn gets C = 1/(l2 N) "
                                       "(2/(l2 N) for two classes)")] = 1e-3,
    test_fraction: Annotated[float, config_option("test_fraction", 0.15, "share of rows held out for the test "
                                                  "metrics")] = 0.15,
    seed: Annotated[int, config_option("seed", 0, "seed of the split")] = 0,
    tol: Annotated[float, config_option("tol", 1e-9, "tight, to reach the optimum", PANEL)] = 1e-9,
    max_epochs: Annotated[int, config_option("max_epochs", 20_000, panel=PANEL)] = 20_000,
    momentum: Annotated[str, config_option("momentum", "nesterov", panel=PANEL)] = "nesterov",
    missing: Missing = "impute",
    weight_column: WeightColumn = None,
    class_weight: Annotated[str, config_option("class_weight", "none", "both sides get the same row weights")] = "none",
    as_json: AsJson = False,
) -> None:
    """Fit softreg and scikit-learn's LogisticRegression on the same split and penalty; show both side by side."""
    from softreg.cli import render
    from softreg.model.run.compare import compare_on_dataset
    from softreg.model.run.config import resolve_config

    flags = dict(dataset=dataset, target=target, l2=l2, test_fraction=test_fraction, val_fraction=0.0, seed=seed,
                 tol=tol, max_epochs=max_epochs, momentum=momentum, missing=missing, weight_column=weight_column,
                 class_weight=class_weight)
    with reported():
        comparison = compare_on_dataset(resolve_config({}, flags))
    if as_json:
        out.print_json(json.dumps({"dataset": dataset, **comparison.result}, default=float))
        return
    err.print(f"[bold]{escape(comparison.description)}[/]: {comparison.train_rows} training rows, "
              f"{comparison.test_rows} test rows, standardized on the training rows", highlight=False, soft_wrap=True)
    out.print(render.comparison_table(comparison.result))
    out.print(render.comparison_summary(comparison.result), highlight=False, soft_wrap=True)
