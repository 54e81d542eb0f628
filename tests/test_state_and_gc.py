"""The state store's schema migrations and refusals, and garbage collection of versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from assetflow.errors import StateError
from assetflow.state.schema import LATEST_VERSION, MIGRATIONS
from assetflow.state.store import STATE_FILE, StateStore
from conftest import ProjectDir


def test_old_schema_is_migrated_in_place(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / STATE_FILE)
    db.executescript(MIGRATIONS[0])
    db.execute("INSERT INTO runs (run_id, started_at, status) VALUES ('r1', 1.0, 'succeeded')")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = StateStore(tmp_path)
    assert store.runs()[0]["run_id"] == "r1"  # data kept
    store.set_meta("k", "v")  # the table migration 2 added works
    assert store.get_meta("k") == "v"
    version = sqlite3.connect(tmp_path / STATE_FILE).execute("PRAGMA user_version").fetchone()[0]
    assert version == LATEST_VERSION


def test_state_from_a_newer_assetflow_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / STATE_FILE)
    db.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    db.close()
    with pytest.raises(StateError, match="newer than this assetflow"):
        StateStore(tmp_path)


def test_garbage_state_file_gives_recovery_advice(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="corrupt.*mv .*state.db"):
        StateStore(tmp_path)


PIPELINE = '''
    import polars as pl
    from assetflow import asset
    import knobs

    @asset
    def numbers() -> pl.DataFrame:
        return pl.DataFrame({"n": list(range(knobs.N))})
'''


def test_gc_keeps_current_and_recent_versions(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    for n in range(1, 6):
        project.write("knobs.py", f"N = {n}\n")
        assert project.ran() == {"numbers"}
    folder = project.root / ".assetflow" / "data" / "parquet" / "numbers"
    assert len(list(folder.glob("*.parquet"))) == 5
    dry = project.run("gc", "--keep", "1", "--dry-run")
    assert "Would delete 3 versions" in dry.stdout
    assert len(list(folder.glob("*.parquet"))) == 5
    proc = project.run("gc", "--keep", "1")
    assert "Deleted 3 versions (3 stored objects" in proc.stdout
    assert len(list(folder.glob("*.parquet"))) == 2
    # The kept earlier version (N=4) is still restorable without running...
    project.write("knobs.py", "N = 4\n")
    assert project.materialize()["numbers"] == "restored"
    # ...while a collected one (N=1) must be recomputed.
    project.write("knobs.py", "N = 1\n")
    assert project.materialize()["numbers"] == "ran"


def test_gc_never_deletes_while_a_run_holds_the_project(project: ProjectDir) -> None:
    """A run may be restoring an old version or writing a file equal to a doomed one: gc waits its turn."""
    import threading

    from assetflow import api
    from assetflow.errors import ProjectLockedError
    from assetflow.state.lock import ProjectLock

    project.write("pipeline.py", PIPELINE)
    for n in range(1, 4):
        project.write("knobs.py", f"N = {n}\n")
        assert project.ran() == {"numbers"}
    folder = project.root / ".assetflow" / "data" / "parquet" / "numbers"
    run = ProjectLock(project.root / ".assetflow")
    run.acquire("a-run-in-progress")
    try:
        locked = project.run("gc", "--keep", "0", check=False)
        assert locked.returncode == 3 and "a-run-in-progress" in locked.stderr, locked.stderr
        assert len(list(folder.glob("*.parquet"))) == 3  # nothing deleted
        assert api.gc(0, dry_run=True, project=project.root).versions == 2  # counting needs no lock
        with pytest.raises(ProjectLockedError, match="wait=True from Python"):  # the API's way, not only --wait
            api.gc(0, project=project.root)
        threading.Timer(0.3, run.release).start()
        report = api.gc(0, wait=True, project=project.root)  # queues behind the run, then collects
    finally:
        run.release()
    assert report.versions == 2 and len(list(folder.glob("*.parquet"))) == 1


REMOVABLE = '''
    import polars as pl
    from assetflow import asset
    import knobs

    @asset
    def kept() -> pl.DataFrame:
        return pl.DataFrame({"k": [1]})

    @asset
    def numbers() -> pl.DataFrame:
        return pl.DataFrame({"n": list(range(knobs.N))})
'''


def test_gc_collects_removed_assets_and_their_kept_versions_stay_reachable(project: ProjectDir) -> None:
    """Removing an asset from the code used to leave its versions pointed at, and unreachable, for ever."""
    import json

    from click.testing import CliRunner

    from assetflow import api
    from assetflow.cli import main
    from assetflow.errors import UnknownAssetError

    project.write("pipeline.py", REMOVABLE)
    hashes = []
    for n in (1, 2, 3):
        project.write("knobs.py", f"N = {n}\n")
        hashes.append(api.materialize(project=project.root, executor="inprocess").results["numbers"].data_hash)
    project.write("pipeline.py", REMOVABLE.split("@asset\n    def numbers")[0])  # numbers is removed
    folder = project.root / ".assetflow" / "data" / "parquet" / "numbers"
    args = ["--project", str(project.root)]
    shown = CliRunner().invoke(main, ["show", "numbers", "--version", hashes[0].split(":")[1][:10], "--json", *args])
    assert shown.exit_code == 0, shown.output
    details = json.loads(shown.output)["assets"][0]
    assert details["kind"] == "removed" and details["version"]["data_hash"] == hashes[0]
    assert len(details["materializations"]) == 3
    assert api.load("numbers", version=hashes[0][:14], project=project.root)["n"].to_list() == [0]

    gc = CliRunner().invoke(main, ["gc", "--keep", "1", *args])
    assert gc.exit_code == 0, gc.output
    assert "Deleted 2 versions (2 stored objects" in gc.output and "2 of them of assets no longer declared" in gc.output
    assert len(list(folder.glob("*.parquet"))) == 1
    assert api.load("numbers", version=hashes[2][:14], project=project.root)["n"].to_list() == [0, 1, 2]
    with pytest.raises(UnknownAssetError, match="has no version"):
        api.load("numbers", version=hashes[0][:14], project=project.root)
    assert api.load("kept", project=project.root)["k"].to_list() == [1]  # a declared asset keeps its current

    assert "Deleted 1 versions" in CliRunner().invoke(main, ["gc", "--keep", "0", *args]).output
    assert not list(folder.glob("*.parquet"))
    assert api.load("kept", project=project.root)["k"].to_list() == [1]
    assert CliRunner().invoke(main, ["show", "numbers", *args]).exit_code == 2  # nothing left of it
