"""Grouped fsyncs (issue 17, ``storage.files.deferred_sync``): a worker on the coordinator's host stores
its files without their two fsyncs and lists them; the coordinator makes them durable with one syncfs
per batch of results, before it records any of them. Crash safety is the battery's
(tests/test_reliability_crash.py); here: what is synced, when, and the fallback."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from assetflow import api
from assetflow.execute.pool import QUEUE_DEPTH
from assetflow.storage import files
from conftest import ProjectDir


class Syscalls:
    """Counts fsync and syncfs calls, and keeps the order of syncs and state commits."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, syncfs: bool = True) -> None:
        self.fsyncs = 0
        self.events: list[str] = []
        real_fsync = os.fsync
        real_syncfs = files._syncfs()

        def fsync(fd: int) -> None:
            self.fsyncs += 1
            real_fsync(fd)

        def counting_syncfs(fd: int) -> int:
            self.events.append("syncfs")
            return real_syncfs(fd) if real_syncfs is not None else 0

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(files, "_syncfs", lambda: counting_syncfs if syncfs else None)


def test_inside_deferred_sync_a_file_is_renamed_unsynced_and_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Syscalls(monkeypatch)
    with files.deferred_sync() as written:
        with files.atomic_target(tmp_path / "a" / "one.bin") as temp:
            temp.write_bytes(b"1")
        with files.atomic_target(tmp_path / "b" / "two.bin") as temp:
            temp.write_bytes(b"2")
    assert calls.fsyncs == 0 and written == [str(tmp_path / "a" / "one.bin"), str(tmp_path / "b" / "two.bin")]
    assert (tmp_path / "a" / "one.bin").read_bytes() == b"1"
    files.make_durable(written)
    assert calls.events == ["syncfs"] and calls.fsyncs == 0  # one file system: one syncfs for both
    with files.atomic_target(tmp_path / "c.bin") as temp:  # outside: synced as always (file and folder)
        temp.write_bytes(b"3")
    assert calls.fsyncs == 2


def test_disabled_or_without_syncfs_every_file_and_folder_is_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Syscalls(monkeypatch, syncfs=False)
    with files.deferred_sync(enabled=False) as written:
        with files.atomic_target(tmp_path / "x.bin") as temp:
            temp.write_bytes(b"x")
    assert written == [] and calls.fsyncs == 2
    with files.deferred_sync() as written:
        for name in ("p.bin", "q.bin"):
            with files.atomic_target(tmp_path / name) as temp:
                temp.write_bytes(b"p")
    (tmp_path / "q.bin").unlink()  # replaced or removed since: nothing to sync
    files.make_durable(written)
    assert calls.fsyncs == 2 + 2 and calls.events == []


def test_bytes_written_atomically_are_synced_or_listed_like_any_stored_file(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = Syscalls(monkeypatch)
    final = tmp_path / "new" / "folder" / "v.bin"  # its folders do not exist yet
    written = files.write_atomically(final, memoryview(b"abc" * 1000))
    assert final.read_bytes() == b"abc" * 1000 and calls.fsyncs == 2  # the file and its folder
    assert files.stat_token(final) == f"{written.st_dev}:{written.st_ino}:{written.st_size}:{written.st_mtime_ns}"
    assert oct(final.stat().st_mode & 0o777) == "0o600"  # as mkstemp made it for atomic_target
    with files.deferred_sync() as unsynced:
        files.write_atomically(final, b"replaced")
    assert calls.fsyncs == 2 and unsynced == [str(final)] and final.read_bytes() == b"replaced"
    assert sorted(p.name for p in final.parent.iterdir()) == ["v.bin"]  # no temporary file left


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    final = tmp_path / "v.bin"
    final.write_bytes(b"old")

    def disk_full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OSError, match="No space"):
        files.write_atomically(final, b"new")
    assert final.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["v.bin"]


