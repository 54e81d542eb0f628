"""Lineage across backends (issue 3, item 5), through the real CLI on a real project:
an asset stored in PostgreSQL feeds one in Parquet that feeds one in DuckDB (or S3), and
staleness, early cutoff, restore and garbage collection hold across all three.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pg_support import DSN, pg_schema, plugin_test_helper, requires_postgres, root_conftest, sql

from assetflow.storage.base import Backends

s3_support = plugin_test_helper("assetflow-s3", "s3_support")
s3_endpoint, s3_env, s3_bucket = s3_support.s3_endpoint, s3_support.s3_env, s3_support.s3_bucket
ProjectDir = root_conftest().ProjectDir

__all__ = ["pg_schema", "s3_bucket", "s3_endpoint", "s3_env"]  # fixtures, imported so pytest finds them

pytestmark = requires_postgres

PIPELINE = '''
    import polars as pl
    from assetflow import asset, source

    raw = source("data/raw.csv")


    @asset(io="postgres")
    def orders(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.filter(pl.col("amount") > 0)


    @asset(io="parquet")
    def totals(orders: pl.DataFrame) -> pl.DataFrame:
        return orders.group_by("region").agg(pl.col("amount").sum(), pl.len().alias("n")).sort("region")


    @asset(io="THIRD")
    def report(totals: pl.DataFrame) -> pl.DataFrame:
        return totals.with_columns(share=pl.col("amount") / pl.col("amount").sum())
'''
RAW = "id,region,amount\n1,north,10\n2,south,-5\n3,north,7\n4,south,3\n"
ALL = {"orders", "totals", "report"}


def has_duckdb_backend(tmp_path: Path) -> bool:
    return "duckdb" in Backends(tmp_path, {}).classes()


@pytest.fixture(params=["duckdb", "s3"])
def project(request: pytest.FixtureRequest, tmp_path: Path, pg_schema: str) -> Any:
    third = request.param
    options = f'[tool.assetflow.io.postgres]\nschema = "{pg_schema}"\n'
    if third == "duckdb":
        if not has_duckdb_backend(tmp_path):
            pytest.skip("no duckdb storage backend installed yet (the built-in one is in progress)")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        endpoint = request.getfixturevalue("s3_endpoint")
        options += f'[tool.assetflow.io.s3]\nbucket = "{bucket}"\nendpoint_url = "{endpoint}"\nregion = "us-east-1"\n'
    project = ProjectDir(tmp_path / "project", ["pipeline"])
    (project.root / "pyproject.toml").write_text((project.root / "pyproject.toml").read_text() + options)
    project.write("pipeline.py", PIPELINE.replace("THIRD", third))
    project.write("data/raw.csv", RAW)
    project.third = third
    project.schema = pg_schema
    return project


def outcomes(project: Any, *args: str) -> dict[str, str]:
    result = project.materialize(*args)
    return {name: outcome for name, outcome in result.items() if name != "_"}


def current(project: Any) -> dict[str, Any]:
    from assetflow.state.store import StateStore

    store = StateStore(project.root / ".assetflow")
    try:
        return store.current()
    finally:
        store.close()


def view(project: Any, asset: str) -> list[tuple[Any, ...]]:
    return sql(f'select * from "{project.schema}"."{asset}" order by id')


def test_lineage_staleness_and_cutoff_across_postgres_parquet_and_a_third_backend(project: Any) -> None:
    assert outcomes(project) == dict.fromkeys(ALL, "ran")
    assert outcomes(project) == dict.fromkeys(ALL, "fresh")
    assert view(project, "orders") == [(1, "north", 10), (3, "north", 7), (4, "south", 3)]

    # Lineage: each materialization records the exact upstream versions it was made from.
    mats = current(project)
    assert {m.io for m in mats.values()} == {"postgres", "parquet", project.third}
    assert mats["totals"].upstream == {"orders": mats["orders"].data_hash}
    assert mats["report"].upstream == {"totals": mats["totals"].data_hash}
    assert mats["orders"].location.startswith(f"{project.schema}.orders__")

    # New rows order in PostgreSQL, same totals: the Parquet asset reruns, the last hop is cut off.
    (project.root / "data" / "raw.csv").write_text("id,region,amount\n3,north,7\n1,north,10\n2,south,-5\n4,south,3\n")
    assert outcomes(project) == {"orders": "ran", "totals": "ran", "report": "cutoff"}

    # A change the PostgreSQL asset filters out: cut off right there.
    (project.root / "data" / "raw.csv").write_text("id,region,amount\n3,north,7\n1,north,10\n2,south,-9\n4,south,3\n")
    assert outcomes(project) == {"orders": "ran", "totals": "cutoff", "report": "cutoff"}

    # Tampering with the PostgreSQL table is seen, and its downstream is stale through the other backends.
    location = current(project)["orders"].location
    sql(f'update "{project.schema}"."{location.split(".")[1]}" set amount = 1000 where id = 1')
    status = project.status()
    assert status["orders"]["state"] == "stale"
    assert "stored data changed outside assetflow (hash mismatch)" in status["orders"]["reasons"]
    assert status["totals"]["reasons"] == ["upstream `orders` is stale"]
    assert status["report"]["reasons"] == ["upstream `totals` is stale"]
    assert outcomes(project) == {"orders": "ran", "totals": "cutoff", "report": "cutoff"}
    assert (1, "north", 10) in view(project, "orders")

    # A real change flows through all three backends.
    before = view(project, "orders")
    (project.root / "data" / "raw.csv").write_text(RAW + "5,west,2\n")
    assert outcomes(project) == dict.fromkeys(ALL, "ran")
    assert (5, "west", 2) in view(project, "orders")

    # Back to data seen before: every version is restored, the PostgreSQL view moves back.
    (project.root / "data" / "raw.csv").write_text("id,region,amount\n3,north,7\n1,north,10\n2,south,-9\n4,south,3\n")
    assert outcomes(project) == dict.fromkeys(ALL, "restored")
    assert view(project, "orders") == before
    assert outcomes(project) == dict.fromkeys(ALL, "fresh")

    # Moving the Parquet asset to the third backend reruns it alone: equal content, equal hash.
    pipeline = project.root / "pipeline.py"
    pipeline.write_text(pipeline.read_text().replace('io="parquet"', f'io="{project.third}"'))
    assert outcomes(project) == {"orders": "fresh", "totals": "ran", "report": "cutoff"}

    # Garbage collection drops the old PostgreSQL versions, keeping the current one and its view.
    tables_before = sql("select count(*) from pg_tables where schemaname = %s", project.schema)[0][0]
    project.run("gc", "--keep", "0")
    tables = [r[0] for r in sql("select tablename from pg_tables where schemaname = %s", project.schema)]
    assert sorted(tables) == sorted(["assetflow$versions", current(project)["orders"].location.split(".")[1]])
    assert len(tables) < tables_before
    assert view(project, "orders") == before
    assert outcomes(project) == dict.fromkeys(ALL, "fresh")


@pytest.mark.parametrize("project", ["s3"], indirect=True)
def test_the_dsn_is_in_no_state_file_and_no_output(project: Any) -> None:
    password = "assetflow-test"
    assert password in DSN  # .ci/services.sh's test password: what must never leak
    materialized = project.run("materialize", "--json")
    status = project.run("status", "--json")
    listing = project.run("list", "--json")
    for proc in (materialized, status, listing):
        assert password not in proc.stdout + proc.stderr and DSN not in proc.stdout + proc.stderr
    for path in (project.root / ".assetflow").rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert json.loads(status.stdout)["assets"]


@pytest.mark.parametrize("project", ["s3"], indirect=True)
def test_a_server_error_names_the_asset_without_the_password(project: Any) -> None:
    wrong = DSN.replace("assetflow-test@", "wrong-password-77@")
    proc = project.run("materialize", "--json", env={"ASSETFLOW_POSTGRES_DSN": wrong})
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "wrong-password-77" not in output and "password authentication failed" in output
