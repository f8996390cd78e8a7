"""Judging a saved model: on its own held-out test split (re-derived from the stored dataset spec,
split fractions and seed, refused when the data changed since), or on other labelled data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from softreg.data import load_dataset, spec_to_string, split_indices
from softreg.data.chunks import column_order
from softreg.data.dataset import feature_names_are_real
from softreg.data.encoding import refuse_unseen_levels
from softreg.model.assess.calibration import evaluate_model
from softreg.model.run.config import dataset_options
from softreg.model.run.errors import RunError
from softreg.model.run.persist import load_model


@dataclass
class SavedModelEvaluation:
    estimator: object
    header: dict
    source: str  # what the rows were, in words
    metrics: dict  # classification metrics, calibration and unseen labels (evaluate_model)
    unseen_levels: dict  # a table's: per column, the cells holding a category the model never saw


def test_split_of(model_path, header: dict):
    """(X, y, words) of the model's own test split; RunError when it cannot be re-derived."""
    if not header["config"]["test_fraction"]:
        raise RunError(f"model '{model_path}' was trained with test_fraction 0, so it has no test split; pass data "
                       "to evaluate on.")
    return saved_split(model_path, header, "test", "pass data to evaluate on.")


def saved_split(model_path, header: dict, part: str, instead: str):
    """(X, y, words) of the model's own ``part`` ("train" or "test") of the data it was trained
    on, re-derived from the stored spec, seed and fractions; RunError (ending with ``instead``,
    what the user can do) when the data is gone or changed."""
    dataset, rows, words = saved_rows(model_path, header, part, instead)
    return dataset.X[rows], dataset.y[rows], words


def saved_rows(model_path, header: dict, part: str, instead: str, *, memory_map: bool = False):
    """(the dataset as loaded, the indices of its ``part`` rows, words): :func:`saved_split`
    without taking the rows, for callers that sum over them where they are (``memory_map``: a
    prepared .npy or a folder stays on disk, as the stream engine reads it)."""
    config, stored = header["config"], header["dataset"]
    spec = spec_to_string(stored)
    if "path" in stored and not Path(spec).exists():
        raise RunError(f"the data model '{model_path}' was trained on, '{spec}', is gone, so its {part} split cannot be "
                       f"re-derived; {instead}")
    dataset = load_dataset(spec, **{**dataset_options(config), "encoding": stored_encoding(header)},
                           memory_map=memory_map)
    if stored.get("sha256") is not None and dataset.spec.get("sha256") != stored["sha256"]:
        raise RunError(f"'{spec}' has changed since '{model_path}' was trained on it (its contents differ; "
                       f"{dataset.n_samples} rows now, {stored.get('rows', '?')} then), so the {part} split cannot be "
                       f"re-derived; {instead}")
    train, _, test = split_indices(dataset.y, val_fraction=config["val_fraction"],
                                   test_fraction=config["test_fraction"], seed=config["seed"])
    rows = train if part == "train" else test
    return dataset, rows, f"the model's {part} split of {spec} ({len(rows)} rows)"


def rows_of(data: str, header: dict, *, target: str | None = None, missing: str | None = None,
            format: str | None = None, strict: bool = False):
    """(X, y, words, unseen levels per column) of other labelled data, its columns matched to the model's features (by name
    when both sides have real names, else by position, as in prediction); a table is encoded by
    the model's stored encoding. ``missing`` None follows the model's own rule; ``strict`` refuses
    levels the model never saw (DataError), as prediction's does."""
    encoding = stored_encoding(header)
    if missing is None:
        missing = encoding.missing if encoding is not None else "error"
    dataset = load_dataset(data, target=target, dtype=header["config"]["dtype"], missing=missing, format=format,
                           encoding=encoding)
    if dataset.table is not None:  # a table, encoded by the model's encoding
        if strict:
            refuse_unseen_levels(data, dataset.unseen_levels)
        return dataset.X, dataset.y, f"{data} ({dataset.n_samples} rows)", dataset.unseen_levels
    names = dataset.feature_names if feature_names_are_real(dataset.spec) else None
    columns = column_order(data, names, dataset.X.shape[1], header["feature_names"],
                           by_name=feature_names_are_real(header["dataset"]))
    return dataset.X[:, columns], dataset.y, f"{data} ({dataset.n_samples} rows)", {}


def stored_encoding(header: dict):
    """The model's table encoding (a TableEncoding), or None for a model of another format."""
    from softreg.data.encoding import TableEncoding

    return TableEncoding.from_dict(header["encoding"]) if header.get("encoding") else None


def evaluate_saved_model(model_path, data: str | None = None, *, target: str | None = None,
                         missing: str | None = None, format: str | None = None,
                         strict: bool = False) -> SavedModelEvaluation:
    """Metrics and calibration of the model file at ``model_path`` on its own test split, or on
    ``data`` (``strict``: refuse levels of a table's columns that the model never saw)."""
    estimator, header = load_model(model_path)
    if data is None:
        X, y, source = test_split_of(model_path, header)
        unseen = {}
    else:
        X, y, source, unseen = rows_of(data, header, target=target, missing=missing, format=format, strict=strict)
    return SavedModelEvaluation(estimator, header, source, evaluate_model(estimator, X, y), unseen)
