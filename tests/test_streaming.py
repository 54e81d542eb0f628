"""An asset returning a polars LazyFrame is written with polars' streaming sink and hashed from the file
a column at a time; its data hash equals the in-memory path's (issue 17; docs/storage.md)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from assetflow import api
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
