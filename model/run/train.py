"""One training run: split a loaded dataset, fit SoftmaxRegression, measure it, describe it.

This is the library behind ``softreg train``; it prints nothing (progress goes through the
callback) and returns everything the CLI renders or saves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from softreg.data import Dataset, DataError, split_indices
from softreg.model.run.config import TrainConfig, estimator_from_config
from softreg.model.estimator import SoftmaxRegression
from softreg.model.assess.metrics import classification_metrics
from softreg.model.math.linear import logits
from softreg.model.math.softmax import softmax


@dataclass
class TrainingRun:
    estimator: SoftmaxRegression
    config: TrainConfig
    dataset: Dataset
    train_rows: np.ndarray
    val_rows: np.ndarray
    test_rows: np.ndarray
    metrics: dict  # {"train": ..., "validation": ..., "test": ...}, each from classification_metrics
    seconds: float
    events: list = field(default_factory=list)  # what the engine reported (a lost worker, ...)

    def header(self) -> dict:
        """What a model file records about this run (JSON-ready)."""
        estimator = self.estimator
        return {
            "config": self.config.to_dict(),
            "dataset": {**self.dataset.spec, "description": self.dataset.description,
                        "dropped_rows": self.dataset.dropped_rows},
            "split": {
                "seed": self.config.seed,
                "val_fraction": self.config.val_fraction,
                "test_fraction": self.config.test_fraction,
                "train_rows": int(len(self.train_rows)),
                "val_rows": int(len(self.val_rows)),
                "test_rows": int(len(self.test_rows)),
            },
            "stop_reason": estimator.stop_reason_,
            "stop_message": estimator.stop_message_,
            "stop_details": estimator.stop_details_,
            "epochs": int(estimator.n_iter_),
            "best_epoch": int(estimator.best_epoch_),
            "lipschitz": float(estimator.lipschitz_),
            "step_sizes": estimator.step_sizes_,
            "halvings": [list(h) for h in estimator.halvings_],
            "restarts": int(estimator.restarts_),
            "history": {key: list(values) for key, values in estimator.history_.items()},
            "metrics": self.metrics,
            "seconds": self.seconds,
            "engine_events": list(self.events),
        }


CHECKPOINT_SECONDS = 5.0  # at most this much training is lost with a cluster (and redone on --resume)


def fit_dataset(dataset: Dataset, config: TrainConfig, *, callback=None, should_stop=None,
                in_place: bool = False, checkpoint_to=None, resume: bool = False) -> TrainingRun:
    """Split ``dataset`` by ``config``, train on the training rows, measure every split.

    ``in_place=True`` (the CLI's choice, for a dataset nothing else reads afterwards) saves
    memory: the rows of a dense X are reordered in place into train, validation and test
    blocks, training uses views of them, and the training and validation blocks are
    standardized in place. The dataset's X, y and weights are left in that new row order,
    with those blocks standardized. Otherwise the splits are copied and the dataset is untouched.

    The stream and dask engines write a checkpoint to ``checkpoint_to`` every
    ``CHECKPOINT_SECONDS`` of training, and ``resume=True`` continues from it.
    """
    train_rows, val_rows, test_rows = split_indices(
        dataset.y, val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=config.seed
    )
    X, y = dataset.X, dataset.y
    absent = sorted(set(np.unique(y).tolist()) - set(np.unique(y[train_rows]).tolist()), key=str)
    if absent:
        raise DataError(
            f"class{'es' if len(absent) > 1 else ''} {', '.join(map(str, absent))} "
            f"{'have' if len(absent) > 1 else 'has'} no rows in the training split (val_fraction {config.val_fraction}, "
            f"test_fraction {config.test_fraction}); lower the fractions or add rows of that class."
        )
    estimator = estimator_from_config(config)
    if config.engine != "memory":
        return _fit_file(dataset, config, estimator, (train_rows, val_rows, test_rows), callback, should_stop,
                         checkpoint_to, resume)
    if resume:
        raise DataError("--resume continues a run of engine 'stream' or 'dask' from its checkpoint; in memory, "
                        "train again (the engines that read a file write checkpoints as they go).")
    reorder = in_place and isinstance(X, np.ndarray) and X.flags.writeable and X.flags.c_contiguous
    if reorder:
        order = np.concatenate([train_rows, val_rows, test_rows])
        permute_rows_in_place(X, order)
        dataset.y = y = y[order]
        if dataset.sample_weight is not None:
            dataset.sample_weight = dataset.sample_weight[order]
        ends = np.cumsum([len(train_rows), len(val_rows), len(test_rows)])
        blocks = {"train": slice(0, ends[0]), "validation": slice(ends[0], ends[1]), "test": slice(ends[1], ends[2])}
    else:
        blocks = {"train": train_rows, "validation": val_rows, "test": test_rows}
    # Views of the reordered X, or fresh copies: either way this function owns them, and
    # standardizing them in place saves copies the size of X.
    weights = None if dataset.sample_weight is None else dataset.sample_weight[blocks["train"]]
    validation = (X[blocks["validation"]], y[blocks["validation"]]) if len(val_rows) else None
    start = time.perf_counter()
    estimator.fit(X[blocks["train"]], y[blocks["train"]], weights, validation_data=validation,
                  callback=callback, should_stop=should_stop, overwrite_X=True)
    seconds = time.perf_counter() - start
    metrics = {}
    for name, rows in blocks.items():
        if len(y[rows]):
            standardized = reorder and name != "test"  # those blocks now hold standardized features
            metrics[name] = evaluate_rows(estimator, X[rows], y[rows], standardized=standardized)
    return TrainingRun(estimator, config, dataset, train_rows, val_rows, test_rows, metrics, seconds)


def check_engine_source(config: TrainConfig) -> None:
    """DataError unless the stream and dask engines can read ``config.dataset`` themselves (a
    prepared .npy, a .parquet file or a folder of partitions). Worth calling before loading:
    the point of these engines is data that may not fit in memory."""
    from pathlib import Path

    source = Path(config.dataset)
    if config.engine != "memory" and not (source.suffix.lower() in (".npy", ".parquet") or source.is_dir()):
        raise DataError(f"engine '{config.engine}' reads a prepared .npy file or a folder (or file) of Parquet/CSV "
                        f"partitions, and dataset '{config.dataset}' is neither: run `softreg prepare "
                        f"{config.dataset} data.npy` once, then train on data.npy.")


def _fit_file(dataset: Dataset, config: TrainConfig, estimator: SoftmaxRegression, splits, callback,
              should_stop, checkpoint_to=None, resume: bool = False) -> TrainingRun:
    """Engines that read a prepared .npy themselves (stream, dask): the same splits as in
    memory, chosen by row weights, so X is never loaded here."""
    from softreg.model.engines import ENGINES

    if dataset.spec.get("format") not in ("npy", "folder"):
        check_engine_source(config)  # raises: a library caller may not have checked before loading
    train_rows, val_rows, test_rows = splits
    if dataset.X.dtype != np.dtype(config.dtype):
        raise DataError(f"{dataset.spec['path']} holds {dataset.X.dtype} rows and the stream and dask engines read rows "
                        f"as they are stored: pass --dtype {dataset.X.dtype}, or prepare the file with --dtype "
                        f"{config.dtype}.")
    y = np.asarray(dataset.y)
    classes = np.unique(y[train_rows])
    y_index = np.searchsorted(classes, y).clip(0, len(classes) - 1)  # rows of unseen classes carry weight 0
    base = np.ones(len(train_rows)) if dataset.sample_weight is None else np.asarray(dataset.sample_weight)[train_rows]
    train_weights = np.zeros(len(y))
    train_weights[train_rows] = estimator.training_weights(base, y[train_rows])
    validation_weights = np.zeros(len(y))
    validation_weights[val_rows[np.isin(y[val_rows], classes)]] = 1.0
    source = _row_source(dataset, config)
    options = {"scheduler": config.scheduler} if config.engine == "dask" else {}
    engine = ENGINES[config.engine](source, y_index, train_weights, n_classes=len(classes),
                                    block_rows=config.block_rows, **options)
    run_identity = {"config": {key: value for key, value in config.to_dict().items()
                               if key not in ("max_epochs", "scheduler", "block_rows", "engine")},
                    "dataset_sha256": dataset.spec.get("sha256"), "classes": [str(c) for c in classes]}
    resume_from = _checkpoint_to_resume(checkpoint_to, run_identity) if resume else None
    writer = _CheckpointWriter(checkpoint_to, run_identity) if checkpoint_to is not None else None
    start = time.perf_counter()
    with engine:
        estimator.fit_engine(engine, classes, validation_weights=validation_weights, callback=callback,
                             should_stop=should_stop, checkpoint=writer, resume=resume_from)
        seconds = time.perf_counter() - start
        proba = engine.probabilities(estimator.weights_, estimator.bias_)
    metrics = {}
    for name, rows in {"train": train_rows, "validation": val_rows, "test": test_rows}.items():
        if len(rows):
            metrics[name] = classification_metrics(y[rows], proba[rows], estimator.classes_)
    run = TrainingRun(estimator, config, dataset, train_rows, val_rows, test_rows, metrics, seconds)
    run.events = list(getattr(engine, "events", []))
    return run


def _row_source(dataset: Dataset, config: TrainConfig):
    """What a storage engine reads: the prepared .npy's path, or a folder's partitions as a
    :class:`~softreg.model.engines.BlockSource` of picklable readers."""
    from functools import partial

    from softreg.data.partitions import read_block
    from softreg.model.engines import BlockSource

    if dataset.spec["format"] != "folder":
        return dataset.spec["path"]
    if config.block_rows is not None:
        raise DataError("block_rows sets the blocks of a prepared .npy; a folder is read in its own blocks (Parquet "
                        "row groups, CSV partitions).")
    rows = dataset.X
    blocks = [(block.start, block.stop, partial(read_block, rows.folder, block, rows.dtype.name))
              for block in rows.blocks()]
    return BlockSource(str(rows.folder.path.resolve()), rows.shape, rows.dtype.name, blocks)


class _CheckpointWriter:
    """Saves a checkpoint after an epoch when CHECKPOINT_SECONDS have passed since the last one."""

    def __init__(self, path, run_identity: dict):
        self.path, self.run_identity = path, run_identity
        self.last = time.perf_counter()

    def __call__(self, checkpoint) -> None:
        from softreg.model.run.persist import save_checkpoint

        if time.perf_counter() - self.last >= CHECKPOINT_SECONDS:
            save_checkpoint(self.path, checkpoint, self.run_identity)
            self.last = time.perf_counter()


def _checkpoint_to_resume(path, run_identity: dict):
    """The checkpoint at ``path``, refused when it belongs to another config or dataset."""
    from softreg.model.run.persist import ModelFileError, load_checkpoint

    if path is None:
        raise DataError("--resume needs the --out path of the run to continue (its checkpoint is beside it).")
    try:
        checkpoint, saved = load_checkpoint(path)
    except ModelFileError as error:
        raise DataError(str(error)) from None
    if saved.get("dataset_sha256") != run_identity["dataset_sha256"]:
        raise DataError(f"--resume: {path} was written for other data (the dataset file changed since); train "
                        "without --resume to start over.")
    differing = sorted(key for key, value in run_identity["config"].items() if saved["config"].get(key) != value)
    if differing or saved.get("classes") != run_identity["classes"]:
        details = ", ".join(f"{key} {saved['config'].get(key)!r} there, {run_identity['config'][key]!r} now"
                            for key in differing) or "the classes differ"
        raise DataError(f"--resume: {path} belongs to a run with other settings ({details}); give the same settings "
                        "(only --max-epochs, --engine, --block-rows and --scheduler may change), or train without "
                        "--resume.")
    return checkpoint


def permute_rows_in_place(X: np.ndarray, order: np.ndarray) -> None:
    """Make row i of X the old row order[i], using one row of scratch memory.

    Follows each cycle of the permutation: a Python step per row, about a second per million
    rows, instead of a second array the size of X.
    """
    done = np.zeros(len(order), dtype=bool)
    scratch = np.empty(X.shape[1:], dtype=X.dtype)
    for start in np.flatnonzero(order != np.arange(len(order))).tolist():
        if done[start]:
            continue
        scratch[...] = X[start]
        j = start
        while True:
            done[j] = True
            k = int(order[j])
            if k == start:
                X[j] = scratch
                break
            X[j] = X[k]
            j = k


def evaluate_rows(estimator: SoftmaxRegression, X, y, *, standardized: bool = False) -> dict:
    """Metrics of ``estimator`` on labelled rows whose labels are all known to it; with
    ``standardized`` the rows are already in the estimator's standardized coordinates."""
    if standardized:
        proba = softmax(logits(estimator.weights_, estimator.bias_, X))
    else:
        proba = estimator.predict_proba(X)
    return classification_metrics(np.asarray(y), proba, estimator.classes_)
