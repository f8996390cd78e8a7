"""What softreg does with each column of a table, learned from the training rows and applied the
same way to every table after: the column's role (numeric, boolean, categorical, or left out and
why), its levels, its "other" bucket, the value a missing cell takes.

The learned state is plain data (:meth:`TableEncoding.to_dict`), stored in a model file's JSON
header, never a pickle. scikit-learn's OneHotEncoder learns the levels (``min_frequency`` folds
the rare ones into one "other" level); applying stored levels is a lookup.

Missing cells (``missing``): "impute" gives a numeric or boolean cell the training mean and adds
one 0/1 column per column that had a missing cell (scikit-learn's SimpleImputer with
``add_indicator=True`` does the same); a missing categorical cell is its own level. "drop" leaves
out rows with a missing cell, "error" refuses them. A missing label is never imputed.

Why one module of about 550 lines: planning a column's role, fitting its levels and means,
applying them and the sums the summary takes of encoded rows all read one Column record and
one set of level rules ("(missing)", "(other)", min_frequency); split, each part would
restate those rules.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from softreg.data.dataset import MISSING_POLICIES, DataError
from softreg.data.schema import OPTIONAL_NUMBER, Fields, ListOf, SchemaError, check

MISSING_LEVEL = "(missing)"
OTHER_LEVEL = "(other)"
DEFAULT_MIN_FREQUENCY = 5
KINDS = ("numeric", "boolean", "categorical", "ignored")
ID_NAME = re.compile(r"^(id|.*[_ .-]id|.*ID|index|key|uuid|row|rownames|unnamed: ?\d+)$", re.IGNORECASE)
NUMBER_TEXT = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$|^\s*[-+]?(inf|infinity)\s*$"
FREE_TEXT_CHARACTERS = 30  # mean length of a string column above which many distinct values are free text

# What was done with each column of a table (softreg.data.encoding.TableEncoding.to_dict).
ENCODED_COLUMN = Fields({"name": str, "kind": str, "read_as": str, "note": str, "levels": ListOf(str),
                          "other": ListOf(str), "fill": OPTIONAL_NUMBER, "indicator": bool, "missing_cells": int},
                         required=("name", "kind", "read_as", "note", "levels", "other", "fill", "indicator",
                                   "missing_cells"), closed=True)
ENCODING_SCHEMA = Fields({"columns": ListOf(ENCODED_COLUMN), "target": str, "weight_column": (str, type(None)),
                          "missing": str, "header": bool, "min_frequency": int},
                         required=("columns", "target", "weight_column", "missing", "header"))


@dataclass(frozen=True)
class ColumnChoices:
    """The user's say over the columns: names forced to a role, and how rare a level may be."""

    categorical: tuple = ()
    numeric: tuple = ()
    ignore: tuple = ()
    features: tuple | None = None  # only these (with the target and weights); None: every usable column
    min_frequency: int = DEFAULT_MIN_FREQUENCY

    @classmethod
    def from_words(cls, categorical=None, numeric=None, ignore=None, features=None, min_frequency=None):
        """From comma-separated names, as flags and config files give them."""
        def names(words):
            return tuple(name.strip() for name in words.split(",") if name.strip()) if words else ()

        return cls(names(categorical), names(numeric), names(ignore), names(features) or None,
                   DEFAULT_MIN_FREQUENCY if min_frequency is None else int(min_frequency))


@dataclass
class Column:
    """One column of the table and what was done with it."""

    name: str
    kind: str  # one of KINDS
    read_as: str  # the type the column was read as (int64, double, bool, string, timestamp[s], ...)
    note: str = ""  # why it was left out, or what was done besides the kind (shown in the schema table)
    levels: list = field(default_factory=list)  # categorical: the levels with a column of their own
    other: list = field(default_factory=list)  # categorical: the rare levels folded into OTHER_LEVEL
    fill: float | None = None  # numeric, boolean: the value of a missing cell (the training mean)
    indicator: bool = False  # numeric, boolean: a 0/1 "is missing" column follows
    missing_cells: int = 0  # in the rows the encoding was fitted on

    def feature_names(self) -> list[str]:
        if self.kind == "ignored":
            return []
        if self.kind == "categorical":
            return [f"{self.name}={level}" for level in self.levels] + ([f"{self.name}={OTHER_LEVEL}"] if self.other
                                                                         else [])
        return [self.name] + ([f"{self.name}:missing"] if self.indicator else [])


