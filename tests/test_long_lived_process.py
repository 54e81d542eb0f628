"""One process, many runs (a notebook, a service, ``assetflow ui``): edits to the project's files count.

The code fingerprint reads the files; the values must come from the same files, not from the
modules the process imported first, or an old result would be recorded under the new code.
"""

from __future__ import annotations

import pytest

from conftest import ProjectDir

from assetflow import api

PIPELINE = '''
    import polars as pl
    from assetflow import asset
    from helpers import factor

    @asset
    def scaled() -> pl.DataFrame:
        return pl.DataFrame({"v": [VALUE * factor()]})
'''


def test_edited_modules_and_helpers_are_imported_again(project: ProjectDir) -> None:
    executor = "inprocess"  # the process pool starts workers that import the files themselves
    project.write("pipeline.py", PIPELINE.replace("VALUE", "1"))
    project.write("helpers.py", "def factor() -> int:\n    return 10\n")
    assert api.materialize(project=project.root, executor=executor).ok
    assert api.load("scaled", project=project.root)["v"].to_list() == [10]
    project.write("pipeline.py", PIPELINE.replace("VALUE", "2"))
    result = api.materialize(project=project.root, executor=executor)
    assert result.results["scaled"].outcome == "ran"
    assert api.load("scaled", project=project.root)["v"].to_list() == [20]
    project.write("helpers.py", "def factor() -> int:\n    return 100\n")
    assert api.materialize(project=project.root, executor=executor).results["scaled"].outcome == "ran"
    assert api.load("scaled", project=project.root)["v"].to_list() == [200]
    assert api.materialize(project=project.root, executor=executor).results["scaled"].outcome == "fresh"


def test_loading_never_removes_modules_it_did_not_import(project: ProjectDir, monkeypatch) -> None:
    """A script (or ``python -``) in the project folder is ``__main__``; loading must leave it and its imports."""
    import sys
    import types

    project.write("pipeline.py", PIPELINE.replace("VALUE", "1"))
    project.write("helpers.py", "def factor() -> int:\n    return 10\n")
    script = types.ModuleType("__main__")
    script.__file__ = str(project.root / "run.py")
    monkeypatch.setitem(sys.modules, "__main__", script)
    mine = types.ModuleType("my_notes")
    mine.__file__ = str(project.root / "my_notes.py")
    monkeypatch.setitem(sys.modules, "my_notes", mine)
    assert api.materialize(project=project.root, executor="inprocess").ok
    assert api.load("scaled", project=project.root)["v"].to_list() == [10]
    assert sys.modules["__main__"] is script and sys.modules["my_notes"] is mine


SCRIPT = '''
import pickle
import sys

import assetflow


class Point:
    def __init__(self, x):
        self.x = x


assert assetflow.materialize().ok
assert assetflow.load("scaled")["v"].to_list() == [10]
import duckdb  # noqa: E402,F401 - failed with "No module named '__main__'"

assert pickle.loads(pickle.dumps(Point(3))).x == 3
print("ok", "__main__" in sys.modules)
'''


