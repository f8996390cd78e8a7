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
import io
import os
import re
import zipfile
import zlib
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
MISSING_POLICIES = ("error", "drop")
MISSING_MARKERS = ("", "na", "n/a", "nan", "null", "none", "?")


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
    dropped_rows: int = 0  # rows removed for missing values (missing="drop")

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
    missing: str = "error",
    memory_map: bool = False,
) -> Dataset:
    """Load the dataset that ``spec`` names (see the module docstring for the forms).

    ``memory_map=True`` maps the X of a prepared ``.npy`` file instead of reading it, and reads
    only the labels of a folder of partitions (for the stream and dask engines, which read the
    rows themselves); other formats are read as usual. A folder (or a single .parquet file) is
    a set of Parquet or CSV/TSV partitions with one schema (:mod:`softreg.data.partitions`).

    ``target`` names the label column of a CSV/TSV file (default: the last column);
    ``weight_column`` names a column of per-sample weights, removed from the features.
    Features come back in ``dtype`` (float64 or float32).

    ``missing`` says what to do with rows holding a missing value (an empty cell or one of
    NA, N/A, NaN, null, None, ?) or an infinite one: "error" (the default) raises a DataError
    naming the columns and the number of rows; "drop" removes those rows and records how many
    in ``Dataset.dropped_rows``.
    """
    if missing not in MISSING_POLICIES:
        raise DataError(f"missing must be 'error' or 'drop', got '{missing}'.")
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
    if path.is_dir() or path.suffix.lower() == ".parquet":
        from softreg.data.partitions import folder_digest, load_folder

        dataset = load_folder(path, target, weight_column, dtype, missing, lazy=memory_map)
        dataset.spec.update(rows=dataset.n_samples, sha256=folder_digest(path))
        return dataset
    if not os.access(path, os.R_OK):
        raise DataError(f"dataset file '{spec}' is not readable (permission denied).")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        dataset = _load_delimited(path, CSV_SUFFIXES[suffix], target, weight_column, dtype, missing)
    elif suffix == ".npz":
        dataset = _drop_missing_rows(_load_npz(path, dtype), missing)
    elif suffix == ".npy":
        dataset = load_prepared(path, dtype, memory_map=memory_map)
    elif suffix in SVMLIGHT_SUFFIXES:
        dataset = _drop_missing_rows(_load_svmlight(path, dtype), missing)
    else:
        dataset = None
    if dataset is not None and dataset.n_samples == 0:
        raise DataError(f"{path} has no data rows.")
    if dataset is not None and dataset.n_features == 0:
        raise DataError(f"{path} has no feature columns.")
    if dataset is not None:
        # Recorded in models, so that `softreg eval` notices when the file changed since training.
        dataset.spec.update(rows=dataset.n_samples, sha256=file_digest(path) if suffix != ".npy" else
                            prepared_digest(path))
        return dataset
    raise DataError(
        f"dataset file '{spec}' has the unknown extension '{suffix or '(none)'}'; "
        f"accepted: .csv, .tsv, .npz, .npy (a prepared dataset), {', '.join(SVMLIGHT_SUFFIXES)}."
    )


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def spec_to_string(spec: dict) -> str:
    """The dataset spec string that loads the data a stored ``spec`` dict describes."""
    if "path" in spec:
        return spec["path"]
    if spec.get("name") == "synthetic" and isinstance(spec.get("params"), dict):
        return "synthetic:" + ",".join(f"{key}={value}" for key, value in spec["params"].items())
    return str(spec.get("name", "(unknown dataset)"))


# The shapes and class counts of scikit-learn's bundled copies, which are fixed files: listing
# them needs no scikit-learn import (about 1 s). tests/test_data.py checks them against the loaders.
BUILTIN_SHAPES = {
    "iris": (150, 4, {"setosa": 50, "versicolor": 50, "virginica": 50}),
    "wine": (178, 13, {"class_0": 59, "class_1": 71, "class_2": 48}),
    "digits": (1797, 64, {"0": 178, "1": 182, "2": 177, "3": 183, "4": 181, "5": 182, "6": 181, "7": 179, "8": 174,
                          "9": 180}),
    "breast_cancer": (569, 30, {"benign": 357, "malignant": 212}),
}


def describe_builtins() -> list[dict]:
    """Name, shape, classes and description of each built-in dataset."""
    return [{"name": name, "samples": BUILTIN_SHAPES[name][0], "features": BUILTIN_SHAPES[name][1],
             "classes": len(BUILTIN_SHAPES[name][2]), "class_counts": dict(BUILTIN_SHAPES[name][2]),
             "description": BUILTIN_DESCRIPTIONS[name]} for name in BUILTINS]


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


