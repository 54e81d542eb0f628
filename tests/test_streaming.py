"""An asset returning a polars LazyFrame is written with polars' streaming sink and hashed from the file
a column at a time; its data hash equals the in-memory path's (issue 17; docs/storage.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assetflow import api
from assetflow.fingerprint import data
from assetflow.fingerprint.data import parquet_file_hash, table_hash
from conftest import ProjectDir


def _frame(rows: int) -> pl.DataFrame:
    return pl.DataFrame({
        "id": range(rows),
        "name": [None if i % 7 == 0 else f"name-{i % 113}" for i in range(rows)],
        "v": [i * 0.5 if i % 5 else None for i in range(rows)],
        "flag": [i % 3 == 0 for i in range(rows)],
        "cat": pl.Series([f"c{i % 4}" for i in range(rows)], dtype=pl.Categorical),
    })


def test_a_parquet_files_streamed_hash_equals_the_tables(tmp_path: Path) -> None:
    frame = _frame(20_000)
    path = tmp_path / "t.parquet"
    pq.write_table(frame.to_arrow(), path, row_group_size=3_000)  # 7 row groups: chunking must not show
    assert pq.ParquetFile(path).num_row_groups == 7
    assert parquet_file_hash(path) == table_hash(frame.to_arrow())
    frame.lazy().sink_parquet(tmp_path / "s.parquet")
    assert parquet_file_hash(tmp_path / "s.parquet") == table_hash(frame.to_arrow())


def test_a_lazyframe_asset_is_sunk_and_hashed_like_its_collected_twin(project: ProjectDir) -> None:
    (project.root / "data").mkdir()
    _frame(30_000).write_csv(project.root / "data" / "big.csv")
    project.write("pipeline.py", '''
        from pathlib import Path

        import polars as pl
        from assetflow import asset, source

        CSV = str(Path(__file__).parent / "data" / "big.csv")

        big = source("data/big.csv")

        def query():
            return (pl.scan_csv(CSV).filter(pl.col("id") % 2 == 0)
                    .with_columns(w=pl.col("v") * 2, name=pl.col("name").str.to_uppercase()))

        @asset
        def streamed(big: pl.DataFrame) -> pl.LazyFrame:
            return query()

        @asset
        def collected(big: pl.DataFrame) -> pl.DataFrame:
            return query().collect()

        @asset
        def downstream(streamed: pl.DataFrame) -> pl.DataFrame:
            return streamed.head(3)
    ''')
    result = api.materialize(project=project.root, executor="inprocess")
    assert all(r.outcome == "ran" for r in result.results.values()), [r.error for r in result.results.values()]
    assert {n: r.outcome for n, r in result.results.items()} == dict.fromkeys(("streamed", "collected", "downstream"),
                                                                               "ran")
    assert result.results["streamed"].data_hash == result.results["collected"].data_hash
    loaded = api.load("streamed", project=project.root)
    assert loaded.height == 15_000 and loaded.equals(api.load("collected", project=project.root))
    assert not list((project.root / ".assetflow").rglob(".tmp-*")), "the sink's staging file was left behind"
    again = api.materialize(project=project.root, executor="inprocess")
    assert {r.outcome for r in again.results.values()} == {"fresh"}


@pytest.mark.parametrize("row_group_size", [1, 7, 3_000, 50_000])
def test_a_large_flat_column_is_hashed_a_row_group_at_a_time_to_the_same_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row_group_size: int
) -> None:
    """Above the threshold a flat column is read a row group at a time, once per field of the canonical
    form (validity, offsets, bytes): the hash must not move, whatever the row groups and nulls."""
    rows = 20_000 if row_group_size > 100 else 300
    table = pa.table({
        "id": pa.array(range(rows), pa.int64()),
        "name": pa.array([None if i % 7 == 0 else f"name-{i % 113}" * (i % 3) for i in range(rows)]),
        "big": pa.array([f"{i}" if i % 11 else None for i in range(rows)], pa.large_string()),
        "blob": pa.array([bytes([i % 256]) * (i % 5) for i in range(rows)], pa.binary()),
        "v": pa.array([i * 0.5 if i % 5 else None for i in range(rows)], pa.float64()),
        "small": pa.array([i % 100 if i % 2 else None for i in range(rows)], pa.int16()),
        "flag": pa.array([i % 3 == 0 for i in range(rows)]),
        "when": pa.array([i * 1_000 for i in range(rows)], pa.timestamp("us", tz="UTC")),
        "tags": pa.array([[str(i)] * (i % 3) for i in range(rows)]),
    })
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=row_group_size)
    expected = table_hash(table)
    assert parquet_file_hash(path) == expected
    passes: list[str] = []
    original = data._hash_flat_stream

    def counting(digest: Any, read: Any, rows: int, dtype: pa.DataType) -> None:
        passes.append(str(dtype))
        original(digest, read, rows, dtype)

    monkeypatch.setattr(data, "_STREAM_COLUMN_BYTES", 0)
    monkeypatch.setattr(data, "_hash_flat_stream", counting)
    assert parquet_file_hash(path) == expected
    # Every flat non-boolean column took the streamed path; booleans and lists kept the whole-column one.
    assert sorted(passes) == sorted(["int64", "string", "large_string", "binary", "double", "int16",
                                     "timestamp[us, tz=UTC]"])


def test_the_streamed_hash_tells_a_changed_value_and_a_moved_null(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "_STREAM_COLUMN_BYTES", 0)
    base = {"s": ["a", None, "ccc", "dd"] * 50, "n": [1, 2, None, 4] * 50}

    def hash_of(columns: dict[str, list[Any]]) -> str:
        path = tmp_path / "x.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=9)
        return parquet_file_hash(path)

    hashes = {hash_of(base)}
    for change in ({"s": ["a", "", "ccc", "dd"] * 50}, {"s": ["a", None, "cc", "cdd"] * 50},
                   {"n": [1, 2, 0, 4] * 50}, {"n": [1, None, 2, 4] * 50}):
        changed = {**base, **change}
        digest = hash_of(changed)
        assert digest == table_hash(pa.table(changed))
        hashes.add(digest)
    assert len(hashes) == 5, "a changed value or null went unseen by the streamed hash"


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 3_500])
def test_a_source_file_hashed_through_a_small_buffer_hashes_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Source files are read through a bounded buffer (not mapped, whose pages count as resident memory):
    every buffer boundary must hash to the bytes' own BLAKE3."""
    import blake3

    from assetflow.fingerprint import source

    monkeypatch.setattr(source, "_READ_BYTES", 1024)
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    (tmp_path / "f.csv").write_bytes(payload)
    assert source.file_hash(tmp_path / "f.csv") == f"blake3:{blake3.blake3(payload).hexdigest()}"
