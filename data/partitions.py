"""Datasets split over a folder of files: Parquet or CSV/TSV partitions with one schema.

A folder is read one partition at a time, so converting it (``softreg prepare``) needs memory
for the largest partition, not for the dataset. Every partition must have the same columns
(and, for Parquet, the same types), including the label column; labels are read as text in
every partition and turned into integers only when all of them are integers, so partitions
that happen to hold only numeric-looking labels cannot disagree with the others.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from softreg.data.dataset import CSV_SUFFIXES, Dataset, DataError, _drop_missing_rows, as_integers_if_possible
from softreg.data.formats.prepared import write_prepared_set

PARTITION_KINDS = {".parquet": "parquet", **{suffix: "delimited" for suffix in CSV_SUFFIXES}}


@dataclass
class Folder:
    """A folder of partitions: their files in name order, the columns and where the labels are."""

    path: Path
    kind: str  # "parquet" or "delimited"
    files: list[Path]
    feature_names: list[str]
    target: str
    weight_column: str | None
    rows: list[int] | None  # per file, known up front for Parquet (from its metadata)


def open_folder(folder: Path, target: str | None, weight_column: str | None) -> Folder:
    """Discover a folder's partitions and check that they agree: DataError naming the file otherwise."""
    folder = Path(folder).resolve()  # loader tasks may run in other working directories
    if folder.is_file():  # one Parquet file is a folder of one partition
        files = [folder] if folder.suffix.lower() in PARTITION_KINDS else []
    else:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PARTITION_KINDS)
    kinds = {PARTITION_KINDS[p.suffix.lower()] for p in files}
    if not files:
        raise DataError(f"{folder} holds no .parquet, .csv or .tsv partitions; a dataset folder is a set of files "
                        "with the same columns.")
    if len(kinds) > 1 or len({p.suffix.lower() for p in files}) > 1:
        raise DataError(f"{folder} mixes file types ({', '.join(sorted({p.suffix for p in files}))}); a dataset "
                        "folder holds partitions of one format.")
    if kinds == {"parquet"}:
        return _open_parquet_folder(folder, files, target, weight_column)
    return _open_delimited_folder(folder, files, target, weight_column)


def _open_parquet_folder(folder: Path, files: list[Path], target, weight_column) -> Folder:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install \"softreg[parquet]\"") from None
    schemas, rows = [], []
    for path in files:
        try:
            metadata = pq.ParquetFile(path)
        except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({error}).") from None
        schemas.append(metadata.schema_arrow)
        rows.append(metadata.metadata.num_rows)
    first = schemas[0]
    names = list(first.names)
    target = target or names[-1]
    for path, schema in zip(files, schemas):
        for column in (target, weight_column):
            if column is not None and column not in schema.names:
                raise DataError(f"{path}: no column '{column}', which {'labels' if column == target else 'weights'} "
                                f"the rows; columns: {', '.join(schema.names)}. Every partition needs it.")
        if list(schema.names) != names:
            extra = sorted(set(schema.names) - set(names))
            absent = sorted(set(names) - set(schema.names))
            raise DataError(f"{path}: its columns differ from {files[0].name}'s "
                            f"({'extra ' + ', '.join(extra) if extra else ''}{'; ' if extra and absent else ''}"
                            f"{'missing ' + ', '.join(absent) if absent else ''}{'in another order' if not extra and not absent else ''});"
                            " every partition needs the same columns.")
        for field in schema:
            if field.type != first.field(field.name).type:
                raise DataError(f"{path}: column '{field.name}' is {field.type} here but {first.field(field.name).type} "
                                f"in {files[0].name}; every partition needs the same schema.")
    features = [name for name in names if name not in (target, weight_column)]
    for name in features:
        kind = first.field(name).type
        if not (str(kind).startswith(("int", "uint", "float", "double", "bool", "halffloat"))):
            raise DataError(f"{files[0]}: feature column '{name}' has type {kind}; features must be numbers. "
                            "Choose the label column with target='COLUMN'.")
    return Folder(folder, "parquet", files, features, target, weight_column, rows)


