"""Prepared datasets: X in a row-major .npy with its labels, feature names and weights beside it,
as ``softreg prepare`` writes them and the stream and dask engines read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from softreg.data.dataset import Dataset, DataError, feature_names_are_real, file_digest, real_features


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
    otherwise it is read whole, in ``dtype``.
    """
    import json

    paths = prepared_paths(path)
    if not paths["labels"].exists():
        raise DataError(f"{path}: no labels file {paths['labels'].name} beside it. A .npy dataset is X alone; "
                        f"preparing a dataset as {path.name} writes X with its labels ({paths['labels'].name}) and "
                        f"feature names ({paths['features'].name}).")
    try:
        X = np.load(path, mmap_mode="r" if memory_map else None, allow_pickle=False)
        y = np.load(paths["labels"], allow_pickle=False)
        weights = np.load(paths["weights"], allow_pickle=False) if paths["weights"].exists() else None
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
    if not memory_map:
        X = real_features(path, X, dtype)
    names, real = [f"x{i}" for i in range(X.shape[1])], False
    if paths["features"].exists():
        try:
            features = json.loads(paths["features"].read_text(encoding="utf-8"))
            names, real = features["names"], bool(features["real"])
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise DataError(f"{paths['features']}: not the JSON object {{\"names\": [...], \"real\": true|false}} "
                            f"of a prepared dataset ({error}).") from None
        if not (isinstance(names, list) and len(names) == X.shape[1] and all(isinstance(n, str) for n in names)):
            raise DataError(f"{paths['features']}: expected {X.shape[1]} feature names.")
    return Dataset(X=X, y=y, feature_names=names, description=f"{path.name} ({X.shape[0]} x {X.shape[1]}, prepared)",
                   spec={"path": str(path.resolve()), "format": "npy", "named_features": real},
                   sample_weight=weights)


def write_prepared(dataset: Dataset, path: Path) -> dict[str, Path]:
    """Write ``dataset`` as X.npy (row-major) with its labels, feature names and weights beside it.

    Each file is written atomically. Returns the paths written.
    """
    import json

    from softreg.data.files import atomic_file

    if not isinstance(dataset.X, np.ndarray):
        raise DataError(f"{dataset.spec.get('path', dataset.description)} is sparse; the .npy format (and the stream "
                        "engine) holds dense rows only. Train on the svmlight file directly.")
    if dataset.y.dtype.kind not in "iuU":
        raise DataError(f"labels of dtype {dataset.y.dtype} cannot be written without pickle; expected integers or "
                        "strings.")
    paths = prepared_paths(path)
    with atomic_file(paths["X"]) as handle:
        np.save(handle, np.ascontiguousarray(dataset.X), allow_pickle=False)
    with atomic_file(paths["labels"]) as handle:
        np.save(handle, dataset.y, allow_pickle=False)
    with atomic_file(paths["features"], "w", encoding="utf-8") as handle:
        json.dump({"names": list(dataset.feature_names), "real": feature_names_are_real(dataset.spec)}, handle)
    if dataset.sample_weight is not None:
        with atomic_file(paths["weights"]) as handle:
            np.save(handle, np.asarray(dataset.sample_weight, dtype=np.float64), allow_pickle=False)
    else:
        paths["weights"].unlink(missing_ok=True)
        del paths["weights"]
    return paths
