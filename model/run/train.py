"""One training run: split a loaded dataset, fit SoftmaxRegression, measure it, describe it.

This is the library behind ``softreg train``; it prints nothing (progress goes through the
callback) and returns everything the CLI renders or saves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from softreg.data import Dataset, DataError, split_indices
from softreg.data.formats.table import refit_on_rows
from softreg.model.run.checkpoint import Checkpoints, run_identity
from softreg.model.run.config import TrainConfig, estimator_from_config
from softreg.model.run.errors import NeedsPreparedData, RunError, SaveError
from softreg.model.run.persist import save_model
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
    checkpoint_kept: object = None  # the checkpoint left beside the model file of an interrupted run
    header_written: dict | None = None  # the model file's header, once written
    penalty_path: object = None  # l1 or l2 "auto": the cross-validated path (PenaltyPath) the penalty was chosen on

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
            "epochs": int(estimator.n_iter_[0]),
            "best_epoch": int(estimator.best_epoch_),
            "lipschitz": float(estimator.lipschitz_),
            "step_sizes": estimator.step_sizes_,
            "halvings": [list(h) for h in estimator.halvings_],
            "restarts": int(estimator.restarts_),
            "history": {key: list(values) for key, values in estimator.history_.items()},
            "metrics": self.metrics,
            "seconds": self.seconds,
            "engine_events": list(self.events),
            **({"encoding": self.dataset.encoding.to_dict()} if self.dataset.encoding is not None else {}),
            **({"penalty_path": self.penalty_path.to_dict()} if self.penalty_path is not None else {}),
            **({"sparsity": self.sparsity()} if float(estimator.l1) > 0 else {}),
        }

    def sparsity(self) -> dict:
        """With an L1 term: per class the features with a nonzero coefficient, and the features no
        class uses (by name). The zeros are exact: the proximal step sets them."""
        from softreg.model.math.penalty import features_in_use

        used = features_in_use(self.estimator.weights_)
        names = list(self.dataset.feature_names)
        return {"n_features": len(names), "per_class": used["per_class"],
                "unused": [str(names[j]) for j in used["unused"]]}


def fit_dataset(dataset: Dataset, config: TrainConfig, *, callback=None, should_stop=None,
                in_place: bool = False, checkpoints: Checkpoints | None = None, resume: bool = False) -> TrainingRun:
    """Split ``dataset`` by ``config``, train on the training rows, measure every split.

    Every engine trains through the same estimator path (:meth:`SoftmaxRegression.fit` serves
    the rows from a memory engine, :meth:`~SoftmaxRegression.fit_engine` from a storage engine)
    and every split is measured by the same function of the fitted weights.

    ``in_place=True`` (the CLI's choice, for a dataset nothing else reads afterwards) saves
    memory in the memory engine: the rows of a dense X are reordered in place into train,
    validation and test blocks, training uses views of them, and the training and validation
    blocks are standardized in place; the dataset's X, y and weights are left that way, and a
    table's columns (``dataset.table``) are released once its encoding is refitted. By
    default the splits are copied and the dataset is untouched.

    With ``checkpoints`` a checkpoint is written every CHECKPOINT_SECONDS of training, and
    ``resume=True`` continues from it (RunError when it belongs to another run).
    """
    splits = _training_splits(dataset, config)
    if dataset.table is not None:
        refit_on_rows(dataset, splits["train"])  # levels, means and indicators from the training rows alone
        if in_place:
            dataset.table = None  # nothing reads the text columns again: training holds X alone, not X and the table
    estimator = estimator_from_config(config)
    classes = np.unique(np.asarray(dataset.y)[splits["train"]])
    identity = run_identity(config, dataset.spec.get("sha256"), classes)
    if resume and checkpoints is None:
        raise RunError("resume needs the model path of the run to continue (its checkpoint is beside it).", "resume")
    if resume and config.batch_size is not None:
        raise RunError("resume continues a full-batch run; mini-batch runs (batch_size) keep no checkpoints.", "resume")
    resume_from = checkpoints.load(identity, dataset.n_features) if resume else None
    # Checkpoints are of full-batch runs: a mini-batch epoch's state is the shuffling too.
    writer = checkpoints.writer(identity) if checkpoints is not None and config.batch_size is None else None
    fit = _fit_in_memory if config.engine == "memory" else _fit_from_storage
    return fit(dataset, config, estimator, splits, callback=callback, should_stop=should_stop, in_place=in_place,
               checkpoint=writer, resume=resume_from)


def _training_splits(dataset: Dataset, config: TrainConfig) -> dict:
    """{"train", "validation", "test"}: row indices of the stratified splits; DataError when a
    class has no training rows."""
    train_rows, val_rows, test_rows = split_indices(
        dataset.y, val_fraction=config.val_fraction, test_fraction=config.test_fraction, seed=config.seed
    )
    y = np.asarray(dataset.y)
    absent = sorted(set(np.unique(y).tolist()) - set(np.unique(y[train_rows]).tolist()), key=str)
    if absent:
        raise DataError(
            f"class{'es' if len(absent) > 1 else ''} {', '.join(map(str, absent))} "
            f"{'have' if len(absent) > 1 else 'has'} no rows in the training split (val_fraction {config.val_fraction}, "
            f"test_fraction {config.test_fraction}); lower the fractions or add rows of that class."
        )
    return {"train": train_rows, "validation": val_rows, "test": test_rows}


def split_metrics(y: np.ndarray, proba_of, blocks: dict, classes) -> dict:
    """The metrics of every non-empty split, from ``proba_of(rows)``: softmax(X_s W + b) of those rows."""
    return {name: classification_metrics(np.asarray(y[rows]), proba_of(name, rows), classes)
            for name, rows in blocks.items() if len(y[rows])}


def _fit_in_memory(dataset, config, estimator, splits, *, callback, should_stop, in_place, checkpoint, resume):
    X, y = dataset.X, dataset.y
    reorder = in_place and isinstance(X, np.ndarray) and X.flags.writeable and X.flags.c_contiguous
    if reorder:
        order = np.concatenate(list(splits.values()))
        permute_rows_in_place(X, order)
        dataset.y = y = y[order]
        if dataset.sample_weight is not None:
            dataset.sample_weight = dataset.sample_weight[order]
        ends = np.cumsum([len(rows) for rows in splits.values()])
        blocks = {"train": slice(0, ends[0]), "validation": slice(ends[0], ends[1]), "test": slice(ends[1], ends[2])}
    else:
        blocks = dict(splits)
    # Views of the reordered X, or fresh copies: either way this function owns them, and
    # standardizing them in place saves copies the size of X.
    weights = None if dataset.sample_weight is None else dataset.sample_weight[blocks["train"]]
    validation = (X[blocks["validation"]], y[blocks["validation"]]) if len(splits["validation"]) else None
    start = time.perf_counter()
    X_train = X[blocks["train"]]  # a view of the reordered X, or one copy shared by the path and the fit
    path = None
    if "auto" in (config.l1, config.l2):
        path = choose_penalty(estimator, X_train, y[blocks["train"]], weights, config)
        estimator, config = with_chosen_penalty(estimator, config, path)
    estimator.fit(X_train, y[blocks["train"]], weights, validation_data=validation, callback=callback,
                  should_stop=should_stop, overwrite_X=True, checkpoint=checkpoint, resume=resume)
    seconds = time.perf_counter() - start

    def proba_of(name, rows):
        if reorder and name != "test":  # those blocks now hold standardized features
            return softmax(logits(estimator.weights_, estimator.bias_, X[rows]))
        return estimator.predict_proba(X[rows])

    metrics = split_metrics(y, proba_of, blocks, estimator.classes_)
    return TrainingRun(estimator, config, dataset, *splits.values(), metrics, seconds, penalty_path=path)


def cross_validated_path(dataset: Dataset, config: TrainConfig):
    """`softreg path`: the penalty path of ``config`` over the training rows of ``dataset`` as
    `train` splits them (a table's encoding fitted on those rows), without training the model."""
    splits = _training_splits(dataset, config)
    rows = splits["train"]
    if dataset.table is not None:
        refit_on_rows(dataset, rows)
    weights = None if dataset.sample_weight is None else dataset.sample_weight[rows]
    return choose_penalty(estimator_from_config(config), dataset.X[rows], np.asarray(dataset.y)[rows], weights,
                          config)


def path_mix(config: TrainConfig) -> dict:
    """The penalty mix the path of ``config`` runs over: l2 'auto' is ridge (l1_ratio 0), l1
    'auto' the strength split by ``config.l1_ratio``."""
    return {"l1_ratio": config.l1_ratio if config.l1 == "auto" else 0.0, "grouped": config.grouped}


def with_chosen_penalty(estimator, config: TrainConfig, path):
    """The estimator and config at the path's choice: the model file records the penalties it
    was trained with."""
    estimator.set_params(l1=path.chosen_l1, l2=path.chosen_l2)
    return estimator, replace(config, l1=path.chosen_l1, l2=path.chosen_l2)


def choose_penalty(estimator, X, y, weights, config: TrainConfig):
    """The cross-validated path over the training rows (``config.folds`` stratified folds seeded
    by the run's seed, the held-out log loss, ``config.select``), solved with the run's own step
    settings."""
    from softreg.model.solve.path import cross_validate_penalty

    classes, y_index = np.unique(y, return_inverse=True)
    row_weights = None
    if weights is not None or estimator.class_weight is not None:
        row_weights = estimator.training_weights(np.ones(len(y)) if weights is None else weights, y)
    return cross_validate_penalty(X, y_index, len(classes), sample_weight=row_weights, folds=config.folds,
                                  select=config.select, seed=config.seed, settings=estimator._settings(),
                                  standardize=config.standardize, **path_mix(config))


def check_engine_source(config: TrainConfig) -> None:
    """RunError unless the stream and dask engines can read ``config.dataset`` themselves (a
    prepared .npy, a .parquet file or a folder of partitions). Worth calling before loading:
    the point of these engines is data that may not fit in memory."""
    from pathlib import Path

    source = Path(config.dataset)
    if config.engine != "memory" and not (source.suffix.lower() in (".npy", ".parquet") or source.is_dir()):
        raise NeedsPreparedData(f"engine '{config.engine}' reads a prepared .npy file or a folder (or file) of "
                                f"Parquet/CSV partitions, and dataset '{config.dataset}' is neither.", config.dataset)


def _fit_from_storage(dataset, config, estimator, splits, *, callback, should_stop, in_place, checkpoint, resume):
    """Engines that read their rows from storage (stream, dask): the same splits as in memory,
    chosen by row weights, so X is never loaded here."""
    from softreg.model.engines import engine_class

    if dataset.spec.get("format") not in ("npy", "folder"):
        check_engine_source(config)  # raises: a library caller may not have checked before loading
    if dataset.X.dtype != np.dtype(config.dtype):
        raise DataError(f"{dataset.spec['path']} holds {dataset.X.dtype} rows and the stream and dask engines read rows "
                        f"as they are stored: set dtype {dataset.X.dtype}, or prepare the file with dtype "
                        f"{config.dtype}.")
    y = np.asarray(dataset.y)
    train_rows, val_rows = splits["train"], splits["validation"]
    classes = np.unique(y[train_rows])
    y_index = np.searchsorted(classes, y).clip(0, len(classes) - 1)  # rows of unseen classes carry weight 0
    base = np.ones(len(train_rows)) if dataset.sample_weight is None else np.asarray(dataset.sample_weight)[train_rows]
    train_weights = np.zeros(len(y))
    train_weights[train_rows] = estimator.training_weights(base, y[train_rows])
    validation_weights = np.zeros(len(y))
    validation_weights[val_rows[np.isin(y[val_rows], classes)]] = 1.0
    engine_type = engine_class(config.engine)
    options = {key: getattr(config, key) for key in engine_type.config_keys}
    def make_engine(weights):
        return engine_type(row_source(dataset, config.block_rows), y_index, weights, n_classes=len(classes), **options)

    start = time.perf_counter()
    path = None
    engine = make_engine(train_weights)
    with engine:
        if "auto" in (config.l1, config.l2):
            from softreg.model.solve.path import cross_validate_engine

            # The folds are weights over the same rows: each fold an engine of its own over the
            # same file, or on a cluster a view of this engine's blocks (no second cluster).
            fold_engine = getattr(engine, "for_fold", make_engine)
            path = cross_validate_engine(fold_engine, y_index, len(classes), sample_weight=train_weights,
                                         folds=config.folds, select=config.select, seed=config.seed,
                                         settings=estimator._settings(), standardize=config.standardize,
                                         **path_mix(config))
            estimator, config = with_chosen_penalty(estimator, config, path)
        estimator.fit_engine(engine, classes, validation_weights=validation_weights, callback=callback,
                             should_stop=should_stop, checkpoint=checkpoint, resume=resume)
        seconds = time.perf_counter() - start
        proba = engine.probabilities(estimator.weights_, estimator.bias_)
    metrics = split_metrics(y, lambda name, rows: proba[rows], splits, estimator.classes_)
    run = TrainingRun(estimator, config, dataset, *splits.values(), metrics, seconds, penalty_path=path)
    run.events = list(getattr(engine, "events", []))
    return run


def row_source(dataset: Dataset, block_rows: int | None):
    """What a storage engine reads: the prepared .npy's path, or a folder's partitions as a
    :class:`~softreg.model.engines.BlockSource` of picklable readers."""
    from functools import partial

    from softreg.data.partitions import read_block
    from softreg.model.engines import BlockSource

    if dataset.spec["format"] != "folder":
        return dataset.spec["path"]
    if block_rows is not None:
        raise DataError("block_rows sets the blocks of a prepared .npy; a folder is read in its own blocks (Parquet "
                        "row groups, CSV partitions).")
    rows = dataset.X
    blocks = [(block.start, block.stop, partial(read_block, rows.folder, block, rows.dtype.name))
              for block in rows.blocks()]
    return BlockSource(str(rows.folder.path.resolve()), rows.shape, rows.dtype.name, blocks)


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


def train_to_file(dataset: Dataset, config: TrainConfig, model_path, *, callback=None, should_stop=None,
                  in_place: bool = False, resume: bool = False, interrupted_by=None) -> TrainingRun:
    """Train ``dataset`` by ``config`` and write the model to ``model_path`` (atomically), with
    the checkpoint lifecycle: a checkpoint beside the model file while training, resumed from
    with ``resume``, removed once the finished model supersedes it and kept when the run was
    interrupted (``run.checkpoint_kept``). ``interrupted_by()`` names what interrupted a run
    (stored in the header). SaveError when the model file cannot be written."""
    checkpoints = Checkpoints(model_path)
    run = fit_dataset(dataset, config, callback=callback, should_stop=should_stop, in_place=in_place,
                      checkpoints=checkpoints, resume=resume)
    header = run.header()
    if run.estimator.stop_reason_ == "interrupted" and interrupted_by is not None:
        header["interrupted_by"] = interrupted_by()
    try:
        save_model(model_path, run.estimator, header, dataset.feature_names)
    except OSError as error:
        raise SaveError(f"training finished but the model could not be written to '{model_path}' "
                        f"({error.strerror or error}); nothing was written there.", key="out") from None
    run.header_written = header
    run.checkpoint_kept = checkpoints.finish(run.estimator.stop_reason_)
    return run
