"""Applying a fitted model to rows: labels, class probabilities and the K most likely labels.

    p_i = softmax(z_i),   label_i = classes[argmax_k p_ik]
    top-K: the K classes of largest p_ik, in decreasing order (ties broken by class order)

``write_predictions`` turns chunks of feature rows into CSV or JSON-lines text, one output
row per input row, so a file of any size is predicted with memory bounded by the chunk.
Numbers are written in their shortest form that reads back to the same float, so the
probabilities of a row read back sum to 1 as exactly as they were computed.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import IO, Iterable

import numpy as np

OUTPUT_FORMATS = ("csv", "jsonl")


class PredictionError(ValueError):
    """Rows that cannot be predicted, or options that cannot be honoured (``key`` names the
    option); ``rows_written`` output rows were already written."""

    def __init__(self, message: str, rows_written: int = 0, key: str | None = None):
        super().__init__(message)
        self.rows_written = rows_written
        self.key = key


@dataclass
class PredictionOptions:
    with_proba: bool = False
    top_k: int | None = None
    output_format: str = "csv"


def top_k_classes(proba: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (N, k) of the k largest probabilities per row, largest first, and those values."""
    # A stable sort of -p keeps equal probabilities in class order.
    order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(proba, order, axis=1)


def check_options(options: PredictionOptions, n_classes: int) -> None:
    """PredictionError naming the option at fault."""
    if options.output_format not in OUTPUT_FORMATS:
        raise PredictionError(f"output_format must be 'csv' or 'jsonl', got '{options.output_format}'.",
                              key="output_format")
    if options.top_k is not None and not 1 <= options.top_k <= n_classes:
        raise PredictionError(f"top_k must be between 1 and the model's {n_classes} classes, got {options.top_k}.",
                              key="top_k")


def column_names(classes: np.ndarray, options: PredictionOptions) -> list[str]:
    """label, then proba_<class> for each class (with_proba), then top<j>_label, top<j>_proba."""
    names = ["label"]
    if options.with_proba:
        names += [f"proba_{c}" for c in classes]
    for j in range(1, (options.top_k or 0) + 1):
        names += [f"top{j}_label", f"top{j}_proba"]
    return names


def write_predictions(estimator, chunks: Iterable[tuple[int, object]], handle: IO[str], options: PredictionOptions) -> int:
    """Predict every chunk of (first row, X) and write the rows to ``handle``; returns the row count."""
    classes = np.asarray(estimator.classes_)
    check_options(options, len(classes))
    label_text = [str(c) for c in classes]
    label_json = [json.dumps(c.item() if hasattr(c, "item") else c) for c in classes]
    proba_keys = [json.dumps(name) for name in label_text]
    writer = csv.writer(handle, lineterminator="\n")
    # The CSV header goes out with the first rows, so a first block that fails leaves no output at all.
    header = [column_names(classes, options)] if options.output_format == "csv" else []
    total = 0
    try:
        for first_row, X in chunks:
            total += _write_chunk(estimator, X, first_row, writer, handle, options, label_text, label_json, proba_keys,
                                  header)
            header = []
    except ValueError as error:  # bad data (DataError, PredictionError): note how far the output got
        error.rows_written = total
        raise
    writer.writerows(header)  # no rows at all: the header alone
    return total


def _write_chunk(estimator, X, first_row, writer, handle, options, label_text, label_json, proba_keys,
                 header: list) -> int:
    # Features far outside the training range can overflow the logits; such rows are
    # reported below instead of numpy warning and NaN probabilities being written.
    with np.errstate(over="ignore", invalid="ignore"):
        proba = estimator.predict_proba(X)
    finite = np.isfinite(proba).all(axis=1)
    if not finite.all():
        row = first_row + int(np.argmin(finite)) + 1
        raise PredictionError(
            f"data row {row} (counting from 1, header excluded) gives non-finite logits: its features are far "
            "outside the range this model was trained on (values near the float limit, such as 1e308). "
            "Fix or drop that row."
        )
    best = proba.argmax(axis=1).tolist()
    labels = [label_text[k] for k in best] if options.output_format == "csv" else [label_json[k] for k in best]
    columns = {}
    if options.with_proba:
        columns["proba"] = _shortest(proba)
    if options.top_k:
        top_index, top_proba = top_k_classes(proba, options.top_k)
        names = label_text if options.output_format == "csv" else label_json
        top_labels = [[names[k] for k in row] for row in top_index.tolist()]
        columns.update(top_labels=top_labels, top_proba=_shortest(top_proba))
    if options.output_format == "csv":
        writer.writerows(header)
        writer.writerows(_csv_rows(labels, **columns))
    else:
        handle.writelines(_json_lines(labels, proba_keys, **columns))
    return proba.shape[0]


def _shortest(values: np.ndarray) -> list:
    """Rows of numbers whose str() is the shortest text that reads back to the same value."""
    if values.dtype == np.float64:
        return values.tolist()  # Python floats: repr is already shortest round-trip
    return values.astype(str).tolist()  # float32: numpy's shortest form in float32


def _csv_rows(labels, proba=None, top_labels=None, top_proba=None):
    for i, label in enumerate(labels):
        row = [label]
        if proba is not None:
            row += proba[i]
        if top_labels is not None:
            for name, p in zip(top_labels[i], top_proba[i]):
                row += (name, p)
        yield row


def _json_lines(labels, proba_keys: list[str], proba=None, top_labels=None, top_proba=None):
    for i, label in enumerate(labels):
        parts = [f'{{"label": {label}']
        if proba is not None:
            parts.append('"proba": {' + ", ".join(f"{key}: {p}" for key, p in zip(proba_keys, proba[i])) + "}")
        if top_labels is not None:
            parts.append('"top": [' + ", ".join(f'{{"label": {name}, "proba": {p}}}'
                                                for name, p in zip(top_labels[i], top_proba[i])) + "]")
        yield ", ".join(parts) + "}\n"