@pytest.mark.slow
def test_python_stdin_in_the_project_folder_keeps_its_main(project: ProjectDir) -> None:
    """``python -`` and a script in the project folder: ``__main__`` survives loading and materializing."""
    import os
    import subprocess
    import sys

    project.write("pipeline.py", PIPELINE.replace("VALUE", "1"))
    project.write("helpers.py", "def factor() -> int:\n    return 10\n")
    project.write("run.py", SCRIPT)
    for args, stdin in (([sys.executable, "-"], SCRIPT), ([sys.executable, "run.py"], None)):
        proc = subprocess.run(args, input=stdin, cwd=project.root, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "ok True"


def test_a_kept_workspace_checks_a_rewritten_version_by_its_new_record(project: ProjectDir, monkeypatch) -> None:
    """A daemon keeps one workspace across ticks. A run elsewhere (``--force``) rewrites a version at the same
    content-addressed location; the next assessment trusts the new record's token instead of the one it verified
    before, which read the whole file back to hash it on every such tick (and kept every token ever verified)."""
    import assetflow.fingerprint.data as data_module
    from assetflow.workspace import Workspace

    project.write("pipeline.py", PIPELINE.replace("VALUE", "3"))
    project.write("helpers.py", "def factor() -> int:\n    return 1\n")
    assert api.materialize(project=project.root, executor="inprocess").ok
    kept = Workspace.load(project.root)
    try:
        assert kept.assess_all()["scaled"].fresh
        assert api.materialize("scaled", force=True, project=project.root, executor="inprocess").ok
        hashed: list[object] = []
        table_hash = data_module.table_hash
        monkeypatch.setattr(data_module, "table_hash", lambda table: hashed.append(table) or table_hash(table))
        assert kept.assess_all()["scaled"].fresh
        assert hashed == []  # the file was checked by its stat token, not read back
        assert len(kept._verified) == 1
    finally:
        kept.close()


DAILY = '''
    import polars as pl
    from assetflow import asset, source
    from assetflow.partitions import daily

    DAYS = daily("2024-03-01", end="2024-03-05")
    raw = source("data/raw.csv")
    ev = source("data/ev/{date}.csv", partitions=DAYS)

    @asset
    def total(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.select(pl.col("n").sum())

    @asset(partitions=DAYS)
    def daily_ev(ev: pl.DataFrame) -> pl.DataFrame:
        return ev
'''


def test_a_workspace_reused_between_calls_sees_the_files_as_they_are_at_each_call(project: ProjectDir) -> None:
    """The notebook pattern of docs/api.md (``project=ws``): a rewritten file and a new day's file are seen by the
    next call, as a new process sees them; before, the workspace answered fresh and ran nothing."""
    project.write("pipeline.py", DAILY)
    project.write("data/raw.csv", "n\n1\n2\n")
    for day in (1, 2):
        project.write(f"data/ev/2024-03-0{day}.csv", f"n\n{day}\n")
    ws = api.workspace(project.root)
    try:
        assert api.materialize(project=ws, executor="inprocess").ok
        project.write("data/raw.csv", "n\n1\n2\n300\n")
        project.write("data/ev/2024-03-02.csv", "n\n20\n")
        project.write("data/ev/2024-03-03.csv", "n\n3\n")
        states = {s.name: s for s in api.status(project=ws)}
        assert states["total"].state == "stale"
        assert states["daily_ev"].partitions is not None
        assert [(r["first"], r["state"], r["reason"]) for r in states["daily_ev"].partitions["ranges"]] == [
            ("2024-03-01", "fresh", ""), ("2024-03-02", "stale", "source `ev` changed"),
            ("2024-03-03", "missing", "never materialized"), ("2024-03-04", "missing", "no source data yet")]
        result = api.materialize(project=ws, executor="inprocess")
        assert result.ok and result.results["total"].outcome == "ran"
        assert api.load("total", project=ws)["n"].to_list() == [303]
        assert api.load("daily_ev", project=ws)["n"].to_list() == [1, 20, 3]
        assert {s.name: s.state for s in api.status(project=ws)}["daily_ev"] == "fresh"
    finally:
        ws.close()


def test_a_command_that_keeps_its_observations_looks_at_the_files_once(project: ProjectDir, monkeypatch) -> None:
    """The CLI's command (several calls, one workspace) and the page (it watches the files) keep what they observed:
    ``keep_observations`` spares them a stat of every source file per call."""
    import assetflow.fingerprint.source as source_module

    project.write("pipeline.py", DAILY)
    project.write("data/raw.csv", "n\n1\n")
    observed: list[str] = []
    observe = source_module.observe_source
    monkeypatch.setattr(source_module, "observe_source", lambda spec, *a: observed.append(spec.name) or observe(spec, *a))
    ws = api.workspace(project.root)
    try:
        ws.keep_observations = True
        api.status(project=ws)
        api.status(project=ws)
        assert observed == ["raw"]
        ws.keep_observations = False
        api.status(project=ws)
        assert observed == ["raw", "raw"]
    finally:
        ws.close()
