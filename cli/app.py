"""The softreg command line: thin commands over softreg.model and softreg.data.

Each command parses its options, calls the library, renders the result with
softreg.cli.render, and turns the library's own errors into a one-paragraph message with
exit code 2 (bad input or usage) or 1 (a run that failed).
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from rich.markup import escape

from softreg.cli.interrupt import Interrupted, Interruptions
from softreg.cli.words import stop_words

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
# Installed by main(); train defers the first signal to finish its epoch and save.
INTERRUPTIONS = Interruptions()


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print a one-paragraph error to stderr and exit with ``code``."""
    # The message is plain text: brackets such as softreg[plot] must not be read as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
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
    eps: Annotated[float, typer.Option(min=1e-300, max=0.1, help="Finite-difference step, in (0, 0.1].")] = 1e-6,
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
    scaled = True
    if dataset is None:
        X, y = random_problem(samples, features, classes, seed)
        n_classes = classes
        source = f"random batch: {samples} samples, {features} features, {classes} classes, seed {seed}"
    else:
        try:
            data = load_dataset(dataset)
        except DataError as error:
            fail(str(error))
        scaled = not hasattr(data.X, "toarray")
        X = data.X if scaled else data.X.toarray()
        class_values, y = np.unique(data.y, return_inverse=True)
        n_classes = len(class_values)
        source = (f"dataset {dataset}: {X.shape[0]} samples, {X.shape[1]} features, {n_classes} classes "
                  f"({'standardized' if scaled else 'sparse, as stored'})")
    report = check_derivation(X, y, n_classes, l2=l2, eps=eps, rtol=rtol, atol=atol, seed=seed, dtype=dtype,
                              standardize=scaled)
    sweep_result = eps_sweep(X, y, n_classes, l2=l2, seed=seed, standardize=scaled) if sweep else None

    if as_json:
        document = report.to_dict()
        document["source"] = source
        if sweep_result is not None:
            document["sweep"] = sweep_result
        out.print_json(json.dumps(document))
    else:
        folded = ", standardization folded into the weights" if report.problem["standardized"] else ""
        out.print(f"{source}\nprecision: {report.tolerance_note}\nstep 4 runs training's own engine pass: "
                  f"{report.problem['engine_blocks']} row blocks{folded}", highlight=False, soft_wrap=True,
                  markup=False)
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


