"""The data hash: a canonical content hash of a table's Arrow form (docs/concepts.md, "The three hashes").

The hash must be a function of the *content* only, so that a table keeps its hash through
every store assetflow writes it to and reads it back from (polars, pyarrow, Parquet with any
row groups or compression, DuckDB). What counts and what does not:

* Counts: column names and order; each column's *logical* type; the row count and row order;
  every value, bit for bit (so ``-0.0 != 0.0`` and NaN payloads count); where the nulls are.
* Does not count: chunking and slice offsets; schema and field metadata (pandas, polars);
  bytes hidden under null slots; the physical encoding of one logical type.
* Logical types: ``string``/``large_string``/``string_view`` are one type ("utf8"), so are the
  three binary types, and ``list``/``large_list``/``list_view`` (whose child field name, "item",
  "element" or DuckDB's column name, is ignored). Dictionary and run-end encoded columns hash
  as their decoded values, extension columns as their name plus storage. The UTC aliases
  ("UTC", "Etc/UTC", ...) are one time zone, since DuckDB exports "UTC" as "Etc/UTC"; other
  time zones count as spelled (a zone changes what ``.dt.hour()`` returns downstream).
* Nullability: the schema's ``nullable`` flag does NOT count, at any depth. Polars and DuckDB
  export every field as nullable (even a DuckDB ``NOT NULL`` column, even one read from a
  Parquet file that declares it required), so hashing the flag would change the hash on every
  round trip. The nulls themselves always count: a column's validity is hashed whenever it
  holds a null.

Canonical form, hashed with :class:`~assetflow.hashing.Digest` (every field length-framed):
the column count; per column its name and a JSON type descriptor; the row count; then per
column, recursively: its validity bitmap (an empty field when it has no null), then its data.
Data is the value bytes for fixed-width types, packed bits for booleans, int64 end offsets
(rebased to 0) plus the value bytes for strings and binaries, int64 lengths plus the child
for lists, and each child for structs. Fixed-width values and string bytes are hashed straight
from Arrow's buffers, with no copy, so hashing runs at the hash function's speed. Buffers
are hashed in native byte order, which Arrow guarantees to be little-endian in practice.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from assetflow.hashing import Digest

# pyarrow.compute takes ~40 ms to import (a pool worker's start-up): it is imported only by the
# functions that need it, for nulls, booleans, lists and encodings.

__all__ = ["table_hash", "to_arrow_table", "value_hash"]

_DOMAIN = "arrow-table/1"  # bump the version whenever the canonical form changes
_INT64 = struct.Struct("<q")
_UTC_ALIASES = frozenset(
    {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu",
     "Z", "+00:00", "GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0"}
)  # fmt: skip
_BLOCK = 1 << 18  # rows per computed block: its copy stays in cache until it is hashed
_UINT_OF_WIDTH = {1: pa.uint8(), 2: pa.uint16(), 4: pa.uint32(), 8: pa.uint64()}

Parts = list[memoryview | bytes]


def to_arrow_table(value: object) -> pa.Table:
    """Return the Arrow table that ``value_hash`` hashes: a Table as is, a RecordBatch as a
    one-batch Table, a polars DataFrame through ``to_arrow()`` (polars is never imported here).
    """
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    module, name = type(value).__module__, type(value).__name__
    if module.startswith("polars"):
        if name == "LazyFrame":
            raise TypeError(
                "Cannot hash a polars LazyFrame: it holds a query, not data. "
                "Call .collect() and hash the DataFrame."
            )
        if name == "DataFrame":
            table = value.to_arrow()  # type: ignore[attr-defined]  # polars is not imported
            if isinstance(table, pa.Table):
                return table
    raise TypeError(
        f"Cannot compute a data hash of a value of type {module}.{name}: "
        "expected a pyarrow.Table, a pyarrow.RecordBatch or a polars.DataFrame."
    )


def value_hash(value: object) -> str:
    """The data hash of any supported value, e.g. ``blake3:9f2c...`` (see ``to_arrow_table``)."""
    return table_hash(to_arrow_table(value))


def table_hash(table: pa.Table) -> str:
    """The canonical content hash of ``table``, with its algorithm prefix (module docstring)."""
    if not isinstance(table, pa.Table):
        raise TypeError(
            f"table_hash expects a pyarrow.Table, got {type(table).__module__}."
            f"{type(table).__name__}; use value_hash for other values."
        )
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        raise NotImplementedError("data hashes are defined on little-endian hosts only")
    digest = Digest(_DOMAIN)
    digest.field(_INT64.pack(table.num_columns))
    for field in table.schema:
        digest.field(field.name)
        digest.field(json.dumps(_type_descriptor(field.type, field.name), separators=(",", ":")))
    digest.field(_INT64.pack(table.num_rows))
    for field, column in zip(table.schema, table.columns, strict=True):
        _hash_array(digest, list(column.chunks), field.type, field.name)
    return digest.hexdigest()


def parquet_file_hash(path: str | Path) -> str:
    """``table_hash`` of the table in a Parquet file, read one column at a time.

    The canonical form is column by column, so a column's chunks (its row groups) are all the
    hash needs at once, and the hash equals the in-memory path's for the same content. A large
    flat column (more than ``_STREAM_COLUMN_BYTES`` decoded) is not even held whole: it is read
    a row group at a time, once per field of the canonical form, so a file written by a
    streaming sink is hashed in memory bounded by its row groups, not by its size.
    """
    import pyarrow.parquet as pq

    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        raise NotImplementedError("data hashes are defined on little-endian hosts only")
    with pq.ParquetFile(path) as parquet:
        schema = parquet.schema_arrow
        metadata = parquet.metadata
        digest = Digest(_DOMAIN)
        digest.field(_INT64.pack(len(schema)))
        for field in schema:
            digest.field(field.name)
            digest.field(json.dumps(_type_descriptor(field.type, field.name), separators=(",", ":")))
        digest.field(_INT64.pack(metadata.num_rows))
        leaves = _leaf_indices(parquet)
        for field in schema:
            groups = range(parquet.num_row_groups)

            def read(name: str = field.name) -> Iterator[pa.Array]:
                for group in groups:
                    yield from parquet.read_row_group(group, columns=[name]).column(0).chunks

            leaf = leaves.get(field.name)
            if leaf is not None and _is_streamable(field.type) and _decoded_bytes(
                    metadata, leaf, field.type) > _STREAM_COLUMN_BYTES:
                _hash_flat_stream(digest, read, metadata.num_rows, field.type)
            else:
                _hash_array(digest, list(read()), field.type, field.name)
    return digest.hexdigest()


_STREAM_COLUMN_BYTES = 64 << 20  # a flat column larger than this (decoded) is hashed a row group at a time


def _leaf_indices(parquet: Any) -> dict[str, int]:
    """The Parquet column index of each top-level field stored as one leaf column (a flat field)."""
    schema = parquet.metadata.schema
    paths = [schema.column(i).path for i in range(parquet.metadata.num_columns)]
    return {path: index for index, path in enumerate(paths) if "." not in path}


def _decoded_bytes(metadata: Any, leaf: int, dtype: pa.DataType) -> int:
    """About what a flat column takes in memory once read: its values (or 8-byte offsets) plus its
    uncompressed pages. The pages alone say little: a delta-encoded integer column is a few KB."""
    width = 8 if _is_plain_binary(dtype) else dtype.byte_width
    pages = sum(metadata.row_group(g).column(leaf).total_uncompressed_size for g in range(metadata.num_row_groups))
    return int(metadata.num_rows) * width + pages


def _is_streamable(dtype: pa.DataType) -> bool:
    """Types whose canonical form ``_hash_flat_stream`` can produce a row group at a time."""
    if pa.types.is_boolean(dtype) or pa.types.is_dictionary(dtype) or isinstance(dtype, pa.ExtensionType):
        return False
    if _is_plain_binary(dtype):
        return True
    try:
        return dtype.byte_width > 0
    except ValueError:
        return False


def _hash_flat_stream(digest: Digest, read: Callable[[], Iterator[pa.Array]], rows: int, dtype: pa.DataType) -> None:
    """The same fields as ``_hash_array`` for a flat column, from chunks that ``read`` yields again on
    every call: only the validity bits (1 bit a row) and a chunk's span are kept between passes."""
    validity: list[pa.Array] = []
    any_null = False
    spans: list[tuple[int, int]] = []
    plain = _is_plain_binary(dtype)
    offset_type = _offset_type(dtype)
    for chunk in read():
        if chunk.null_count:
            any_null = True
        validity.append(chunk.is_valid())
        if plain and len(chunk):
            chunk = _empty_null_slots(chunk, dtype)
            ends = _offsets(chunk, offset_type)
            spans.append((ends[0].as_py(), ends[len(chunk)].as_py()))
    if any_null:
        digest.field_parts(_bit_parts(validity))
    else:
        digest.field(b"")
    del validity
    if not plain:
        digest.field_parts(_fixed_width_parts(read(), dtype.byte_width), rows * dtype.byte_width)
        return

    def nonempty() -> Iterator[pa.Array]:
        return (_empty_null_slots(chunk, dtype) for chunk in read() if len(chunk))

    digest.field_parts(_offset_parts(zip(nonempty(), spans, strict=True), dtype), 8 * rows)
    digest.field_parts(
        (memoryview(chunk.buffers()[2]).cast("B")[first:last] for chunk, (first, last) in zip(nonempty(), spans, strict=True)),
        sum(last - first for first, last in spans),
    )


