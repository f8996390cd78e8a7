"""softreg path: the cross-validated penalty path, to look at before choosing (or letting
`train --l2 auto` choose)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from softreg.cli.console import fail, out
from softreg.cli.errors import reported
from softreg.cli.options import OUTPUT, AsJson, config_option

Opt = Optional


def _path_penalty(config_file, l1_ratio, grouped) -> dict:
    """The penalty flags of the path to draw: an L1 path when --l1-ratio (above 0) or --grouped
    asks for one, or the config file has an L1 term; else the ridge path (l1 0)."""
    from softreg.model.run.config import load_config_file

    with reported():
        file_l1 = load_config_file(config_file).get("l1", 0) if config_file else 0
    lasso = (l1_ratio is not None and l1_ratio > 0) or bool(grouped) or file_l1 == "auto" or (
        isinstance(file_l1, (int, float)) and not isinstance(file_l1, bool) and file_l1 > 0)
    return {"l1": "auto"} if lasso else {"l2": "auto", "l1": 0.0}


def path(
    dataset: Annotated[Opt[str], typer.Argument(help="Built-in, synthetic:..., or a file.", show_default=False)] = None,
    config_file: Annotated[Opt[Path], typer.Option("--config", help="TOML config; flags override it.",
                                                   rich_help_panel=OUTPUT)] = None,
    target: Annotated[Opt[str], config_option("target")] = None,
    missing: Annotated[Opt[str], config_option("missing")] = None,
    seed: Annotated[Opt[int], config_option("seed")] = None,
    folds: Annotated[Opt[int], config_option("folds")] = None,
    select: Annotated[Opt[str], config_option("select")] = None,
    l1_ratio: Annotated[Opt[float], config_option("l1_ratio", "0, the ridge path",
                                                  meaning="L1 share (0 to 1): above 0 an L1 path")] = None,
    grouped: Annotated[Opt[bool], config_option("grouped", negatable=False)] = None,
    plot: Annotated[Opt[Path], typer.Option(help="Also draw the curve to a PNG/SVG.", show_default=False,
                                            rich_help_panel=OUTPUT)] = None,
    as_json: AsJson = False,
) -> None:
    """The CV curve of the penalty on the training rows: mean held-out log loss, its standard
    error, the min and 1se values (what train --l2 auto, or with --l1-ratio or --grouped
    train --l1 auto, would choose)."""
    import json

    from softreg.cli import charts, render
    from softreg.cli.commands.train import load_training_data, resolved_config
    from softreg.model.run.config import BY_KEY
    from softreg.model.run.train import cross_validated_path

    if l1_ratio == 0:
        l1_ratio = None  # the mix with no L1 share is the ridge path, which is drawn without one
    flags = {key: value for key, value in locals().items() if key in BY_KEY}
    config = resolved_config(config_file, {**flags, **_path_penalty(config_file, l1_ratio, grouped)})
    if plot is not None:
        with reported():
            charts.check_plot_target(plot)
    data = load_training_data(config, quiet=as_json)
    with reported():
        found = cross_validated_path(data, config).to_dict()
    if as_json:
        out.print_json(json.dumps({"dataset": config.dataset, "penalty_path": found}))
    else:
        out.print(charts.penalty_path_chart(found))
        out.print(render.penalty_path_table(found))
    if plot is not None:
        try:
            charts.save_path_plot(plot, found)
        except OSError as error:
            fail(f"the plot could not be written to '{plot}' ({error.strerror or error}); nothing was written there.",
                 code=1)