@dataclass
class TableEncoding:
    """Every column's :class:`Column`, the label and weight columns, and the missing-cell policy."""

    columns: list
    target: str
    weight_column: str | None
    missing: str
    header: bool
    min_frequency: int = DEFAULT_MIN_FREQUENCY

    def feature_names(self) -> list[str]:
        return [name for column in self.columns for name in column.feature_names()]

    def used(self) -> list[Column]:
        return [column for column in self.columns if column.kind != "ignored"]

    def offsets(self) -> np.ndarray:
        """Where each used column's features start in X, and after the last one, the width of X."""
        return np.cumsum([0] + [len(column.feature_names()) for column in self.used()])

    def read_types(self) -> dict:
        """The pyarrow type to read each used column as, so that new data parses as training did."""
        import pyarrow as pa

        kinds = {"numeric": pa.float64(), "boolean": pa.bool_(), "categorical": pa.string()}
        return {column.name: kinds[column.kind] for column in self.used()}

    def to_dict(self) -> dict:
        return {"columns": [asdict(column) for column in self.columns], "target": self.target,
                "weight_column": self.weight_column, "missing": self.missing, "header": self.header,
                "min_frequency": self.min_frequency}

    @classmethod
    def from_dict(cls, document: dict) -> "TableEncoding":
        columns = [Column(**column) for column in document["columns"]]
        return cls(columns, document["target"], document["weight_column"], document["missing"], document["header"],
                   document.get("min_frequency", DEFAULT_MIN_FREQUENCY))


def checked_encoding(document, feature_names: list[str], where: str) -> TableEncoding:
    """A stored encoding (a model header's, a prepared dataset's) as a TableEncoding, once its
    form, kinds and policy are checked and it makes exactly ``feature_names``; ValueError
    naming ``where`` otherwise."""
    try:
        check(document, ENCODING_SCHEMA, "encoding")
    except SchemaError as error:
        raise ValueError(f"{where}: {error}") from None
    kinds = sorted({column["kind"] for column in document["columns"]} - set(KINDS))
    if kinds or document["missing"] not in MISSING_POLICIES:
        raise ValueError(f"{where}: the encoding has unknown column kinds {kinds} or missing rule "
                         f"{document['missing']!r}")
    encoding = TableEncoding.from_dict(document)
    if encoding.feature_names() != list(feature_names):
        raise ValueError(f"{where}: the encoding does not make its {len(feature_names)} features")
    return encoding


