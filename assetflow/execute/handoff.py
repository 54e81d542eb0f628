"""Tables a process just stored, handed to the assets it computes next instead of read back.

Reading a small upstream back from Parquet costs ~0.8 ms; building a polars DataFrame over the
Arrow table already in memory costs ~0.06 ms (issue 17's "upstream values passed between
assets without re-reading"). So a process (a pool worker, a Dask worker, the coordinator with
``--executor inprocess``) keeps the tables it stored, keyed by the backend, the version's
location and its data hash, and an asset whose input is that very version receives a view of
the table in memory instead of the file.

What an asset receives must not depend on where its upstream ran, so a table is kept only
when reading it back is known to give the same value: the backend says its loads return what
it stored (``loads_as_stored``: the built-in Parquet backend), and every column has a type that
Parquet keeps exactly (integers, floats, booleans, strings, binary, dates, timestamps
below the second) with no schema metadata. Anything else is read back as before. Tables are immutable, and each polars
value handed out is a new DataFrame over the shared buffers, so an asset that changes its
input in place changes nobody else's.

Memory is bounded: at most ``BUDGET_BYTES`` of tables, least recently used out first, none
larger than a quarter of it; the runner empties the store when a run ends.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from assetflow.contracts import InputRef, StoredData, ValueKind

if TYPE_CHECKING:
    import pyarrow as pa

BUDGET_BYTES = 256 * 1024 * 1024
_kept: OrderedDict[tuple[str, str, str, str], pa.Table] = OrderedDict()  # (io, asset, location, hash) -> table
_kept_bytes = 0


def store(backend: Any, io: str, asset: str, value: object) -> StoredData:
    """Store ``value`` through ``backend``; keep the table it stored for later inputs when that is exact."""
    if not getattr(backend, "loads_as_stored", False):
        return backend.store(asset, value)  # type: ignore[no-any-return]
    stored, table = backend.store_with_table(asset, value)
    if table is not None and _exact_in_parquet(table):
        _keep((io, asset, stored.location, stored.data_hash), table)
    return stored  # type: ignore[no-any-return]


def take(ref: InputRef, kind: ValueKind) -> object | None:
    """The kept value of input ``ref`` in the form ``kind`` asks for, or None to read it from storage."""
    if not ref.data_hash or ref.io is None or ref.location is None:
        return None
    key = (ref.io, ref.name, ref.location, ref.data_hash)
    table = _kept.get(key)
    if table is None:
        return None
    _kept.move_to_end(key)
    if kind == "arrow":
        return table
    import polars as pl

    frame = pl.from_arrow(table)
    return frame.lazy() if kind == "lazy" else frame  # type: ignore[union-attr]  # a Table gives a DataFrame


def clear() -> None:
    """Forget every kept table (a run ended: nothing will ask for them)."""
    global _kept_bytes
    _kept.clear()
    _kept_bytes = 0


def kept_count() -> int:
    """How many tables are kept now (what the tests look at)."""
    return len(_kept)


def _keep(key: tuple[str, str, str, str], table: pa.Table) -> None:
    global _kept_bytes
    size = table.nbytes
    if size > BUDGET_BYTES // 4 or key in _kept:
        return
    _kept[key] = table
    _kept_bytes += size
    while _kept_bytes > BUDGET_BYTES:
        _, dropped = _kept.popitem(last=False)
        _kept_bytes -= dropped.nbytes


def _exact_in_parquet(table: pa.Table) -> bool:
    """Whether reading ``table`` back from Parquet (pyarrow or polars) gives this very value."""
    if table.schema.metadata:
        return False
    return all(field.metadata is None and _exact_type(field.type) for field in table.schema)


def _exact_type(dtype: pa.DataType) -> bool:
    import pyarrow as pa

    t = pa.types
    if t.is_floating(dtype):
        return not t.is_float16(dtype)
    if t.is_timestamp(dtype):
        return dtype.unit != "s"  # Parquet has no seconds: read back as milliseconds
    return bool(
        t.is_integer(dtype) or t.is_boolean(dtype) or t.is_string(dtype) or t.is_large_string(dtype)
        or t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_date32(dtype)
    )  # fmt: skip
