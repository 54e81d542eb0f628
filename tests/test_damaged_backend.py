"""A damaged (truncated) DuckDB file fails only the assets stored in it, and ``doctor --repair`` really repairs it."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from assetflow import api
from assetflow.cli import main
from conftest import ProjectDir

PIPELINE = '''
    import polars as pl
    from assetflow import asset

    @asset(io="duckdb")
    def d() -> pl.DataFrame:
        return pl.DataFrame({"v": list(range(20_000))})

    @asset
    def p() -> pl.DataFrame:
        return pl.DataFrame({"v": [1]})

    @asset
    def after_d(d: pl.DataFrame) -> pl.DataFrame:
        return d.head(1)
'''


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _garble_a_block(path: Path) -> None:
    """Bytes overwritten inside the file: DuckDB opens it and then finds a block whose checksum fails."""
    with open(path, "r+b") as handle:
        handle.seek(max(4096 * 3, path.stat().st_size - 300_000))
        handle.write(random.Random(0).randbytes(100_000))


@pytest.mark.parametrize("damage", [_truncate, _garble_a_block], ids=["truncated", "garbled"])
def test_a_damaged_duckdb_file_fails_only_its_assets_and_doctor_repairs_it(project: ProjectDir, damage) -> None:
    project.write("pyproject.toml", '[tool.assetflow]\nmodules = ["pipeline"]\n\n'
                  '[tool.assetflow.io.duckdb]\nkeep_open = 0\n')  # no connection of this process outlives a call
    project.write("pipeline.py", PIPELINE)
    assert api.materialize(project=project.root, executor="inprocess").ok
    warehouse = project.root / ".assetflow" / "data" / "warehouse.duckdb"
    damage(warehouse)
    args = ["--project", str(project.root), "--json"]

    status = CliRunner().invoke(main, ["status", *args])  # used to fail for the whole project
    assert status.exit_code == 0, status.output
    rows = {r["name"]: r for r in json.loads(status.output)["assets"]}
    assert rows["p"]["state"] == "fresh" and rows["d"]["state"] == "missing"
    assert "is damaged" in rows["d"]["reasons"][0] and "doctor --repair" in rows["d"]["reasons"][0]

    run = api.materialize(project=project.root, executor="inprocess")
    outcomes = {n: r.outcome for n, r in run.results.items()}
    assert outcomes == {"d": "failed", "p": "fresh", "after_d": "skipped"}
    error = run.results["d"].error or ""
    assert error.startswith("DamagedStorageError: The DuckDB file") and "Traceback" not in error

    found = CliRunner().invoke(main, ["doctor", *args])
    assert found.exit_code == 1
    [damaged] = [f for f in json.loads(found.output)["findings"] if f["kind"] == "data_damaged"]
    assert damaged["path"] == str(warehouse) and not damaged["repaired"]

    repaired = CliRunner().invoke(main, ["doctor", "--repair", *args])
    assert repaired.exit_code == 0, repaired.output
    assert not warehouse.exists() and len(list(warehouse.parent.glob("warehouse.duckdb.damaged-*"))) == 1
    run = api.materialize(project=project.root, executor="inprocess")
    assert {n: r.outcome for n, r in run.results.items()} == {"d": "ran", "p": "fresh", "after_d": "cutoff"}
    assert api.load("d", project=project.root).height == 20_000
    assert CliRunner().invoke(main, ["doctor", *args]).exit_code == 0
