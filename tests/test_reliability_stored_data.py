"""Stored data damaged outside assetflow (issue 6 item 7): detected, reported stale, rebuilt.

Truncation at random offsets, a byte changed in place, a valid file of other content, a
deleted file: ``status`` reports the asset stale (or missing) with the reason, and
``materialize`` rebuilds exactly it (its downstream cut off: same data as before). A change
that restores the file's size and modification time is invisible to the cheap stat check
by design; ``assetflow doctor`` rehashes everything and finds it, and ``--repair`` makes
the next run rebuild it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from reliability_harness import (
    FULL,
    RAW_A,
    Project,
    check_converged,
    clean_hashes,
    ran,
    seeded_random,
)

TRUNCATIONS = 40 if FULL else 3
REASON = "stored data changed outside assetflow (hash mismatch)"


class Built:
    def __init__(self, base: Path) -> None:
        self.expected = clean_hashes(base / "clean", RAW_A)
        self.project = Project.create(base / "built", RAW_A)
        self.project.materialize()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return Built(tmp_path_factory.mktemp("stored"))


def stored_file(project: Project, asset: str) -> Path:
    db = sqlite3.connect(project.db_path)
    (location,) = db.execute("SELECT m.location FROM pointers c JOIN materializations m ON m.id = c.materialization "
                             "WHERE c.asset = ?", (asset,)).fetchone()
    db.close()
    return project.state / "data" / "parquet" / location


def rebuilt_exactly(project: Project, asset: str, expected: dict[str, str], state: str = "stale") -> None:
    status = project.status()
    assert status[asset]["state"] == state, status[asset]
    if state == "stale":
        assert REASON in status[asset]["reasons"], status[asset]
    assert ran(project.materialize()) == {asset}  # downstream: same data as before, so cut off
    check_converged(project, expected)


@pytest.mark.parametrize("index", range(TRUNCATIONS))
def test_truncated_at_random_offset(built: Built, tmp_path: Path, index: int) -> None:
    rng = seeded_random(f"truncate-{index}")
    project = built.project.copy_to(tmp_path / "p")
    asset = rng.choice(["clean", "wide", "doubled"])
    path = stored_file(project, asset)
    data = path.read_bytes()
    cut = rng.randrange(0, len(data))
    path.write_bytes(data[:cut])
    rebuilt_exactly(project, asset, built.expected)


def test_byte_changed_in_place(built: Built, tmp_path: Path) -> None:
    project = built.project.copy_to(tmp_path / "p")
    path = stored_file(project, "wide")
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    rebuilt_exactly(project, "wide", built.expected)


def test_replaced_by_another_valid_file(built: Built, tmp_path: Path) -> None:
    project = built.project.copy_to(tmp_path / "p")
    shutil.copy(stored_file(project, "constant"), stored_file(project, "count"))
    rebuilt_exactly(project, "count", built.expected)


def test_deleted(built: Built, tmp_path: Path) -> None:
    project = built.project.copy_to(tmp_path / "p")
    stored_file(project, "clean").unlink()
    rebuilt_exactly(project, "clean", built.expected, state="missing")


def test_change_hiding_size_and_mtime_is_found_by_doctor(built: Built, tmp_path: Path) -> None:
    project = built.project.copy_to(tmp_path / "p")
    project.materialize()  # the copy's new inodes: refresh the recorded stat tokens
    path = stored_file(project, "wide")
    before = os.stat(path)
    with open(path, "r+b") as handle:  # same inode, same size ...
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ... and the old mtime
    assert project.status()["wide"]["state"] == "fresh"  # the cheap check cannot see it (documented)
    report = project.run("doctor")
    assert report.returncode == 1 and "data_modified (wide)" in report.stdout, report.stdout
    assert project.run("doctor", "--repair").returncode == 0
    assert project.status()["wide"]["state"] == "missing"
    assert ran(project.materialize()) == {"wide"}
    check_converged(project, built.expected)
    assert project.run("doctor").returncode == 0
