"""A table's encoding as a scikit-learn transformer, for Python users: fit on a table as it
comes (a pyarrow Table, a pandas DataFrame, a CSV/TSV path, or a 2-D array), and get the
matrix softreg trains on, the same one `softreg train` builds from the same columns.

    from sklearn.pipeline import make_pipeline
    from softreg.data import TableEncoder
    from softreg.model import SoftmaxRegression

    model = make_pipeline(TableEncoder(), SoftmaxRegression()).fit(frame.drop(columns="species"),
                                                                  frame["species"])

It is :mod:`softreg.data.encoding` behind scikit-learn's fit/transform: the same column roles,
levels, "other" bucket, means and missing columns; the learned state is ``encoding_`` (a
TableEncoding, plain data, ``encoding_.to_dict()``), never a pickle of anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from softreg.data.encoding import (DEFAULT_MIN_FREQUENCY, ColumnChoices, TableEncoding, encode, fit_encoding,
                                   missing_cells, plan_columns)

SOURCE = "X"  # what messages call the table given to fit or transform


class TableEncoder(TransformerMixin, BaseEstimator):
    """Numbers as they are, booleans as 0/1, text one-hot (levels rarer than ``min_frequency``
    rows folded into one "other" level), ids, free text and dates left out; a missing number
    takes the training mean and a 0/1 missing column (``missing="impute"``) or is refused
    (``missing="error"``); a missing level is a level of its own.

    Parameters
    ----------
    categorical, numeric, ignore : column names forced to a role (a list, or one comma-separated string).
    features : only these columns (None: every usable one).
    min_frequency : rows a level needs to keep a column of its own.
    missing : "impute" or "error" (a transformer cannot drop rows).

    Attributes
    ----------
    encoding_ : the learned TableEncoding (each column's role, levels, fill, missing column).
    feature_names_in_, n_features_in_ : the input columns, as scikit-learn names them.
    unseen_levels_ : per column, the cells of the last transform holding a level fit never saw.
    """

    def __init__(self, categorical=(), numeric=(), ignore=(), features=None, min_frequency=DEFAULT_MIN_FREQUENCY,
                 missing="impute"):
        self.categorical = categorical
        self.numeric = numeric
        self.ignore = ignore
        self.features = features
        self.min_frequency = min_frequency
        self.missing = missing

    def fit(self, X, y=None):
        if self.missing not in ("impute", "error"):
            raise ValueError(f"missing must be 'impute' or 'error', got {self.missing!r} (a transformer cannot "
                             "leave rows out)")
        table = as_arrow_table(X)
        choices = ColumnChoices(_names(self.categorical), _names(self.numeric), _names(self.ignore),
                                _names(self.features) or None, int(self.min_frequency))
        columns = plan_columns(SOURCE, table, None, None, choices)
        if y is not None:
            _refuse_the_labels_as_a_column(table, y, [column.name for column in columns if column.kind != "ignored"])
        self._refuse_missing(columns, table)
        self.encoding_ = fit_encoding(columns, table, None, target="", weight_column=None, missing=self.missing,
                                      header=True, min_frequency=int(self.min_frequency))
        self.feature_names_in_ = np.asarray(table.column_names, dtype=object)
        self.n_features_in_ = len(table.column_names)
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "encoding_")
        table = as_arrow_table(X, [str(name) for name in self.feature_names_in_])
        self._refuse_missing(self.encoding_.used(), table)
        encoded, self.unseen_levels_ = encode(self.encoding_, table, "float64", source=SOURCE)
        return encoded

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "encoding_")
        return np.asarray(self.encoding_.feature_names(), dtype=object)

    @classmethod
    def from_encoding(cls, encoding: TableEncoding) -> "TableEncoder":
        """A fitted encoder of a stored encoding (a model file's): it transforms as training did."""
        encoder = cls(min_frequency=encoding.min_frequency, missing="error" if encoding.missing == "error" else "impute")
        encoder.encoding_ = encoding
        encoder.feature_names_in_ = np.asarray([column.name for column in encoding.columns], dtype=object)
        encoder.n_features_in_ = len(encoding.columns)
        return encoder

    def _refuse_missing(self, columns, table) -> None:
        if self.missing == "error":
            rows = missing_cells([column for column in columns if column.kind != "ignored"], table)
            if rows.any():
                raise ValueError(f"{SOURCE}: {int(rows.sum())} rows have a missing, NaN or infinite number (first at "
                                 f"row {int(np.argmax(rows))}); fill them in or use missing='impute'.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        return tags


def _refuse_the_labels_as_a_column(table, y, names: list[str]) -> None:
    """ValueError when a column not left out holds y row for row: a CSV path or a whole frame
    still has its label column, and a model would learn the labels from it (a perfect, useless fit)."""
    labels = np.asarray(y).astype(str)
    if labels.ndim != 1 or labels.shape[0] != table.num_rows:
        return
    head = min(len(labels), 1000)  # most columns differ within the first rows: compare those first
    for name in names:
        column = table.column(name)
        if not np.array_equal(np.asarray(column.slice(0, head).to_pylist(), dtype=object).astype(str), labels[:head]):
            continue
        if np.array_equal(np.asarray(column.to_pylist(), dtype=object).astype(str), labels):
            raise ValueError(f"{SOURCE}: column '{name}' holds the labels y row for row, so a model would learn them "
                             f"from it; leave it out of X, or pass ignore=['{name}']")


def as_arrow_table(X, names: list[str] | None = None):
    """A pyarrow Table of what a Python user passes as a table: a Table or RecordBatch as it is,
    a pandas DataFrame by pyarrow's conversion (categorical columns as text), a CSV/TSV path read
    as `softreg train` reads it, or a 2-D array whose columns are ``names`` (x0, x1, ... when
    None)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(X, pa.RecordBatch):
        X = pa.Table.from_batches([X])
    if isinstance(X, (str, Path)):
        from softreg.data.dataset import CSV_SUFFIXES
        from softreg.data.formats.table import read_table, table_suffix

        suffix = table_suffix(Path(X))[0]
        if suffix not in CSV_SUFFIXES:
            raise ValueError(f"{X}: a table path must name a .csv or .tsv file (compressed too), got '{suffix}'")
        X, _ = read_table(X, CSV_SUFFIXES[suffix])
    elif type(X).__module__.startswith("pandas"):
        X = pa.Table.from_pandas(X, preserve_index=False)
    elif not isinstance(X, pa.Table):
        array = np.asarray(X, dtype=object if getattr(X, "dtype", None) is None else None)
        if array.ndim != 2:
            raise ValueError(f"{SOURCE}: a table is 2-d (rows, columns), got an array of shape {array.shape}")
        names = names if names is not None and len(names) == array.shape[1] else \
            [f"x{j}" for j in range(array.shape[1])]
        try:
            X = pa.table({name: pa.array(list(array[:, j]) if array.dtype == object else array[:, j], from_pandas=True)
                          for j, name in enumerate(names)})
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise ValueError(f"{SOURCE}: a column mixes numbers and text ({error}); give it one kind") from None
    for index, kind in enumerate(X.schema.types):
        if pa.types.is_dictionary(kind):  # pandas' category dtype: its levels are text to the encoding
            X = X.set_column(index, X.column_names[index], pc.cast(X.column(index), pa.string()))
    return X


def _names(words) -> tuple:
    if words is None:
        return ()
    if isinstance(words, str):
        return tuple(name.strip() for name in words.split(",") if name.strip())
    return tuple(str(name) for name in words)
