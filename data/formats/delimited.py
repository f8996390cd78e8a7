"""CSV/TSV files with a header row: read chunk by chunk into a :class:`~softreg.data.dataset.Dataset`,
with the error for a bad row, column, quote or byte naming the line at fault."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from softreg.data.dataset import Dataset, DataError, as_integers_if_possible

MISSING_MARKERS = ("", "na", "n/a", "nan", "null", "none", "?")
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
    target, feature_indices = columns[:2]
    X, labels, weights, dropped = _combine_chunks(path, parts, header, columns, weight_column, missing)
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


def _combine_chunks(path: Path, parts: list[dict], header: list[str], columns, weight_column: str | None,
                    missing: str):
    """The parsed chunks joined into (X, labels, weights or None, rows dropped), with the rows that
    hold a missing value refused (``missing="error"``) or left out (``"drop"``)."""
    target, feature_indices, _, weight_index = columns
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
    return X, labels, weights, dropped


def _resolve_columns(path: Path, header: list[str], delimiter: str, target: str | None, weight_column: str | None):
    """(target name, feature column indices, target index, weight index or None) from the header."""
    target, weight_column = check_header(path, header, delimiter, target, weight_column, unnamed_index=False)
    target_index = header.index(target)
    weight_index = header.index(weight_column) if weight_column else None
    feature_indices = [i for i in range(len(header)) if i not in (target_index, weight_index)]
    return target, feature_indices, target_index, weight_index


def check_header(path: Path, header: list[str], delimiter: str, target: str | None, weight_column: str | None,
                 *, unnamed_index: bool = True) -> tuple[str, str | None]:
    """(target, weight column) once the header is usable: two columns at least, unique names, the
    target and weight columns present. ``unnamed_index`` lets the first column have no name (a
    pandas index, which the column planner recognizes)."""
    if len(header) == 1:
        raise DataError(f"{path}: the header is the single column {header[0]!r}. {_delimiter_hint(header[0], delimiter)}")
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)  # linear: 150,000 columns
    if duplicates:
        raise DataError(f"{path}: duplicate column names {duplicates}; each column needs a unique name.")
    unnamed = [index for index, name in enumerate(header) if name == "" and not (unnamed_index and index == 0)]
    if unnamed:
        raise DataError(f"{path}: column {unnamed[0] + 1} of the header has no name (a trailing delimiter?); "
                        "every column needs a name.")
    target = header[-1] if target is None else target
    if target not in header:
        raise DataError(f"{path}: no target column '{target}'; columns are {header}. Choose one with target='COLUMN'.")
    if weight_column is not None and weight_column == target:
        raise DataError(f"{path}: weight_column='{weight_column}' is the target (label) column; name another column "
                        "for the weights, or choose the labels with target='COLUMN'.")
    if weight_column is not None and weight_column not in header:
        raise DataError(f"{path}: no weight column '{weight_column}'; columns are {header}.")
    return target, weight_column


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