def _type_descriptor(dtype: pa.DataType, column: str) -> object:
    """A JSON-able description of the logical type: equal for types whose values are equal."""
    t = pa.types
    if t.is_dictionary(dtype) or t.is_run_end_encoded(dtype):
        return _type_descriptor(dtype.value_type, column)
    if isinstance(dtype, pa.ExtensionType):
        return ["extension", dtype.extension_name, _type_descriptor(dtype.storage_type, column)]
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype):
        return "utf8"
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_binary_view(dtype):
        return "binary"
    if _is_variable_list(dtype):
        return ["list", _type_descriptor(dtype.value_type, column)]
    if t.is_fixed_size_list(dtype):
        return ["fixed_size_list", dtype.list_size, _type_descriptor(dtype.value_type, column)]
    if t.is_map(dtype):
        key, item = dtype.key_type, dtype.item_type
        keys = [_type_descriptor(key, column), _type_descriptor(item, column)]
        return ["map", *keys, dtype.keys_sorted]
    if t.is_struct(dtype):
        return ["struct", [[f.name, _type_descriptor(f.type, column)] for f in dtype]]
    if t.is_union(dtype):
        raise TypeError(
            f"Column {column!r} has the Arrow union type {dtype}, which the data hash does not "
            "support; cast it to a struct or to separate columns."
        )
    if t.is_timestamp(dtype) and dtype.tz in _UTC_ALIASES:
        return f"timestamp[{dtype.unit}, tz=UTC]"
    return str(dtype)


