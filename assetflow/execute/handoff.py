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

When the asset returned a polars DataFrame, the frame itself is kept (a shallow copy) and handed to
polars inputs as another shallow copy: building a frame from the Arrow table costs ~0.2 ms an input
in a run, most of it converting strings to polars' views. Arrow inputs get the table the backend
stored, converted again from the frame. A frame with a sorted flag is kept as its table instead: a
file read back carries no flag, and polars trusts the flag (``set_sorted``) where it is set.

Memory is bounded: at most ``BUDGET_BYTES`` of buffers held by tables (a slice counts the buffers it
keeps alive), least recently used out first, none larger than a quarter of it; the runner empties
the store when a run ends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple

from assetflow.contracts import InputRef, StoredData, ValueKind

if TYPE_CHECKING:
    import pyarrow as pa

BUDGET_BYTES = 256 * 1024 * 1024


class _Kept(NamedTuple):
    """One kept version: the polars frame the asset returned, else the table the backend stored."""

    table: pa.Table | None
    frame: Any  # a polars DataFrame, or None
    size: int  # the bytes of the buffers it keeps alive


_kept: OrderedDict[tuple[str, str, str, str], _Kept] = OrderedDict()  # (io, asset, location, hash) -> kept
_kept_bytes = 0
_lock = threading.Lock()  # the threads of one process (``--executor threads``, a Dask worker's) share the store


def store(backend: Any, io: str, asset: str, value: object) -> StoredData:
    """Store ``value`` through ``backend``; keep the table it stored for later inputs when that is exact."""
    if not getattr(backend, "loads_as_stored", False):
        return backend.store(asset, value)  # type: ignore[no-any-return]
    stored, table = backend.store_with_table(asset, value)
    if table is not None and _exact_in_parquet(table):
        size = table.get_total_buffer_size()
        if _is_unflagged_polars_frame(value):
            kept = _Kept(None, value.clone(), size)  # type: ignore[attr-defined]  # polars is not imported
        else:
            kept = _Kept(table, None, size)
        _keep((io, asset, stored.location, stored.data_hash), kept)
    return stored  # type: ignore[no-any-return]


def take(ref: InputRef, kind: ValueKind) -> object | None:
    """The kept value of input ``ref`` in the form ``kind`` asks for, or None to read it from storage."""
    if not ref.data_hash or ref.io is None or ref.location is None:
        return None
    key = (ref.io, ref.name, ref.location, ref.data_hash)
    with _lock:
        kept = _kept.get(key)
        if kept is None:
            return None
        _kept.move_to_end(key)
    table, frame = kept.table, kept.frame
    if kind == "arrow":
        if table is None:
            from assetflow.fingerprint.data import to_arrow_table

            table = to_arrow_table(frame)  # as the backend converted it to store it
        return table
    if frame is None:
        import polars as pl

        frame = pl.from_arrow(table)
    else:
        frame = frame.clone()  # shallow: the asset may change its own copy in place, not the kept one
    value: object = frame.lazy() if kind == "lazy" else frame
    return value


def clear() -> None:
    """Forget every kept table (a run ended: nothing will ask for them)."""
    global _kept_bytes
    with _lock:
        _kept.clear()
        _kept_bytes = 0


def kept_count() -> int:
    """How many tables are kept now (what the tests look at)."""
    return len(_kept)


def _keep(key: tuple[str, str, str, str], kept: _Kept) -> None:
    global _kept_bytes
    with _lock:
        if kept.size > BUDGET_BYTES // 4 or key in _kept:
            return
        _kept[key] = kept
        _kept_bytes += kept.size
        while _kept_bytes > BUDGET_BYTES:
            _kept_bytes -= _kept.popitem(last=False)[1].size


def _is_unflagged_polars_frame(value: object) -> bool:
    """Whether ``value`` is a polars DataFrame none of whose columns carries a sorted flag."""
    if type(value).__name__ != "DataFrame" or not type(value).__module__.startswith("polars"):
        return False
    columns: Any = value.iter_columns()  # type: ignore[attr-defined]  # polars is not imported here
    return not any(column.flags["SORTED_ASC"] or column.flags["SORTED_DESC"] for column in columns)


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
