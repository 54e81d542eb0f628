"""The data hash: equal content hashes equal through every store, different content never does."""

from __future__ import annotations

import datetime as dt
import io
from array import array
from collections.abc import Callable
from pathlib import Path

import duckdb
import hypothesis.strategies as st
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings

from assetflow.fingerprint.data import table_hash, to_arrow_table, value_hash


def sample_table(rows: int = 40) -> pa.Table:
    """Every column kind the stores must round-trip, with nulls and empty strings."""
    start, day = dt.datetime(2024, 1, 1, 6, 30), dt.date(2024, 1, 1)
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "small": pa.array([i % 7 if i % 5 else None for i in range(rows)], pa.int32()),
            "price": pa.array([i * 1.25 if i % 6 else None for i in range(rows)], pa.float64()),
            "name": pa.array([f"n{i}" * (i % 3) if i % 4 else None for i in range(rows)], pa.string()),
            "flag": pa.array([None if i % 9 == 0 else i % 2 == 0 for i in range(rows)], pa.bool_()),
            "at": pa.array(
                [start + dt.timedelta(hours=i) if i % 8 else None for i in range(rows)], pa.timestamp("us")
            ),
            "day": pa.array([day + dt.timedelta(days=i) if i % 10 else None for i in range(rows)], pa.date32()),
        }
    )


# -- chunking and slicing -----------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 8, 13, 39])
def test_chunking_does_not_count(batch_size: int) -> None:
    table = sample_table()
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=batch_size))
    assert rechunked.column("name").num_chunks > 1
    assert table_hash(rechunked) == table_hash(table)
    assert table_hash(rechunked.combine_chunks()) == table_hash(table)


@pytest.mark.parametrize(("offset", "length"), [(5, 10), (0, 1), (3, 0), (9, 31)])
@pytest.mark.parametrize("batch_size", [None, 4])
def test_slice_equals_a_fresh_table_of_its_rows(offset: int, length: int, batch_size: int | None) -> None:
    table = sample_table()
    if batch_size:
        table = pa.Table.from_batches(table.to_batches(max_chunksize=batch_size))
    sliced = table.slice(offset, length)
    fresh = pa.Table.from_pylist(sliced.to_pylist(), schema=table.schema)
    assert table_hash(sliced) == table_hash(fresh)


@pytest.mark.parametrize(("offset", "length"), [(0, 3), (8, 5), (3, 9), (16, 8)])
def test_sliced_booleans_hash_like_fresh_ones(offset: int, length: int) -> None:
    flags = pa.table({"b": [True, True, False, True, True, False, True, True] * 3})
    sliced = flags.slice(offset, length)  # the bits around the slice are set: they must not count
    assert table_hash(sliced) == table_hash(pa.table({"b": sliced.column("b").to_pylist()}))


# -- round trips through the stores -------------------------------------------------------------


def write_polars(table: pa.Table, path: Path, compression: str, row_group_size: int) -> None:
    polars_compression = "uncompressed" if compression == "none" else compression
    pl.from_arrow(table).write_parquet(path, compression=polars_compression, row_group_size=row_group_size)  # type: ignore[union-attr]


def write_pyarrow(table: pa.Table, path: Path, compression: str, row_group_size: int) -> None:
    pq.write_table(table, path, compression=compression, row_group_size=row_group_size)