def plan_columns(source, table, target: str, weight_column: str | None, choices: ColumnChoices) -> list[Column]:
    """Each column's role, from its type, values and name, and the user's choices; DataError
    listing every column that cannot be used as asked (all at once, not one per run)."""
    import pyarrow as pa

    names = table.column_names
    asked = {"categorical": choices.categorical, "numeric": choices.numeric, "ignore": choices.ignore,
             "features": choices.features or ()}
    unknown = [f"{key}='{name}'" for key, chosen in asked.items() for name in chosen if name not in names]
    if unknown:
        raise DataError(f"{source}: no column {', '.join(unknown)}; the columns are {names}.")
    both = sorted(set(choices.categorical) & set(choices.numeric))
    if both:
        raise DataError(f"{source}: {both} named in both categorical and numeric; choose one for each.")
    columns, problems = [], []
    n_rows = table.num_rows
    for position, name in enumerate(names):
        if name in (target, weight_column):
            continue
        values = table.column(name)
        read_as = str(values.type)
        if name in choices.ignore:
            columns.append(Column(name, "ignored", read_as, "left out by ignore='COL'"))
        elif choices.features is not None and name not in choices.features:
            columns.append(Column(name, "ignored", read_as, "not in features='COL,...'"))
        elif name in choices.categorical:
            columns.append(Column(name, "categorical", read_as))
        elif name in choices.numeric:
            if _is_text(values.type):
                bad = _first_non_number(values)
                if bad is not None:
                    problems.append(f"column '{name}' (numeric='{name}') holds {bad[1]!r} at data row {bad[0] + 1}")
                    continue
            elif not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
                      or pa.types.is_boolean(values.type) or pa.types.is_null(values.type)):
                problems.append(f"column '{name}' (numeric='{name}') is read as {read_as}, not numbers")
                continue
            columns.append(Column(name, "numeric", read_as))
        else:
            column = _inferred_column(name, position, values, n_rows)
            if isinstance(column, str):
                problems.append(column)
            else:
                columns.append(column)
    if problems:
        raise DataError(f"{source}: {'; '.join(problems)}. Fix those cells, or choose the columns' roles with "
                        "categorical='COL', numeric='COL' or ignore='COL'.")
    if not any(column.kind != "ignored" for column in columns):
        left_out = "; ".join(f"'{column.name}': {column.note}" for column in columns) or "there is no other column"
        raise DataError(f"{source}: no column is left to learn from ({left_out}). Bring one back with "
                        "numeric='COL' or categorical='COL'.")
    return columns