def _open_delimited_folder(folder: Path, files: list[Path], target, weight_column) -> Folder:
    from softreg.data.formats.table import header_names

    delimiter = CSV_SUFFIXES[files[0].suffix.lower()]
    headers = [header_names(path, delimiter, True) for path in files]
    names = headers[0]
    for path, header in zip(files, headers):
        if header != names:
            raise DataError(f"{path}: its header differs from {files[0].name}'s ({', '.join(header)[:80]!r} against "
                            f"{', '.join(names)[:80]!r}); every partition needs the same columns in the same order.")
    target = target or names[-1]
    for column in (target, weight_column):
        if column is not None and column not in names:
            raise DataError(f"{files[0]}: no column '{column}'; columns: {', '.join(names)}.")
    features = [name for name in names if name not in (target, weight_column)]
    return Folder(folder, "delimited", files, features, target, weight_column, None)


def read_partition(folder: Folder, index: int, dtype: str, missing: str = "error") -> Dataset:
    """One partition's rows: X in ``dtype``, labels as text, weights if any. A CSV/TSV partition
    is read by the one table reader (pyarrow's), its label column as text."""
    path = folder.files[index]
    if folder.kind == "delimited":
        from softreg.data.formats.table import read_table

        table, _ = read_table(path, CSV_SUFFIXES[path.suffix.lower()], True, label_column=folder.target, labels=True)
        _refuse_text_features(path, table, folder.feature_names)
    else:
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path, columns=[*folder.feature_names, folder.target,
                                                 *([folder.weight_column] if folder.weight_column else [])])
        except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
            raise DataError(f"{path}: not a readable Parquet partition ({error}).") from None
    from softreg.data.encoding import numeric_blocks

    X = np.empty((table.num_rows, len(folder.feature_names)), dtype=dtype)
    for start, block in numeric_blocks(table, list(folder.feature_names)):  # nulls become NaN: missing rows below
        X[start:start + len(block)] = block
    labels = _label_text(table.column(folder.target))
    weights = None
    if folder.weight_column:
        weights = table.column(folder.weight_column).to_numpy(zero_copy_only=False).astype(np.float64)
    part = Dataset(X=X, y=labels, feature_names=list(folder.feature_names), description=path.name,
                   spec={"path": str(path)}, sample_weight=weights)
    unlabeled = labels == ""
    if unlabeled.any():
        if missing == "error":
            raise DataError(f"{path}: {int(unlabeled.sum())} rows have no label in column '{folder.target}' (first at "
                            f"row {int(np.argmax(unlabeled))}); fill them in, or pass missing='drop'.")
        keep = ~unlabeled
        part.X, part.y = part.X[keep], part.y[keep]
        part.sample_weight = None if weights is None else weights[keep]
        part.dropped_rows = int(unlabeled.sum())
    return _drop_missing_rows(part, missing)


def _refuse_text_features(path: Path, table, feature_names: list[str]) -> None:
    """Partitions hold numbers (their blocks are read independently, so no encoding is fitted
    over them): a column of text is named with its first word."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in feature_names:
        kind = table.column(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
                or pa.types.is_null(kind)):
            values = table.column(name)
            numbers = pc.match_substring_regex(pc.fill_null(pc.cast(values, pa.string()), "0"),
                                               r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
            row = int(np.argmin(numbers.to_numpy(zero_copy_only=False)))
            raise DataError(f"{path}: feature column '{name}' holds {values[row].as_py()!r} (data row {row + 1}); a "
                            "folder's partitions hold numbers only: fix the cell, or train on the table as one file, "
                            "where text columns are encoded.")


def _label_text(column) -> np.ndarray:
    """A Parquet label column as text, nulls as "": cast by pyarrow, so integer labels stay "3" in a
    partition with nulls (through NumPy they would become the float "3.0")."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(column, pa.string())
    return np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False), dtype=str)