READERS: dict[str, Callable[[Path], pa.Table]] = {
    "polars": lambda path: pl.read_parquet(path).to_arrow(),
    "pyarrow": lambda path: pq.read_table(path),
    "pyarrow-dictionary": lambda path: pq.read_table(path, read_dictionary=["name"]),
}


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("row_group_size", [7, 10_000])
@pytest.mark.parametrize("compression", ["snappy", "zstd", "none"])
@pytest.mark.parametrize("writer", [write_polars, write_pyarrow], ids=["polars", "pyarrow"])
def test_parquet_round_trip_keeps_the_hash(
    tmp_path: Path, writer: Callable[..., None], compression: str, row_group_size: int, reader: str
) -> None:
    table = sample_table()
    path = tmp_path / "t.parquet"
    writer(table, path, compression, row_group_size)
    assert pq.ParquetFile(path).metadata.num_row_groups == -(-table.num_rows // row_group_size)
    back = READERS[reader](path)
    assert table_hash(back) == table_hash(table)


@pytest.mark.parametrize("export", ["arrow_reader", "to_arrow_table"])
@pytest.mark.parametrize("not_null", [False, True], ids=["nullable", "declared_not_null"])
def test_duckdb_round_trip_keeps_the_hash(tmp_path: Path, export: str, not_null: bool) -> None:
    arrow_tbl = sample_table()
    if not_null:  # DuckDB exports every column as nullable: the flag must not count
        arrow_tbl = arrow_tbl.select(["id"]).cast(pa.schema([pa.field("id", pa.int64(), nullable=False)]))
    path = str(tmp_path / "x.duckdb")
    with duckdb.connect(path) as con:
        con.execute("CREATE TABLE t AS SELECT * FROM arrow_tbl")
    with duckdb.connect(path) as con:
        relation = con.sql("SELECT * FROM t")
        back = relation.arrow().read_all() if export == "arrow_reader" else relation.to_arrow_table()
    assert back.to_pylist() == arrow_tbl.to_pylist()
    assert back.schema.field("id").nullable  # even where the original declared NOT NULL
    assert table_hash(back) == table_hash(arrow_tbl)


def test_duckdb_round_trip_of_a_polars_frame(tmp_path: Path) -> None:
    frame = pl.from_arrow(sample_table())
    assert isinstance(frame, pl.DataFrame)
    arrow_tbl = frame.to_arrow()
    with duckdb.connect(str(tmp_path / "x.duckdb")) as con:
        con.execute("CREATE TABLE t AS SELECT * FROM arrow_tbl")
        back = con.sql("SELECT * FROM t").arrow().read_all()
    assert value_hash(frame) == table_hash(back)


# -- what counts ----------------------------------------------------------------------------------

UTC = pa.timestamp("us", tz="UTC")
DIFFERENT: dict[str, tuple[pa.Table, pa.Table]] = {
    "column renamed": (pa.table({"a": [1, 2]}), pa.table({"b": [1, 2]})),
    "column order swapped": (pa.table({"a": [1], "b": [1]}), pa.table({"b": [1], "a": [1]})),
    "column names framed": (pa.table({"ab": [1], "c": [1]}), pa.table({"a": [1], "bc": [1]})),
    "one value changed": (sample_table(), sample_table().set_column(0, "id", pa.array([*range(39), 99]))),
    "int32 vs int64": (pa.table({"a": pa.array([1, 2], pa.int32())}), pa.table({"a": pa.array([1, 2], pa.int64())})),
    "null vs 0": (pa.table({"a": [0, 1]}), pa.table({"a": [None, 1]})),
    "null moved": (pa.table({"a": [0, None]}), pa.table({"a": [None, 0]})),
    "empty string vs null": (pa.table({"s": ["", "x"]}), pa.table({"s": [None, "x"]})),
    "string boundaries": (pa.table({"s": ["ab", "c"]}), pa.table({"s": ["a", "bc"]})),
    "string vs binary": (pa.table({"s": ["ab"]}), pa.table({"s": [b"ab"]})),
    "rows reordered": (pa.table({"a": [1, 2], "s": ["x", "y"]}), pa.table({"a": [2, 1], "s": ["y", "x"]})),
    "empty vs one row": (pa.table({"a": pa.array([], pa.int64())}), pa.table({"a": [0]})),
    "no columns vs empty column": (pa.table({}), pa.table({"a": pa.array([], pa.int64())})),
    "last bool bit": (pa.table({"b": [True] * 9}), pa.table({"b": [True] * 8 + [False]})),
    "list boundaries": (pa.table({"l": [[1, 2], [3]]}), pa.table({"l": [[1], [2, 3]]})),
    "empty list vs null list": (pa.table({"l": [[], [1]]}), pa.table({"l": [None, [1]]})),
    "struct field names": (pa.table({"s": [{"x": 1}]}), pa.table({"s": [{"y": 1}]})),
    "time zone": (
        pa.table({"t": pa.array([0], UTC)}),
        pa.table({"t": pa.array([0], pa.timestamp("us", tz="Europe/Paris"))}),
    ),
    "timestamp unit": (
        pa.table({"t": pa.array([0], pa.timestamp("us"))}),
        pa.table({"t": pa.array([0], pa.timestamp("ns"))}),
    ),
    "negative zero": (pa.table({"f": [0.0]}), pa.table({"f": [-0.0]})),
}


@pytest.mark.parametrize(("left", "right"), DIFFERENT.values(), ids=DIFFERENT.keys())
def test_different_content_hashes_differently(left: pa.Table, right: pa.Table) -> None:
    assert table_hash(left) != table_hash(right)


EQUAL: dict[str, tuple[pa.Table, pa.Table]] = {
    "large_string": (pa.table({"s": ["a", None, ""]}), pa.table({"s": pa.array(["a", None, ""], pa.large_string())})),
    "string_view": (pa.table({"s": ["a", None, ""]}), pa.table({"s": pa.array(["a", None, ""], pa.string_view())})),
    "large_binary": (pa.table({"b": [b"a", None]}), pa.table({"b": pa.array([b"a", None], pa.large_binary())})),
    "binary_view": (pa.table({"b": [b"a", None]}), pa.table({"b": pa.array([b"a", None], pa.binary_view())})),
    "large_list": (pa.table({"l": [[1], None, []]}), pa.table({"l": pa.array([[1], None, []], pa.large_list(pa.int64()))})),
    "list_view": (pa.table({"l": [[1], None, []]}), pa.table({"l": pa.array([[1], None, []], pa.list_view(pa.int64()))})),
    "list child name": (
        pa.table({"l": [[1], [2, 3]]}),
        pa.table({"l": pa.array([[1], [2, 3]], pa.list_(pa.field("element", pa.int64(), nullable=False)))}),
    ),
    "dictionary": (pa.table({"s": ["x", "y", "x", None]}), pa.table({"s": pa.array(["x", "y", "x", None]).dictionary_encode()})),
    "UTC alias": (pa.table({"t": pa.array([0], UTC)}), pa.table({"t": pa.array([0], pa.timestamp("us", tz="Etc/UTC"))})),
    "schema metadata": (pa.table({"a": [1]}), pa.table({"a": [1]}).replace_schema_metadata({b"pandas": b"{...}"})),
    "field metadata": (
        pa.table({"a": [1]}),
        pa.table({"a": [1]}, schema=pa.schema([pa.field("a", pa.int64(), metadata={b"_PL_X": b"1"})])),
    ),
    "nullable flag": (pa.table({"a": [1]}), pa.table({"a": [1]}, schema=pa.schema([pa.field("a", pa.int64(), nullable=False)]))),
}


@pytest.mark.parametrize(("left", "right"), EQUAL.values(), ids=EQUAL.keys())
def test_equivalent_forms_hash_equal(left: pa.Table, right: pa.Table) -> None:
    assert not left.schema.equals(right.schema, check_metadata=True)
    assert table_hash(left) == table_hash(right)


# -- bytes under null slots -----------------------------------------------------------------------

VALIDITY = pa.py_buffer(bytes([0b101]))  # slots 0 and 2 valid, slot 1 null


def garbage_pair() -> dict[str, tuple[pa.Array, pa.Array]]:
    def ints(hidden: int) -> pa.Array:
        return pa.Array.from_buffers(pa.int64(), 3, [VALIDITY, pa.array([1, hidden, 3], pa.int64()).buffers()[1]])

    def strings(hidden: bytes) -> pa.Array:
        data = b"a" + hidden + b"c"
        offsets = pa.array([0, 1, 1 + len(hidden), len(data)], pa.int32()).buffers()[1]
        return pa.Array.from_buffers(pa.string(), 3, [VALIDITY, offsets, pa.py_buffer(data)])

    def bools(hidden: bool) -> pa.Array:
        return pa.Array.from_buffers(pa.bool_(), 3, [VALIDITY, pa.py_buffer(bytes([0b101 | hidden << 1]))])

    def lists(hidden: list[int]) -> pa.Array:
        offsets = pa.array([0, 1, 1 + len(hidden), 2 + len(hidden)], pa.int32())
        values = pa.array([1, *hidden, 3], pa.int64())
        return pa.ListArray.from_arrays(offsets, values, mask=pa.array([False, True, False]))

    def structs(hidden: int) -> pa.Array:
        return pa.StructArray.from_arrays([pa.array([1, hidden, 3])], names=["x"], mask=pa.array([False, True, False]))

    return {
        "int64": (ints(0), ints(12345)),
        "string": (strings(b""), strings(b"garbage")),
        "bool": (bools(False), bools(True)),
        "list": (lists([]), lists([7, 8])),
        "struct": (structs(0), structs(42)),
    }


@pytest.mark.parametrize("kind", sorted(garbage_pair()))
def test_bytes_under_nulls_do_not_count(kind: str) -> None:
    clean, dirty = garbage_pair()[kind]
    assert clean.equals(dirty)
    assert clean.buffers() != dirty.buffers() or clean.field(0).buffers() != dirty.field(0).buffers()
    assert table_hash(pa.table({"c": clean})) == table_hash(pa.table({"c": dirty}))


# -- values and conversions -----------------------------------------------------------------------


def test_polars_frame_hashes_like_its_arrow_form() -> None:
    frame = pl.DataFrame({"a": [1, None], "s": ["x", "y"], "c": pl.Series(["u", "v"], dtype=pl.Categorical)})
    assert value_hash(frame) == table_hash(frame.to_arrow())
    assert value_hash(frame) == table_hash(frame.cast({"c": pl.String}).to_arrow())


def test_record_batch_hashes_like_a_table() -> None:
    table = sample_table()
    batch = table.combine_chunks().to_batches()[0]
    assert value_hash(batch) == table_hash(table)
    assert to_arrow_table(table) is table


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (pl.LazyFrame({"a": [1]}), "LazyFrame"),
        (pl.Series("a", [1]), "polars.series.series.Series"),
        ({"a": [1]}, "builtins.dict"),
        ([1, 2], "builtins.list"),
        (pa.array([1]), "Int64Array"),
    ],
)
def test_unsupported_values_raise_a_type_error_naming_the_type(value: object, named: str) -> None:
    with pytest.raises(TypeError, match=named):
        value_hash(value)


