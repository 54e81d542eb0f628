"""The Parquet backend's codec: small tables snappy, large ones zstd, unless the project chooses one; and its
dictionary encoding: under the same "auto", a table of few rows has it for its text only."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from assetflow.contracts import StoredData
from assetflow.fingerprint.data import parquet_file_hash, value_hash
from assetflow.storage.parquet import PLAIN_NUMBERS_ROWS, SMALL_FILE_BYTES, SMALL_TABLE_BYTES, ParquetBackend

SMALL = pl.DataFrame({"id": range(1_000), "v": [float(i) for i in range(1_000)]})
LARGE = pl.DataFrame({"id": range(SMALL_TABLE_BYTES // 8 + 1)})  # one int64 column just over the threshold
MANY_ROWS = pl.DataFrame({"key": [i % 17 for i in range(PLAIN_NUMBERS_ROWS + 1)],
                          "city": ["Oslo", "Lima"] * (PLAIN_NUMBERS_ROWS // 2) + ["Pune"]})  # under 1 MiB
MIXED = pl.DataFrame({
    "key": [i % 7 for i in range(1_000)],
    "city": [["Oslo", "Lima", "Pune"][i % 3] for i in range(1_000)],
    "code": [b"ab" if i % 2 else b"cd" for i in range(1_000)],
    "kind": pl.Series([["x", "y"][i % 2] for i in range(1_000)], dtype=pl.Categorical),
})


def stored_and_read_back(tmp_path: Path, options: dict[str, str], value: pl.DataFrame) -> tuple[ParquetBackend, StoredData]:
    """``value`` stored by a backend with ``options``, checked to load back equal."""
    backend = ParquetBackend(tmp_path, options)
    stored = backend.store("t", value)
    assert backend.load("t", stored.location, "polars").equals(value)
    return backend, stored


def codecs(backend: ParquetBackend, location: str) -> set[str]:
    metadata = pq.ParquetFile(backend.root / location).metadata
    return {metadata.row_group(g).column(c).compression
            for g in range(metadata.num_row_groups) for c in range(metadata.num_columns)}


@pytest.mark.parametrize(("options", "value", "expected"), [
    ({}, SMALL, {"SNAPPY"}),
    ({}, LARGE, {"ZSTD"}),
    ({"compression": "auto"}, SMALL, {"SNAPPY"}),
    ({"compression": "zstd"}, SMALL, {"ZSTD"}),
    ({"compression": "none"}, LARGE, {"UNCOMPRESSED"}),
])
def test_codec_follows_the_setting_and_by_default_the_tables_size(
    tmp_path: Path, options: dict[str, str], value: pl.DataFrame, expected: set[str]
) -> None:
    backend, stored = stored_and_read_back(tmp_path, options, value)
    assert codecs(backend, stored.location) == expected


@pytest.mark.parametrize("codec", ["auto", "zstd", "snappy", "none"])
def test_every_codecs_file_holds_the_content_its_data_hash_names(tmp_path: Path, codec: str) -> None:
    backend = ParquetBackend(tmp_path, {"compression": codec})
    stored = backend.store("t", SMALL)
    assert stored.data_hash == value_hash(SMALL)
    assert parquet_file_hash(backend.root / stored.location) == stored.data_hash  # the file read back, hashed


def test_a_lazy_frame_streamed_with_auto_is_zstd(tmp_path: Path) -> None:
    backend = ParquetBackend(tmp_path, {})
    stored = backend.store("t", SMALL.lazy())
    assert codecs(backend, stored.location) == {"ZSTD"}


def dictionary_encoded(backend: ParquetBackend, location: str) -> set[str]:
    metadata = pq.ParquetFile(backend.root / location).metadata
    return {metadata.schema.column(c).path for c in range(metadata.num_columns)
            if metadata.row_group(0).column(c).has_dictionary_page}


@pytest.mark.parametrize(("options", "value", "expected"), [
    ({}, MIXED, {"city", "code", "kind"}),  # small, auto: text and bytes only; numbers plain
    ({"compression": "snappy"}, MIXED, {"key", "city", "code", "kind"}),  # a chosen codec: pyarrow's default
    ({}, LARGE, {"id"}),  # large, auto: every column
    ({}, MANY_ROWS, {"key", "city"}),  # more rows than PLAIN_NUMBERS_ROWS, auto: every column
])
def test_numbers_in_a_table_of_few_rows_have_no_dictionary_under_auto(
    tmp_path: Path, options: dict[str, str], value: pl.DataFrame, expected: set[str]
) -> None:
    backend, stored = stored_and_read_back(tmp_path, options, value)
    assert dictionary_encoded(backend, stored.location) == expected
    assert parquet_file_hash(backend.root / stored.location) == stored.data_hash == value_hash(value)


def every_type(rows: int) -> pl.DataFrame:
    """A frame of every column type the backend stores, ``rows`` long, with nulls."""
    import datetime as dt
    import decimal

    def cycle(values: list[object]) -> list[object]:
        return [values[i % len(values)] for i in range(rows)]

    return pl.DataFrame({
        "i8": pl.Series(cycle([1, None, -3]), dtype=pl.Int8),
        "u32": pl.Series(cycle([1, 2, 3]), dtype=pl.UInt32),
        "f32": pl.Series(cycle([1.5, None, 3.0]), dtype=pl.Float32),
        "b": cycle([True, False, None]),
        "s": cycle(["a", None, "ccc"]),
        "bin": cycle([b"x", b"y", None]),
        "d": cycle([dt.date(2020, 1, 1), None]),
        "ts": cycle([dt.datetime(2020, 1, 1, 1, 2, 3, 456789), None]),
        "tsz": pl.Series(cycle([dt.datetime(2020, 1, 1), None])).dt.replace_time_zone("Europe/Paris"),
        "tsns": pl.Series(cycle([dt.datetime(2020, 1, 1), None])).cast(pl.Datetime("ns")),
        "t": cycle([dt.time(1, 2, 3), None]),
        "dur": cycle([dt.timedelta(seconds=5), None]),
        "dec": pl.Series(cycle([decimal.Decimal("1.23"), None]), dtype=pl.Decimal(10, 2)),
        "cat": pl.Series(cycle(["a", "b"]), dtype=pl.Categorical),
        "enum": pl.Series(cycle(["x", "y"]), dtype=pl.Enum(["x", "y"])),
        "lst": cycle([[1, 2], [3], None]),
        "arr": pl.Series(cycle([[1, 2], [3, 4]]), dtype=pl.Array(pl.Int64, 2)),
        "st": cycle([{"a": 1, "b": "u"}, None]),
        "noise": [float(i) * 1.000001 for i in range(rows)],  # makes the large file large
    })


@pytest.mark.parametrize("rows", [3, 80_000])  # under and over SMALL_FILE_BYTES, read by different readers
def test_a_loaded_file_is_the_frame_polars_and_the_table_pyarrow_would_read(tmp_path: Path, rows: int) -> None:
    backend = ParquetBackend(tmp_path, {})
    value = every_type(rows)
    stored = backend.store("t", value)
    path = backend.root / stored.location
    assert (path.stat().st_size < SMALL_FILE_BYTES) == (rows == 3)
    loaded = backend.load("t", stored.location, "polars")
    assert isinstance(loaded, pl.DataFrame)
    assert loaded.schema == pl.read_parquet(path).schema == value.schema
    assert loaded.equals(value)
    table = backend.load("t", stored.location, "arrow")
    assert table.equals(pq.read_table(path)) and table.schema.equals(pq.read_table(path).schema, check_metadata=True)
    assert backend.check("t", stored.location, stored.data_hash, "another token").status == "ok"