def write_prepared_folder(folder: Folder, destination: Path, dtype: str, missing: str = "error",
                          progress=None) -> tuple[dict[str, Path], int, int]:
    """Convert a folder into a prepared .npy one partition at a time; returns (paths, rows, dropped).

    X is written sequentially behind a header sized for any row count and rewritten with the
    true count at the end, so no partition is held longer than it takes to write it.
    """
    labels, weights, counts = [], [], {"rows": 0, "dropped": 0}
    n_features = len(folder.feature_names)

    def write_rows(handle):
        header_length = _write_npy_header(handle, (10**15, n_features), np.dtype(dtype))
        for index in range(len(folder.files)):
            part = read_partition(folder, index, dtype, missing)
            handle.write(np.ascontiguousarray(part.X, dtype=dtype).tobytes())
            labels.append(part.y)
            weights.append(part.sample_weight)
            counts["rows"] += part.X.shape[0]
            counts["dropped"] += part.dropped_rows
            if progress is not None:
                progress(index + 1, len(folder.files), counts["rows"])
        if counts["rows"] == 0:
            raise DataError(f"{folder.path}: the partitions hold no rows.")
        handle.seek(0)
        _write_npy_header(handle, (counts["rows"], n_features), np.dtype(dtype), length=header_length)
        handle.seek(0, 2)
        return as_integers_if_possible(np.concatenate(labels)), np.concatenate(weights) if folder.weight_column else None

    paths = write_prepared_set(destination, write_rows, folder.feature_names, True)
    return paths, counts["rows"], counts["dropped"]


def _write_npy_header(handle, shape: tuple, dtype: np.dtype, length: int | None = None) -> int:
    """Write a version 1.0 .npy header for a C-ordered array; pad it to ``length`` bytes if given.

    The format (numpy's NEP 1): magic, version, a little-endian uint16 header length, then a
    Python dict literal padded with spaces and ended by a newline, the whole a multiple of 64.
    """
    text = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)})
    ast.literal_eval(text)  # the reader parses it this way
    prefix = 10  # magic (6) + version (2) + header length (2)
    if length is None:
        length = prefix + len(text) + 1
        length += -length % 64
    padding = length - prefix - len(text) - 1
    if padding < 0:
        raise ValueError("the .npy header does not fit the space reserved for it")
    body = (text + " " * padding + "\n").encode("latin1")
    handle.write(b"\x93NUMPY\x01\x00" + (len(body)).to_bytes(2, "little") + body)
    return length


# ------------------------------------------------------------------------ training from a folder
@dataclass(frozen=True)
class PartitionBlock:
    """Rows [start, stop) of the dataset, stored in file ``file`` (row group ``row_group`` of a Parquet file)."""

    file: int
    row_group: int | None
    start: int
    stop: int


class FolderRows:
    """Stands in for X when a folder is trained on without loading it: its shape and dtype only."""

    def __init__(self, folder: Folder, rows: list[int], dtype: str):
        self.folder, self.rows = folder, rows
        self.shape, self.dtype = (sum(rows), len(folder.feature_names)), np.dtype(dtype)

    def blocks(self) -> list[PartitionBlock]:
        return partition_blocks(self.folder, self.rows)


def folder_labels(folder: Folder) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    """Every partition's labels (text, then integers if all are), weights, and row counts.

    Parquet partitions are read for those columns only; CSV partitions are parsed whole (the
    features are checked on the way and dropped). Rows with missing values are an error here:
    dropping them would shift the rows each block holds (``softreg prepare --missing drop``
    makes a clean copy).
    """
    labels, weights, rows = [], [], []
    for index, path in enumerate(folder.files):
        if folder.kind == "parquet":
            import pyarrow.parquet as pq

            columns = [folder.target, *([folder.weight_column] if folder.weight_column else [])]
            try:
                table = pq.read_table(path, columns=columns)
            except Exception as error:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
                raise DataError(f"{path}: not a readable Parquet partition ({error}).") from None
            column = table.column(folder.target)
            if column.null_count:
                raise DataError(f"{path}: {column.null_count} rows have no label in column '{folder.target}'; fill "
                                "them in, or make a clean copy by preparing the data with missing='drop' and train on it.")
            labels.append(_label_text(column))
            if folder.weight_column:
                weights.append(table.column(folder.weight_column).to_numpy(zero_copy_only=False).astype(np.float64))
            rows.append(table.num_rows)
        else:
            part = read_partition(folder, index, "float64", "error")
            labels.append(part.y)
            weights.append(part.sample_weight)
            rows.append(part.X.shape[0])
    y = as_integers_if_possible(np.concatenate(labels))
    return y, (np.concatenate(weights) if folder.weight_column else None), rows


