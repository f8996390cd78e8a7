"""softreg train: config -> dataset -> softreg.model.run.train_to_file -> curves, stop, metrics."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from softreg.cli.console import err, fail, out, plural, refuse_overwriting, say
from softreg.cli.errors import EXIT_RUN_FAILED, reported
from softreg.cli.interrupt import INTERRUPTIONS
from softreg.cli.options import OUTPUT, AsJson, config_option
from softreg.cli.words import stop_words

Opt = Optional  # every config option is None when not given, so that a config file may set it


def _help(ctx: typer.Context, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        text = ctx.get_help()  # Typer's rich help prints itself and returns nothing; plain Click returns the text
        if text:
            typer.echo(text)
        raise typer.Exit()


# About 65 lines, nearly all signature: Typer reads one parameter per flag; the body is a dozen lines.
def train(
    # Described in the docstring: an Arguments panel of one line would cost help three lines.
    dataset: Annotated[Opt[str], typer.Argument(metavar="[DATASET]", hidden=True, show_default=False)] = None,
    config_file: Annotated[Opt[Path], typer.Option("--config", help="TOML config; flags override it.", exists=True,
                                                   dir_okay=False, show_default=False, rich_help_panel=OUTPUT)] = None,
    target: Annotated[Opt[str], config_option("target")] = None,
    weight_column: Annotated[Opt[str], config_option("weight_column")] = None,
    missing: Annotated[Opt[str], config_option("missing")] = None,
    format: Annotated[Opt[str], config_option("format")] = None,
    header: Annotated[Opt[bool], config_option("header")] = None,
    categorical: Annotated[Opt[str], config_option("categorical")] = None,
    numeric: Annotated[Opt[str], config_option("numeric")] = None,
    ignore: Annotated[Opt[str], config_option("ignore")] = None,
    features: Annotated[Opt[str], config_option("features")] = None,
    min_frequency: Annotated[Opt[int], config_option("min_frequency")] = None,
    val_fraction: Annotated[Opt[float], config_option("val_fraction")] = None,
    test_fraction: Annotated[Opt[float], config_option("test_fraction")] = None,
    seed: Annotated[Opt[int], config_option("seed")] = None,
    standardize: Annotated[Opt[bool], config_option("standardize")] = None,
    l2: Annotated[Opt[str], config_option("l2")] = None,
    l1: Annotated[Opt[str], config_option("l1")] = None,
    l1_ratio: Annotated[Opt[float], config_option("l1_ratio")] = None,
    grouped: Annotated[Opt[bool], config_option("grouped", negatable=False)] = None,
    folds: Annotated[Opt[int], config_option("folds")] = None,
    select: Annotated[Opt[str], config_option("select")] = None,
    class_weight: Annotated[Opt[str], config_option("class_weight")] = None,
    dtype: Annotated[Opt[str], config_option("dtype")] = None,
    lr: Annotated[Opt[str], config_option("lr")] = None,
    momentum: Annotated[Opt[str], config_option("momentum")] = None,
    batch_size: Annotated[Opt[int], config_option("batch_size")] = None,
    schedule: Annotated[Opt[str], config_option("schedule")] = None,
    max_epochs: Annotated[Opt[int], config_option("max_epochs")] = None,
    tol: Annotated[Opt[float], config_option("tol")] = None,
    patience: Annotated[Opt[int], config_option("patience")] = None,
    engine: Annotated[Opt[str], config_option("engine")] = None,
    block_rows: Annotated[Opt[int], config_option("block_rows")] = None,
    scheduler: Annotated[Opt[str], config_option("scheduler")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint beside --out.",
                                         rich_help_panel="Stopping and engine")] = False,
    out_path: Annotated[Opt[Path], typer.Option("--out", help="Model file. \\[default: DATASET.softreg.npz]",
                                                show_default=False, rich_help_panel=OUTPUT)] = None,
    plot: Annotated[Opt[Path], typer.Option(help="Also draw the curves to a PNG/SVG.", show_default=False,
                                            rich_help_panel=OUTPUT)] = None,
    log_scale: Annotated[bool, typer.Option("--log-scale", help="Log-scale curves.", rich_help_panel=OUTPUT)] = False,
    as_json: AsJson = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.", rich_help_panel=OUTPUT)] = False,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the resolved config as TOML; exit.",
                                               rich_help_panel=OUTPUT)] = False,
    show_help: Annotated[bool, typer.Option("--help", help="Show this message and exit.", is_eager=True,
                                            expose_value=False, callback=_help, rich_help_panel=OUTPUT)] = False,
) -> None:
    """Train on DATASET (built-in, synthetic:..., a file): curves, metrics, model."""
    from softreg.model.run.config import BY_KEY, to_toml

    flags = {key: value for key, value in locals().items() if key in BY_KEY}
    config = resolved_config(config_file, flags)
    if print_config:
        out.print(to_toml(config), end="", highlight=False, markup=False)
        raise typer.Exit()
    model_path = out_path or Path(default_model_path(config.dataset))
    check_outputs(config, config_file, model_path, plot)
    data = load_training_data(config, quiet=as_json)
    warn_if_replacing(model_path, data)
    run = run_training(data, config, model_path, resume=resume, show_progress=not quiet and not as_json)
    show_result(run, config, model_path, plot, log_scale, as_json)


def resolved_config(config_file, flags: dict):
    from softreg.model.run.config import load_config_file, resolve_config

    with reported():
        file_values = load_config_file(config_file) if config_file else {}
        if flags["dataset"] is None and "dataset" not in file_values:
            fail("no dataset: give one (for example `softreg train digits`) or a --config that sets dataset.")
        return resolve_config(file_values, flags, source=f"config file '{config_file}'" if config_file else "config")


def default_model_path(dataset: str) -> str:
    """digits -> digits.softreg.npz; data/x.csv -> x.softreg.npz (in the working directory)."""
    return f"{Path(dataset.partition(':')[0]).stem or 'model'}.softreg.npz"


def check_outputs(config, config_file, model_path: Path, plot) -> None:
    """Before loading anything: no output may be an input, and each must be writable."""
    from softreg.cli import charts
    from softreg.model.run.persist import check_writable

    from softreg.data.dataset import dataset_files
    from softreg.model.run.checkpoint import checkpoint_path

    inputs = {"the dataset": dataset_files(config.dataset), "the --config file": dataset_files(config_file)}
    for output, target, flag in (("--out", model_path, "--out"), ("--out's checkpoint", checkpoint_path(model_path),
                                                                   "--out"), ("--plot", plot, "--plot")):
        if target is not None:
            refuse_overwriting(output, target, inputs, flag)
    if plot is not None and Path(plot).resolve() == Path(model_path).resolve():
        fail(f"--plot '{plot}' is also the model file (--out); give them different names.")
    with reported():
        check_writable(model_path)
        if plot is not None:
            check_writable(plot)
            try:
                charts.check_plot_target(plot)
            except ValueError as error:
                fail(str(error))


def load_training_data(config, *, quiet: bool):
    from softreg.data import load_dataset
    from softreg.model.run.config import dataset_options
    from softreg.model.run.train import check_engine_source

    with reported():
        check_engine_source(config)
        data = load_dataset(config.dataset, **dataset_options(config), memory_map=config.engine != "memory")
    if data.dropped_rows and not quiet:
        why = "with missing, NaN or infinite values" if config.missing == "drop" else "with no label (or weight)"
        say(f"--missing {config.missing}: left out {data.dropped_rows} {plural(data.dropped_rows, 'row')} {why}")
    if not quiet and data.encoding is not None:
        from softreg.cli import render

        err.print(render.schema_table(data.encoding, classes=len(data.class_names), standardize=config.standardize,
                                      title="columns (levels, means and missing columns are learned from the training "
                                            "rows)"), highlight=False)
    if not quiet:
        err.print(f"[bold]{escape(data.description)}[/]: {data.n_samples} {plural(data.n_samples, 'row')}, "
                  f"{data.n_features} {plural(data.n_features, 'feature')}, {len(data.class_names)} "
                  f"{plural(len(data.class_names), 'class')}", highlight=False, soft_wrap=True)
    return data


def warn_if_replacing(model_path: Path, data) -> None:
    """A model file of the same name trained on other data is about to be replaced: say so."""
    from softreg.data import spec_to_string
    from softreg.model.run.persist import trained_on

    previous = trained_on(model_path)
    if previous is not None and spec_to_string(previous) != spec_to_string(data.spec):
        err.print(f"[yellow]warning:[/] replacing {escape(str(model_path))}, a model trained on "
                  f"{escape(spec_to_string(previous))}, with one trained on {escape(spec_to_string(data.spec))} "
                  "(--out chooses another file)", highlight=False, soft_wrap=True)


def run_training(data, config, model_path: Path, *, resume: bool, show_progress: bool):
    """Train to the model file; a signal during training ends it after the current epoch, and
    the best weights so far are saved like a finished run's."""
    from sklearn.exceptions import ConvergenceWarning

    from softreg.cli.progress import TrainingProgress
    from softreg.model.engines import EngineLost
    from softreg.model.run.checkpoint import checkpoint_path
    from softreg.model.run.train import train_to_file

    with INTERRUPTIONS.deferred() as interruptions, warnings.catch_warnings(), reported(), \
            TrainingProgress(err, enabled=show_progress and err.is_terminal, max_epochs=config.max_epochs) as progress:
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported after the run as an error, once
        try:
            run = train_to_file(data, config, model_path, callback=progress.update, in_place=True, resume=resume,
                                should_stop=lambda: interruptions.requested, interrupted_by=lambda: interruptions.name)
        except EngineLost as error:
            saved = checkpoint_path(model_path)
            where = (f"the last checkpoint is {saved}: start a scheduler and rerun the same command with --resume "
                     "to continue from it" if saved.exists() else "no checkpoint was written yet: rerun the command")
            fail(f"{error}. Training stopped and no model was written; {where}.", code=EXIT_RUN_FAILED)
        except OSError as error:  # a data file that changed or vanished under a running engine
            fail(f"training stopped: {error}. No model was written.", code=EXIT_RUN_FAILED)
    INTERRUPTIONS.saved.append(str(model_path))
    run.interruption = interruptions.name if interruptions.requested else None
    return run


