"""softreg info: what a model file holds, read without loading data or scikit-learn."""

from __future__ import annotations

import json

from rich.markup import escape

from softreg.cli.console import abridged, out, say
from softreg.cli.errors import reported
from softreg.cli.options import AsJson, ModelFile
from softreg.cli.words import stop_words


def info(model: ModelFile, as_json: AsJson = False) -> None:
    """What a model file holds: versions, config, dataset, classes, features, stop reason, metrics, loss curve."""
    from softreg.cli import charts, render
    from softreg.data import spec_to_string
    from softreg.model.run.export import EXPORT_FORMATS
    from softreg.model.run.persist import read_model_file

    with reported():
        model_file = read_model_file(model)
    header = model_file.header
    classes = [c.item() if hasattr(c, "item") else c for c in model_file.classes_]
    if as_json:
        out.print_json(json.dumps({"model": str(model), "classes": classes, **header}, default=float))
        return
    names, split = header["feature_names"], header["split"]
    out.print(f"[bold]{escape(str(model))}[/]: softreg model format {header['format_version']}, "
              f"written by softreg {header.get('softreg_version', '?')}", highlight=False, soft_wrap=True)
    say(f"dataset: {spec_to_string(header['dataset'])} - {header['dataset'].get('description', '')}", to=out)
    say(f"split (seed {split.get('seed', '?')}): {split.get('train_rows', '?')} train, "
        f"{split.get('val_rows', '?')} validation, {split.get('test_rows', '?')} test rows", to=out)
    say(f"classes ({len(classes)}): {abridged([str(c) for c in classes])}", to=out)
    say(f"features ({len(names)}): {abridged(names)}", to=out)
    say(f"exports to: {', '.join(EXPORT_FORMATS)} (softreg export MODEL --to FORMAT)", to=out)
    out.print(render.config_table(header["config"], title="config"))
    if header.get("penalty_path"):
        out.print(charts.penalty_path_chart(header["penalty_path"]))
        out.print(render.penalty_path_table(header["penalty_path"]))
    stop = stop_words(header.get("stop_reason"), header.get("stop_details"), str(header.get("stop_message", "?")))
    out.print(f"[bold]stop:[/] {escape(stop)}", highlight=False, soft_wrap=True)
    if header.get("sparsity"):
        out.print(render.sparsity_words(header["sparsity"], [str(c) for c in classes]), highlight=False, soft_wrap=True)
    history = header.get("history")
    if isinstance(history, dict) and history.get("epoch"):
        out.print(charts.loss_curves(history, height=8))
    if header.get("metrics"):
        out.print(render.metrics_table(header["metrics"]))
