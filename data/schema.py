"""Checking what a file declares against a schema of types, lengths and shapes, once, at the
boundary: a damaged or crafted header fails here with one error naming the field, not later
as a KeyError or TypeError deep in the code that trusted it.

A schema is a type or tuple of types (``bool`` is never taken for a number), :class:`Fields`
(a table with known keys, some required; other keys are allowed unless it is ``closed``), :class:`TableOf` (any string
keys, one schema for the values), :class:`ListOf` or :class:`Row` (a list of fixed length, one
schema per position).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_TEXT = 100_000  # characters in one string of a header
MAX_ITEMS = 10_000_000  # entries of one list of a header


class SchemaError(ValueError):
    """A value that does not have the declared form; ``field`` names where, as a.b[3].c."""

    def __init__(self, field_name: str, expected: str | None, value=None, unexpected: list | None = None):
        shown = repr(value)
        if unexpected is not None:
            message = f"{field_name} is not one of the fields there ({', '.join(unexpected)})"
        elif expected is None:
            message = f"{field_name} is missing"
        else:
            message = f"{field_name} must be {expected}, got {shown[:60]}{'...' if len(shown) > 60 else ''}"
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class Fields:
    schemas: dict
    required: tuple = ()
    closed: bool = False


@dataclass(frozen=True)
class TableOf:
    values: object


@dataclass(frozen=True)
class ListOf:
    items: object
    max_items: int = MAX_ITEMS


@dataclass(frozen=True)
class Row:
    items: tuple


NUMBER = (int, float)
OPTIONAL_NUMBER = (int, float, type(None))
_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null",
          dict: "a table", list: "a list"}


def check(value, schema, field_name: str) -> None:
    """SchemaError unless ``value`` has the form ``schema`` declares."""
    if isinstance(schema, Fields):
        if not isinstance(value, dict):
            raise SchemaError(field_name, "a table", value)
        for key in schema.required:
            if key not in value:
                raise SchemaError(f"{field_name}.{key}", None)
        if schema.closed:
            for key in value:
                if key not in schema.schemas:
                    raise SchemaError(f"{field_name}.{str(key)[:40]}", None, unexpected=list(schema.schemas))
        for key, sub in schema.schemas.items():
            if key in value:
                check(value[key], sub, f"{field_name}.{key}")
    elif isinstance(schema, TableOf):
        if not isinstance(value, dict):
            raise SchemaError(field_name, "a table", value)
        for key, item in value.items():
            check(item, schema.values, f"{field_name}.{key}")
    elif isinstance(schema, ListOf):
        if not isinstance(value, list) or len(value) > schema.max_items:
            raise SchemaError(field_name, f"a list of at most {schema.max_items:,} entries", value)
        for index, item in enumerate(value):
            check(item, schema.items, f"{field_name}[{index}]")
    elif isinstance(schema, Row):
        if not isinstance(value, list) or len(value) != len(schema.items):
            raise SchemaError(field_name, f"a list of exactly {len(schema.items)} entries", value)
        for index, (item, sub) in enumerate(zip(value, schema.items)):
            check(item, sub, f"{field_name}[{index}]")
    else:
        types = schema if isinstance(schema, tuple) else (schema,)
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise SchemaError(field_name, " or ".join(dict.fromkeys(_NAMES.get(t, t.__name__) for t in types)), value)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise SchemaError(field_name, f"a string of at most {MAX_TEXT:,} characters", value[:20])
