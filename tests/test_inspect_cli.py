"""status, why, lineage, show, history and list through the real CLI on a real project."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ProjectDir

PIPELINE = '''
    import dataclasses

    import polars as pl
    from assetflow import asset, source
    import helpers

    raw = source("data/raw.csv", freshness="1h")


    @dataclasses.dataclass(frozen=True)
    class Limits:
        minimum: int = 0


    @asset(group="staging", tags={"tier": "bronze"}, config=Limits())
    def clean(raw: pl.DataFrame, config: Limits) -> pl.DataFrame:
        """Rows with a positive value."""
        return raw.filter(pl.col("value") > config.minimum)


    @asset(group="marts", freshness="1d")
    def doubled(clean: pl.DataFrame) -> pl.DataFrame:
        return clean.with_columns(helpers.scale(pl.col("value")).alias("value"))


    @asset(group="marts", tags={"tier": "gold"})
    def total(doubled: pl.DataFrame) -> pl.DataFrame:
        return doubled.select(pl.col("value").sum())
'''

HELPERS = '''
    import polars as pl

    FACTOR = 2


    def scale(expr: pl.Expr) -> pl.Expr:
        return expr * FACTOR
'''

RAW = "id,value\n1,10\n2,-5\n3,7\n"


@pytest.fixture
def built(project: ProjectDir) -> ProjectDir:
    project.write("pipeline.py", PIPELINE)
    project.write("helpers.py", HELPERS)
    project.write("data/raw.csv", RAW)
    assert project.ran() == {"clean", "doubled", "total"}
    return project


def payload(project: ProjectDir, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = project.run(*args, "--json", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads(proc.stdout)
    assert data["schema_version"] == 1 and data["command"] == args[0]
    return data


def status(project: ProjectDir, *args: str) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in payload(project, "status", *args)["assets"]}


def age_state(project: ProjectDir, asset: str, seconds: float) -> None:
    """Pretend the current version of ``asset`` was made ``seconds`` ago."""
    with sqlite3.connect(project.root / ".assetflow" / "state.db") as db:
        db.execute("UPDATE materializations SET finished_at = finished_at - ?, started_at = started_at - ? "
                   "WHERE id = (SELECT materialization FROM pointers WHERE asset = ?)", (seconds, seconds, asset))


def test_status_check_and_reasons_name_the_helper(built: ProjectDir) -> None:
    assert built.run("status", "--check").returncode == 0
    built.write("helpers.py", HELPERS.replace("return expr * FACTOR", "return expr * FACTOR + 1"))
    rows = status(built)
    assert rows["doubled"]["state"] == "stale"
    assert rows["doubled"]["reasons"] == ["code changed: helper `scale` in helpers.py"]
    assert rows["total"]["reasons"] == ["upstream `doubled` is stale"]
    assert rows["clean"]["state"] == "fresh" and rows["raw"]["state"] == "observed"
    assert built.run("status", "--check").returncode == 1
    assert built.run("status", "--check", "clean").returncode == 0  # only the selection counts
    text = built.run("status").stdout
    assert "code changed: helper `scale` in helpers.py" in text and "last updated" in text


def test_status_reports_overdue_with_by_how_much(built: ProjectDir) -> None:
    age_state(built, "doubled", 2 * 86400)
    old = time.time() - 3 * 3600
    os.utime(built.root / "data" / "raw.csv", (old, old))
    rows = status(built)
    assert rows["doubled"]["state"] == "overdue"
    assert rows["doubled"]["states"] == ["overdue", "fresh"]
    assert rows["doubled"]["overdue_by_s"] == pytest.approx(86400, abs=120)
    assert rows["doubled"]["reasons"] == ["overdue by 1d (freshness: at most 1d old)"]
    assert rows["total"]["state"] == "fresh"  # overdue never makes anything stale
    assert rows["raw"]["state"] == "overdue" and rows["raw"]["reasons"][0].startswith("overdue by 2h")
    listed = payload(built, "list", "status:overdue")["assets"]
    assert [a["name"] for a in listed] == ["raw", "doubled"]
    assert built.run("status", "--check", "total").returncode == 0
    assert built.run("status", "--check", "doubled").returncode == 1


def test_failed_asset_shows_the_error(built: ProjectDir) -> None:
    built.write("pipeline.py", PIPELINE.replace("return doubled.select(", "raise ValueError('boom')\n        return doubled.select("))
    assert built.materialize()["total"] == "failed"
    row = status(built)["total"]
    assert row["state"] == "failed" and row["states"] == ["failed", "stale"]
    assert row["reasons"][0] == "the last run failed: ValueError: boom"
    runs = payload(built, "history", "total")["runs"]
    assert runs[0]["status"] == "failed"
    assert [e["outcome"] for e in runs[0]["assets"]] == ["failed"]
    assert "ValueError: boom" in runs[0]["assets"][0]["error"]
    assert "ValueError: boom" in built.run("history").stdout


def test_why_shows_inputs_code_diff_config_and_library_drift(built: ProjectDir) -> None:
    with sqlite3.connect(built.root / ".assetflow" / "state.db") as db:
        db.execute("""UPDATE materializations SET libraries = '{"polars": "0.0.1"}' WHERE asset = 'clean'""")
    built.write("helpers.py", HELPERS.replace("FACTOR = 2", "FACTOR = 3"))
    built.write("pipeline.py", PIPELINE.replace("config=Limits()", "config=Limits(minimum=1)"))
    (built.root / "data" / "raw.csv").write_text(RAW + "4,5\n")
    why = payload(built, "why", "clean")
    assert why["state"] == "stale"
    assert "configuration changed" in why["reasons"] and "source `raw` changed" in why["reasons"]
    assert why["config"] == [{"field": "minimum", "old": 0, "new": 1}]
    [change] = why["inputs"]
    assert change["name"] == "raw" and change["kind"] == "source" and change["change"] == "new data"
    assert change["old_hash"].startswith("blake3:") and change["new_hash"] != change["old_hash"]
    assert change["new_at"] is not None
    assert why["libraries"][0]["distribution"] == "polars" and why["libraries"][0]["old"] == "0.0.1"

    why = payload(built, "why", "doubled")
    assert why["reasons"] == ["code changed: constant `FACTOR` in helpers.py", "upstream `clean` is stale"]
    [code] = why["code"]
    assert code["description"] == "constant `FACTOR` in helpers.py"
    assert "-2\n+3\n" in code["diff"]
    assert why["upstream_not_fresh"] == {"clean": "stale"}
    text = built.run("why", "doubled").stdout
    assert "--- helpers.py::FACTOR" in text and "+3" in text


def test_why_after_upstream_recomputed(built: ProjectDir) -> None:
    (built.root / "data" / "raw.csv").write_text(RAW + "4,5\n")
    assert built.ran("clean") == {"clean"}
    why = payload(built, "why", "doubled")
    [change] = why["inputs"]
    assert change["kind"] == "asset" and change["name"] == "clean"
    assert change["old_at"] is not None and change["new_at"] > change["old_at"]
    assert why["reasons"] == ["upstream `clean` has new data"]


def test_lineage_formats(built: ProjectDir) -> None:
    text = built.run("lineage", "doubled").stdout
    assert text.splitlines()[0] == "doubled [fresh]"
    assert "  upstream:" in text and "└── clean [fresh]" in text and "raw (source)" in text
    assert "└── total [fresh]" in text
    up = built.run("lineage", "total", "--upstream", "--depth", "1").stdout
    assert "doubled" in up and "clean" not in up and "downstream" not in up
    mermaid = built.run("lineage", "doubled", "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart LR") and "clean --> doubled" in mermaid and ":::fresh" in mermaid
    dot = built.run("lineage", "doubled", "--format", "dot").stdout
    assert dot.startswith("digraph lineage {") and '"clean" -> "doubled";' in dot
    graph = payload(built, "lineage", "+total")
    assert graph["roots"] == ["raw", "clean", "doubled", "total"]
    assert {"upstream": "raw", "downstream": "clean", "kind": "data"} in graph["edges"]
    assert {n["name"]: n["state"] for n in graph["nodes"]}["total"] == "fresh"


def test_lineage_of_a_version(built: ProjectDir) -> None:
    first = payload(built, "show", "total")["assets"][0]["current"]
    built.write("helpers.py", HELPERS.replace("FACTOR = 2", "FACTOR = 3"))
    assert built.ran() == {"doubled", "total"}
    tree = payload(built, "lineage", "total", "--version", first["data_hash"][7:15])["version"]
    assert tree["name"] == "total" and tree["current"] is False
    assert tree["materialization_id"] == first["id"]
    [doubled] = tree["upstream"]
    assert doubled["name"] == "doubled" and doubled["current"] is False
    [clean] = doubled["upstream"]
    assert clean["current"] is True and clean["upstream"][0]["name"] == "raw"
    text = built.run("lineage", "total", "--version", str(first["id"])).stdout
    assert text.startswith(f"total @ {first['data_hash'][:19]}") and "not current" in text
    bad = built.run("lineage", "total", "--version", "ffffffff", check=False)
    assert bad.returncode == 2 and "has no version 'ffffffff'" in bad.stderr


def test_show(built: ProjectDir) -> None:
    [clean] = payload(built, "show", "clean")["assets"]
    assert clean["description"] == "Rows with a positive value."
    assert clean["tags"] == {"tier": "bronze"} and clean["group"] == "staging"
    current = clean["current"]
    assert current["rows"] == 2 and current["bytes"] > 0 and current["data_hash"].startswith("blake3:")
    assert [c["name"] for c in current["schema"]] == ["id", "value"]
    assert current["upstream"]["raw"].startswith("blake3:")
    assert clean["code_fingerprint"] == current["code_fingerprint"]
    [raw] = payload(built, "show", "raw")["assets"]
    assert raw["kind"] == "source" and raw["files"][0]["path"] == "data/raw.csv" and raw["freshness"] == "1h"
    text = built.run("show", "clean").stdout
    assert "schema:" in text and "last materializations:" in text


def test_selection_errors_exit_2_with_a_caret(built: ProjectDir) -> None:
    proc = built.run("status", "+dubled", check=False)
    assert proc.returncode == 2
    assert "Unknown asset 'dubled' selected. Did you mean 'doubled'?" in proc.stderr
    assert proc.stderr.rstrip().endswith("+dubled\n   ^^^^^^")
    assert [a["name"] for a in payload(built, "list", "group:marts,not tag:tier")["assets"]] == ["doubled"]
    assert [a["name"] for a in payload(built, "list", "+total", "--exclude", "kind:source")["assets"]] == [
        "clean", "doubled", "total"]


def backdate(project: ProjectDir) -> None:
    """Age the project's files past the racy window, so their stats may vouch for their content."""
    past = time.time_ns() - 60 * 10**9
    for path in project.root.rglob("*"):
        if ".assetflow" not in path.parts:
            os.utime(path, ns=(past, past))


