"""Values polars, DuckDB and pandas users return are stored as tables; a LazyFrame parameter gets a scan."""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from assetflow import api
from assetflow.fingerprint.data import value_hash
from assetflow.storage.table import require_table
from conftest import ProjectDir

pd = pytest.importorskip("pandas")

EXPECTED = pl.DataFrame({"day": [1, 2], "amount": [10.0, 20.5]})


@pytest.mark.parametrize("value", [
    pytest.param(EXPECTED.lazy(), id="lazyframe"),
    pytest.param(EXPECTED.to_arrow().to_reader(), id="record-batch-reader"),
    pytest.param(pd.DataFrame({"day": [1, 2], "amount": [10.0, 20.5]}), id="pandas-default-index"),
    pytest.param(pd.DataFrame({"day": [0, 1, 2], "amount": [0.0, 10.0, 20.5]}).iloc[1:].assign(day=[1, 2]),
                 id="pandas-filtered-index"),
    pytest.param(pd.DataFrame({"amount": [10.0, 20.5]}, index=pd.Index([1, 2], name="day")), id="pandas-named-index"),
])
def test_table_like_values_store_as_the_same_table(value: object) -> None:
    table = require_table("revenue", value, "parquet")
    assert table.column_names == ["day", "amount"]
    assert value_hash(table) == value_hash(EXPECTED)
    assert table.schema.metadata is None  # pandas' own metadata is not stored


def test_a_duckdb_relation_is_stored_as_its_result() -> None:
    with duckdb.connect() as con:
        relation = con.sql("SELECT * FROM (VALUES (1::BIGINT, 10.0::DOUBLE), (2, 20.5::DOUBLE)) t(day, amount) ORDER BY day")
        assert value_hash(require_table("revenue", relation, "duckdb")) == value_hash(EXPECTED)


def test_a_pandas_multiindex_keeps_its_named_levels() -> None:
    frame = pd.DataFrame({"day": [1, 2], "shop": ["a", "b"], "amount": [1.0, 2.0]}).set_index(["day", "shop"])
    assert require_table("revenue", frame, "parquet").column_names == ["day", "shop", "amount"]


PIPELINE = '''
    import duckdb
    import pandas as pd
    import polars as pl
    from assetflow import asset

    @asset
    def lazy_orders() -> pl.LazyFrame:
        return pl.LazyFrame({"day": [1, 1, 2], "amount": [5.0, 5.0, 20.5]})

    @asset(io="duckdb")
    def sql_orders() -> duckdb.DuckDBPyRelation:
        return duckdb.sql("SELECT 1::BIGINT AS day, 10.0::DOUBLE AS amount UNION ALL SELECT 2, 20.5 ORDER BY day")

    @asset
    def pandas_orders() -> pd.DataFrame:
        return pd.DataFrame({"day": [1, 2], "amount": [10.0, 20.5]})

    @asset
    def daily(lazy_orders: pl.LazyFrame, sql_orders: pl.LazyFrame, pandas_orders: pd.DataFrame) -> pl.LazyFrame:
        assert isinstance(lazy_orders, pl.LazyFrame) and isinstance(sql_orders, pl.LazyFrame)
        assert "PARQUET SCAN" in lazy_orders.explain().upper(), "a scan of the stored file, not a loaded copy"
        totals = lazy_orders.group_by("day").agg(pl.col("amount").sum()).sort("day")
        assert totals.collect().equals(sql_orders.collect()) and totals.collect().equals(pandas_orders)
        return totals
'''


def test_lazy_sql_and_pandas_assets_run_and_a_lazy_parameter_scans(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    result = api.materialize(project=project.root, executor="inprocess")
    assert {n: r.outcome for n, r in result.results.items()} == dict.fromkeys(
        ("lazy_orders", "sql_orders", "pandas_orders", "daily"), "ran"), {n: r.error for n, r in result.results.items()}
    assert api.load("daily", project=project.root).equals(EXPECTED)
    assert result.results["daily"].data_hash == value_hash(EXPECTED)


def test_a_value_that_is_no_table_still_names_the_formats() -> None:
    with pytest.raises(Exception, match="a polars DataFrame or LazyFrame, a pyarrow Table, a DuckDB relation"):
        require_table("report", pa.array([1]), "parquet")