def test_table_hash_rejects_non_tables() -> None:
    with pytest.raises(TypeError, match="polars.dataframe.frame.DataFrame"):
        table_hash(pl.DataFrame({"a": [1]}))  # type: ignore[arg-type]


def test_union_column_raises_naming_the_column() -> None:
    union = pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])])
    with pytest.raises(TypeError, match="'u'.*union"):
        table_hash(pa.table({"u": union}))


def test_hash_has_the_algorithm_prefix() -> None:
    assert table_hash(pa.table({"a": [1]})).startswith("blake3:")


# -- properties ---------------------------------------------------------------------------------

COLUMN_TYPES: dict[str, tuple[pa.DataType, st.SearchStrategy[object]]] = {
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "float64": (pa.float64(), st.floats(allow_nan=False)),
    "string": (pa.string(), st.text(max_size=6)),
    "large_string": (pa.large_string(), st.text(max_size=6)),
    "bool": (pa.bool_(), st.booleans()),
    "timestamp": (pa.timestamp("us"), st.datetimes(min_value=dt.datetime(1900, 1, 1))),
    "date32": (pa.date32(), st.dates()),
    "list": (pa.list_(pa.int64()), st.lists(st.integers(-5, 5), max_size=3)),
}


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(0, 30))
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMN_TYPES)), min_size=1, max_size=4))
    columns = {}
    for index, kind in enumerate(kinds):
        dtype, values = COLUMN_TYPES[kind]
        cells = draw(st.lists(st.none() | values, min_size=rows, max_size=rows))
        columns[f"c{index}_{kind}"] = pa.array(cells, dtype)
    table = pa.table(columns)
    cuts = sorted(draw(st.lists(st.integers(0, rows), max_size=4)))
    pieces = [table.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, rows], strict=True)]
    return pa.concat_tables(pieces)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(tables(), st.integers(1, 7))
