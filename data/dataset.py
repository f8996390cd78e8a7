"""Turn a dataset spec into features, labels, names and a description.

A spec is one string:
- a built-in name: ``iris``, ``wine``, ``digits``, ``breast_cancer`` (scikit-learn's bundled
  copies, offline);
- ``synthetic`` or ``synthetic:samples=5000,features=20,classes=4,informative=10,seed=0``
  (scikit-learn's ``make_classification``);
- a file path: ``.csv`` / ``.tsv`` with a header row, ``.npz`` holding arrays ``X`` and ``y``,
  or svmlight/libsvm text (``.svm``, ``.svmlight``, ``.libsvm``), which stays sparse.

This module knows nothing of training: it returns arrays and metadata and raises
:class:`DataError` with a message naming the file, row or column at fault. It holds the
:class:`Dataset`, the spec helpers and digests, the checks shared by the readers, and
:func:`load_dataset`, which picks the reader in :mod:`softreg.data.formats` by name or suffix.
The readers import :class:`Dataset` and :class:`DataError` from here, so ``load_dataset``
imports them when it is called, not at the top.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BUILTINS = ("iris", "wine", "digits", "breast_cancer")
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
SVMLIGHT_SUFFIXES = (".svm", ".svmlight", ".libsvm")
MISSING_POLICIES = ("impute", "drop", "error")
FORMATS = ("csv", "tsv", "svmlight", "npz", "npy", "parquet")


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
    dropped_rows: int = 0  # rows removed for missing values (missing="drop"), or for a missing label
    # A table's (CSV/TSV): what was done with each column (softreg.data.encoding.TableEncoding)
    # and the table itself (for fitting that encoding again on the training rows alone).
    encoding: object = None
    table: object = None
    columns_with_missing_cells: set = field(default_factory=set)  # the table's numeric columns that had any
    unseen_levels: dict = field(default_factory=dict)  # encoded by a model's encoding: new levels per column

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
    missing: str = "impute",
    memory_map: bool = False,
    header: bool | None = None,
    columns=None,
    encoding=None,
    format: str | None = None,
) -> Dataset:
    """Load the dataset that ``spec`` names (see the module docstring for the forms).

    ``memory_map=True`` maps the X of a prepared ``.npy`` file instead of reading it, and reads
    only the labels of a folder of partitions (for the stream and dask engines, which read the
    rows themselves); other formats are read as usual. A folder (or a single .parquet file) is
    a set of Parquet or CSV/TSV partitions with one schema (:mod:`softreg.data.partitions`).

    ``target`` names the label column of a CSV/TSV file (default: the last column);
    ``weight_column`` names a column of per-sample weights, removed from the features.
    Features come back in ``dtype`` (float64 or float32).

    ``missing`` says what to do with a missing value (an empty cell or one of NA, N/A, NaN,
    null, None, ?) or an infinite one: "impute" (the default) fills a table's numeric cells with
    the training mean, adds a 0/1 column saying which were missing, and makes a missing category
    a level of its own (:mod:`softreg.data.encoding`); other formats have no means to fill
    with, so there it is "error". "error" raises a DataError naming the columns and the number
    of rows; "drop" removes those rows and records how many in ``Dataset.dropped_rows``.

    A CSV/TSV table (also .csv.gz, .tsv.bz2, ..., or ``-`` for standard input, which needs
    ``format``) has its columns typed and encoded: ``columns`` (a
    :class:`~softreg.data.encoding.ColumnChoices`) forces roles, ``encoding`` (a model's
    :class:`~softreg.data.encoding.TableEncoding`) applies a stored encoding instead of fitting
    one, ``header`` None detects whether the first row names the columns. ``format`` reads a
    file of any extension as csv, tsv, svmlight, npz or parquet.
    """
    if missing not in MISSING_POLICIES:
        raise DataError(f"missing must be 'impute', 'drop' or 'error', got '{missing}'.")
    if format is not None and format not in FORMATS:
        raise DataError(f"format must be one of {', '.join(FORMATS)}, got '{format}'.")
    table_options = dict(header=header, choices=columns, encoding=encoding)
    if spec == "-":
        from softreg.data.formats.table import load_table

        if format not in ("csv", "tsv"):
            raise DataError("dataset '-' is standard input; say what it holds with format='csv' or format='tsv' "
                            "(svmlight, npz and parquet are read from files).")
        import hashlib

        from softreg.data.formats.table import stdin_bytes

        dataset = load_table("-", CSV_SUFFIXES["." + format], target=target, weight_column=weight_column,
                             dtype=dtype, missing=missing, fmt=format, **table_options)
        dataset.spec.update(rows=dataset.n_samples, sha256=hashlib.sha256(stdin_bytes()).hexdigest())
        return dataset
    from softreg.data.formats.builtin import _load_builtin, _load_synthetic

    name, _, params = spec.partition(":")
    if name in BUILTINS and not params:
        return _load_builtin(name, dtype)
    if name == "synthetic":
        return _load_synthetic(params, dtype)
    path = Path(spec)
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(
            f"dataset '{spec}' is neither a built-in ({', '.join(BUILTINS)}, synthetic) nor an existing file. "
            "Pass a built-in name or the path of a .csv, .tsv, .npz or svmlight (.svm/.svmlight/.libsvm) file."
        ) from None
    except OSError as error:  # a name longer than the file system allows, a loop of links
        raise DataError(f"dataset '{spec[:200]}{'...' if len(spec) > 200 else ''}' cannot be opened "
                        f"({error.strerror}).") from None
    if path.is_dir() or path.suffix.lower() == ".parquet" or format == "parquet":
        from softreg.data.partitions import folder_digest, load_folder

        dataset = load_folder(path, target, weight_column, dtype, without_means(missing), lazy=memory_map)
        dataset.spec.update(rows=dataset.n_samples, sha256=folder_digest(path))
        return dataset
    require_regular_file(path, "dataset file")
    if not os.access(path, os.R_OK):
        raise DataError(f"dataset file '{spec}' is not readable (permission denied).")
    return _load_file(path, spec, target, weight_column, dtype, missing, memory_map, format, table_options)


def _load_file(path: Path, spec: str, target: str | None, weight_column: str | None, dtype: str, missing: str,
               memory_map: bool, format: str | None = None, table_options: dict | None = None) -> Dataset:
    """The readable file ``path``, read by the reader its suffix (or ``format``) picks, with its
    row count and digest in its spec."""
    from softreg.data.formats.npz import _load_npz
    from softreg.data.formats.prepared import load_prepared, prepared_digest
    from softreg.data.formats.svmlight import _load_svmlight
    from softreg.data.formats.table import load_table, table_suffix

    suffix, compression = table_suffix(path)
    suffix = "." + format if format is not None else suffix
    if suffix in CSV_SUFFIXES:
        dataset = load_table(path, CSV_SUFFIXES[suffix], target=target, weight_column=weight_column, dtype=dtype,
                             missing=missing, fmt=format, **(table_options or {}))
    elif compression is not None:
        dataset = None
    elif suffix == ".npz":
        dataset = _drop_missing_rows(_load_npz(path, dtype), without_means(missing))
    elif suffix == ".npy":
        dataset = load_prepared(path, dtype, memory_map=memory_map)
    elif suffix in SVMLIGHT_SUFFIXES:
        dataset = _drop_missing_rows(_load_svmlight(path, dtype), without_means(missing))
    else:
        dataset = None
    if dataset is not None and dataset.n_samples == 0:
        raise DataError(f"{path} has no data rows.")
    if dataset is not None and dataset.n_features == 0:
        raise DataError(f"{path} has no feature columns.")
    if dataset is not None:
        # Recorded in models, so that `softreg eval` notices when the file changed since training.
        dataset.spec.update(rows=dataset.n_samples, sha256=dataset.spec.get("sha256") or (
            file_digest(path) if suffix != ".npy" else prepared_digest(path)))
        return dataset
    raise DataError(
        f"dataset file '{spec}' has the {'compressed ' if compression else ''}extension "
        f"'{''.join(path.suffixes[-2:]) if compression else suffix or '(none)'}'; accepted: .csv, .tsv (also "
        f"compressed: .gz, .bz2, .zst, .lz4), .npz, .npy (a prepared dataset), {', '.join(SVMLIGHT_SUFFIXES)}, "
        "or any name with format='csv|tsv|svmlight|npz|parquet'."
    )


def without_means(missing: str) -> str:
    """The missing-value rule for data read without a table's encoding (.npz, svmlight, folders of
    partitions, read one at a time): there are no training means to impute from, so impute is error."""
    return "error" if missing == "impute" else missing


def require_regular_file(path: str | Path, role: str = "file") -> None:
    """DataError unless ``path`` is a regular file (a FIFO or a link to /dev/zero would be read
    for ever or until memory runs out)."""
    from softreg.data.files import not_regular

    kind = not_regular(path)
    if kind is not None:
        raise DataError(f"{role} '{path}' is {kind}; softreg reads regular files only.")


def dataset_files(spec: str | Path | None) -> list[Path]:
    """Every file (or folder) a dataset spec reads, resolved: the file itself, a prepared .npy's
    labels, features and weights beside it, a folder of partitions as a whole. Nothing for a
    built-in or synthetic name."""
    try:
        if spec is None or not Path(spec).exists():
            return []
    except OSError:  # a name too long to look up reads nothing; its reader says so
        return []
    path = Path(spec).resolve()
    if path.suffix.lower() == ".npy":
        from softreg.data.formats.prepared import prepared_paths

        return [p.resolve() for p in prepared_paths(path).values()]
    return [path]


def overwrites_input(output: str | Path, inputs: list[Path]) -> Path | None:
    """The input among ``inputs`` (files or folders, from :func:`dataset_files`) that writing
    ``output`` would destroy: the same file, or a partition (.csv, .tsv, .parquet) inside an
    input folder, which would change the folder's dataset."""
    target = Path(output).resolve()
    for source in inputs:
        if target == source:
            return source
        if source.is_dir() and source in target.parents and target.suffix.lower() in (*CSV_SUFFIXES, ".parquet"):
            return target if target.exists() else source
    return None


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