def test_a_temporary_name_taken_falls_back_to_a_random_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files.write_atomically(tmp_path / "first.bin", b"1")  # draws this process's tag
    pid, tag, counter = files._temp_names  # type: ignore[misc]
    upcoming = next(counter)
    monkeypatch.setattr(files, "_temp_names", (pid, tag, itertools.chain([upcoming], counter)))
    squatter = tmp_path / f"{files.TEMP_PREFIX}{pid}-{tag}-{upcoming}"
    squatter.write_bytes(b"another process's")  # e.g. a process of the same id on another host sharing the folder
    files.write_atomically(tmp_path / "second.bin", b"2")
    assert (tmp_path / "second.bin").read_bytes() == b"2" and squatter.read_bytes() == b"another process's"


@pytest.mark.parametrize("executor", ["inprocess", "processes"])
def test_a_run_syncs_its_workers_files_before_it_records_them(project: ProjectDir, monkeypatch: pytest.MonkeyPatch,
                                                               executor: str) -> None:
    project.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset

        @asset
        def a() -> pl.DataFrame:
            return pl.DataFrame({"x": [1, 2]})

        @asset
        def b(a: pl.DataFrame) -> pl.DataFrame:
            return a.with_columns(y=a["x"] * 2)

        @asset
        def c(a: pl.DataFrame) -> pl.DataFrame:
            return a.head(1)
    ''')
    calls = Syscalls(monkeypatch)
    from assetflow.state.store import StateStore

    real_record = StateStore.record

    def record(self: StateStore, db: Any, mat: Any, *args: Any, **kwargs: Any) -> Any:
        stored = list(project.root.rglob(Path(mat.location).name))
        calls.events.append(f"record {mat.asset}:{len(stored) == 1}")
        return real_record(self, db, mat, *args, **kwargs)

    monkeypatch.setattr(StateStore, "record", record)
    result = api.materialize(project=project.root, executor=executor)
    assert {n: r.outcome for n, r in result.results.items()} == dict.fromkeys("abc", "ran")
    records = [e for e in calls.events if e.startswith("record")]
    assert sorted(records) == ["record a:True", "record b:True", "record c:True"]
    # The coordinator synced before each record, and never more often than it recorded.
    assert calls.events[0] == "syncfs" and 1 <= calls.events.count("syncfs") <= 3
    for index, event in enumerate(calls.events):
        if event.startswith("record"):
            assert "syncfs" in calls.events[:index]
    if executor == "inprocess":
        assert calls.fsyncs == 0, "the stores' own fsyncs were not left to the coordinator"


def test_results_are_recorded_in_batches_while_every_worker_has_a_next_task(
        project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a task queued behind every busy worker, finished results wait (up to ``SETTLE_EVERY_S``) and
    are made durable together: far fewer syncfs than results, and still each before its records."""
    from assetflow.execute import runner

    monkeypatch.setattr(runner, "SETTLE_EVERY_S", 60.0)  # only an empty queue (or the run's end) settles
    project.write("pipeline.py", "import polars as pl\nfrom assetflow import asset\n" + "".join(
        f"\n@asset\ndef a{i}() -> pl.DataFrame:\n    return pl.DataFrame({{'x': [{i}]}})\n" for i in range(24)))
    calls = Syscalls(monkeypatch)
    from assetflow.state.store import StateStore

    real_record = StateStore.record

    def record(self: StateStore, db: Any, mat: Any, *args: Any, **kwargs: Any) -> Any:
        calls.events.append(f"record {mat.asset}")
        return real_record(self, db, mat, *args, **kwargs)

    monkeypatch.setattr(StateStore, "record", record)
    result = api.materialize(project=project.root, executor="processes", jobs=2)
    assert {r.outcome for r in result.results.values()} == {"ran"} and len(result.results) == 24
    syncs = calls.events.count("syncfs")
    # One batch while tasks were queued; then the last tasks in flight (2 workers x 2 each, QUEUE_DEPTH)
    # may each settle alone once the queue is empty.
    assert 1 <= syncs <= 1 + 2 * QUEUE_DEPTH, calls.events
    assert calls.events[0] == "syncfs" and calls.events.count("syncfs") + 24 == len(calls.events)