def test_status_fast_path_is_used_only_when_nothing_changed(built: ProjectDir) -> None:
    backdate(built)
    assert built.ran() == set()  # a full check: writes the no-op snapshot and caches the graph
    full = payload(built, "status", env={"ASSETFLOW_NO_FAST_PATH": "1"})
    assert full["fast_path"] is False
    fast = payload(built, "status")
    assert fast["fast_path"] is True
    assert fast["assets"] == [dict(a, age_s=b["age_s"]) for a, b in zip(full["assets"], fast["assets"])]
    os.utime(built.root / "helpers.py")  # touched, not changed: the full path answers and re-caches the graph
    assert payload(built, "status")["fast_path"] is False
    assert payload(built, "status", "tag:tier=gold")["assets"][0]["name"] == "total"
    assert [a["name"] for a in payload(built, "status", "status:fresh")["assets"]] == ["clean", "doubled", "total"]
    helpers = built.root / "helpers.py"
    helpers.write_text(helpers.read_text().replace("FACTOR = 2", "FACTOR = 5"))
    changed = payload(built, "status")
    assert changed["fast_path"] is False
    assert {a["name"]: a["state"] for a in changed["assets"]}["doubled"] == "stale"


def test_python_api(built: ProjectDir) -> None:
    script = Path(built.root / "use_api.py")
    script.write_text('''
import json, sys
import assetflow

rows = assetflow.status("+doubled", project=".")
first = assetflow.load("total", project=".")
graph = assetflow.lineage("doubled", project=".")
print(json.dumps({"status": [[r.name, r.state] for r in rows], "total": first.to_dicts(),
                  "nodes": list(graph.nodes), "mermaid": graph.render("mermaid").splitlines()[0]}))
''')
    built.write("helpers.py", HELPERS.replace("FACTOR = 2", "FACTOR = 3"))
    first = payload(built, "show", "total")["assets"][0]["current"]
    assert built.ran() == {"doubled", "total"}
    proc = subprocess.run([sys.executable, str(script)], cwd=built.root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == [["raw", "observed"], ["clean", "fresh"], ["doubled", "fresh"]]
    assert data["total"] == [{"value": 51}]
    assert data["nodes"] == ["raw", "clean", "doubled", "total"] and data["mermaid"] == "flowchart LR"
    old = subprocess.run([sys.executable, "-c", f"import assetflow; print(assetflow.load('total', "
                          f"version='{first['data_hash'][7:17]}', project='.').to_dicts())"],
                         cwd=built.root, capture_output=True, text=True)
    assert old.returncode == 0, old.stderr
    assert old.stdout.strip() == "[{'value': 34}]"


def test_cron_policy_and_exclude(built: ProjectDir) -> None:
    built.write("pipeline.py", PIPELINE.replace('@asset(group="marts", tags={"tier": "gold"})',
                                                '@asset(group="marts", tags={"tier": "gold"}, freshness="cron:* * * * *")'))
    age_state(built, "total", 150)
    rows = status(built, "--exclude", "kind:source")
    assert list(rows) == ["clean", "doubled", "total"]
    assert rows["total"]["states"] == ["overdue", "fresh"]  # a policy is metadata: it never makes an asset stale
    assert 0 <= rows["total"]["overdue_by_s"] < 61  # counted from the last scheduled minute
    assert "expected on cron '* * * * *'" in rows["total"]["reasons"][0]
    proc = built.run("status", "--check", "--exclude", "total")
    assert proc.returncode == 0, proc.stdout


def test_a_source_without_files_is_missing_and_blocks_its_downstream(built: ProjectDir) -> None:
    (built.root / "data" / "raw.csv").unlink()
    rows = status(built)
    assert rows["raw"]["state"] == "missing" and rows["raw"]["reasons"] == ["no file matches 'data/raw.csv'"]
    assert rows["clean"]["state"] == "stale"
    assert rows["total"]["reasons"] == ["source `raw` has no files ('data/raw.csv')"]
    assert built.run("status", "--check").returncode == 1