def feature_names_are_real(spec: dict) -> bool:
    """Whether a dataset spec's feature names are real names (CSV/TSV headers, built-ins)
    rather than placeholders (x0, ... for .npz and synthetic data, f0, ... for svmlight)."""
    return spec.get("format") in ("csv", "tsv") or spec.get("name") in BUILTINS or bool(spec.get("named_features"))


# ----------------------------------------------------------------------- checks the readers share
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


def class_labels(path, y: np.ndarray, where: str = "y") -> np.ndarray:
    """Labels stored as numbers (svmlight, .npz, a prepared .npy) as class labels: whole floats
    become integers, and a fraction such as 0.5 is refused naming the file (softreg is a
    classifier, not a regressor); NaN labels are left for the missing-value rules. Byte strings
    (numpy's ``S`` arrays) become text when they are UTF-8, as the same labels in a CSV would."""
    if y.dtype.kind == "S":
        try:
            return np.char.decode(y, "utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: {where} holds byte strings that are not UTF-8 text ({error.object[:40]!r}); "
                            "class labels must be integers or text.") from None
    if y.dtype.kind != "f":
        return y
    finite = np.isfinite(y)
    fractional = finite & (y != np.round(y))
    if fractional.any():
        raise DataError(f"{path}: {where} holds non-integer numbers ({float(y[fractional][0])!r} at row "
                        f"{int(np.argmax(fractional))}, ...); class labels must be integers or strings (softreg is "
                        "a classifier, not a regressor).")
    return y.astype(np.int64) if finite.all() else y


def as_integers_if_possible(labels: np.ndarray) -> np.ndarray:
    try:
        return labels.astype(np.int64)
    except (ValueError, OverflowError):  # text labels, or integers beyond int64 (long ids): keep as text
        return labels


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
