"""softreg eval: a saved model on its own held-out test split, or on other labelled data."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.markup import escape

from softreg.cli.console import err, out, unseen_levels_note
from softreg.cli.errors import reported
from softreg.cli.options import AsJson, ModelFile, Target


def evaluate(
    model: ModelFile,
    data: Annotated[Optional[str], typer.Argument(
        help="Data to evaluate on (any format train accepts). \\[default: the model's own held-out test split]",
        show_default=False)] = None,
    target: Target = None,
    missing: Annotated[Optional[str], typer.Option("--missing", help="Missing cells of DATA: impute|drop|error. \\[default: the model's rule]",
                                                   show_default=False)] = None,
    data_format: Annotated[Optional[str], typer.Option("--format", help="Read DATA as csv|tsv|svmlight|npz|parquet (any extension; '-' is stdin).",
                                                       show_default=False)] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse categories the model never saw (default: counted, then its other level).")] = False,
    as_json: AsJson = False,
) -> None:
    """Evaluate a saved model: the training metrics plus calibration, on its test split or on DATA."""
    from softreg.cli import render
    from softreg.model.run.evaluate import evaluate_saved_model

    with reported():
        evaluation = evaluate_saved_model(model, data, target=target, missing=missing, format=data_format,
                                          strict=strict)
    result = evaluation.metrics
    unseen_levels_note(evaluation.unseen_levels, strict_words=" --strict refuses them.")
    if result["unseen_labels"]:
        err.print(f"[yellow]warning:[/] {result['unseen_rows']} rows have labels the model never saw "
                  f"({escape(', '.join(result['unseen_labels'][:10]))}); they count as errors in accuracy and are "
                  "left out of log loss and calibration.", highlight=False, soft_wrap=True)
    if as_json:
        out.print_json(json.dumps({"model": str(model), "data": evaluation.source, "metrics": result,
                                   "unseen_levels": evaluation.unseen_levels}))
        return
    out.print(f"[bold]{escape(str(model))}[/] on {escape(evaluation.source)}", highlight=False, soft_wrap=True)
    out.print(render.metrics_table({"evaluation": result}))
    out.print(render.calibration_tables(result["calibration"], [str(c) for c in evaluation.estimator.classes_]))
    for renderable in render.per_class_report(result, ""):
        out.print(renderable, highlight=False, soft_wrap=True)
