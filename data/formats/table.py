"""CSV/TSV tables read by pyarrow's CSV reader: typed columns (integers, floats, booleans,
strings, dates), missing cells as nulls, compressed files (.gz, .bz2, .zst, .lz4) and standard
input. What softreg then does with each column is :mod:`softreg.data.encoding`'s business.

pyarrow reports a bad row by its text, not its line; when it refuses a plain file, the strict
reader of :mod:`softreg.data.formats.delimited` reads it again to name the line at fault.

Why one module of about 450 lines: it is everything softreg does with pyarrow's CSV reader (a
whole read, the sections of a large file, the batches prediction streams, the header probe,
locating a bad cell), and all of it shares the reader's options and its missing-cell spellings.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import numpy as np

from softreg.data.dataset import DataError

STDIN = "-"
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
# Cells read as missing, in the spellings tables use (pyarrow compares them exactly).
MISSING_CELLS = sorted({spelling for word in ("", "na", "n/a", "nan", "null", "none", "?", "#n/a", "-nan")
                        for spelling in (word, word.upper(), word.title())})
TRUE_CELLS = ["true", "True", "TRUE", "t", "T", "yes", "Yes", "YES"]
FALSE_CELLS = ["false", "False", "FALSE", "f", "F", "no", "No", "NO"]
HEADER_PROBE_BYTES = 1 << 16  # what is read of a file to decide whether its first row is a header
SCAN_BYTES = 1 << 18  # read at a time by the pass that finds the sections: prediction's memory follows its chunk
SECTION_BYTES = 1 << 25  # what is parsed at a time: read_csv's peak is about three times what it parses


def table_suffix(path: Path) -> tuple[str, str | None]:
    """(the suffix that names the format, the compression or None): data.csv.gz -> (.csv, gzip)."""
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        return (suffixes[0] if len(suffixes) == 2 else ""), COMPRESSIONS[suffixes[-1]]
    return (suffixes[-1] if suffixes else ""), None


def rereadable(source) -> bool:
    """A plain file on disk (not standard input, not compressed): it can be scanned whole and read
    again from any offset, so a parse error can be located by line and the file hashed in one pass."""
    return str(source) != STDIN and Path(str(source)).suffix.lower() not in COMPRESSIONS


def read_table(source: str | Path, delimiter: str, header: bool | None = None, *, column_types: dict | None = None,
               include_columns: list[str] | None = None, label_column: str | None = None, labels: bool = False,
               digest=None):
    """(pyarrow Table, whether the first row was a header) of a delimited file or of stdin ("-").

    ``header`` None decides from the first row: a row whose every cell is a number is data, and
    the columns are named f0, f1, ... ``column_types`` fixes the types of named columns (as a
    model's encoding needs them); ``include_columns`` reads only those. ``digest`` (a hashlib
    object) is updated with the file's bytes when the pass that finds the sections reads them
    all (an uncompressed file: see :func:`_row_sections`), which spares a second read to hash it.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    raw = stdin_bytes() if str(source) == STDIN else None
    if header is None:
        header = not _first_row_is_numbers(source, delimiter, raw)
    column_types = dict(column_types or {})
    names = None
    if labels:
        names = header_names(source, delimiter, header)
        if label_column is None or label_column in names:
            column_types[label_column or names[-1]] = pa.string()
    sections = _row_sections(source, delimiter, raw, digest)  # refuses an unclosed quote before anything is read
    try:
        if len(sections) == 1:
            table = pacsv.read_csv(pa.BufferReader(raw) if raw is not None else str(source),
                                   **_reader_options(delimiter, header, column_types, include_columns or [], 1 << 22))
        else:
            names = names or header_names(source, delimiter, header)
            table = _read_sections(source, raw, sections, names, delimiter, header, column_types,
                                   include_columns or [])
    except pa.ArrowInvalid as error:
        raise _located_error(source, delimiter, raw, str(error)) from None
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{source}: cannot be read as a {_kind(delimiter)} table ({error}).") from None
    _refuse_undecodable(source, table)
    # The parse's buffers, freed, stay with pyarrow's allocator, where numpy cannot reuse them.
    pa.default_memory_pool().release_unused()
    return table, header


