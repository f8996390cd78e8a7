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
    # One per-class call; the averages are sklearn's definitions over it (macro: the mean over
    # the labels, weighted: by support), which saves classification_report's three more passes.
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_index, predicted, labels=labels, zero_division=0
    )
    result = {
        "samples": int(len(y_true)),
        "accuracy": float(metrics.accuracy_score(y_index, predicted)),
        "log_loss": float(metrics.log_loss(y_index, proba, labels=labels)),
    }
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        result[f"{name}_macro"] = float(np.mean(values))
        result[f"{name}_weighted"] = float(np.average(values, weights=support))
    if len(classes) > 2:
        k = min(3, len(classes) - 1)
        result["top_k"] = k
        result["top_k_accuracy"] = float(metrics.top_k_accuracy_score(y_index, proba, k=k, labels=labels))
    result["per_class"] = {
        str(c): {"precision": float(p), "recall": float(r), "f1-score": float(f), "support": float(n)}
        for c, p, r, f, n in zip(classes, precision, recall, f1, support)
    }
    result["confusion_matrix"] = metrics.confusion_matrix(y_index, predicted, labels=labels).tolist()
    return result