def partition_blocks(folder: Folder, rows: list[int]) -> list[PartitionBlock]:
    """The blocks a folder is read in: Parquet row groups, or whole CSV partitions."""
    blocks, start = [], 0
    for index, path in enumerate(folder.files):
        if folder.kind == "parquet":
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(path).metadata
            for group in range(metadata.num_row_groups):
                size = metadata.row_group(group).num_rows
                blocks.append(PartitionBlock(index, group, start, start + size))
                start += size
        else:
            blocks.append(PartitionBlock(index, None, start, start + rows[index]))
            start += rows[index]
    return blocks


def read_block(folder: Folder, block: PartitionBlock, dtype: str) -> np.ndarray:
    """The feature rows of one block, (B, D) in ``dtype``; non-finite values are an error naming the file."""
    path = folder.files[block.file]
    if folder.kind == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(path).read_row_group(block.row_group, columns=list(folder.feature_names))
        except Exception as error:  # noqa: BLE001 - a partition changed or damaged since the labels were read
            raise DataError(f"{path}: row group {block.row_group} is not readable ({error}).") from None
        X = np.empty((table.num_rows, len(folder.feature_names)), dtype=dtype)
        for j, name in enumerate(folder.feature_names):
            X[:, j] = table.column(name).to_numpy(zero_copy_only=False)
    else:
        X = read_partition(folder, block.file, dtype, "error").X
    if not np.isfinite(X).all():
        raise DataError(f"{path}: missing, NaN or infinite feature values (row {int(np.argmax(~np.isfinite(X).all(axis=1)))}"
                        f"{'' if block.row_group is None else f' of row group {block.row_group}'}); make a clean copy "
                        "by preparing the data with missing='drop' and train on it.")
    return X


def load_folder(path: Path, target: str | None, weight_column: str | None, dtype: str, missing: str,
                *, lazy: bool) -> Dataset:
    """A folder as a Dataset: its rows concatenated in memory, or (``lazy``) only its labels,
    with a :class:`FolderRows` standing in for X for the engines that read blocks themselves."""
    folder = open_folder(path, target, weight_column)
    spec = {"path": str(Path(path).resolve()), "format": "folder", "target": folder.target,
            "weight_column": folder.weight_column, "named_features": True}
    description = f"{Path(path).name}/ ({len(folder.files)} {folder.kind} partitions, target column '{folder.target}')"
    if lazy:
        y, weights, rows = folder_labels(folder)
        return Dataset(X=FolderRows(folder, rows, dtype), y=y, feature_names=list(folder.feature_names),
                       description=description, spec=spec, sample_weight=weights)
    parts = [read_partition(folder, index, dtype, missing) for index in range(len(folder.files))]
    weights = np.concatenate([part.sample_weight for part in parts]) if folder.weight_column else None
    return Dataset(X=np.concatenate([part.X for part in parts]), y=as_integers_if_possible(np.concatenate(
        [part.y for part in parts])), feature_names=list(folder.feature_names), description=description, spec=spec,
        sample_weight=weights, dropped_rows=sum(part.dropped_rows for part in parts))


def folder_digest(path: Path) -> str:
    """SHA-256 over the partitions' digests, in name order: eval notices a changed partition."""
    import hashlib

    from softreg.data.dataset import file_digest

    folder = Path(path)
    files = [folder] if folder.is_file() else sorted(p for p in folder.iterdir() if p.suffix.lower() in PARTITION_KINDS)
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}:{file_digest(file)}".encode())
    return digest.hexdigest()