def _is_variable_list(dtype: pa.DataType) -> bool:
    t = pa.types
    return bool(
        t.is_list(dtype) or t.is_large_list(dtype)
        or t.is_list_view(dtype) or t.is_large_list_view(dtype)
    )  # fmt: skip


def _is_plain_binary(dtype: pa.DataType) -> bool:
    t = pa.types
    return bool(
        t.is_string(dtype) or t.is_large_string(dtype) or t.is_binary(dtype) or t.is_large_binary(dtype)
    )


def _hash_array(digest: Digest, chunks: list[pa.Array], dtype: pa.DataType, column: str) -> None:
    """Add the validity and data of one logical array given as chunks (see module docstring).

    The canonical form is that of the concatenated chunks, so every field is the
    concatenation of per-chunk parts: chunking never shows.
    """
    t = pa.types
    # Normalise encodings to the plain layout of the same logical type.
    if t.is_dictionary(dtype):
        decoded = [c.dictionary_decode() for c in chunks]
        return _hash_array(digest, decoded, dtype.value_type, column)
    if t.is_run_end_encoded(dtype):
        import pyarrow.compute as pc

        return _hash_array(digest, [pc.run_end_decode(c) for c in chunks], dtype.value_type, column)
    if isinstance(dtype, pa.ExtensionType):
        return _hash_array(digest, [c.storage for c in chunks], dtype.storage_type, column)
    if t.is_string_view(dtype) or t.is_binary_view(dtype):
        plain = pa.large_string() if t.is_string_view(dtype) else pa.large_binary()
        return _hash_array(digest, [c.cast(plain) for c in chunks], plain, column)
    if t.is_map(dtype):
        entries = pa.list_(pa.struct([dtype.key_field, dtype.item_field]))
        return _hash_array(digest, [c.cast(entries) for c in chunks], entries, column)

    if any(c.null_count for c in chunks):
        digest.field_parts(_bit_parts([c.is_valid() for c in chunks]))
    else:
        digest.field(b"")

    if t.is_null(dtype):
        return None
    if t.is_boolean(dtype):
        import pyarrow.compute as pc

        values = [pc.fill_null(c, False) if c.null_count else c for c in chunks]
        digest.field_parts(_bit_parts(values))
    elif _is_plain_binary(dtype):
        _hash_binary(digest, chunks, dtype)
    elif _is_variable_list(dtype):
        import pyarrow.compute as pc

        lengths = [pc.fill_null(pc.list_value_length(c), 0).cast(pa.int64()) for c in chunks]
        _hash_fixed_width(digest, lengths, 8)
        _hash_array(digest, [c.flatten() for c in chunks], dtype.value_type, column)
    elif t.is_fixed_size_list(dtype):
        # Lengths are implied (list_size for a valid slot); flatten() skips null slots.
        _hash_array(digest, [c.flatten() for c in chunks], dtype.value_type, column)
    elif t.is_struct(dtype):
        # flatten() applies the struct's slice offset and its nulls to every child.
        children = [c.flatten() for c in chunks]
        for index, field in enumerate(dtype):
            _hash_array(digest, [child[index] for child in children], field.type, column)
    else:
        try:
            width = dtype.byte_width
        except ValueError:
            raise TypeError(
                f"Column {column!r} has the Arrow type {dtype}, "
                "which the data hash does not support."
            ) from None
        _hash_fixed_width(digest, chunks, width)
    return None