@app.command()
def datasets(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """List the built-in datasets with their shapes and classes."""
    from softreg.cli import render
    from softreg.data import describe_builtins

    rows = describe_builtins()
    if as_json:
        out.print_json(json.dumps(rows))
    else:
        out.print(render.datasets_table(rows))
        out.print("synthetic[:samples=5000,features=20,classes=4,informative=10,seed=0] makes data of any size; "
                  "files: .csv/.tsv (header row, --target column), .npz (X, y), .svm/.svmlight/.libsvm.",
                  highlight=False)


def _default_out(dataset: str) -> str:
    """digits -> digits.softreg.npz; data/x.csv -> x.softreg.npz (in the working directory)."""
    from pathlib import Path

    name = dataset.partition(":")[0]
    return f"{Path(name).stem or 'model'}.softreg.npz"


@app.command()
def train(
    dataset: Annotated[Optional[str], typer.Argument(
        help="Built-in name (iris, wine, digits, breast_cancer), synthetic[:samples=N,...], or a .csv/.tsv/.npz/svmlight file. "
             "May come from --config instead.", show_default=False)] = None,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML config; explicit flags override its values.",
                                                        exists=True, dir_okay=False, show_default=False)] = None,
    target: Annotated[Optional[str], typer.Option(help="Label column of a CSV/TSV file. \\[default: last column]", show_default=False)] = None,
    weight_column: Annotated[Optional[str], typer.Option(help="CSV/TSV column of per-sample weights.", show_default=False)] = None,
    missing: Annotated[Optional[str], typer.Option(help="Rows with missing, NaN or infinite values: error or drop. \\[default: error]", show_default=False)] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="Share of rows for validation (stratified). \\[default: 0.15]", show_default=False)] = None,
    test_fraction: Annotated[Optional[float], typer.Option(help="Share of rows for the test split (stratified). \\[default: 0.15]", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the splits and mini-batch shuffling. \\[default: 0]", show_default=False)] = None,
    standardize: Annotated[Optional[bool], typer.Option("--standardize/--no-standardize", help="Standardize features on the training split. \\[default: on]", show_default=False)] = None,
    l2: Annotated[Optional[float], typer.Option(help="L2 penalty on the weights: J = mean CE + l2/2 ||W||². \\[default: 1e-3]", show_default=False)] = None,
    lr: Annotated[Optional[str], typer.Option(help="Step size: auto (Armijo backtracking, floor 1/L), bound (fixed 1/L) or a number. \\[default: auto]", show_default=False)] = None,
    momentum: Annotated[Optional[str], typer.Option(help="none or nesterov (accelerated, adaptive restart). \\[default: none]", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Mini-batch SGD with this batch size. \\[default: full batch]", show_default=False)] = None,
    schedule: Annotated[Optional[str], typer.Option(help="Decay of a fixed step: constant, inverse-sqrt, cosine. \\[default: constant]", show_default=False)] = None,
    max_epochs: Annotated[Optional[int], typer.Option(help="Stop after this many epochs. \\[default: 1000]", show_default=False)] = None,
    tol: Annotated[Optional[float], typer.Option(help="Converged when max |gradient| <= tol x the first epoch's. \\[default: 1e-5]", show_default=False)] = None,
    patience: Annotated[Optional[int], typer.Option(help="Early stopping: epochs without a better validation loss. \\[default: off]", show_default=False)] = None,
    class_weight: Annotated[Optional[str], typer.Option(help="none or balanced. \\[default: none]", show_default=False)] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float64 or float32. \\[default: float64]", show_default=False)] = None,
    engine: Annotated[Optional[str], typer.Option(help="memory (rows in RAM), stream (a prepared .npy read block by block, out of core) or dask (a prepared .npy on a Dask cluster). \\[default: memory]", show_default=False)] = None,
    block_rows: Annotated[Optional[int], typer.Option(help="Rows per block of the stream and dask engines. \\[default: about 4 MiB of rows; dask 200,000]", show_default=False)] = None,
    scheduler: Annotated[Optional[str], typer.Option(help="Dask scheduler address (tcp://host:8786) for --engine dask. \\[default: an embedded local cluster]", show_default=False)] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a stream/dask run that was cut short from the checkpoint beside --out.")] = False,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Model file to write. \\[default: DATASET.softreg.npz]", show_default=False)] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Also write the loss curves to a PNG or SVG file (needs matplotlib).", show_default=False)] = None,
    log_scale: Annotated[bool, typer.Option("--log-scale", help="Draw the loss curves on a log scale.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document (config, stop reason, history, metrics) and nothing else.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the resolved config as TOML and exit.")] = False,
) -> None:
    """Train softmax regression by gradient descent: progress, loss curves, metrics, a model file."""
    from softreg.cli import render
    from softreg.cli.progress import TrainingProgress
    from softreg.data import DataError, load_dataset
    from softreg.model.run.config import ConfigError, load_config_file, resolve_config, to_toml
    from softreg.model.engines import EngineError, EngineLost
    from softreg.model.solve import TrainingDiverged
    from softreg.model.run.persist import ModelFileError, check_writable, checkpoint_path, save_model
    from softreg.model.run.train import check_engine_source, fit_dataset
    from sklearn.exceptions import ConvergenceWarning

    flags = dict(dataset=dataset, target=target, weight_column=weight_column, missing=missing, val_fraction=val_fraction,
                 test_fraction=test_fraction, seed=seed, standardize=standardize, l2=l2, lr=lr, momentum=momentum,
                 batch_size=batch_size, schedule=schedule, max_epochs=max_epochs, tol=tol, patience=patience,
                 class_weight=class_weight, dtype=dtype, engine=engine, block_rows=block_rows,
                 scheduler=scheduler)
    try:
        file_values = load_config_file(config_file) if config_file else {}
        if dataset is None and "dataset" not in file_values:
            fail("no dataset: give one (for example `softreg train digits`) or a --config that sets dataset.")
        config = resolve_config(file_values, flags, source=f"config file '{config_file}'" if config_file else "config")
    except ConfigError as error:
        fail(_flag_names(str(error)))
    if print_config:
        out.print(to_toml(config), end="", highlight=False, markup=False)
        raise typer.Exit()
    model_path = out_path or Path(_default_out(config.dataset))
    inputs = {"the dataset file": config.dataset, "the --config file": config_file}
    for flag, target_path in (("--out", model_path), ("--plot", plot)):
        for name, source in inputs.items():
            if target_path is not None and source is not None and Path(source).exists() \
                    and Path(target_path).resolve() == Path(source).resolve():
                fail(f"{flag} '{target_path}' is {name} itself; writing there would destroy it. Choose another {flag}.")
    if plot is not None and Path(plot).resolve() == Path(model_path).resolve():
        fail(f"--plot '{plot}' is also the model file (--out); give them different names.")
    try:
        check_writable(model_path)
        if plot is not None:
            check_writable(plot)
            render.check_plot_target(plot)
    except (ModelFileError, ValueError) as error:
        fail(str(error))

    try:
        check_engine_source(config)
        data = load_dataset(config.dataset, target=config.target, weight_column=config.weight_column, dtype=config.dtype,
                            missing=config.missing, memory_map=config.engine != "memory")
    except DataError as error:
        fail(str(error))
    if data.dropped_rows and not as_json:
        err.print(f"--missing drop: left out {data.dropped_rows} {_plural(data.dropped_rows, 'row')} with missing, "
                  "NaN or infinite values",
                  highlight=False, soft_wrap=True)
    if not as_json:
        err.print(f"[bold]{escape(data.description)}[/]: {data.n_samples} {_plural(data.n_samples, 'row')}, "
                  f"{data.n_features} {_plural(data.n_features, 'feature')}, {len(data.class_names)} "
                  f"{_plural(len(data.class_names), 'class')}", highlight=False, soft_wrap=True)
    show_progress = not quiet and not as_json and err.is_terminal
    # A signal during training ends it after the current epoch; the best weights so far are
    # then saved like a finished run's, and the exit code says it was interrupted.
    with INTERRUPTIONS.deferred() as interruptions:
        try:
            with TrainingProgress(err, enabled=show_progress, max_epochs=config.max_epochs) as progress, \
                    warnings.catch_warnings():
                # The separable-data warning is reported below as an error, once.
                warnings.simplefilter("ignore", ConvergenceWarning)
                run = fit_dataset(data, config, callback=progress.update, should_stop=lambda: interruptions.requested,
                                  in_place=True, checkpoint_to=checkpoint_path(model_path), resume=resume)
        except TrainingDiverged as error:
            fail(str(error), code=EXIT_RUN_FAILED)
        except EngineLost as error:
            saved = checkpoint_path(model_path)
            where = (f"the last checkpoint is {saved}: start a scheduler and rerun the same command with --resume "
                     "to continue from it" if saved.exists() else "no checkpoint was written yet: rerun the command")
            fail(f"{error}. Training stopped and no model was written; {where}.", code=EXIT_RUN_FAILED)
        except EngineError as error:
            fail(str(error))
        except OSError as error:  # a data file that changed or vanished under a running engine
            fail(f"training stopped: {error}. No model was written.", code=EXIT_RUN_FAILED)
        except (DataError, ValueError) as error:
            fail(_flag_names(str(error)))
        header = run.header()
        for event in run.events:
            if not as_json:
                err.print(f"[yellow]engine:[/] {escape(event)}", highlight=False, soft_wrap=True)
        if run.estimator.stop_reason_ == "interrupted":
            header["interrupted_by"] = interruptions.name
        try:
            save_model(model_path, run.estimator, header, data.feature_names)
        except OSError as error:
            fail(f"training finished but the model could not be written to '{model_path}' ({error.strerror or error}); "
                 "nothing was written there. Choose another --out.", code=EXIT_RUN_FAILED)
        INTERRUPTIONS.saved.append(str(model_path))
        if config.engine != "memory" and run.estimator.stop_reason_ != "interrupted":
            checkpoint_path(model_path).unlink(missing_ok=True)  # the finished model supersedes it
        elif config.engine != "memory" and checkpoint_path(model_path).exists() and not as_json:
            err.print(f"checkpoint kept: {checkpoint_path(model_path)}; the same command with --resume continues the "
                      "run", highlight=False, soft_wrap=True)
        if run.estimator.stop_reason_ == "separable":
            stop = stop_words(run.estimator.stop_reason_, run.estimator.stop_details_, run.estimator.stop_message_)
            fail(f"{stop} The model was saved to '{model_path}', but it is not an optimum.",
                 code=EXIT_RUN_FAILED)
        if plot is not None:
            try:
                render.save_loss_plot(plot, run.estimator.history_, log_scale=log_scale)
            except OSError as error:
                fail(f"the model was saved to '{model_path}', but the plot could not be written to '{plot}' "
                     f"({error.strerror or error}); nothing was written there.", code=EXIT_RUN_FAILED)
        if as_json:
            out.print_json(json.dumps({"model": str(model_path), **header}, default=float))
        else:
            _show_training(run, config, model_path, plot, log_scale)
    if interruptions.requested:
        if run.estimator.stop_reason_ == "interrupted":
            err.print(f"interrupted by {interruptions.name}: the weights above were saved to {escape(str(model_path))}, marked "
                      "interrupted in its header.", highlight=False, soft_wrap=True)
        else:
            err.print(f"interrupted by {interruptions.name} after training had finished; the model was saved to "
                      f"{escape(str(model_path))}.", highlight=False, soft_wrap=True)
        raise typer.Exit(code=interruptions.exit_code)


def _show_training(run, config, model_path: Path, plot: Optional[Path], log_scale: bool) -> None:
    """What train prints after a run: curves, stop reason, steps, metrics, per-class report, confusion."""
    from softreg.cli import render

    estimator = run.estimator
    out.print(render.loss_curves(estimator.history_, log_scale=log_scale))
    stop = stop_words(estimator.stop_reason_, estimator.stop_details_, estimator.stop_message_)
    out.print(f"[bold]stop:[/] {escape(stop)}", highlight=False, soft_wrap=True)
    out.print(render.step_summary(estimator, config), highlight=False, soft_wrap=True)
    shown = {k: v for k, v in run.metrics.items() if k in ("validation", "test")} or run.metrics
    out.print(render.metrics_table(shown))
    report_split = "test" if "test" in run.metrics else next(iter(shown))
    _show_per_class(run.metrics[report_split], f" ({report_split})")
    out.print(f"model saved to [bold]{escape(str(model_path))}[/] ({run.seconds:.2f} s of training)", highlight=False, soft_wrap=True)
    if plot is not None:
        out.print(f"loss curves saved to {plot}", highlight=False, soft_wrap=True, markup=False)


@app.command()
def prepare(
    source: Annotated[str, typer.Argument(help="Dataset to convert: a built-in, synthetic:..., a .csv/.tsv/.npz/.parquet file, or a folder of .parquet or .csv/.tsv partitions with one schema.", show_default=False)],
    destination: Annotated[Path, typer.Argument(metavar="OUT.npy", help="Row-major .npy to write; labels go to OUT.labels.npy, feature names to OUT.features.json.", show_default=False)],
    target: Annotated[Optional[str], typer.Option(help="Label column of a CSV/TSV file. \\[default: last column]", show_default=False)] = None,
    weight_column: Annotated[Optional[str], typer.Option(help="CSV/TSV column of per-sample weights (written to OUT.weights.npy).", show_default=False)] = None,
    missing: Annotated[str, typer.Option(help="Rows with missing, NaN or infinite values: error or drop.")] = "error",
    dtype: Annotated[str, typer.Option(help="float64 or float32: the stream engine trains in the dtype the file holds.")] = "float64",
) -> None:
    """Convert a dataset once into the row-major .npy that `train --engine stream` reads block by block."""
    from softreg.data import DataError, load_dataset
    from softreg.data.datasets import prepared_paths, write_prepared
    from softreg.data.partitions import open_folder, write_prepared_folder

    if destination.suffix.lower() != ".npy":
        fail(f"OUT.npy must end in .npy, got '{destination}'.")
    if dtype not in ("float64", "float32"):
        fail(f"--dtype must be float64 or float32, got '{dtype}'.")
    if missing not in ("error", "drop"):
        fail(f"--missing must be error or drop, got '{missing}'.")
    source_files = [Path(source)]
    if Path(source).suffix.lower() == ".npy":
        source_files = list(prepared_paths(Path(source)).values())  # a prepared source's labels count too
    for name, path in prepared_paths(destination).items():
        for source_file in source_files:
            if source_file.exists() and path.resolve() == source_file.resolve():
                fail(f"OUT.npy '{destination}' would overwrite '{source_file}', part of the source, with its {name} "
                     "file; choose another name.")
    if not destination.parent.resolve().is_dir():
        fail(f"the folder of OUT.npy, '{destination.parent}', does not exist.")
    try:
        if Path(source).is_dir() or Path(source).suffix.lower() == ".parquet":
            # Partitions one at a time: memory for the largest partition, not the dataset.
            folder = open_folder(Path(source), target, weight_column)
            written, rows, dropped = write_prepared_folder(folder, destination, dtype, missing)
            n_features = len(folder.feature_names)
        else:
            data = load_dataset(source, target=target, weight_column=weight_column, dtype=dtype, missing=missing)
            written = write_prepared(data, destination)
            rows, n_features, dropped = data.n_samples, data.n_features, data.dropped_rows
    except DataError as error:
        fail(str(error))
    except OSError as error:
        fail(f"cannot write '{destination}': {error.strerror or error}.", code=EXIT_RUN_FAILED)
    if dropped:
        err.print(f"--missing drop: left out {dropped} {_plural(dropped, 'row')} with missing values", highlight=False)
    err.print(f"wrote {rows} {_plural(rows, 'row')} x {n_features} {_plural(n_features, 'feature')} ({dtype}) to "
              f"{', '.join(escape(str(path)) for path in written.values())}", highlight=False, soft_wrap=True)


@app.command("eval")
def evaluate(
    model: Annotated[Path, typer.Argument(help="A model file written by softreg train.", show_default=False)],
    data: Annotated[Optional[str], typer.Argument(
        help="Data to evaluate on (any format train accepts). [default: the model's own held-out test split]",
        show_default=False)] = None,
    target: Annotated[Optional[str], typer.Option(help="Label column of a CSV/TSV file. \\[default: last column]", show_default=False)] = None,
    missing: Annotated[str, typer.Option(help="Rows of DATA with missing, NaN or infinite values: error or drop.")] = "error",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document and nothing else.")] = False,
) -> None:
    """Evaluate a saved model: the training metrics plus calibration, on its test split or on DATA."""
    from softreg.cli import render
    from softreg.data import DataError, load_dataset, spec_to_string, split_indices
    from softreg.data.datasets import feature_names_are_real
    from softreg.data.chunks import column_order
    from softreg.model.assess.calibration import evaluate_model
    from softreg.model.run.persist import ModelFileError, load_model

    try:
        estimator, header = load_model(model)
    except ModelFileError as error:
        fail(str(error))
    config = header["config"]
    try:
        if data is None:
            spec = spec_to_string(header["dataset"])
            if not config["test_fraction"]:
                fail(f"model '{model}' was trained with test_fraction 0, so it has no test split; pass DATA to evaluate on.")
            if "path" in header["dataset"] and not Path(spec).exists():
                fail(f"the data model '{model}' was trained on, '{spec}', is gone, so its test split cannot be "
                     "re-derived; pass DATA to evaluate on.")
            dataset = load_dataset(spec, target=config.get("target"), weight_column=config.get("weight_column"),
                                   dtype=config["dtype"], missing=config.get("missing", "error"))
            stored = header["dataset"].get("sha256")
            if stored is not None and dataset.spec.get("sha256") != stored:
                fail(f"'{spec}' has changed since '{model}' was trained on it (its contents differ; "
                     f"{dataset.n_samples} rows now, {header['dataset'].get('rows', '?')} then), so the test split "
                     "cannot be re-derived; pass DATA to evaluate on.")
            _, _, rows = split_indices(dataset.y, val_fraction=config["val_fraction"],
                                       test_fraction=config["test_fraction"], seed=config["seed"])
            X, y, source = dataset.X[rows], dataset.y[rows], f"the model's test split of {spec} ({len(rows)} rows)"
        else:
            dataset = load_dataset(data, target=target, dtype=config["dtype"], missing=missing)
            X, y, source = dataset.X, dataset.y, f"{data} ({dataset.n_samples} rows)"
    except DataError as error:
        fail(str(error))
    if data is not None:
        # The same matching as predict: by name when both sides have real names, else by position.
        names = dataset.feature_names if feature_names_are_real(dataset.spec) else None
        try:
            columns = column_order(data, names, X.shape[1], header["feature_names"],
                                   by_name=feature_names_are_real(header["dataset"]))
        except DataError as error:
            fail(str(error))
        X = X[:, columns]
    try:
        result = evaluate_model(estimator, X, y)
    except ValueError as error:
        fail(str(error))
    if result["unseen_labels"]:
        err.print(f"[yellow]warning:[/] {result['unseen_rows']} rows have labels the model never saw "
                  f"({escape(', '.join(result['unseen_labels'][:10]))}); they count as errors in accuracy and are left out of "
                  "log loss and calibration.", highlight=False, soft_wrap=True)
    if as_json:
        out.print_json(json.dumps({"model": str(model), "data": source, "metrics": result}))
        return
    out.print(f"[bold]{escape(str(model))}[/] on {escape(source)}", highlight=False, soft_wrap=True)
    out.print(render.metrics_table({"evaluation": result}))
    out.print(render.calibration_tables(result["calibration"], [str(c) for c in estimator.classes_]))
    _show_per_class(result, "")


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="A model file written by softreg train.", show_default=False)],
    data: Annotated[str, typer.Argument(
        help="Rows to predict: a .csv/.tsv (columns matched by name; others ignored), svmlight, .npz (X) or a built-in name.",
        show_default=False)],
    with_proba: Annotated[bool, typer.Option("--proba", help="Add one probability column per class (proba_CLASS).")] = False,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Add the K most likely labels with their probabilities.",
                                                 show_default=False)] = None,
    out_path: Annotated[Optional[Path], typer.Option("--out", help="Write to this .csv or .jsonl file (atomically). \\[default: CSV to stdout]",
                                                     show_default=False)] = None,
    output_format: Annotated[Optional[str], typer.Option("--format", help="csv or jsonl. \\[default: from --out's suffix, else csv]",
                                                         show_default=False)] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1, help="Rows read and predicted at a time (bounds memory).")] = 10_000,
) -> None:
    """Predict labels (and probabilities) for every row of DATA, streamed in chunks."""
    import sys

    from softreg.data import DataError
    from softreg.data.datasets import feature_names_are_real
    from softreg.data.files import atomic_file
    from softreg.data.chunks import feature_chunks
    from softreg.model.run.persist import ModelFileError, check_writable, load_model
    from softreg.model.run.predict import PredictionOptions, check_options, write_predictions

    try:
        estimator, header = load_model(model)
    except ModelFileError as error:
        fail(str(error))
    if output_format is None:
        suffix = out_path.suffix.lower() if out_path is not None else ".csv"
        if suffix not in (".csv", ".jsonl"):
            fail(f"--out '{out_path}' has the suffix '{suffix or '(none)'}'; use .csv or .jsonl, or name the format with --format.")
        output_format = suffix[1:]
    options = PredictionOptions(with_proba=with_proba, top_k=top_k, output_format=output_format.lower())
    if out_path is not None:
        for name, source in (("MODEL", str(model)), ("DATA", data)):
            if Path(source).exists() and Path(out_path).resolve() == Path(source).resolve():
                fail(f"--out '{out_path}' is the {name} file itself; writing there would destroy it. "
                     "Choose another --out.")
    try:
        check_options(options, len(estimator.classes_))
        if out_path is not None:
            if Path(out_path).is_dir():
                raise ValueError(f"--out '{out_path}' is a directory; give a file name such as predictions.csv")
            check_writable(out_path)
        stream = feature_chunks(data, header["feature_names"], by_name=feature_names_are_real(header["dataset"]),
                                chunk_rows=chunk_rows, dtype=header["config"]["dtype"],
                                zero_based=header["dataset"].get("zero_based"))
    except (ModelFileError, DataError, ValueError) as error:
        fail(str(error))
    try:
        if out_path is None:
            rows = write_predictions(estimator, stream.chunks, sys.stdout, options)
            sys.stdout.flush()
        else:
            with atomic_file(out_path, "w", encoding="utf-8", newline="") as handle:
                rows = write_predictions(estimator, stream.chunks, handle, options)
    except BrokenPipeError:
        # The reader (say `| head`) took what it wanted and left; that is not an error. This
        # must be caught here: Click's own handler would turn it into exit 1.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit()
    except ValueError as error:  # DataError or PredictionError: a bad row
        if out_path is not None:
            kept = "nothing was written to --out"
        else:
            done = getattr(error, "rows_written", 0)
            kept = f"the first {done} {_plural(done, 'row')} had already been printed to stdout"
        fail(f"{error} ({kept})")
    except OSError as error:
        fail(f"predictions could not be written to '{out_path or 'stdout'}' ({error.strerror or error}); "
             "nothing was written there.", code=EXIT_RUN_FAILED)
    err.print(f"{rows} {_plural(rows, 'row')} predicted from {escape(stream.description)}"
              + (f", written to {escape(str(out_path))}" if out_path is not None else ""), highlight=False, soft_wrap=True)