def test_property_rechunking_keeps_the_hash(table: pa.Table, batch_size: int) -> None:
    rebatched = pa.Table.from_batches(table.to_batches(max_chunksize=batch_size), schema=table.schema)
    assert table_hash(rebatched) == table_hash(table) == table_hash(table.combine_chunks())


@PROPERTY
@given(tables())
def test_property_parquet_round_trip_keeps_the_hash(table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=5)
    assert table_hash(pq.read_table(pa.BufferReader(sink.getvalue()))) == table_hash(table)
    buffer = io.BytesIO()
    pl.from_arrow(table).write_parquet(buffer, row_group_size=5)  # type: ignore[union-attr]
    buffer.seek(0)
    assert table_hash(pl.read_parquet(buffer).to_arrow()) == table_hash(table)


@PROPERTY
@given(tables())
def test_property_one_more_row_changes_the_hash(table: pa.Table) -> None:
    null_row = pa.Table.from_pylist([{}], schema=table.schema)
    assert table_hash(pa.concat_tables([table, null_row])) != table_hash(table)


def test_field_parts_frames_like_one_field() -> None:
    from assetflow.hashing import Digest

    joined = Digest("t").field(b"abcdef").hexdigest()
    assert Digest("t").field_parts([b"ab", memoryview(b"cdef")]).hexdigest() == joined
    assert Digest("t").field_parts(iter([b"abc", b"def"]), 6).hexdigest() == joined
    with pytest.raises(ValueError, match="promised 7 bytes but given 6"):
        Digest("t").field_parts(iter([b"abc", b"def"]), 7)


def test_fields_frames_each_item_as_field_does() -> None:
    """``fields`` joins its framing into one update for speed: the digest must be the one ``field`` gives,
    whatever mix of text, bytes and other buffers it is given (recipe keys recorded earlier must still match)."""
    from assetflow.hashing import Digest

    items = ("blake3:ab", "", "d\u00e9j\u00e0", b"\x00\x01", memoryview(b"xyz"), array("i", [1, 2, 3]), "tail")
    one_by_one = Digest("recipe")
    for item in items:
        one_by_one.field(item)
    assert Digest("recipe").fields(*items).hexdigest() == one_by_one.hexdigest()
    assert Digest("recipe").fields("ab", "c").hexdigest() != Digest("recipe").fields("a", "bc").hexdigest()