CHUNK_ROWS = 20_000  # rows held as Python strings at a time while reading a CSV/TSV file


def _load_delimited(path: Path, delimiter: str, target: str | None, weight_column: str | None, dtype: str,
                    missing: str = "error", *, label_text: bool = False) -> Dataset:
    """Read a delimited file chunk by chunk: each chunk's strings become numbers before the next
    is read, so memory stays near the size of the result, not of the text as Python objects.
    ``label_text`` keeps labels as the strings in the file (a partition of a larger dataset must
    not decide alone whether labels are numbers)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = ((line, row) for line, row in delimited_rows(path, handle, delimiter) if row)  # blank lines: no sample
            first = next(rows, None)
            if first is None:
                raise DataError(f"{path} is empty; expected a header row and at least one data row.")
            header = [name.strip() for name in first[1]]
            columns = _resolve_columns(path, header, delimiter, target, weight_column)
            parts = [_parse_chunk(path, chunk, header, columns, delimiter, dtype)
                     for chunk in _chunked(rows, CHUNK_ROWS)]
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    if not parts:
        raise DataError(f"{path} has a header but no data rows.")
    target, feature_indices, target_index, weight_index = columns
    X = np.concatenate([part["X"] for part in parts])
    missing_x = np.concatenate([part["missing_x"] for part in parts])
    labels = np.concatenate([part["labels"] for part in parts])
    lines = np.concatenate([part["lines"] for part in parts])
    missing_labels = np.isin(np.char.lower(labels), MISSING_MARKERS)  # "", NA, NaN, null, ...
    missing_rows = missing_x.any(axis=1) | missing_labels
    named = {header[feature_indices[j]]: int(n) for j, n in enumerate(missing_x.sum(axis=0)) if n}
    if missing_labels.any():
        named[target] = int(missing_labels.sum())
    weights = None
    if weight_index is not None:
        weights = np.concatenate([part["weights"] for part in parts])
        missing_w = ~np.isfinite(weights)
        missing_rows |= missing_w
        if missing_w.any():
            named[weight_column] = int(missing_w.sum())
    dropped = 0
    if missing_rows.any():
        if missing == "error":
            raise DataError(
                f"{path}: {int(missing_rows.sum())} rows have missing, NaN or infinite values (first at line "
                f"{int(lines[np.argmax(missing_rows)])}); cells per column: {named}. Fill them in, or pass "
                "missing='drop' to leave those rows out."
            )
        keep = ~missing_rows
        X, labels = X[keep], labels[keep]
        weights = None if weights is None else weights[keep]
        dropped = int(missing_rows.sum())
        if not len(labels):
            raise DataError(f"{path}: every row has a missing value ({named}); nothing is left after missing='drop'.")
    if weights is not None and (np.any(weights < 0) or not np.any(weights > 0)):
        raise DataError(f"{path}: weight column '{weight_column}' must be non-negative with a positive sum.")
    if not label_text:
        labels = as_integers_if_possible(labels)
    return Dataset(
        X=X,
        y=labels,
        feature_names=[header[i] for i in feature_indices],
        description=f"{path.name} (target column '{target}')",
        spec={"path": str(path.resolve()), "format": "csv" if delimiter == "," else "tsv", "target": target,
              "weight_column": weight_column},
        sample_weight=weights,
        dropped_rows=dropped,
    )


def _resolve_columns(path: Path, header: list[str], delimiter: str, target: str | None, weight_column: str | None):
    """(target name, feature column indices, target index, weight index or None) from the header."""
    if len(header) == 1:
        raise DataError(f"{path}: the header is the single column {header[0]!r}. {_delimiter_hint(header[0], delimiter)}")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataError(f"{path}: duplicate column names {duplicates}; each column needs a unique name.")
    if "" in header:
        raise DataError(f"{path}: column {header.index('') + 1} of the header has no name (a trailing delimiter?); "
                        "every column needs a name.")
    target = header[-1] if target is None else target
    if target not in header:
        raise DataError(f"{path}: no target column '{target}'; columns are {header}. Choose one with target='COLUMN'.")
    if weight_column is not None and weight_column == target:
        raise DataError(f"{path}: weight_column='{weight_column}' is the target (label) column; name another column "
                        "for the weights, or choose the labels with target='COLUMN'.")
    if weight_column is not None and weight_column not in header:
        raise DataError(f"{path}: no weight column '{weight_column}'; columns are {header}.")
    target_index = header.index(target)
    weight_index = header.index(weight_column) if weight_column else None
    feature_indices = [i for i in range(len(header)) if i not in (target_index, weight_index)]
    return target, feature_indices, target_index, weight_index


def fields_error(path: Path, line_no: int, count: int, expected: int, delimiter: str) -> DataError:
    """A row whose field count differs from the header's: usually a wrong delimiter or quoting."""
    return DataError(
        f"{path}, line {line_no}: {count} fields where the header has {expected}; "
        f"check the delimiter ({'tab' if delimiter == chr(9) else repr(delimiter)}) and quoting."
    )