@app.command()
def compare(
    dataset: Annotated[str, typer.Argument(help="Built-in name, synthetic[:...], or a .csv/.tsv/.npz/svmlight file.",
                                           show_default=False)],
    target: Annotated[Optional[str], typer.Option(help="Label column of a CSV/TSV file. \\[default: last column]", show_default=False)] = None,
    l2: Annotated[float, typer.Option(help="softreg's L2 penalty; scikit-learn gets C = 1/(l2 N) (2/(l2 N) for two classes).")] = 1e-3,
    test_fraction: Annotated[float, typer.Option(help="Share of rows held out for the test metrics.")] = 0.15,
    seed: Annotated[int, typer.Option(help="Seed of the split.")] = 0,
    tol: Annotated[float, typer.Option(help="softreg's stop: max |gradient| <= tol x the first epoch's (tight, to reach the optimum).")] = 1e-9,
    max_epochs: Annotated[int, typer.Option(help="softreg's epoch limit.")] = 20_000,
    momentum: Annotated[str, typer.Option(help="softreg's momentum: none or nesterov.")] = "nesterov",
    missing: Annotated[str, typer.Option(help="Rows with missing values: error or drop.")] = "error",
    weight_column: Annotated[Optional[str], typer.Option(help="CSV/TSV column of per-sample weights (both sides get them).",
                                                         show_default=False)] = None,
    class_weight: Annotated[str, typer.Option(help="none or balanced (both sides get the same row weights).")] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Fit softreg and scikit-learn's LogisticRegression on the same split and penalty; show both side by side."""
    from softreg.cli import render
    from softreg.data import DataError, load_dataset, split_indices
    from softreg.model.assess.compare import compare_with_sklearn
    from softreg.model.run.config import ConfigError, resolve_config
    from softreg.model.run.train import estimator_from_config
    from sklearn.exceptions import ConvergenceWarning

    flags = dict(dataset=dataset, target=target, l2=l2, test_fraction=test_fraction, val_fraction=0.0, seed=seed,
                 tol=tol, max_epochs=max_epochs, momentum=momentum, missing=missing, weight_column=weight_column,
                 class_weight=class_weight)
    try:
        config = resolve_config({}, flags)
    except ConfigError as error:
        fail(_flag_names(str(error)))
    try:
        data = load_dataset(config.dataset, target=config.target, weight_column=config.weight_column,
                            dtype=config.dtype, missing=config.missing)
        train_rows, _, test_rows = split_indices(data.y, val_fraction=0.0, test_fraction=config.test_fraction,
                                                 seed=config.seed)
    except DataError as error:
        fail(str(error))
    if not len(test_rows):
        fail("--test-fraction must be above 0: the comparison reports test metrics.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            weights = None if data.sample_weight is None else data.sample_weight[train_rows]
            result = compare_with_sklearn(estimator_from_config(config), data.X[train_rows], data.y[train_rows],
                                          data.X[test_rows], data.y[test_rows], weights)
        except ValueError as error:
            fail(_flag_names(str(error)))
    if as_json:
        out.print_json(json.dumps({"dataset": dataset, **result}, default=float))
        return
    err.print(f"[bold]{escape(data.description)}[/]: {len(train_rows)} training rows, {len(test_rows)} test rows, "
              f"standardized on the training rows", highlight=False, soft_wrap=True)
    out.print(render.comparison_table(result))
    out.print(render.comparison_summary(result), highlight=False, soft_wrap=True)


@app.command()
def info(
    model: Annotated[Path, typer.Argument(help="A model file written by softreg train.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole header as one JSON document.")] = False,
) -> None:
    """What a model file holds: versions, config, dataset, classes, features, stop reason, metrics, loss curve."""
    from softreg.cli import render
    from softreg.data import spec_to_string
    from softreg.model.run.persist import ModelFileError, load_model

    try:
        estimator, header = load_model(model)
    except ModelFileError as error:
        fail(str(error))
    classes = [c.item() if hasattr(c, "item") else c for c in estimator.classes_]
    if as_json:
        out.print_json(json.dumps({"model": str(model), "classes": classes, **header}, default=float))
        return
    names = header["feature_names"]
    out.print(f"[bold]{escape(str(model))}[/]: softreg model format {header['format_version']}, "
              f"written by softreg {header.get('softreg_version', '?')}", highlight=False, soft_wrap=True)
    out.print(f"dataset: {spec_to_string(header['dataset'])} - {header['dataset'].get('description', '')}",
              highlight=False, soft_wrap=True, markup=False)
    split = header["split"]
    out.print(f"split (seed {split.get('seed', '?')}): {split.get('train_rows', '?')} train, "
              f"{split.get('val_rows', '?')} validation, {split.get('test_rows', '?')} test rows", highlight=False)
    out.print(f"classes ({len(classes)}): {_abridged([str(c) for c in classes])}", highlight=False, soft_wrap=True, markup=False)
    out.print(f"features ({len(names)}): {_abridged(names)}", highlight=False, soft_wrap=True, markup=False)
    out.print(render.config_table(header["config"], title="config"))
    stop = stop_words(header.get("stop_reason"), header.get("stop_details"), str(header.get("stop_message", "?")))
    out.print(f"[bold]stop:[/] {escape(stop)}", highlight=False, soft_wrap=True)
    history = header.get("history")
    if isinstance(history, dict) and history.get("epoch"):
        out.print(render.loss_curves(history, height=8))
    if header.get("metrics"):
        out.print(render.metrics_table(header["metrics"]))


MAX_CLASSES_SHOWN = 30  # beyond this a per-class table or a K x K matrix is a wall of text


def _show_per_class(metrics: dict, where: str) -> None:
    from softreg.cli import render

    n_classes = len(metrics["per_class"])
    if n_classes > MAX_CLASSES_SHOWN:
        out.print(f"per-class report and confusion matrix{where} omitted for {n_classes} classes (more than "
                  f"{MAX_CLASSES_SHOWN}); --json holds both.", highlight=False, soft_wrap=True)
        return
    out.print(render.per_class_table(metrics, f"per-class report{where}"))
    out.print(render.confusion_table(metrics, f"confusion matrix{where}: rows true, columns predicted"))


def _abridged(names: list[str]) -> str:
    """All names up to 12, else the first 8, a count, and the last 2."""
    shown = names if len(names) <= 12 else names[:8] + [f"... {len(names) - 10} more ..."] + names[-2:]
    return ", ".join(shown)


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + ("es" if noun.endswith("s") else "s")


def _flag_names(message: str) -> str:
    """Config keys in an error message also name their flags: 'l2' -> 'l2 (--l2)'."""
    from softreg.model.run.config import TrainConfig

    for name in TrainConfig.__dataclass_fields__:
        key = f"{name} must"
        if message.startswith(key) or f"key '{name}'" in message:
            flag = "--" + name.replace("_", "-")
            return message.replace(key, f"{name} ({flag}) must", 1)
    return message


def main() -> None:
    """The console script: the app, with SIGINT and SIGTERM turned into a clean stop."""
    import sys

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
