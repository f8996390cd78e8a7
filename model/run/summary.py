"""`softreg summary`: a saved model's coefficient table with standard errors, on its own
training rows (re-derived from the stored dataset spec and seed), where the numbers mean something:
an unpenalized, unweighted fit that converged."""

from __future__ import annotations

import numpy as np

from softreg.data.encoding import TableEncoding

from softreg.model.assess.summary import CoefficientSummary, NotEstimable, summarize
from softreg.model.run.evaluate import saved_split
from softreg.model.run.persist import load_model

ESTIMABLE_STOPS = ("converged", "precision")


def summarize_saved_model(model_path, *, reference=None, robust: bool = False) -> tuple[CoefficientSummary, dict]:
    """(the coefficient table, the model header). NotEstimable says why a model has none."""
    estimator, header = load_model(model_path)
    _refuse_unless_maximum_likelihood(header)
    X, y, _ = saved_split(model_path, header, "train", "train the model again on the data as it is now.")
    classes = list(estimator.classes_)
    y_index = np.searchsorted(estimator.classes_, np.asarray(y))
    reference_index = _reference_index(classes, reference)
    W_raw, b_raw = estimator._class_weights()
    P = estimator.predict_proba(X)
    X, W_raw, b_raw, names = _without_base_levels(np.asarray(X, dtype=np.float64), W_raw, b_raw,
                                                  list(header["feature_names"]), header.get("encoding"))
    return summarize(X, y_index, P, W_raw, b_raw, classes, names, reference=reference_index, robust=robust), header


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


def _without_base_levels(X, W_raw, b_raw, names, encoding: dict | None):
    """The design without each categorical column's first level: with an intercept, a full set of
    one-hot columns is collinear (every row has exactly one 1). The same model in that design has
    b' = b + W[base], W'[level] = W[level] - W[base], since each row's logits are unchanged."""
    if not encoding:
        return X, W_raw, b_raw, names
    W_raw, b_raw, drop, offset = W_raw.copy(), b_raw.copy(), set(), 0
    for column in TableEncoding.from_dict(encoding).used():
        width = len(column.feature_names())
        if column.kind == "categorical":
            base = W_raw[offset].copy()  # the first level's row
            b_raw += base
            W_raw[offset:offset + width] -= base
            drop.add(offset)
        offset += width
    keep = [j for j in range(X.shape[1]) if j not in drop]
    return X[:, keep], W_raw[keep], b_raw, [names[j] for j in keep]
