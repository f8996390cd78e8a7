"""Read the features of a dataset in chunks of rows, so memory is bounded by the chunk.

Used to apply a saved model to data of any size (``softreg predict``). The features are
matched to the ones a model expects:

- CSV/TSV: by column name, in the model's order; other columns (labels, ids) are ignored.
  When the model's names are generic (``x0, x1, ...`` or ``f0, f1, ...``, from .npz,
  svmlight or synthetic data) and the header has exactly as many columns as the model has
  features, the columns are taken in order.
- svmlight: read in byte ranges with scikit-learn's ``load_svmlight_file(offset, length)``,
  with the model's feature count.
- built-ins, synthetic data and .npz (which numpy cannot read partially): loaded whole and
  handed out in slices.

Like the rest of softreg.data this knows nothing of training; errors are DataError naming
the file, line and column at fault.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from softreg.data.dataset import (BUILTINS, CSV_SUFFIXES, SVMLIGHT_SUFFIXES, Dataset, DataError, load_dataset,
                                  real_features)
from softreg.data.formats.delimited import delimited_rows, fields_error, not_utf8
from softreg.data.formats.npz import read_npz
from softreg.data.formats.svmlight import first_bad_svmlight_line, has_index_zero

@dataclass
class FeatureStream:
    """Where the rows come from and an iterator over (first row index, X chunk)."""

    description: str
    chunks: Iterator[tuple[int, np.ndarray]]
    unseen_levels: dict = None  # a table's: categorical levels the model never saw, counted per column as read


def feature_chunks(spec: str, feature_names: list[str], *, by_name: bool = True, chunk_rows: int = 10_000,
                   dtype: str = "float64", zero_based: bool | None = None, encoding=None, missing: str | None = None,
                   strict: bool = False, data_format: str | None = None) -> FeatureStream:
    """Stream the features of ``spec`` that a model with ``feature_names`` expects.

    ``by_name``: the model's feature names are real names (it was trained on a CSV/TSV file or
    a built-in), so a source with names must have every one of them; otherwise the names are
    placeholders (x0, f0, ...) and a source whose names differ is taken in column order when
    its width matches. ``zero_based``: the index base of svmlight input (the training file's,
    stored in the model); None decides it from the whole file, as training did.

    Yields (index of the chunk's first data row, X of shape (rows, D)) with at most
    ``chunk_rows`` rows each. Raises DataError before the first chunk for a missing file or
    missing columns, and while streaming for a bad cell (naming its line and column).

    ``encoding`` (a model's TableEncoding) reads a CSV/TSV table (or ``-``, standard input, read as
    ``data_format``) by pyarrow, block by block, and encodes it as training did: missing cells
    by ``missing`` (default: the model's rule), unseen levels counted in the stream's
    ``unseen_levels`` or, with ``strict``, refused.
    """
    if chunk_rows < 1:
        raise DataError(f"chunk size must be at least 1 row, got {chunk_rows}.")
    path = Path(spec)
    suffix = path.suffix.lower()
    if encoding is not None:
        from softreg.data.formats.table import table_suffix

        kind = "." + data_format if data_format else table_suffix(path)[0]
        if spec == "-" or (kind in CSV_SUFFIXES and path.is_file()):
            return _table_chunks(spec, CSV_SUFFIXES.get(kind, ","), encoding, chunk_rows, dtype,
                                 missing or encoding.missing, strict)
    if path.is_file() and suffix in CSV_SUFFIXES:
        return _delimited_chunks(path, CSV_SUFFIXES[suffix], feature_names, by_name, chunk_rows, dtype)
    if path.is_file() and suffix in SVMLIGHT_SUFFIXES:
        return _svmlight_chunks(path, len(feature_names), chunk_rows, dtype, zero_based)
    dataset = _load_features(spec, dtype)
    named = dataset.feature_names if dataset.spec.get("name") in BUILTINS else None
    columns = column_order(spec, named, dataset.n_features, feature_names, by_name)
    X = dataset.X if columns == list(range(dataset.n_features)) else dataset.X[:, columns]
    return FeatureStream(
        description=spec,
        chunks=((start, X[start:start + chunk_rows]) for start in range(0, dataset.n_samples, chunk_rows)),
    )


def _block_bytes(chunk_rows: int, width: int) -> int:
    """The bytes of text pyarrow parses at a time: about a chunk's rows (24 bytes a cell), from
    64 KiB to 1 MiB, so that memory follows the chunk size and not the file's."""
    return int(min(1 << 20, max(1 << 16, chunk_rows * width * 24)))


def _table_chunks(spec: str, delimiter: str, encoding, chunk_rows: int, dtype: str, missing: str,
                  strict: bool) -> FeatureStream:
    """The chunks of a table encoded by a model's encoding; the header is checked now."""
    import pyarrow as pa

    from softreg.data.encoding import encode, missing_cells, refuse_unseen_levels
    from softreg.data.formats.table import MISSING_CELLS, NotANumber, header_names, rereadable, stream_batches

    names = header_names(spec, delimiter, encoding.header)
    used = [column.name for column in encoding.used()]
    column_order(spec, names, len(names), used, by_name=True)  # the same error as any table's
    types = encoding.read_types()
    unseen: dict = {}

    numbers = [name for name in used if pa.types.is_floating(types.get(name, pa.string()))]
    # pyarrow names a cell that is not a number by column, not row: the strict reader finds its
    # line, in a file it can read again (not standard input, nor a compressed file).
    locatable = rereadable(spec)

    def chunks():
        start = 0
        try:
            for batch in stream_batches(spec, delimiter, encoding.header, types, used,
                                        _block_bytes(chunk_rows, len(names))):
                yield from encoded_chunks(batch, start)
                start += batch.num_rows
        except NotANumber:
            if not locatable:
                raise
            raise _bad_cell(Path(spec), delimiter, len(names), [names.index(name) for name in numbers], numbers,
                            start, dtype, missing_words=set(MISSING_CELLS)) from None

    def encoded_chunks(batch, start: int):
        table = pa.Table.from_batches([batch])
        if missing == "error":
            bad = missing_cells(encoding.used(), table)
            if bad.any():
                raise DataError(f"{spec}: data row {start + int(np.argmax(bad)) + 1} has a missing, NaN or "
                                "infinite feature value (missing='error'); pass missing='impute' to fill it with "
                                "the training mean, as the model's encoding says.")
        X, found = encode(encoding, table, dtype, source=spec)
        if strict:
            refuse_unseen_levels(spec, found)
        for column, count in found.items():
            unseen[column] = unseen.get(column, 0) + count
        for offset in range(0, len(X), chunk_rows):
            yield start + offset, X[offset:offset + chunk_rows]

    return FeatureStream(description="standard input" if spec == "-" else spec, chunks=chunks(), unseen_levels=unseen)


class FeatureMismatch(DataError):
    """The data's columns are not the model's features."""


def column_order(source, names: list[str] | None, width: int, feature_names: list[str], by_name: bool) -> list[int]:
    """Which of the source's ``width`` columns hold the model's features, in the model's order.

    ``names`` are the source's column names, or None when it has none (.npz, synthetic).
    """
    expected = len(feature_names)
    hint = "(the model file's feature_names)"
    if names is None:
        if width != expected:
            raise FeatureMismatch(f"model expects {expected} features, {source} has {width}; predict on data with the "
                            f"model's features {hint}.")
        return list(range(width))
    counts = Counter(names)  # one pass: counting each name in the header was quadratic in its width
    repeated = sorted({name for name in feature_names if counts[name] > 1})
    if repeated:
        raise DataError(f"{source}: the feature columns {repeated} appear more than once; each needs a unique name.")
    position = {name: index for index, name in reversed(list(enumerate(names)))}  # the first of each name
    missing = [name for name in feature_names if name not in position]
    if not missing:
        return [position[name] for name in feature_names]
    if not by_name and width == expected:
        return list(range(width))  # the model's names are placeholders: take the columns in order
    shown = ", ".join(repr(name) for name in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    raise FeatureMismatch(
        f"{source}: model expects {expected} features, data has {width} columns, and {len(missing)} of the model's "
        f"feature columns {'is' if len(missing) == 1 else 'are'} missing by name ({shown}). Give the columns the "
        f"model was trained on {hint}; other columns are ignored."
    )


def _load_features(spec: str, dtype: str):
    """Any dataset load_dataset accepts; an .npz needs only X here (labels are not used)."""
    path = Path(spec)
    if path.suffix.lower() == ".npz" and path.is_file():
        arrays, present = read_npz(path, ("X",))
        if "X" not in arrays:
            raise DataError(f"{path}: no array X; arrays present: {present}. An .npz for prediction needs X (N, D).")
        X = arrays["X"]
        if X.ndim != 2:
            raise DataError(f"{path}: X must be a 2-d array (N, D), got shape {X.shape}.")
        X = real_features(path, X, dtype)
        bad_rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
        if len(bad_rows):
            raise DataError(f"{path}: X row {bad_rows[0]} holds NaN or infinite values ({len(bad_rows)} such rows).")
        return Dataset(X=X, y=np.zeros(0), feature_names=[], description=path.name, spec={"format": "npz"})
    return load_dataset(spec, dtype=dtype)


def _delimited_chunks(path: Path, delimiter: str, feature_names: list[str], by_name: bool, chunk_rows: int,
                      dtype: str) -> FeatureStream:
    """The chunks of a CSV/TSV file for a model of numeric features, read by the one table reader
    (pyarrow's) block by block, the model's columns as float64: its header is matched to the
    model's features now, its rows read lazily. A cell that is not a finite number is named by
    line and column: the strict reader finds it from the block it was met in."""
    import pyarrow as pa

    from softreg.data.formats.table import NotANumber, header_names, stream_batches

    names = header_names(path, delimiter, True)
    if not names:
        raise DataError(f"{path} is empty; expected a header row naming the feature columns.")
    indices = column_order(path, names, len(names), feature_names, by_name)
    used = [names[i] for i in indices]
    block_bytes = _block_bytes(chunk_rows, len(names))

    def chunks() -> Iterator[tuple[int, np.ndarray]]:
        start = 0
        try:
            for batch in stream_batches(path, delimiter, True, {name: pa.float64() for name in used}, used,
                                        block_bytes):
                X = np.asarray(batch.select(used).to_tensor(null_to_nan=True, row_major=True), dtype=dtype)
                bad = ~np.isfinite(X).all(axis=1)
                if bad.any():
                    raise _bad_cell(path, delimiter, len(names), indices, used, start + int(np.argmax(bad)), dtype)
                for offset in range(0, len(X), chunk_rows):
                    yield start + offset, X[offset:offset + chunk_rows]
                start += len(X)
        except NotANumber:
            raise _bad_cell(path, delimiter, len(names), indices, used, start, dtype) from None

    return FeatureStream(description=f"{path.name} (columns matched to the model's features)", chunks=chunks())


def _bad_cell(path: Path, delimiter: str, width: int, indices: list[int], names: list[str], from_row: int,
              dtype: str, missing_words: set[str] = frozenset()) -> DataError:
    """The error naming the line and column of the first feature cell at or after data row
    ``from_row`` that is not a finite number (or the ragged row before it), found by the strict
    reader; cells spelled as in ``missing_words`` are missing values, not bad ones."""
    seen = -1
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            for line, row in delimited_rows(path, handle, delimiter):
                if not row:
                    continue
                if seen >= 0 and len(row) != width:
                    return fields_error(path, line, len(row), width, delimiter)
                if seen >= from_row:
                    cells = [row[i] for i in indices]
                    try:
                        _parse(path, [["nan" if cell.strip() in missing_words else cell for cell in cells]], [line],
                               names, dtype, allow_nan=bool(missing_words))
                    except DataError as located:
                        return located
                seen += 1
    except UnicodeDecodeError:
        return not_utf8(path)
    except DataError as located:  # the strict reader's own (an unclosed quote)
        return located
    return DataError(f"{path}: a feature cell after data row {from_row} is not a finite number.")


def _parse(path: Path, rows: list[list[str]], lines: list[int], names: list[str], dtype: str,
           allow_nan: bool = False) -> np.ndarray:
    """The rows as numbers; DataError naming the line and column of the first cell that is not a
    finite number (``allow_nan``: NaN, a missing value, is one)."""
    def accepted(values):
        return np.isfinite(values) | (np.isnan(values) if allow_nan else False)

    try:
        X = np.array(rows, dtype=dtype)
    except ValueError:
        X = None
    if X is None or not accepted(X).all():
        for row, line in zip(rows, lines):
            for name, cell in zip(names, row):
                try:
                    value = float(cell)
                except ValueError:
                    value = None
                if value is None or not accepted(np.float64(value)):
                    shown = repr(cell) if cell.strip() else "an empty cell"
                    raise DataError(
                        f"{path}, line {line}, column '{name}': {shown} is not a finite number. "
                        "Every feature the model uses must be a number; fill in or drop that row."
                    )
    return X


def _svmlight_chunks(path: Path, n_features: int, chunk_rows: int, dtype: str, zero_based: bool | None) -> FeatureStream:
    from sklearn.datasets import load_svmlight_file

    # scikit-learn's "auto" decides zero- or one-based indices from the data it is given;
    # per chunk that could differ, so without the model's own base decide once for the whole
    # file by the same rule (zero-based when any index is 0), as training's loader does.
    if zero_based is None:
        zero_based = has_index_zero(path)

    def parse(lines: list[bytes], numbers: list[int]):
        try:
            X, _ = load_svmlight_file(io.BytesIO(b"".join(lines)), n_features=n_features, dtype=np.dtype(dtype),
                                      zero_based=zero_based)
        except (ValueError, OverflowError) as error:
            bad = first_bad_svmlight_line(lines, numbers[0], n_features=n_features, zero_based=zero_based)
            where = f"line {bad}" if bad else f"lines {numbers[0]}-{numbers[-1]}"
            raise DataError(
                f"{path}, {where}: not valid svmlight text for a model of {n_features} features, indices "
                f"{'0' if zero_based else '1'}..{n_features - int(zero_based)} ({error})."
            ) from None
        X = X.tocsr()
        bad_entries = np.flatnonzero(~np.isfinite(X.data))
        if len(bad_entries):
            row = int(np.searchsorted(X.indptr, bad_entries[0], side="right")) - 1
            index = int(X.indices[bad_entries[0]]) + int(not zero_based)
            raise DataError(f"{path}, line {numbers[row]}, feature {index}: {X.data[bad_entries[0]]} is not a finite "
                            "number. Every feature must be a finite number; fix or drop that line.")
        return X

    def chunks() -> Iterator[tuple[int, np.ndarray]]:
        start, lines, numbers = 0, [], []
        with open(path, "rb") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip() or line.lstrip().startswith(b"#"):
                    continue
                lines.append(line if line.endswith(b"\n") else line + b"\n")
                numbers.append(line_no)
                if len(lines) == chunk_rows:
                    yield start, parse(lines, numbers)
                    start, lines, numbers = start + len(lines), [], []
        if lines:
            yield start, parse(lines, numbers)

    return FeatureStream(description=f"{path.name} (svmlight, sparse)", chunks=chunks())
