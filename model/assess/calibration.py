"""Judging a fitted model on labelled rows: the training metrics plus calibration.

    confidence_i = max_k p_ik,   correct_i = [argmax_k p_ik = y_i]
    ECE = sum_bins (n_bin / N) |mean(correct in bin) - mean(confidence in bin)|

with equal-width confidence bins on [0, 1]. Rows whose label the model never saw count as
errors in accuracy and are left out of log loss and calibration (their probability is
undefined); the result lists them.
"""

from __future__ import annotations

import numpy as np

from softreg.model.assess.metrics import classification_metrics


class UnscorableRows(ValueError):
    """Labelled rows a model cannot score: none of their labels is a class of the model, or
    their features overflow its logits."""


def calibration(y_index: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> dict:
    """Expected calibration error, a reliability table, and mean predicted vs observed class shares."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_index
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds confidences in (edges[i], edges[i+1]]; a confidence is never below 1/K > 0.
    bin_of = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    rows, ece = [], 0.0
    for i in range(n_bins):
        members = bin_of == i
        count = int(members.sum())
        if count == 0:
            continue
        mean_confidence = float(confidence[members].mean())
        accuracy = float(correct[members].mean())
        ece += count / len(y_index) * abs(accuracy - mean_confidence)
        rows.append({"bin": f"({edges[i]:.1f}, {edges[i + 1]:.1f}]", "count": count,
                     "mean_confidence": mean_confidence, "accuracy": accuracy})
    observed = np.bincount(y_index, minlength=proba.shape[1]) / len(y_index)
    return {
        "expected_calibration_error": float(ece),
        "bins": n_bins,
        "reliability": rows,
        "mean_predicted": proba.mean(axis=0).tolist(),
        "observed_frequency": observed.tolist(),
    }


def _as_class_labels(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Labels read as text ("0", "2.0") compared with integer classes by value: one text label
    in a column (say "unknown") makes the whole column text, and must not hide the rest."""
    if classes.dtype.kind not in "iu" or y.dtype.kind in "iu":
        return y
    converted = []
    for label in y:
        try:
            value = float(label)
            converted.append(int(value) if value.is_integer() else str(label))
        except (TypeError, ValueError, OverflowError):
            converted.append(str(label))
    return np.array(converted, dtype=object)


def evaluate_model(estimator, X, y) -> dict:
    """Metrics and calibration of ``estimator`` on (X, y); unseen labels are reported, not dropped silently."""
    y = _as_class_labels(np.asarray(y), estimator.classes_)
    known = np.isin(y, estimator.classes_)
    unseen = sorted({str(label) for label in y[~known]})
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below, row by row
        proba_known = estimator.predict_proba(X[np.flatnonzero(known)]) if known.any() else None
    if proba_known is not None and not np.isfinite(proba_known).all():
        row = int(np.flatnonzero(known)[np.argmin(np.isfinite(proba_known).all(axis=1))]) + 1
        raise UnscorableRows(f"data row {row} (counting from 1) gives non-finite logits: its features are far outside the "
                         "range the model was trained on (values near the float limit, such as 1e308); fix or drop it.")
    if proba_known is None:
        raise UnscorableRows(f"none of the labels in the data ({', '.join(unseen[:10])}) is a class of the model "
                         f"({', '.join(map(str, estimator.classes_))})")
    result = classification_metrics(y[known], proba_known, estimator.classes_)
    y_index = np.searchsorted(estimator.classes_, y[known])
    result["calibration"] = calibration(y_index, proba_known)
    result["unseen_labels"] = unseen
    result["unseen_rows"] = int((~known).sum())
    if unseen:
        # Rows with labels the model cannot predict are errors: recount accuracy over all rows.
        result["accuracy"] = float(result["accuracy"] * known.sum() / len(y))
        result["samples"] = int(len(y))
        result["log_loss_rows"] = int(known.sum())
    return result