def _hash_fixed_width(digest: Digest, chunks: list[pa.Array], width: int) -> None:
    """Add the value bytes of fixed-width chunks: zero-copy, or, where nulls must be
    zeroed, computed block by block so each copy is hashed while still in cache."""
    digest.field_parts(_fixed_width_parts(chunks, width), sum(len(c) for c in chunks) * width)


def _fixed_width_parts(chunks: Iterable[pa.Array], width: int) -> Iterator[memoryview]:
    for chunk in chunks:
        for block in _blocks(chunk) if chunk.null_count else [chunk]:
            if block.null_count:
                import pyarrow.compute as pc

                as_bits = _UINT_OF_WIDTH.get(width, pa.binary(width))
                zero = pa.scalar(0 if width in _UINT_OF_WIDTH else bytes(width), as_bits)
                block = pc.fill_null(block.view(as_bits), zero)
            if len(block):
                start = block.offset * width
                yield memoryview(block.buffers()[1]).cast("B")[start : start + len(block) * width]


def _blocks(chunk: pa.Array) -> Iterator[pa.Array]:
    return (chunk.slice(start, _BLOCK) for start in range(0, len(chunk), _BLOCK))


def _bit_parts(chunks: list[pa.BooleanArray]) -> Parts:
    """Packed bits of boolean chunks from bit 0, with the unused bits of the last byte zeroed."""
    length = sum(len(c) for c in chunks)
    if not length:
        return []
    bits = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
    if bits.offset % 8:
        import pyarrow.compute as pc

        bits = pc.if_else(bits, True, False)  # a fresh buffer, starting at bit 0
    start = bits.offset // 8
    view = memoryview(bits.buffers()[1]).cast("B")[start : start + (length + 7) // 8]
    tail = length % 8
    return [view] if not tail else [view[:-1], bytes([view[-1] & ((1 << tail) - 1)])]


def _hash_binary(digest: Digest, chunks: list[pa.Array], dtype: pa.DataType) -> None:
    """Add the int64 end offsets (counted from 0) and then the value bytes of string or
    binary chunks. Offsets are zero-copy when they are int64 already and start where the
    previous chunk ended (true of an unsliced first chunk), else rebased block by block.
    """
    offset_type = _offset_type(dtype)
    spans: list[tuple[pa.Array, tuple[int, int]]] = []  # (chunk, (first offset, last offset))
    for chunk in chunks:
        if not len(chunk):
            continue
        chunk = _empty_null_slots(chunk, dtype)
        ends = _offsets(chunk, offset_type)
        spans.append((chunk, (ends[0].as_py(), ends[len(chunk)].as_py())))
    digest.field_parts(_offset_parts(spans, dtype), 8 * sum(len(chunk) for chunk, _ in spans))
    data = [memoryview(chunk.buffers()[2]).cast("B")[first:last] for chunk, (first, last) in spans]
    digest.field_parts(data)


def _offset_type(dtype: pa.DataType) -> pa.DataType:
    large = pa.types.is_large_string(dtype) or pa.types.is_large_binary(dtype)
    return pa.int64() if large else pa.int32()


def _empty_null_slots(chunk: pa.Array, dtype: pa.DataType) -> pa.Array:
    """``chunk``, rebuilt only if a null slot spans bytes: null slots become empty, their bytes dropped."""
    if chunk.null_count and not _null_slots_are_empty(chunk, _offset_type(dtype)):
        import pyarrow.compute as pc

        is_binary = pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype)
        return pc.fill_null(chunk, pa.scalar(b"" if is_binary else "", dtype))
    return chunk