def _read_sections(source, raw: bytes | None, sections: list, names: list[str], delimiter: str, header: bool,
                   column_types: dict, include_columns: list):
    """One table of a file read SECTION_BYTES at a time, each section by pyarrow's threaded
    reader: its peak is a section's parse, not the whole file's (about three times the table).
    Sections may infer different types for a column; they are unified as one read would
    (integers and floats as floats, anything with text as text)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    parts = []
    with (open(source, "rb") if raw is None else _nothing()) as handle:
        for number, (start, end) in enumerate(sections):
            if raw is None:
                handle.seek(start)
                data = pa.py_buffer(handle.read(end - start))
            else:
                data = pa.py_buffer(raw).slice(start, end - start)
            options = _reader_options(delimiter, header, column_types, include_columns, 1 << 22)
            if number or not header:
                options["read_options"] = pacsv.ReadOptions(column_names=names, block_size=1 << 22)
            parts.append(pacsv.read_csv(pa.BufferReader(data), **options))
    return pa.concat_tables(_unified(parts), promote_options="permissive")


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _unified(parts: list) -> list:
    """The sections' tables with one type per column: where they differ, float64 if every
    section read numbers (or nothing), else text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = parts[0].column_names
    for index, name in enumerate(names):
        kinds = {part.schema.types[index] for part in parts} - {pa.null()}
        if len(kinds) <= 1:
            continue
        numeric = all(pa.types.is_integer(kind) or pa.types.is_floating(kind) for kind in kinds)
        wanted = pa.float64() if numeric else pa.string()
        parts = [part.set_column(index, name, pc.cast(part.column(index), wanted)) for part in parts]
    return parts


def _row_sections(source, delimiter: str, raw: bytes | None, digest=None) -> list[tuple[int, int]]:
    """Byte ranges of about SECTION_BYTES that start and end at a row boundary (a newline
    outside quotes), found in one pass that also counts the quote characters: an odd count
    means a quote is never closed, which pyarrow would read as one field holding the rest of
    the file, so the strict reader then names the line where it opened. A compressed file is
    one section (it cannot be read from the middle). ``digest`` is updated with every block read."""
    path = Path(str(source))
    if raw is None and not rereadable(source):  # compressed
        return [(0, -1)]
    starts, quotes, offset, cut = [0], 0, 0, SECTION_BYTES
    for block in _blocks(path, raw):
        if digest is not None:
            digest.update(block)
        end, position, counted = offset + len(block), 0, quotes  # counted: the quotes before position
        while end > cut:
            target = max(position, cut - offset)
            counted += block.count(b'"', position, target)
            position = target
            while (newline := block.find(b"\n", position)) >= 0:
                counted += block.count(b'"', position, newline)
                position = newline + 1
                if counted % 2 == 0:
                    starts.append(offset + position)
                    cut = offset + position + SECTION_BYTES
                    break
            else:
                break  # no row ends in the rest of this block: the cut moves on to the next
        if block.find(b'"') >= 0:  # find stops at the first quote; in a file with none it is 5x faster than count
            quotes += block.count(b'"')
        offset = end
    if quotes % 2:
        raise _located_error(source, delimiter, raw, "a quoted field is never closed")
    starts = [start for start in starts if start < offset] or [0]
    return list(zip(starts, starts[1:] + [offset]))


def _blocks(path: Path, raw: bytes | None):
    if raw is not None:
        view = memoryview(raw)
        for start in range(0, len(raw), SCAN_BYTES):
            yield view[start:start + SCAN_BYTES].tobytes()
        return
    with open(path, "rb") as handle:
        while block := handle.read(SCAN_BYTES):
            yield block


def stream_batches(source: str | Path, delimiter: str, header: bool, column_types: dict, include_columns: list[str],
                   block_bytes: int = 1 << 22):
    """The record batches of a delimited file, read block by block with the given column types
    (prediction: memory bounded by the block, whatever the file's size)."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    raw = stdin_bytes() if str(source) == STDIN else None
    options = _reader_options(delimiter, header, column_types, include_columns, block_bytes)
    _row_sections(source, delimiter, raw)  # refuses an unclosed quote before any row is written
    try:
        reader = pacsv.open_csv(pa.BufferReader(raw) if raw is not None else str(source), **options)
        for batch in reader:
            yield batch
    except pa.ArrowInvalid as error:
        message = str(error)
        if "In CSV column" in message and "conversion error" in message.lower():
            raise NotANumber(f"{source}: {_conversion_words(message)}") from None
        raise _located_error(source, delimiter, raw, message) from None
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{source}: cannot be read as a {_kind(delimiter)} table ({error}).") from None


class NotANumber(DataError):
    """A cell of a column read as numbers is not one (pyarrow says which column, not which row)."""


def _reader_options(delimiter: str, header: bool, column_types: dict, include_columns: list, block_bytes: int) -> dict:
    """pyarrow's read, parse and convert options, the same for a whole table and for its blocks."""
    from pyarrow import csv as pacsv

    return dict(
        read_options=pacsv.ReadOptions(autogenerate_column_names=not header, block_size=block_bytes),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(null_values=MISSING_CELLS, strings_can_be_null=True,
                                             quoted_strings_can_be_null=True, true_values=TRUE_CELLS,
                                             false_values=FALSE_CELLS, column_types=column_types,
                                             include_columns=include_columns))