def _inferred_column(name: str, position: int, values, n_rows: int):
    """The Column softreg infers for a column nobody chose a role for, or the text of why it
    cannot be used (a column of numbers with a stray word in it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    read_as = str(values.type)
    kind_of = values.type
    if pa.types.is_null(kind_of):
        return Column(name, "ignored", read_as, "every cell is missing")
    if pa.types.is_boolean(kind_of):
        return Column(name, "boolean", read_as)
    if pa.types.is_integer(kind_of) or pa.types.is_floating(kind_of) or pa.types.is_decimal(kind_of):
        if pa.types.is_integer(kind_of) and n_rows > 1:
            if position == 0 and (name == "" or name.lower().startswith("unnamed")) and \
                    pc.all(pc.equal(values, pa.array(np.arange(n_rows)))).as_py():
                return Column(name, "ignored", read_as, "a pandas index (0..N-1 in an unnamed first column)")
            if ID_NAME.match(name) and pc.count_distinct(values).as_py() == n_rows:
                return Column(name, "ignored", read_as, "an id: named like one, a different value in every row; "
                                                        f"numeric='{name}' uses it")
        if name != "":
            return Column(name, "numeric", read_as)
    if name == "":
        return "the first column has no name and is not a pandas index (0..N-1); give it a name"
    if pa.types.is_temporal(kind_of):
        return Column(name, "ignored", read_as, f"dates or times; categorical='{name}' takes them as levels")
    if _is_text(kind_of):
        present = pc.drop_null(values)
        if len(present) == 0:
            return Column(name, "ignored", read_as, "every cell is missing")
        numbers = pc.sum(pc.match_substring_regex(present, NUMBER_TEXT)).as_py() or 0
        if numbers >= 0.9 * len(present):
            row, cell = _first_non_number(values)
            return (f"column '{name}' holds numbers but also {cell!r} (data row {row + 1}, "
                    f"{len(present) - numbers} such cells)")
        distinct = pc.count_distinct(present).as_py()
        mean_length = pc.mean(pc.utf8_length(present)).as_py()
        if distinct > 0.5 * len(present) and len(present) >= 20 and mean_length > FREE_TEXT_CHARACTERS:
            return Column(name, "ignored", read_as, f"free text ({distinct:,} distinct values, {mean_length:.0f} "
                                                    f"characters on average); categorical='{name}' uses it")
        if len(present) >= 20 and (distinct == len(present) or (ID_NAME.match(name) and distinct > 0.5 * len(present))):
            why = "a different value in every row" if distinct == len(present) else \
                f"named like one, {distinct:,} distinct values in {len(present):,} rows"
            return Column(name, "ignored", read_as, f"an id: {why}; categorical='{name}' uses it")
        return Column(name, "categorical", read_as)
    return Column(name, "ignored", read_as, f"values of type {read_as} are not used")


def _is_text(kind_of) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind_of) or pa.types.is_large_string(kind_of)


def _first_non_number(values) -> tuple[int, str] | None:
    import pyarrow.compute as pc

    matches = pc.fill_null(pc.match_substring_regex(values, NUMBER_TEXT), True).to_numpy(zero_copy_only=False)
    if matches.all():
        return None
    row = int(np.argmin(matches))
    return row, values[row].as_py()


def fit_encoding(columns: list[Column], table, rows: np.ndarray | None, *, target: str, weight_column: str | None,
                 missing: str, header: bool, min_frequency: int, numeric_sums=None) -> TableEncoding:
    """The encoding learned from ``rows`` of ``table`` (all rows when None): each categorical
    column's levels, each numeric column's mean and whether it had missing cells.
    ``numeric_sums`` (sums, present counts, missing counts) of the numeric and boolean columns
    over ``rows``, when the caller has them (:func:`encoded_sums`)."""
    from dataclasses import replace

    fitted = [replace(column) for column in columns]
    numeric = [column for column in fitted if column.kind in ("numeric", "boolean")]
    if numeric_sums is None:
        numeric_sums = numeric_column_sums(table, [column.name for column in numeric], rows)
    sums, counts, cells = numeric_sums
    for j, column in enumerate(numeric):
        column.missing_cells = int(cells[j])
        column.indicator = bool(cells[j]) and missing == "impute"
        column.fill = float(sums[j] / counts[j]) if counts[j] else 0.0
    for column in fitted:
        if column.kind == "categorical":
            from sklearn.preprocessing import OneHotEncoder  # imported only when needed: it is 1 s of start-up

            values = table.column(column.name)
            names, codes = _ranked_codes(values if rows is None else values.take(rows))
            column.missing_cells = int(np.sum(codes == names.index(MISSING_LEVEL))) if MISSING_LEVEL in names else 0
            encoder = OneHotEncoder(min_frequency=min_frequency, handle_unknown="infrequent_if_exist")
            encoder.fit(codes.reshape(-1, 1))
            rare = encoder.infrequent_categories_[0]
            column.other = [] if rare is None else [names[code] for code in rare]
            folded = set(column.other)
            column.levels = [names[code] for code in encoder.categories_[0] if names[code] not in folded]
    return TableEncoding(fitted, target, weight_column, missing, header, min_frequency)


def numeric_column_sums(table, names: list[str], rows: np.ndarray | None = None):
    """(sum of the finite cells, their count, the count of missing or non-finite cells) per
    column of ``names``, over ``rows`` (all when None). Over all rows of number columns, one
    pyarrow sum each (a finite sum means every cell was finite); a column holding inf or NaN,
    text read as numbers, or a subset of rows take a pass of :func:`numeric_blocks`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sums, counts, cells = np.zeros(len(names)), np.zeros(len(names)), np.zeros(len(names), dtype=np.int64)
    rest = list(range(len(names)))
    if rows is None:
        rest = []
        for j, name in enumerate(names):
            values = table.column(name)
            if pa.types.is_integer(values.type) or pa.types.is_boolean(values.type):
                values = pc.cast(values, pa.float64(), safe=False)  # integer sums wrap around in int64; beyond 2^53 rounds
            elif not pa.types.is_floating(values.type):
                rest.append(j)
                continue
            total = pc.sum(values).as_py()
            if total is not None and not np.isfinite(total):
                rest.append(j)
                continue
            sums[j], counts[j], cells[j] = total or 0.0, len(values) - values.null_count, values.null_count
    if rest:
        chosen = None
        if rows is not None:
            chosen = np.zeros(table.num_rows, dtype=bool)
            chosen[rows] = True
        for start, block in numeric_blocks(table, [names[j] for j in rest]):
            if chosen is not None:
                block = block[chosen[start:start + len(block)]]
            finite = np.isfinite(block)
            sums[rest] += np.where(finite, block, 0.0).sum(axis=0)
            counts[rest] += finite.sum(axis=0)
            cells[rest] += len(block) - finite.sum(axis=0)
    return sums, counts, cells


