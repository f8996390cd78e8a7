"""Prepared datasets: X in a row-major .npy with its labels, feature names and weights beside it,
as ``softreg prepare`` writes them and the stream and dask engines read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from softreg.data.dataset import (
    Dataset,
    DataError,
    class_labels,
    feature_names_are_real,
    file_digest,
    real_features,
    require_regular_file,
)
from softreg.data.files import fingerprint, replaced_together


def prepared_paths(path: Path) -> dict[str, Path]:
    """The files of a prepared dataset X.npy: the labels, the feature names and the weights."""
    path = Path(path)
    stem = path.with_suffix("")
    return {"X": path, "labels": Path(f"{stem}.labels.npy"), "features": Path(f"{stem}.features.json"),
            "weights": Path(f"{stem}.weights.npy")}


def prepared_digest(path: Path) -> str:
    """SHA-256 of the features file with its labels (and weights) appended: eval notices a change in any."""
    import hashlib

    digest = hashlib.sha256()
    for name, part in prepared_paths(path).items():
        if name == "features" or (name == "weights" and not part.exists()):
            continue
        digest.update(file_digest(part).encode())
    return digest.hexdigest()


def load_prepared(path: Path, dtype: str, *, memory_map: bool = False) -> Dataset:
    """A dataset written by ``softreg prepare``: X in a row-major .npy, labels beside it.

    With ``memory_map`` X is mapped, not read (the stream engine reads it block by block);
    otherwise it is read whole, in ``dtype``. The features file lists the fingerprints of the
    files it was written with; a set whose files do not match them (a prepare cut short between
    its renames, a file replaced since) is refused.
    """
    paths = prepared_paths(path)
    for part in paths.values():
        require_regular_file(part, "prepared dataset file")
    if not paths["labels"].exists():
        raise DataError(f"{path}: no labels file {paths['labels'].name} beside it. A .npy dataset is X alone; "
                        f"preparing a dataset as {path.name} writes X with its labels ({paths['labels'].name}) and "
                        f"feature names ({paths['features'].name}).")
    features = _read_features(paths["features"])
    members = features.get("files")
    if members is not None:
        _check_members(path, paths, members)
    with_weights = paths["weights"].exists() if members is None else "weights" in members
    try:
        X = np.load(path, mmap_mode="r" if memory_map else None, allow_pickle=False)
        y = np.load(paths["labels"], allow_pickle=False)
        weights = np.load(paths["weights"], allow_pickle=False) if with_weights else None
        for name, array in (("X", X), ("labels", y), ("weights", weights)):
            if array is not None and not isinstance(array, np.ndarray):  # np.load opens an .npz as an archive
                raise DataError(f"{paths[name]}: an .npz archive, not the .npy array a prepared dataset holds.")
    except DataError:
        raise
    except ValueError as error:
        raise DataError(f"{path}: not a plain .npy array ({error}); softreg never loads pickled objects.") from None
    except OSError as error:
        raise DataError(f"{path}: not a readable .npy file ({error}).") from None
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise DataError(f"{path}: X must be (N, D) and its labels (N,) with the same N; got X {X.shape} and "
                        f"labels {y.shape} in {paths['labels'].name}.")
    if weights is not None and weights.shape != y.shape:
        raise DataError(f"{paths['weights']}: {weights.shape} weights for {y.shape[0]} rows.")
    if X.dtype not in (np.float32, np.float64):
        raise DataError(f"{path}: X has dtype {X.dtype}; a prepared dataset holds float64 or float32.")
    y = class_labels(paths["labels"], y, "the labels")
    if not memory_map:
        X = real_features(path, X, dtype)
        bad_rows = ~np.isfinite(X).all(axis=1)
        if bad_rows.any():  # the storage engines report these from their own passes
            raise DataError(f"{path}: {int(bad_rows.sum())} rows hold NaN or infinite values (first at row "
                            f"{int(np.argmax(bad_rows))}); prepare the data with missing='drop'.")
    names, real = features.get("names", [f"x{i}" for i in range(X.shape[1])]), bool(features.get("real", False))
    if not (isinstance(names, list) and len(names) == X.shape[1] and all(isinstance(n, str) for n in names)):
        raise DataError(f"{paths['features']}: expected {X.shape[1]} feature names.")
    dataset = Dataset(X=X, y=y, feature_names=names,
                      description=f"{path.name} ({X.shape[0]} x {X.shape[1]}, prepared)",
                      spec={"path": str(path.resolve()), "format": "npy", "named_features": real},
                      sample_weight=weights)
    if features.get("encoding") is not None:  # prepared from a table: models trained on it predict on tables
        from softreg.data.encoding import checked_encoding

        try:
            dataset.encoding = checked_encoding(features["encoding"], names, str(paths["features"]))
        except ValueError as error:
            raise DataError(f"{error}; prepare the dataset again.") from None
    return dataset


def _read_features(features_path: Path) -> dict:
    """The features file as a dict ({} when there is none: X with its labels alone)."""
    import json

    if not features_path.exists():
        return {}
    try:
        features = json.loads(features_path.read_text(encoding="utf-8"))
        features["names"], features["real"]  # noqa: B018 - both keys must be there
    except (OSError, ValueError, TypeError, KeyError, RecursionError) as error:
        raise DataError(f"{features_path}: not the JSON object {{\"names\": [...], \"real\": true|false}} "
                        f"of a prepared dataset ({error}).") from None
    return features


def _check_members(path: Path, paths: dict, members) -> None:
    """Every file the features file was written with is there, unchanged."""
    if not isinstance(members, dict) or not all(name in ("X", "labels", "weights") and isinstance(expected, dict)
                                                for name, expected in members.items()):
        raise DataError(f"{paths['features']}: its \"files\" entry is not the fingerprints of a prepared dataset.")
    for name, expected in members.items():
        if not paths[name].exists() or fingerprint(paths[name]) != expected:
            raise DataError(f"{path}: its files do not belong together: {paths[name].name} is not the one "
                            f"{paths['features'].name} was written with (a prepare was cut short, or a file was "
                            "replaced since). Prepare the dataset again.")


def write_prepared_set(destination: Path, write_rows, names: list[str], real: bool,
                       encoding: dict | None = None) -> dict[str, Path]:
    """Write a prepared dataset's files as one set: X by ``write_rows(handle) -> (labels,
    weights or None)``, then the labels, the weights, and last the features file, which holds
    the fingerprints of the others. No target is replaced unless all were written; if the
    renames themselves are cut short, :func:`load_prepared` refuses the mixed set. Returns the
    paths written."""
    import json

    paths = prepared_paths(destination)
    with replaced_together() as files:
        with files.file(paths["X"]) as handle:
            y, weights = write_rows(handle)
        with files.file(paths["labels"]) as handle:
            np.save(handle, y, allow_pickle=False)
        if weights is not None:
            with files.file(paths["weights"]) as handle:
                np.save(handle, np.asarray(weights, dtype=np.float64), allow_pickle=False)
        staged = {target: temporary for temporary, target in files.staged}
        members = {name: fingerprint(staged[paths[name]]) for name in ("X", "labels", "weights")
                   if paths[name] in staged}
        with files.file(paths["features"], "w", encoding="utf-8") as handle:
            json.dump({"names": list(names), "real": bool(real), "files": members,
                       **({"encoding": encoding} if encoding is not None else {})}, handle)
    if weights is None:
        paths["weights"].unlink(missing_ok=True)  # the features file lists no weights: a stale one is ignored
        del paths["weights"]
    return paths


def write_prepared(dataset: Dataset, path: Path) -> dict[str, Path]:
    """Write ``dataset`` as X.npy (row-major) with its labels, feature names and weights beside it.

    The files replace their targets as one set (:func:`write_prepared_set`). Returns the paths written.
    """
    if not isinstance(dataset.X, np.ndarray):
        raise DataError(f"{dataset.spec.get('path', dataset.description)} is sparse; the .npy format (and the stream "
                        "engine) holds dense rows only. Train on the svmlight file directly.")
    if dataset.y.dtype.kind not in "iuU":
        raise DataError(f"labels of dtype {dataset.y.dtype} cannot be written without pickle; expected integers or "
                        "strings.")

    def write_rows(handle):
        np.save(handle, np.ascontiguousarray(dataset.X), allow_pickle=False)
        return dataset.y, dataset.sample_weight

    encoding = dataset.encoding.to_dict() if dataset.encoding is not None else None
    return write_prepared_set(path, write_rows, dataset.feature_names, feature_names_are_real(dataset.spec), encoding)