def _offset_parts(spans: Iterable[tuple[pa.Array, tuple[int, int]]], dtype: pa.DataType) -> Iterator[memoryview]:
    """The end offsets of non-empty chunks as one int64 sequence counted from 0."""
    offset_type = _offset_type(dtype)
    large = offset_type == pa.int64()
    base = 0
    for chunk, (first, last) in spans:
        ends = _offsets(chunk, offset_type).slice(1)
        if large and first == base:
            yield from _fixed_width_parts([ends], 8)
        else:
            for block in _blocks(ends):
                yield _rebased(block, base - first)
        base += last - first


def _rebased(offsets: pa.Array, shift: int) -> memoryview:
    """``offsets`` plus ``shift`` as int64 bytes, computed in numpy over the Arrow buffer: a Python
    int made an Arrow scalar (or ``to_numpy``) makes pyarrow import pandas where it is installed,
    0.25 s once in every worker."""
    import numpy as np

    dtype = np.dtype(np.int64 if offsets.type.bit_width == 64 else np.int32)
    raw = np.frombuffer(offsets.buffers()[1], dtype=dtype, count=len(offsets), offset=offsets.offset * dtype.itemsize)
    return memoryview(raw.astype(np.int64) + np.int64(shift)).cast("B")


def _offsets(chunk: pa.Array, offset_type: pa.DataType) -> pa.Array:
    """The len + 1 raw offsets of a string/binary chunk, as a zero-copy integer array."""
    buffers = [None, chunk.buffers()[1]]
    return pa.Array.from_buffers(offset_type, len(chunk) + 1, buffers, offset=chunk.offset)


def _null_slots_are_empty(chunk: pa.Array, offset_type: pa.DataType) -> bool:
    """Whether no null slot of a string/binary chunk spans bytes, as every builder writes it.

    Checking costs a few ms per 10M rows; rebuilding the array would cost several times more.
    """
    import pyarrow.compute as pc

    ends = _offsets(chunk, offset_type)
    nulls = pc.indices_nonzero(chunk.is_null())
    return bool(pc.all(pc.equal(ends.take(nulls), ends.take(pc.add(nulls, 1)))).as_py())
