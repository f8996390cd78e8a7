"""Turn a dataset spec into features, labels, names and a description.

A spec is one string:
- a built-in name: ``iris``, ``wine``, ``digits``, ``breast_cancer`` (scikit-learn's bundled
  copies, offline);
- ``synthetic`` or ``synthetic:samples=5000,features=20,classes=4,informative=10,seed=0``
  (scikit-learn's ``make_classification``);
- a file path: ``.csv`` / ``.tsv`` with a header row, ``.npz`` holding arrays ``X`` and ``y``,
  or svmlight/libsvm text (``.svm``, ``.svmlight``, ``.libsvm``), which stays sparse.

This module knows nothing of training: it returns arrays and metadata and raises
:class:`DataError` with a message naming the file, row or column at fault.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BUILTINS = ("iris", "wine", "digits", "breast_cancer")
BUILTIN_DESCRIPTIONS = {
    "iris": "iris: Fisher's iris flowers, 4 measurements (scikit-learn built-in)",
    "wine": "wine: chemical analysis of three Italian cultivars (scikit-learn built-in)",
    "digits": "digits: 8x8 images of handwritten digits (scikit-learn built-in)",
    "breast_cancer": "breast_cancer: Wisconsin diagnostic, 30 cell-nucleus features (scikit-learn built-in)",
}
SYNTHETIC_DEFAULTS = {"samples": 5000, "features": 20, "classes": 4, "informative": 10, "seed": 0}
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
SVMLIGHT_SUFFIXES = (".svm", ".svmlight", ".libsvm")


class DataError(ValueError):
    """A dataset spec or file that cannot be loaded; the message says what and where."""


@dataclass
class Dataset:
    """Features and labels with their names; ``spec`` is enough to load the same data again."""

    X: object  # (N, D) float ndarray, or scipy.sparse CSR for svmlight files
    y: np.ndarray  # (N,) labels as given: strings or integers
    feature_names: list[str]
    description: str
    spec: dict = field(default_factory=dict)
    sample_weight: np.ndarray | None = None

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in np.unique(self.y)]

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


def load_dataset(
    spec: str,
    *,
    target: str | None = None,
    weight_column: str | None = None,
    dtype: str = "float64",
) -> Dataset:
    """Load the dataset that ``spec`` names (see the module docstring for the forms).

    ``target`` names the label column of a CSV/TSV file (default: the last column);
    ``weight_column`` names a column of per-sample weights, removed from the features.
    Features come back in ``dtype`` (float64 or float32).
    """
    name, _, params = spec.partition(":")
    if name in BUILTINS and not params:
        return _load_builtin(name, dtype)
    if name == "synthetic":
        return _load_synthetic(params, dtype)
    path = Path(spec)
    if not path.exists():
        raise DataError(
            f"dataset '{spec}' is neither a built-in ({', '.join(BUILTINS)}, synthetic) nor an existing file. "
            "Pass a built-in name or the path of a .csv, .tsv, .npz or svmlight (.svm/.svmlight/.libsvm) file."
        )
    if path.is_dir():
        raise DataError(f"dataset path '{spec}' is a directory; pass a .csv, .tsv, .npz or svmlight file.")
    if not os.access(path, os.R_OK):
        raise DataError(f"dataset file '{spec}' is not readable (permission denied).")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _load_delimited(path, CSV_SUFFIXES[suffix], target, weight_column, dtype)
    if suffix == ".npz":
        return _load_npz(path, dtype)
    if suffix in SVMLIGHT_SUFFIXES:
        return _load_svmlight(path, dtype)
    raise DataError(
        f"dataset file '{spec}' has the unknown extension '{suffix or '(none)'}'; "
        f"accepted: .csv, .tsv, .npz, {', '.join(SVMLIGHT_SUFFIXES)}."
    )


def spec_to_string(spec: dict) -> str:
    """The dataset spec string that loads the data a stored ``spec`` dict describes."""
    if "path" in spec:
        return spec["path"]
    if spec.get("name") == "synthetic":
        return "synthetic:" + ",".join(f"{key}={value}" for key, value in spec["params"].items())
    return spec["name"]


def describe_builtins() -> list[dict]:
    """Name, shape, classes and description of each built-in dataset."""
    rows = []
    for name in BUILTINS:
        data = _load_builtin(name, "float64")
        counts = {str(c): int(n) for c, n in zip(*np.unique(data.y, return_counts=True))}
        rows.append(
            {
                "name": name,
                "samples": data.n_samples,
                "features": data.n_features,
                "classes": len(counts),
                "class_counts": counts,
                "description": data.description,
            }
        )
    return rows


def _load_builtin(name: str, dtype: str) -> Dataset:
    from sklearn import datasets

    loader = getattr(datasets, f"load_{name}")
    bunch = loader()
    target_names = np.asarray(bunch.target_names)
    labels = target_names[bunch.target] if name != "digits" else bunch.target
    return Dataset(
        X=np.asarray(bunch.data, dtype=dtype),
        y=np.asarray(labels),
        feature_names=[str(f) for f in bunch.feature_names],
        description=BUILTIN_DESCRIPTIONS[name],
        spec={"name": name},
    )


def parse_synthetic_params(params: str) -> dict:
    """``samples=5000,features=20`` -> the full parameter dict, defaults filled in."""
    values = dict(SYNTHETIC_DEFAULTS)
    for item in filter(None, (p.strip() for p in params.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in SYNTHETIC_DEFAULTS:
            raise DataError(
                f"synthetic parameter '{item}' is not of the form key=value with key one of "
                f"{', '.join(SYNTHETIC_DEFAULTS)} (e.g. synthetic:samples=10000,classes=5)."
            )
        try:
            values[key] = int(raw)
        except ValueError:
            raise DataError(f"synthetic parameter '{key}' must be an integer, got '{raw}'.") from None
    for key in ("samples", "features", "classes", "informative"):
        if values[key] < 1:
            raise DataError(f"synthetic parameter '{key}' must be at least 1, got {values[key]}.")
    if values["classes"] < 2:
        raise DataError(f"synthetic parameter 'classes' must be at least 2, got {values['classes']}.")
    if values["informative"] > values["features"]:
        raise DataError(
            f"synthetic parameter 'informative' ({values['informative']}) cannot exceed 'features' ({values['features']})."
        )
    return values


def _load_synthetic(params: str, dtype: str) -> Dataset:
    from sklearn.datasets import make_classification

    p = parse_synthetic_params(params)
    try:
        X, y = make_classification(
            n_samples=p["samples"],
            n_features=p["features"],
            n_informative=p["informative"],
            n_redundant=0,
            n_classes=p["classes"],
            n_clusters_per_class=1,
            random_state=p["seed"],
        )
    except ValueError as error:
        raise DataError(f"synthetic parameters {p} are inconsistent: {error}") from None
    return Dataset(
        X=X.astype(dtype, copy=False),
        y=y,
        feature_names=[f"x{i}" for i in range(p["features"])],
        description=(
            f"make_classification: {p['samples']} samples, {p['features']} features "
            f"({p['informative']} informative), {p['classes']} classes, seed {p['seed']}"
        ),
        spec={"name": "synthetic", "params": p},
    )


def _load_delimited(path: Path, delimiter: str, target: str | None, weight_column: str | None, dtype: str) -> Dataset:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle, delimiter=delimiter))
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: byte {error.start} is not valid UTF-8 text; save the file as UTF-8 CSV.") from None
    except csv.Error as error:
        raise DataError(f"{path}: not a valid delimited file ({error}).") from None
    rows = [row for row in rows if row]  # blank lines carry no sample
    if not rows:
        raise DataError(f"{path} is empty; expected a header row and at least one data row.")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    if not body:
        raise DataError(f"{path} has a header but no data rows.")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column names {duplicates}; each column needs a unique name.")
    for line_no, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(
                f"{path}, line {line_no}: {len(row)} fields where the header has {len(header)}; "
                f"check the delimiter ({'tab' if delimiter == chr(9) else repr(delimiter)}) and quoting."
            )
    target = header[-1] if target is None else target
    if target not in header:
        raise DataError(f"{path}: no target column '{target}'; columns are {header}. Choose one with --target.")
    if weight_column is not None and weight_column not in header:
        raise DataError(f"{path}: no weight column '{weight_column}'; columns are {header}.")
    target_index = header.index(target)
    special = {target_index} | ({header.index(weight_column)} if weight_column else set())
    feature_indices = [i for i in range(len(header)) if i not in special]
    if not feature_indices:
        raise DataError(f"{path}: no feature columns besides the target '{target}'.")
    cells = np.array(body, dtype=object)
    X = _numeric_columns(path, cells, header, feature_indices, dtype)
    weights = None
    if weight_column is not None:
        weights = _numeric_columns(path, cells, header, [header.index(weight_column)], "float64")[:, 0]
        if np.any(weights < 0) or weights.sum() <= 0:
            raise DataError(f"{path}: weight column '{weight_column}' must be non-negative with a positive sum.")
    labels = np.array([cell.strip() for cell in cells[:, target_index]])
    if np.any(labels == ""):
        line_no = int(np.argmax(labels == "")) + 2
        raise DataError(f"{path}, line {line_no}: the target column '{target}' is empty.")
    labels = _as_integers_if_possible(labels)
    return Dataset(
        X=X,
        y=labels,
        feature_names=[header[i] for i in feature_indices],
        description=f"{path.name} (target column '{target}')",
        spec={"path": str(path.resolve()), "format": "csv" if delimiter == "," else "tsv", "target": target,
              "weight_column": weight_column},
        sample_weight=weights,
    )


def _numeric_columns(path: Path, cells: np.ndarray, header: list[str], indices: list[int], dtype: str) -> np.ndarray:
    """Parse the chosen columns as floats; name the first bad cell (column, line, value)."""
    block = cells[:, indices]
    try:
        X = block.astype(dtype)
    except ValueError:
        for column, index in enumerate(indices):
            for row, value in enumerate(block[:, column]):
                try:
                    float(value)
                except ValueError:
                    shown = value if value.strip() else "(empty)"
                    raise DataError(
                        f"{path}: column '{header[index]}' is not numeric: line {row + 2} holds {shown!r}. "
                        "Feature columns must be numbers; choose the label column with --target."
                    ) from None
        raise
    bad = ~np.isfinite(X)
    if bad.any():
        columns = [header[indices[j]] for j in np.flatnonzero(bad.any(axis=0))]
        raise DataError(
            f"{path}: {int(bad.any(axis=1).sum())} rows hold NaN or infinite values, in columns {columns}; "
            "remove or impute them first."
        )
    return X


def _as_integers_if_possible(labels: np.ndarray) -> np.ndarray:
    try:
        as_int = labels.astype(np.int64)
    except ValueError:
        return labels
    return as_int


def _load_npz(path: Path, dtype: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("X", "y") if key not in archive.files]
            if missing:
                raise DataError(f"{path}: no array {' or '.join(missing)}; arrays present: {archive.files}. "
                                "An .npz dataset needs X (N, D) and y (N,).")
            X, y = archive["X"], archive["y"]
    except DataError:
        raise
    except ValueError as error:
        if "pickle" in str(error):
            raise DataError(f"{path}: holds Python objects that would need unpickling, which softreg refuses; "
                            "store plain numeric arrays X and y.") from None
        raise DataError(f"{path}: not a valid .npz archive ({error}).") from None
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error}).") from None
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise DataError(f"{path}: X must be (N, D) and y (N,) with the same N; got X {X.shape} and y {y.shape}.")
    try:
        X = X.astype(dtype)
    except (ValueError, TypeError):
        raise DataError(f"{path}: X has dtype {X.dtype}, not numbers.") from None
    if not np.isfinite(X).all():
        raise DataError(f"{path}: X holds NaN or infinite values in {int((~np.isfinite(X)).any(axis=1).sum())} rows.")
    return Dataset(
        X=X,
        y=y,
        feature_names=[f"x{i}" for i in range(X.shape[1])],
        description=f"{path.name} (arrays X and y)",
        spec={"path": str(path.resolve()), "format": "npz"},
    )


def _load_svmlight(path: Path, dtype: str) -> Dataset:
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(str(path), dtype=np.dtype(dtype))
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid svmlight/libsvm text ({error}).") from None
    if np.all(y == np.round(y)):
        y = y.astype(np.int64)  # svmlight stores labels as floats; class labels are integers
    return Dataset(
        X=X.tocsr(),
        y=y,
        feature_names=[f"f{i}" for i in range(X.shape[1])],
        description=f"{path.name} (svmlight, sparse: {X.nnz} non-zeros)",
        spec={"path": str(path.resolve()), "format": "svmlight", "n_features": int(X.shape[1])},
    )
