"""The table values an asset may return, turned into the one Arrow table a table backend stores.

Accepted, besides a pyarrow ``Table`` or ``RecordBatch`` and a polars ``DataFrame``:

* a polars ``LazyFrame``: collected here, in the process that ran the asset;
* a pyarrow ``RecordBatchReader``: read to its end;
* a DuckDB relation (``duckdb.sql(...)``, ``con.table(...)``): its result, fetched as Arrow;
* a pandas ``DataFrame``, through ``pyarrow.Table.from_pandas``. The index rule: an index
  without a name (the default 0, 1, 2, ... or what filtering left of it) is dropped; an index
  with a name (``df.set_index("day")``, a ``groupby`` result) is kept as ordinary columns, as
  ``df.reset_index()`` makes them (a MultiIndex level without a name becomes ``level_N``).
  pandas' own schema metadata is not stored.

None of these libraries is imported here: a value is recognised by its type's module and
name, so storing a polars frame never imports pandas or DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["as_table"]


def _type_of(value: object) -> tuple[str, str]:
    return type(value).__module__.split(".")[0], type(value).__name__


def as_table(value: object) -> pa.Table | None:
    """``value`` as an Arrow table, or None when it is not a table of a kind assetflow knows."""
    import pyarrow as pa

    from assetflow.fingerprint.data import to_arrow_table

    package, name = _type_of(value)
    if package == "polars" and name == "LazyFrame":
        value = value.collect()  # type: ignore[attr-defined]  # polars is not imported here
    elif isinstance(value, pa.RecordBatchReader):
        return value.read_all()
    elif package == "duckdb" and name == "DuckDBPyRelation":
        return _duckdb_table(value)
    elif package == "pandas" and name == "DataFrame":
        return _pandas_table(value)
    try:
        return to_arrow_table(value)
    except TypeError:
        return None


def _duckdb_table(relation: Any) -> pa.Table:
    """A relation's result as one Arrow table (``arrow()`` returns a reader in newer DuckDB)."""
    import pyarrow as pa

    for method in ("to_arrow_table", "fetch_arrow_table", "arrow"):
        fetch = getattr(relation, method, None)
        if fetch is not None:
            result = fetch()
            return result.read_all() if isinstance(result, pa.RecordBatchReader) else result
    raise TypeError(f"this DuckDB relation offers no way to fetch its result as Arrow: {relation!r}")


def _pandas_table(frame: Any) -> pa.Table:
    """A pandas DataFrame through pyarrow, by the index rule of the module docstring."""
    import pyarrow as pa

    if any(level is not None for level in frame.index.names):
        frame = frame.reset_index()
    return pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
