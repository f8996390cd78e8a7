"""Classification metrics of a fitted model on labelled rows, all from sklearn.metrics."""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> dict:
    """Accuracy, log loss, macro/weighted precision-recall-F1, top-k accuracy, per-class report
    and confusion matrix. ``proba`` (N, K) has one column per entry of ``classes``.

    Returns plain Python numbers and lists (JSON-ready). Top-k accuracy is reported for
    K > 2 with k = 3 (or K - 1 when K = 3).
    """
    from sklearn import metrics

    labels = np.arange(len(classes))
    y_index = np.searchsorted(classes, y_true)
    predicted = proba.argmax(axis=1)
    report = metrics.classification_report(
        y_index, predicted, labels=labels, target_names=[str(c) for c in classes], output_dict=True, zero_division=0
    )
    result = {
        "samples": int(len(y_true)),
        "accuracy": float(metrics.accuracy_score(y_index, predicted)),
        "log_loss": float(metrics.log_loss(y_index, proba, labels=labels)),
    }
    for average in ("macro", "weighted"):  # the report's own averages: precision_recall_fscore_support's
        result[f"precision_{average}"] = float(report[f"{average} avg"]["precision"])
        result[f"recall_{average}"] = float(report[f"{average} avg"]["recall"])
        result[f"f1_{average}"] = float(report[f"{average} avg"]["f1-score"])
    if len(classes) > 2:
        k = min(3, len(classes) - 1)
        result["top_k"] = k
        result["top_k_accuracy"] = float(metrics.top_k_accuracy_score(y_index, proba, k=k, labels=labels))
    result["per_class"] = {
        str(c): {key: float(report[str(c)][key]) for key in ("precision", "recall", "f1-score", "support")}
        for c in classes
    }
    result["confusion_matrix"] = metrics.confusion_matrix(y_index, predicted, labels=labels).tolist()
    return result
