"""`softreg summary`: a saved model's coefficient table with standard errors, on its own
training rows (re-derived from the stored dataset spec and seed), where the numbers mean something:
an unpenalized, unweighted fit that converged.

The sums over the rows are taken by an engine, block by block: rows in memory by the memory
engine; a prepared .npy or a folder of partitions (what stream and dask models train on) by the
stream engine, read from disk a block at a time, so the rows are never all in memory (one
pass needs no Dask cluster)."""

from __future__ import annotations

import numpy as np

from softreg.data.encoding import TableEncoding

from softreg.model.assess.summary import (
    CoefficientSummary,
    NotEstimable,
    check_size,
    summary_from_sums,
    summary_sums,
)
from softreg.model.run.evaluate import saved_rows
from softreg.model.run.persist import load_model

ESTIMABLE_STOPS = ("converged", "precision")


def summarize_saved_model(model_path, *, reference=None, robust: bool = False) -> tuple[CoefficientSummary, dict]:
    """(the coefficient table, the model header). NotEstimable says why a model has none."""
    estimator, header = load_model(model_path)
    _refuse_unless_maximum_likelihood(header)
    classes = list(estimator.classes_)
    reference_index = _reference_index(classes, reference)
    W_raw, b_raw = estimator._class_weights()
    keep, W_design, b_design, names = _without_base_levels(W_raw, b_raw, list(header["feature_names"]),
                                                           header.get("encoding"))
    check_size(len(classes), len(keep))
    dataset, rows, _ = saved_rows(model_path, header, "train", "train the model again on the data as it is now.",
                                  memory_map=True)
    y = np.asarray(dataset.y)
    y_index = np.searchsorted(estimator.classes_, y).clip(0, len(classes) - 1)
    weights = np.zeros(len(y))
    weights[rows] = 1.0  # the training rows; the others weigh 0 and are left out of every sum
    with _engine_over(dataset, y_index, weights, len(classes)) as engine:
        sums = summary_sums(engine, W_raw, b_raw, keep, reference_index, robust)
    return summary_from_sums(sums, W_design, b_design, classes, names, reference=reference_index,
                             robust=robust), header


def _engine_over(dataset, y_index: np.ndarray, weights: np.ndarray, n_classes: int):
    """An engine over every row of ``dataset`` with these row weights: the stream engine for rows
    on disk (a prepared .npy, a folder), the memory engine for rows in memory."""
    from softreg.model.engines import MemoryEngine, StreamEngine
    from softreg.model.run.train import row_source

    if dataset.spec.get("format") in ("npy", "folder"):
        return StreamEngine(row_source(dataset, block_rows=None), y_index, weights, n_classes=n_classes)
    return MemoryEngine(dataset.X, y_index, weights, n_classes=n_classes)


def _refuse_unless_maximum_likelihood(header: dict) -> None:
    config = header["config"]
    if config.get("l2") != 0 or config.get("l1", 0) != 0:
        raise NotEstimable(f"the model was trained with l2 = {config.get('l2')}, l1 = {config.get('l1', 0)}: standard "
                           "errors are those of the maximum-likelihood estimate, which a penalty moves (and shrinks "
                           "their spread); train it again with l2=0")
    if config.get("weight_column") or config.get("class_weight", "none") != "none":
        raise NotEstimable("the model was trained with row or class weights, and what its standard errors mean depends "
                           "on what the weights are (frequencies, precisions, a design); train it again without them")
    reason = header.get("stop_reason")
    if reason == "separable":
        raise NotEstimable("training stopped because the weights classify every training row correctly: the data is "
                           "linearly separable, the maximum-likelihood estimate does not exist, and neither do its "
                           "standard errors")
    if reason not in ESTIMABLE_STOPS:
        raise NotEstimable(f"training did not converge (it stopped: {reason}), so the coefficients are not the "
                           "maximum-likelihood estimate; train it again with momentum='nesterov' and more epochs "
                           "(and a tight tol=1e-9 for coefficients to more digits)")


def _reference_index(classes: list, reference) -> int:
    if reference is None:
        return 0
    names = [str(c) for c in classes]
    if str(reference) not in names:
        raise NotEstimable(f"reference {reference!r} is not a class of the model; its classes are "
                           f"{', '.join(names)}")
    return names.index(str(reference))


def _without_base_levels(W_raw, b_raw, names, encoding: dict | None):
    """(the design's columns, W, b, names) without each categorical column's first level: with an
    intercept, a full set of one-hot columns is collinear (every row has exactly one 1). The same
    model in that design has b' = b + W[base], W'[level] = W[level] - W[base], since each row's
    logits are unchanged."""
    if not encoding:
        return np.arange(len(names)), W_raw, b_raw, names
    W_raw, b_raw, drop = W_raw.copy(), b_raw.copy(), set()
    table_encoding = TableEncoding.from_dict(encoding)
    offsets = table_encoding.offsets()
    for column, offset, end in zip(table_encoding.used(), offsets, offsets[1:]):
        if column.kind == "categorical":
            base = W_raw[offset].copy()  # the first level's row
            b_raw += base
            W_raw[offset:end] -= base
            drop.add(offset)
    keep = np.array([j for j in range(len(names)) if j not in drop], dtype=np.int64)
    return keep, W_raw[keep], b_raw, [names[j] for j in keep]