def encoded_sums(encoding: TableEncoding, X: np.ndarray, rows: np.ndarray):
    """:func:`numeric_column_sums` of ``rows``, read from X as ``encoding`` encoded it (float64,
    dense), or None when X cannot say (float32 values, or a missing cell without its 0/1
    column). One product w^T X (w: 1 on ``rows``) gives every column's sum over them; a cell
    that took its fill is counted by the 0/1 missing column and its fill taken back out."""
    used = encoding.used()
    if not isinstance(X, np.ndarray) or X.dtype != np.float64 or \
            any(c.missing_cells and not c.indicator for c in used if c.kind != "categorical"):
        return None
    offsets = encoding.offsets()
    numeric = [j for j, column in enumerate(used) if column.kind in ("numeric", "boolean")]
    chosen = np.zeros(X.shape[0])
    chosen[rows] = 1.0
    totals = chosen @ X  # (D,): every column's sum over the rows
    cells = np.array([round(totals[offsets[j] + 1]) if used[j].indicator else 0 for j in numeric], dtype=np.int64)
    fills = np.array([used[j].fill or 0.0 for j in numeric])
    return totals[offsets[numeric]] - cells * fills, len(rows) - cells, cells


def encode(encoding: TableEncoding, table, dtype: str = "float64", *, source="data") -> tuple[np.ndarray, dict]:
    """(X of shape (rows, len(feature_names)), unseen levels counted per column) of ``table`` by
    ``encoding``. Missing cells take the stored fill (or are refused under missing="error",
    which the loader has checked before); an unseen level is the other level, or all zeros."""
    import pyarrow as pa
    import pyarrow.compute as pc

    used = encoding.used()
    present = set(table.column_names)  # a set: 'in' on the list of names was quadratic in a wide table
    absent = [column.name for column in used if column.name not in present]
    if absent:
        raise DataError(f"{source}: the model's feature column{'s' if len(absent) > 1 else ''} "
                        f"{', '.join(repr(name) for name in absent)} {'are' if len(absent) > 1 else 'is'} not in the "
                        f"data; its columns are {table.column_names[:20]}. Other columns are ignored.")
    n_rows = table.num_rows
    offsets = encoding.offsets()
    X = np.zeros((n_rows, int(offsets[-1])), dtype=dtype)
    numeric = [j for j, column in enumerate(used) if column.kind in ("numeric", "boolean")]
    if numeric:
        places = offsets[numeric]
        fills = np.array([used[j].fill for j in numeric])
        flagged = [k for k, j in enumerate(numeric) if used[j].indicator]
        contiguous = places[-1] - places[0] == len(places) - 1
        for start, block in numeric_blocks(table, [used[j].name for j in numeric]):
            rows = slice(start, start + len(block))
            absent_cells = ~np.isfinite(block)
            filled = np.where(absent_cells, fills, block)
            if contiguous:  # an all-numeric table: one block copy, not a scatter of columns
                X[rows, places[0]:places[-1] + 1] = filled
            else:
                X[rows, places] = filled
            if flagged:
                X[rows, places[flagged] + 1] = absent_cells[:, flagged]
    unseen = {}
    for j, column in enumerate(used):
        if column.kind != "categorical":
            continue
        offset = offsets[j]
        texts = pc.fill_null(category_texts(table.column(column.name), column.read_as), MISSING_LEVEL)
        index = pc.index_in(texts, value_set=pa.array(column.levels, pa.string())).to_numpy(zero_copy_only=False)
        known = ~np.isnan(index) if index.dtype.kind == "f" else np.ones(n_rows, dtype=bool)
        X[np.flatnonzero(known), offset + index[known].astype(np.int64)] = 1.0
        if (~known).any():
            rest = np.flatnonzero(~known)
            count = len(rest)
            if column.other:
                X[rest, offset + len(column.levels)] = 1.0
                is_rare = pc.is_in(texts.take(pa.array(rest)), value_set=pa.array(column.other, pa.string()))
                count -= int(pc.sum(is_rare).as_py() or 0)
            if count:
                unseen[column.name] = count
    return X, unseen


