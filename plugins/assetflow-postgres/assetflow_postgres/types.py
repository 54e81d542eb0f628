"""Arrow types as PostgreSQL stores them, and back, without losing a bit.

PostgreSQL has no unsigned or 8-bit integers, keeps timestamps and times in microseconds,
and ADBC's COPY writer maps a few Arrow types lossily (nanoseconds are truncated, uint64
wraps around). So before writing, each column is cast to a type PostgreSQL holds exactly
(a *safe* cast: an overflow or truncation raises instead of changing data), and the original
Arrow schema is kept beside the table; loading casts back to it. The data hash is that of
the original table, and what ``load`` returns hashes the same.

| Arrow                                   | stored as (PostgreSQL)                       |
|-----------------------------------------|----------------------------------------------|
| int16/32/64, float32/64, bool, utf8,    | smallint, integer, bigint, real, double      |
| binary, date32, time64[us], decimal     | precision, boolean, text, bytea, date, time, |
|                                         | numeric                                      |
| int8, uint8 / uint16 / uint32           | smallint / integer / bigint                  |
| uint64                                  | bigint (values above 2**63-1 are refused)    |
| float16                                 | real                                         |
| timestamp[s/ms/us/ns, tz]               | timestamp / timestamptz in microseconds      |
|                                         | (a sub-microsecond value is refused)         |
| date64                                  | date (a time of day is refused)              |
| time32, time64[ns]                      | time (sub-microsecond refused)               |
| duration[unit]                          | bigint, a count of that unit                 |
| dictionary<T>                           | T, decoded                                   |
| list/large_list/fixed_size_list<T>      | T[] (T not itself nested)                    |
| null                                    | text, all NULL                               |
Structs, maps, unions and nested lists are refused: use the Parquet or DuckDB backend.
"""

from __future__ import annotations

import pyarrow as pa

from assetflow.ext import StorageError
from assetflow_postgres.limits import MAX_IDENTIFIER_BYTES

_WIDEN = {
    pa.int8(): pa.int16(), pa.uint8(): pa.int16(), pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(), pa.uint64(): pa.int64(), pa.float16(): pa.float32(),
}  # fmt: skip


class UnsupportedType(StorageError):
    """A column whose type PostgreSQL cannot hold exactly."""


def storage_type(dtype: pa.DataType, column: str, *, nested: bool = False) -> pa.DataType:
    """The Arrow type a column is cast to before it is written (see module docstring)."""
    t = pa.types
    if dtype in _WIDEN:
        return _WIDEN[dtype]
    if t.is_dictionary(dtype):
        return storage_type(dtype.value_type, column, nested=nested)
    if t.is_timestamp(dtype):
        return pa.timestamp("us", tz=dtype.tz)
    if t.is_date64(dtype):
        return pa.date32()
    if t.is_time(dtype):
        return pa.time64("us")
    if t.is_duration(dtype):
        return pa.int64()
    if t.is_null(dtype):
        return pa.string()
    if t.is_string_view(dtype):
        return pa.large_string()
    if t.is_binary_view(dtype):
        return pa.large_binary()
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype) or t.is_list_view(dtype):
        if nested:
            raise _refuse(column, dtype, "nested lists")
        return pa.list_(storage_type(dtype.value_type, column, nested=True))
    if (
        t.is_integer(dtype) or t.is_floating(dtype) or t.is_boolean(dtype) or t.is_decimal(dtype)
        or t.is_string(dtype) or t.is_large_string(dtype) or t.is_binary(dtype) or t.is_large_binary(dtype)
        or t.is_date32(dtype)
    ):  # fmt: skip
        return dtype
    raise _refuse(column, dtype, str(dtype))


def _refuse(column: str, dtype: pa.DataType, what: str) -> UnsupportedType:
    return UnsupportedType(
        f"Column {column!r} has the Arrow type {dtype}: PostgreSQL cannot store {what} exactly. "
        f"Store this asset with the parquet or duckdb backend, or cast the column (e.g. to a string)."
    )


def check_names(schema: pa.Schema) -> None:
    """Column names PostgreSQL would change or reject (too long, empty, NUL, duplicated)."""
    seen: set[str] = set()
    for name in schema.names:
        if not name or "\x00" in name or len(name.encode()) > MAX_IDENTIFIER_BYTES:
            raise StorageError(
                f"Column name {name!r} cannot be a PostgreSQL column name (1 to {MAX_IDENTIFIER_BYTES} "
                f"bytes, no NUL); PostgreSQL would truncate or refuse it. Rename the column."
            )
        if name in seen:
            raise StorageError(f"Column name {name!r} appears twice; PostgreSQL needs unique column names.")
        seen.add(name)


def to_storage(table: pa.Table) -> pa.Table:
    """``table`` with every column cast to the type PostgreSQL stores exactly (zero-copy if none)."""
    if table.num_columns == 0:
        raise StorageError("A table with no columns cannot be stored in PostgreSQL; add a column.")
    check_names(table.schema)
    columns = []
    changed = False
    for field, column in zip(table.schema, table.columns, strict=True):
        target = storage_type(field.type, field.name)
        if target != field.type:
            changed = True
            try:
                column = column.cast(target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise StorageError(
                    f"Column {field.name!r} ({field.type}) cannot be stored in PostgreSQL without "
                    f"changing its values: {exc}. Cast it to a type PostgreSQL holds (see the postgres "
                    f"backend's type table in docs/storage.md)."
                ) from None
        columns.append(column)
    if not changed:
        return table
    return pa.table(columns, names=table.column_names)


def from_storage(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a table read from PostgreSQL back to the Arrow ``schema`` it was stored from."""
    if table.schema.names != schema.names:
        raise StorageError(
            f"The stored table's columns {table.schema.names} differ from the recorded ones {schema.names}."
        )
    columns = []
    for field, column in zip(schema, table.columns, strict=True):
        if pa.types.is_null(field.type):
            column = pa.chunked_array([pa.nulls(len(column))], pa.null())
        else:
            if isinstance(column.type, pa.ExtensionType):  # numeric arrives as an opaque string
                column = pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
            if column.type != field.type:
                try:
                    column = column.cast(field.type, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise StorageError(
                        f"Column {field.name!r} as stored no longer fits its recorded type {field.type}: {exc}"
                    ) from None
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)