def _chunked(rows, size: int):
    chunk = []
    for item in rows:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _parse_chunk(path: Path, chunk, header: list[str], columns, delimiter: str, dtype: str) -> dict:
    """One chunk of (line number, fields) rows as numbers, labels and line numbers."""
    _, feature_indices, target_index, weight_index = columns
    for line_no, row in chunk:
        if len(row) != len(header):
            raise fields_error(path, line_no, len(row), len(header), delimiter)
    lines = np.array([line for line, _ in chunk])
    features = [[row[i] for i in feature_indices] for _, row in chunk]
    X, missing_x = _numeric_cells(path, features, lines, [header[i] for i in feature_indices], dtype)
    part = {"X": X, "missing_x": missing_x, "lines": lines,
            "labels": np.array([row[target_index].strip() for _, row in chunk])}
    if weight_index is not None:
        weights, missing_w = _numeric_cells(path, [[row[weight_index]] for _, row in chunk], lines,
                                            [header[weight_index]], "float64")
        part["weights"] = np.where(missing_w[:, 0], np.nan, weights[:, 0])
    return part


def _numeric_cells(path: Path, cells: list[list[str]], lines: np.ndarray, names: list[str], dtype: str):
    """Parse rows of cells as floats: (values, missing mask). Missing markers and non-finite
    numbers are flagged in the mask; other non-numbers raise, naming the line and column."""
    try:
        X = np.array(cells, dtype=dtype)  # the fast path: every cell a number
        return X, ~np.isfinite(X)
    except ValueError:
        pass
    block = np.array(cells, dtype=str)
    markers = np.isin(np.char.lower(np.char.strip(block)), MISSING_MARKERS)
    try:
        X = np.where(markers, "nan", block).astype(dtype)
    except ValueError:
        for row, line in enumerate(lines):
            for column, name in enumerate(names):
                if markers[row, column]:
                    continue
                value = block[row, column]
                try:
                    float(value)
                except ValueError:
                    raise DataError(
                        f"{path}: column '{name}' is not numeric: line {line} holds {str(value)!r}. "
                        "Feature columns must be numbers (missing values may be empty or NA); "
                        "choose the label column with target='COLUMN'."
                    ) from None
        raise
    return X, ~np.isfinite(X)


def delimited_rows(path: Path, lines, delimiter: str, lines_before: int = 0):
    """(line number where the row starts, fields) for each row of delimited text.

    Strict quoting: a quote that is never closed would otherwise swallow the rest of the file
    into one field; here it is an error naming the line where that field opened.
    """
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    start = lines_before + 1
    try:
        for row in reader:
            yield start, row
            start = lines_before + reader.line_num + 1
    except csv.Error as error:
        if "end of data" in str(error):
            raise DataError(f"{path}, line {start}: a quoted field opened on this line is never closed; "
                            "check the quote characters (\") in that row.") from None
        raise DataError(f"{path}, line {lines_before + reader.line_num}: not valid delimited text ({error}); "
                        "check the quoting in that row.") from None
    except OverflowError:
        raise DataError(f"{path}, line {start}: a field is too large to read.") from None