def missing_cells(encoding_columns: list[Column], table) -> np.ndarray:
    """Per row, whether a used numeric or boolean cell is missing (categorical cells never are:
    a missing one is a level of its own)."""
    rows = np.zeros(table.num_rows, dtype=bool)
    names = [column.name for column in encoding_columns if column.kind in ("numeric", "boolean")]
    for start, block in numeric_blocks(table, names):
        rows[start:start + len(block)] = ~np.isfinite(block).all(axis=1)
    return rows


BLOCK_CELLS = 1 << 18  # cells of the numeric columns converted at a time (2 MiB of float64)


def numeric_blocks(table, names: list[str]):
    """(first row, float64 array (rows, len(names))) over the table in row blocks, NaN where a
    cell is missing: one conversion of many columns at a time (a wide table's cost was the
    per-column calls), memory bounded by the block."""
    import pyarrow as pa

    if not names or table.num_rows == 0:
        return
    numbers = table.select(names)
    for index, kind in enumerate(numbers.schema.types):
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):  # booleans, decimals, text read as numeric
            numbers = numbers.set_column(index, names[index], pa.chunked_array(
                [_numbers(numbers.column(index))], pa.float64()))
    step = max(1, BLOCK_CELLS // len(names))
    for start in range(0, numbers.num_rows, step):
        block = numbers.slice(start, step)
        yield start, np.asarray(block.to_tensor(null_to_nan=True, row_major=True), dtype=np.float64)


def _numbers(values) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    if _is_text(values.type):
        values = pc.cast(pc.utf8_trim_whitespace(values), pa.float64())
    elif not pa.types.is_floating(values.type) or values.type != pa.float64():
        values = pc.cast(values, pa.float64(), safe=False)  # integers beyond 2^53 round, as numpy rounds them
    return values.to_numpy(zero_copy_only=False)


def category_texts(values, read_as: str):
    """A categorical column's cells as the text training gave its levels. A column read as
    booleans or numbers in training has levels "true"/"false", "1", "2.5" (pyarrow's cast);
    read again as text (prediction reads categories as text) "True", "yes" or "1.0" are put
    back in that form, so that they are the same level. Text that is not such a value stays."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from softreg.data.formats.table import FALSE_CELLS, TRUE_CELLS

    if not _is_text(values.type) or read_as in ("string", "large_string"):
        return pc.cast(values, pa.string())
    if read_as == "bool":
        values = pc.if_else(pc.is_in(values, value_set=pa.array(TRUE_CELLS)), "true",
                            pc.if_else(pc.is_in(values, value_set=pa.array(FALSE_CELLS)), "false", values))
        return pc.cast(values, pa.string())
    try:
        kind = pa.type_for_alias(read_as)
    except (ValueError, KeyError):
        return pc.cast(values, pa.string())
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        try:
            numbers = pc.cast(pc.utf8_trim_whitespace(values), pa.float64())
        except pa.ArrowInvalid:  # some cell is not a number: the cells stay as written (unseen levels)
            return pc.cast(values, pa.string())
        if pa.types.is_integer(kind):
            try:
                return pc.cast(pc.cast(numbers, pa.int64()), pa.string())
            except pa.ArrowInvalid:  # a fraction in a column of whole numbers: its own (unseen) text
                pass
        return pc.cast(numbers, pa.string())
    return pc.cast(values, pa.string())


def _ranked_codes(values) -> tuple[list[str], np.ndarray]:
    """(the distinct texts of a column, missing cells as MISSING_LEVEL, in sorted order; each
    cell's position among them). The encoder is fitted on these integer codes: the same levels,
    order and rare levels as on the texts (sorted codes are sorted texts), without scikit-learn
    counting a Python object per cell (measured: 2.4 s of a 3.1 s load of 200,000 rows)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    coded = pc.dictionary_encode(pc.fill_null(pc.cast(values, pa.string()), MISSING_LEVEL)).combine_chunks()
    texts = coded.dictionary.to_pylist()
    order = sorted(range(len(texts)), key=texts.__getitem__)
    rank = np.empty(len(texts), dtype=np.int64)
    rank[order] = np.arange(len(texts))
    return [texts[i] for i in order], rank[coded.indices.to_numpy(zero_copy_only=False)]


def _refuse_continuous(source, target: str, distinct: int, rows: int, fraction: float | None, advice: str) -> None:
    if fraction is not None or (distinct > max(20, 0.5 * rows) and rows > 40):
        raise DataError(f"{source}: the target column '{target}' looks continuous ({distinct:,} distinct values in "
                        f"{rows:,} rows{', fractions such as ' + repr(fraction) if fraction is not None else ''}); "
                        f"{advice}.")


def table_labels(source, table, target: str) -> tuple[np.ndarray, np.ndarray]:
    """(class labels, which rows have none) of the label column: whole numbers (also "1.0") as
    int64, booleans and text as text; a column that looks continuous (most values distinct, or
    fractions) is refused, naming it (softreg is a classifier, not a regressor). Typed arrays
    throughout: a label costs its bytes, not a Python object."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = table.column(target)
    kind_of = values.type
    present = pc.drop_null(values)
    distinct = pc.count_distinct(present).as_py()
    advice = "choose the label column with target='COLUMN' (softreg is a classifier, not a regressor)"
    if pa.types.is_floating(kind_of) or pa.types.is_integer(kind_of) or pa.types.is_decimal(kind_of):
        numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
        finite = np.isfinite(numbers)
        fractional = finite & (numbers != np.round(numbers))
        _refuse_continuous(source, target, distinct, len(present),
                           float(numbers[fractional][0]) if fractional.any() else None, advice)
        return np.where(finite, numbers, 0).astype(np.int64), ~finite
    if _is_text(kind_of) and len(present) and pc.all(pc.match_substring_regex(present, NUMBER_TEXT)).as_py():
        if pc.all(pc.match_substring_regex(present, r"^\s*[-+]?\d+\s*$")).as_py():
            try:
                whole = pc.cast(pc.utf8_trim_whitespace(values), pa.int64())
            except pa.ArrowInvalid:  # beyond int64 (long ids): exact as text
                whole = None
            if whole is not None:
                _refuse_continuous(source, target, distinct, len(present), None, advice)
                return (pc.fill_null(whole, 0).to_numpy(zero_copy_only=False),
                        pc.is_null(whole).to_numpy(zero_copy_only=False))
        else:
            return table_labels(source, table.set_column(table.column_names.index(target), target,
                                                         pc.cast(pc.utf8_trim_whitespace(values), pa.float64())),
                                target)
    if distinct == len(present) and len(present) > 40:
        raise DataError(f"{source}: the target column '{target}' holds a different value in every row ({distinct:,}); "
                        f"it looks like an id, not a class; {advice}.")
    coded = pc.dictionary_encode(pc.cast(values, pa.string())).combine_chunks()
    names = np.asarray([str(level) for level in coded.dictionary.to_pylist()] + [""], dtype=str)
    index = pc.fill_null(coded.indices, len(names) - 1).to_numpy(zero_copy_only=False)
    return names[index], pc.is_null(coded.indices).to_numpy(zero_copy_only=False)


def refuse_unseen_levels(source: str, unseen: dict) -> None:
    """DataError naming the first column that holds levels training never saw (``strict``)."""
    if unseen:
        column, count = next(iter(unseen.items()))
        raise DataError(f"{source}: column '{column}' holds {count} value{'s' if count > 1 else ''} the model never "
                        "saw in training, which strict refuses; without strict they are encoded as its other level "
                        "(or all zeros).")
