"""One training run: split a loaded dataset, fit SoftmaxRegression, measure it, describe it.

This is the library behind ``softreg train``; it prints nothing (progress goes through the
callback) and returns everything the CLI renders or saves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from softreg.data import Dataset, DataError, split_indices
from softreg.model.config import TrainConfig
from softreg.model.estimator import SoftmaxRegression
from softreg.model.metrics import classification_metrics


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
            "epochs": int(estimator.n_iter_),
            "best_epoch": int(estimator.best_epoch_),
            "lipschitz": float(estimator.lipschitz_),
            "step_sizes": estimator.step_sizes_,
            "halvings": [list(h) for h in estimator.halvings_],
            "restarts": int(estimator.restarts_),
            "history": {key: list(values) for key, values in estimator.history_.items()},
            "metrics": self.metrics,
            "seconds": self.seconds,
        }


def estimator_from_config(config: TrainConfig) -> SoftmaxRegression:
    return SoftmaxRegression(
        l2=config.l2,
        lr=config.learning_rate,
        momentum=None if config.momentum == "none" else config.momentum,
        batch_size=config.batch_size,
        schedule=config.schedule,
        max_epochs=config.max_epochs,
        tol=config.tol,
        patience=config.patience,
        standardize=config.standardize,
        class_weight=None if config.class_weight == "none" else config.class_weight,
        dtype=config.dtype,
        random_state=config.seed,
    )


def fit_dataset(dataset: Dataset, config: TrainConfig, *, callback=None, should_stop=None) -> TrainingRun:
    """Split ``dataset`` by ``config``, train on the training rows, measure every split."""
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
    weights = None if dataset.sample_weight is None else dataset.sample_weight[train_rows]
    estimator = estimator_from_config(config)
    validation = (X[val_rows], y[val_rows]) if len(val_rows) else None
    start = time.perf_counter()
    # X[train_rows] and X[val_rows] are fresh copies this function owns: standardizing them in
    # place saves two more copies of that size.
    estimator.fit(X[train_rows], y[train_rows], weights, validation_data=validation,
                  callback=callback, should_stop=should_stop, overwrite_X=True)
    seconds = time.perf_counter() - start
    metrics = {}
    for name, rows in (("train", train_rows), ("validation", val_rows), ("test", test_rows)):
        if len(rows):
            metrics[name] = evaluate_rows(estimator, X[rows], y[rows])
    return TrainingRun(estimator, config, dataset, train_rows, val_rows, test_rows, metrics, seconds)


def evaluate_rows(estimator: SoftmaxRegression, X, y) -> dict:
    """Metrics of ``estimator`` on labelled rows whose labels are all known to it."""
    proba = estimator.predict_proba(X)
    return classification_metrics(np.asarray(y), proba, estimator.classes_)