def not_utf8(path: Path) -> DataError:
    """The error for a file that is not UTF-8 text, with the first bad byte's offset and line."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:  # decoded whole, so the offset is the file's
        line = raw.count(b"\n", 0, error.start) + 1
        return DataError(f"{path}, line {line}: byte {error.start} ({raw[error.start:error.start + 1]!r}) is not valid "
                         "UTF-8 text; save the file as UTF-8.")
    return DataError(f"{path}: not valid UTF-8 text; save the file as UTF-8.")


def _delimiter_hint(header: str, delimiter: str) -> str:
    """Why a header came out as one column: most often the file uses another delimiter."""
    found = [name for symbol, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes"), (",", "commas"))
             if symbol in header and symbol != delimiter]
    expected = "a comma-separated .csv" if delimiter == "," else "a tab-separated .tsv"
    if found:
        return (f"The file looks separated by {found[0]}, but softreg reads it as {expected} "
                "(.csv: commas, .tsv: tabs); convert it or give it the matching extension.")
    return f"softreg reads it as {expected} with a feature column and a label column at least."


def _drop_missing_rows(dataset: Dataset, missing: str) -> Dataset:
    """NaN or infinite features, or NaN labels, in an .npz or svmlight file: an error, or drop those rows."""
    X, y = dataset.X, dataset.y
    values = X.data if hasattr(X, "toarray") else X
    bad_labels = ~np.isfinite(y) if y.dtype.kind == "f" else np.zeros(len(y), dtype=bool)
    if np.isfinite(values).all() and not bad_labels.any():
        return dataset
    if hasattr(X, "toarray"):
        bad_rows = np.zeros(X.shape[0], dtype=bool)
        bad_rows[np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))[~np.isfinite(X.data)]] = True
    else:
        bad_rows = ~np.isfinite(X).all(axis=1)
    bad_rows |= bad_labels
    where = dataset.description.split(" (")[0]
    if missing == "error":
        raise DataError(
            f"{where}: {int(bad_rows.sum())} rows hold NaN or infinite features or NaN labels (first at row "
            f"{int(np.argmax(bad_rows))}, counting from 0); fix them, or pass missing='drop' to leave those rows out."
        )
    keep = ~bad_rows
    if not keep.any():
        raise DataError(f"{where}: every row holds NaN or infinite values; nothing is left after missing='drop'.")
    dataset.X, dataset.y = X[keep], y[keep]
    if dataset.sample_weight is not None:
        dataset.sample_weight = dataset.sample_weight[keep]
    if dataset.y.dtype.kind == "f" and np.all(dataset.y == np.round(dataset.y)):
        dataset.y = dataset.y.astype(np.int64)  # the NaN that kept the labels float is gone
    dataset.dropped_rows += int(bad_rows.sum())
    return dataset


def as_integers_if_possible(labels: np.ndarray) -> np.ndarray:
    try:
        return labels.astype(np.int64)
    except (ValueError, OverflowError):  # text labels, or integers beyond int64 (long ids): keep as text
        return labels


class NpzError(DataError):
    """An .npz file that cannot be read as plain arrays; ``reason`` says why, without the path."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def read_npz(path: Path, names) -> tuple[dict, list[str]]:
    """The arrays ``names`` that an .npz archive holds, and the names of all its arrays.

    Read with ``allow_pickle=False``: an object array is refused, never unpickled.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
        if not hasattr(loaded, "files"):
            raise NpzError(path, "a single .npy array, not an .npz archive of named arrays")
        with loaded as archive:
            return {name: archive[name] for name in names if name in archive.files}, list(archive.files)
    except ValueError as error:
        if "pickle" in str(error):
            with open(path, "rb") as handle:
                is_zip = handle.read(2) == b"PK"
            if not is_zip:  # numpy takes any other file for a pickle
                raise NpzError(path, "not an .npz archive (its first bytes are not a zip file's)") from None
            raise NpzError(path, "it holds Python objects, not plain arrays: reading them would need unpickling, "
                                 "which softreg never does") from None
        raise NpzError(path, f"not a valid .npz archive ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise NpzError(path, f"not a readable .npz archive ({error}); it may be truncated or corrupt") from None


def _load_npz(path: Path, dtype: str) -> Dataset:
    arrays, present = read_npz(path, ("X", "y"))
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise DataError(f"{path}: no array {' or '.join(missing)}; arrays present: {present}. "
                        "An .npz dataset needs X (N, D) and y (N,).")
    X, y = arrays["X"], arrays["y"]
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise DataError(f"{path}: X must be (N, D) and y (N,) with the same N; got X {X.shape} and y {y.shape}.")
    X = real_features(path, X, dtype)
    if y.dtype.kind == "f" and not np.all(np.isnan(y) | (y == np.round(y))):
        raise DataError(f"{path}: y holds non-integer numbers ({y[~np.isnan(y) & (y != np.round(y))][0]!r}, ...); "
                        "class labels must be integers or strings (softreg is a classifier, not a regressor).")
    if y.dtype.kind == "f" and not np.isnan(y).any():
        y = y.astype(np.int64)
    if y.dtype.kind not in "iubUSf":
        raise DataError(f"{path}: y has dtype {y.dtype}; class labels must be integers or strings.")
    return Dataset(
        X=X,
        y=y,
        feature_names=[f"x{i}" for i in range(X.shape[1])],
        description=f"{path.name} (arrays X and y)",
        spec={"path": str(path.resolve()), "format": "npz"},
    )


def real_features(path: Path, X: np.ndarray, dtype: str) -> np.ndarray:
    """X as ``dtype`` without a second copy when it already is; refuses non-numbers and values
    the dtype cannot hold (numpy would turn them into infinity with a warning)."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: X has dtype {X.dtype}; it must hold real numbers (integers or floats).")
    if dtype == "float32" and X.dtype != np.float32 and X.size:
        with np.errstate(invalid="ignore"):
            largest = np.nanmax(np.abs(X[np.isfinite(X)])) if X.dtype.kind == "f" else np.abs(X).max()
        if largest > np.finfo(np.float32).max:
            raise DataError(f"{path}: X holds values up to {largest:.3g}, beyond float32's range (3.4e38); "
                            "train with dtype='float64'.")
    return X.astype(dtype, copy=False)