def header_names(source: str | Path, delimiter: str, header: bool) -> list[str]:
    """The column names of a delimited file (f0, f1, ... without a header), reading one block."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    raw = stdin_bytes() if str(source) == STDIN else None
    # A small first block is quick to parse; a header wider than it (150,000 columns) takes a larger one.
    for block_size in (1 << 20, 1 << 26):
        try:
            reader = pacsv.open_csv(pa.BufferReader(raw) if raw is not None else str(source),
                                    **_reader_options(delimiter, header, {}, [], block_size))
            return list(reader.schema.names)
        except pa.ArrowInvalid as error:
            if block_size == 1 << 26 or "Empty CSV" not in str(error) and "straddling" not in str(error):
                raise _located_error(source, delimiter, raw, str(error)) from None
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{source}: cannot be read as a {_kind(delimiter)} table ({error}).") from None
    return []


_STDIN_BYTES: dict = {}


def stdin_bytes() -> bytes:
    """Standard input, read once (a pipe cannot be read twice: the header probe and the reader share it)."""
    if "bytes" not in _STDIN_BYTES:
        _STDIN_BYTES["bytes"] = sys.stdin.buffer.read()
    return _STDIN_BYTES["bytes"]



def _first_row_is_numbers(source, delimiter: str, raw: bytes | None) -> bool:
    import pyarrow as pa

    if raw is not None:
        prefix = raw[:HEADER_PROBE_BYTES]
    else:
        try:
            with pa.input_stream(str(source), compression="detect") as stream:
                prefix = stream.read(HEADER_PROBE_BYTES)
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{source}: cannot be read ({error}).") from None
    text = prefix.decode("utf-8-sig", errors="replace")
    try:
        first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        return False
    return bool(first) and all(_is_number(cell) for cell in first)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return cell.strip() != ""


def _refuse_undecodable(source, table) -> None:
    """pyarrow keeps a column of invalid UTF-8 as binary; softreg reads text."""
    import pyarrow as pa

    for name, kind in zip(table.schema.names, table.schema.types):
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            if rereadable(source):
                from softreg.data.formats.delimited import not_utf8

                raise not_utf8(Path(str(source)))
            raise DataError(f"{source}: column '{name}' is not valid UTF-8 text; save the file as UTF-8.")


def _located_error(source, delimiter: str, raw: bytes | None, message: str) -> DataError:
    """A pyarrow parse error as one naming the line: the strict reader finds it in a plain file."""
    if "Empty CSV file" in message:
        return DataError(f"{source} is empty; expected a header row and at least one data row.")
    path = Path(str(source))
    if rereadable(source):
        from softreg.data.formats.delimited import delimited_rows, fields_error

        width = None
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                for line, row in delimited_rows(path, handle, delimiter):
                    if not row:
                        continue
                    if width is None:
                        width = len(row)
                    elif len(row) != width:
                        return fields_error(path, line, len(row), width, delimiter)
        except DataError as located:
            return located
        except UnicodeDecodeError:
            from softreg.data.formats.delimited import not_utf8

            return not_utf8(path)
    return DataError(f"{source}: not a valid {_kind(delimiter)} table ({message.removeprefix('CSV parse error: ')}); "
                     "check the delimiter and quoting.")


def _conversion_words(message: str) -> str:
    return message.replace("In CSV column #", "column number ").replace("CSV conversion error to", "a cell is not")


def _kind(delimiter: str) -> str:
    return "tab-separated" if delimiter == "\t" else "comma-separated"


def load_table(source: str | Path, delimiter: str, *, target: str | None, weight_column: str | None, dtype: str,
               missing: str, header: bool | None = None, choices=None, encoding=None, fmt: str | None = None):
    """A :class:`~softreg.data.dataset.Dataset` of a delimited table, its columns encoded by
    ``encoding`` (a model's) or by one fitted on every row; :func:`refit_on_rows` fits it
    again on the training rows once they are known. Rows with a missing label (or weight) are
    dropped under missing="impute" and "drop", and counted in ``dropped_rows``.

    One function of about 70 lines: it is the table's one pass from cells to a Dataset, in the
    order its checks must run (header, labels, weights, refused rows, encoding), each step
    taking the last one's table, labels and weights."""
    import hashlib  # here, not with the module: `softreg info` starts without it

    from softreg.data.dataset import Dataset
    from softreg.data.encoding import ColumnChoices, encode, fit_encoding, missing_cells, plan_columns, table_labels
    from softreg.data.formats.delimited import check_header

    if encoding is not None:
        header = encoding.header if header is None else header
        target = encoding.target if target is None else target
    scanned = rereadable(source)  # _row_sections reads such a file whole: it hashes it on the way
    digest = hashlib.sha256() if scanned else None
    table, header = read_table(source, delimiter, header, label_column=target, labels=True, digest=digest)
    names = table.column_names
    target, weight_column = check_header(Path(str(source)), names, delimiter, target, weight_column)
    if table.num_rows == 0:
        raise DataError(f"{source} has a header but no data rows.")
    if encoding is None:
        choices = choices or ColumnChoices()
        columns = plan_columns(source, table, target, weight_column, choices)
    else:
        columns = encoding.columns
    labels, no_label = table_labels(source, table, target)
    weights = None
    no_weight = np.zeros(table.num_rows, dtype=bool)
    if weight_column is not None:
        from softreg.data.encoding import _numbers

        weights = _numbers(table.column(weight_column))
        no_weight = ~np.isfinite(weights)
    refused = no_label | no_weight
    if missing in ("error", "drop"):  # under impute a missing cell takes a fill: no row is refused for it
        refused = refused | missing_cells([c for c in columns if c.kind != "ignored"], table)
    dropped = 0
    if refused.any():
        counts = _missing_counts(table, columns, target, weight_column, no_label, no_weight,
                                 missing in ("error", "drop"))
        if missing == "error":
            raise DataError(f"{source}: {int(refused.sum())} rows have missing, NaN or infinite values (first at data "
                            f"row {int(np.argmax(refused)) + 1}); cells per column: {counts}. Fill them in, pass "
                            "missing='impute' to fill them with the training mean, or missing='drop' to leave those "
                            "rows out.")
        keep = np.flatnonzero(~refused)
        if not len(keep):
            raise DataError(f"{source}: every row has a missing value ({counts}); nothing is left to train on.")
        import pyarrow as pa

        table = table.take(pa.array(keep))
        labels, weights = labels[keep], None if weights is None else weights[keep]
        dropped = int(refused.sum())
    if weights is not None and (np.any(weights < 0) or not np.any(weights > 0)):
        raise DataError(f"{source}: weight column '{weight_column}' must be non-negative with a positive sum.")
    y = labels
    fitted_here = encoding is None
    if encoding is None:
        encoding = fit_encoding(columns, table, None, target=target, weight_column=weight_column, missing=missing,
                                header=header, min_frequency=choices.min_frequency)
    X, unseen = encode(encoding, table, dtype, source=source)
    kind = "tsv" if delimiter == "\t" else "csv"
    name = "standard input" if str(source) == STDIN else Path(str(source)).name
    spec = {"path": STDIN if str(source) == STDIN else str(Path(source).resolve()), "format": fmt or kind,
            "target": target, "weight_column": weight_column, "header": header,
            **({"sha256": digest.hexdigest()} if scanned else {})}
    dataset = Dataset(X=X, y=y, feature_names=encoding.feature_names(), description=f"{name} (target column '{target}')",
                      spec=spec, sample_weight=weights, dropped_rows=dropped)
    dataset.encoding, dataset.table = encoding, table
    dataset.unseen_levels = {} if fitted_here else unseen
    if fitted_here:  # fitted on every row: its counts are the table's
        dataset.columns_with_missing_cells = {column.name for column in encoding.columns if column.missing_cells}
    return dataset


def refit_on_rows(dataset, rows: np.ndarray) -> None:
    """Fit a table dataset's encoding again on ``rows`` alone (the training split: no level,
    mean or indicator learned from held-out rows) and encode every row by it."""
    from softreg.data.encoding import _numbers, encode, encoded_sums, fit_encoding

    old = dataset.encoding
    new = fit_encoding(old.columns, dataset.table, rows, target=old.target, weight_column=old.weight_column,
                       missing=old.missing, header=old.header, min_frequency=old.min_frequency,
                       numeric_sums=encoded_sums(old, dataset.X, rows))
    dataset.encoding = new
    if new.feature_names() == old.feature_names():
        # The same columns and levels: only the cells that took a fill differ, and only when the
        # fill (a mean) moved. Patching them spares the training path a second encoding of X.
        offsets = new.offsets()
        for offset, before, after in zip(offsets, old.used(), new.used()):
            if after.name in dataset.columns_with_missing_cells and before.fill != after.fill:
                absent = ~np.isfinite(_numbers(dataset.table.column(after.name)))
                dataset.X[absent, offset] = after.fill
        return
    dtype = dataset.X.dtype.name
    dataset.X = None  # freed first: the peak is the table and one matrix, not two
    dataset.X, _ = encode(new, dataset.table, dtype)
    dataset.feature_names = new.feature_names()


def _missing_counts(table, columns, target, weight_column, no_label, no_weight, features: bool) -> dict:
    from softreg.data.encoding import _numbers

    counts = {}
    if features:
        for column in columns:
            if column.kind in ("numeric", "boolean"):
                n = int((~np.isfinite(_numbers(table.column(column.name)))).sum())
                if n:
                    counts[column.name] = n
    if no_label.any():
        counts[target] = int(no_label.sum())
    if no_weight.any():
        counts[weight_column] = int(no_weight.sum())
    return counts