def show_result(run, config, model_path: Path, plot, log_scale: bool, as_json: bool) -> None:
    """What train prints after a run: curves, stop reason, steps, metrics, per-class report, confusion."""
    import json

    from softreg.cli import charts, render

    estimator = run.estimator
    for event in run.events:
        if not as_json:
            err.print(f"[yellow]engine:[/] {escape(event)}", highlight=False, soft_wrap=True)
    if run.checkpoint_kept is not None and not as_json:
        say(f"checkpoint kept: {run.checkpoint_kept}; the same command with --resume continues the run")
    stop = stop_words(estimator.stop_reason_, estimator.stop_details_, estimator.stop_message_)
    if estimator.stop_reason_ == "separable":
        fail(f"{stop} The model was saved to '{model_path}', but it is not an optimum.", code=EXIT_RUN_FAILED)
    if plot is not None:
        try:
            charts.save_loss_plot(plot, estimator.history_, log_scale=log_scale)
        except OSError as error:
            fail(f"the model was saved to '{model_path}', but the plot could not be written to '{plot}' "
                 f"({error.strerror or error}); nothing was written there.", code=EXIT_RUN_FAILED)
    if as_json:
        out.print_json(json.dumps({"model": str(model_path), **render.header_in_flags(run.header_written)},
                                  default=float))
    else:
        for renderable in render.training_report(run, config, stop, log_scale):
            out.print(renderable, highlight=False, soft_wrap=True)
        out.print(f"model saved to [bold]{escape(str(model_path))}[/] ({run.seconds:.2f} s of training)",
                  highlight=False, soft_wrap=True)
        if plot is not None:
            say(f"loss curves saved to {plot}", to=out)
    report_interruption(run, model_path)


def report_interruption(run, model_path: Path) -> None:
    if run.interruption is None:
        return
    if run.estimator.stop_reason_ == "interrupted":
        say(f"interrupted by {run.interruption}: the weights above were saved to {model_path}, marked interrupted "
            "in its header.")
    else:
        say(f"interrupted by {run.interruption} after training had finished; the model was saved to {model_path}.")
    raise typer.Exit(code=INTERRUPTIONS.exit_code)

