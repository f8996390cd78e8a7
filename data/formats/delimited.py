"""The strict reading of a CSV/TSV file, line by line with the csv module: it names the line at
fault (a ragged row, an unclosed quote, a byte that is not UTF-8) where pyarrow's reader
(:mod:`softreg.data.formats.table`, which reads every table) reports only the text, and it
checks a header's names."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from softreg.data.dataset import DataError



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
    if found and found[0] in ("tabs", "commas"):
        other = "tsv" if found[0] == "tabs" else "csv"
        return (f"The file looks separated by {found[0]}, but softreg reads it as {expected} "
                f"(.csv: commas, .tsv: tabs); read it with format='{other}' (any extension).")
    if found:
        return (f"The file looks separated by {found[0]}, but softreg reads it as {expected} "
                "(.csv: commas, .tsv: tabs); convert it to commas or tabs.")
    return f"softreg reads it as {expected} with a feature column and a label column at least."