MAX_FEATURES = 10_000_000  # W is dense (D x K): a larger index is a typo, not a feature


def has_index_zero(path: Path) -> bool:
    """Whether any feature index in an svmlight file is 0 (a whitespace, then "0:"), comments aside."""
    pattern = re.compile(rb"[ \t]0:")
    with open(path, "rb") as handle:
        return any(pattern.search(line.partition(b"#")[0]) for line in handle)


def _load_svmlight(path: Path, dtype: str) -> Dataset:
    from sklearn.datasets import load_svmlight_file

    # scikit-learn's "auto" rule (zero-based when any index is 0), decided here and stored in
    # the spec, so that prediction files read later use the same base.
    zero_based = has_index_zero(path)
    try:
        X, y = load_svmlight_file(str(path), dtype=np.dtype(dtype), zero_based=zero_based)
    except OverflowError:
        raise DataError(f"{path}: a feature index or value is too large to read; indices must stay below "
                        f"{MAX_FEATURES:,}.") from None
    except (ValueError, UnicodeDecodeError) as error:
        with open(path, "rb") as handle:
            line_no = first_bad_svmlight_line(handle)
        where = f"{path}, line {line_no}" if line_no else str(path)
        raise DataError(f"{where}: not valid svmlight/libsvm text ({error}); expected lines like "
                        "'LABEL INDEX:VALUE INDEX:VALUE ...' with increasing indices.") from None
    if X.shape[1] > MAX_FEATURES:
        raise DataError(f"{path}: the largest feature index is {X.shape[1] - 1 + int(not zero_based):,}; softreg "
                        f"keeps a dense weight per feature and class, so indices must stay below {MAX_FEATURES:,}. "
                        "Check that line for a typo.")
    if np.all(y[np.isfinite(y)] == np.round(y[np.isfinite(y)])) and np.isfinite(y).all():
        y = y.astype(np.int64)  # svmlight stores labels as floats; class labels are integers
    return Dataset(
        X=X.tocsr(),
        y=y,
        feature_names=[f"f{i}" for i in range(X.shape[1])],
        description=f"{path.name} (svmlight, sparse: {X.nnz} non-zeros)",
        spec={"path": str(path.resolve()), "format": "svmlight", "n_features": int(X.shape[1]),
              "zero_based": zero_based},
    )


def first_bad_svmlight_line(lines, first_line: int = 1, *, n_features: int | None = None, zero_based=True) -> int | None:
    """The number of the first line (of byte strings) scikit-learn's parser rejects on its own."""
    from sklearn.datasets import load_svmlight_file

    for line_no, line in enumerate(lines, start=first_line):
        if not line.strip() or line.lstrip().startswith(b"#"):
            continue
        try:
            # Zero-based by default, so that index 0 is syntax, not an error; the whole-file
            # rule decides the base later.
            load_svmlight_file(io.BytesIO(line), n_features=n_features, zero_based=zero_based)
        except (ValueError, UnicodeDecodeError):
            return line_no
    return None


def feature_names_are_real(spec: dict) -> bool:
    """Whether a dataset spec's feature names are real names (CSV/TSV headers, built-ins)
    rather than placeholders (x0, ... for .npz and synthetic data, f0, ... for svmlight)."""
    return spec.get("format") in ("csv", "tsv") or spec.get("name") in BUILTINS or bool(spec.get("named_features"))


# ----------------------------------------------------------------------- prepared .npy files
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
