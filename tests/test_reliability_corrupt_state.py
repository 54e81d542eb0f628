"""Corrupted state (issue 6 item 6): truncated and byte-flipped variants of a real state store.

Each variant replaces the state database of a materialized project, then the source
changes for real (or, for some variants, nothing changes), and ``materialize`` runs. It
must either work, ending with exactly a clean run's data, or say the state store is
corrupt and name the recovery command; after ``assetflow doctor --repair`` the next run
converges. A corrupted state never makes a changed project look fresh: not through the
records, and not through the no-op fast path's snapshot (which is sealed with a hash).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from reliability_harness import (
    ASSETS,
    FULL,
    RAW_A,
    RAW_C,
    Project,
    check_converged,
    check_recorded_data,
    clean_hashes,
    integrity,
    ran,
    seeded_random,
)

VARIANTS = 120 if FULL else 6
CORRUPT_MESSAGE = "corrupt"
RECOVERY = "assetflow doctor --repair"


class Template:
    def __init__(self, base: Path) -> None:
        self.expected = {"A": clean_hashes(base / "clean-a", RAW_A), "C": clean_hashes(base / "clean-c", RAW_C)}
        self.project = Project.create(base / "built", RAW_A)
        self.project.materialize()
        self.project.materialize()  # a second, full check: writes the fast path's snapshot
        db = sqlite3.connect(self.project.db_path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        for suffix in ("-wal", "-shm"):
            Path(str(self.project.db_path) + suffix).unlink(missing_ok=True)
        self.state_bytes = self.project.db_path.read_bytes()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return Template(tmp_path_factory.mktemp("corrupt"))


def corrupt(data: bytes, index: int) -> tuple[bytes, str]:
    """A damaged copy of the state database, and how it was damaged."""
    rng = seeded_random(f"corrupt-state-{index}")
    kind = ("truncate", "flip", "flip_page", "zero_page")[index % 4]
    if kind == "truncate":
        cut = rng.randrange(0, len(data))
        return data[:cut], f"truncated at {cut} of {len(data)}"
    damaged = bytearray(data)
    page = 4096
    if kind == "flip":
        spots = [rng.randrange(0, len(data)) for _ in range(rng.choice((1, 2, 4, 16)))]
        for spot in spots:
            damaged[spot] = rng.randrange(256)
        return bytes(damaged), f"bytes replaced at {spots}"
    start = rng.randrange(0, len(data) // page) * page
    if kind == "flip_page":
        for spot in range(start, start + page, rng.choice((7, 61, 509))):
            damaged[spot] ^= 1 << rng.randrange(8)
        return bytes(damaged), f"bits flipped across the page at {start}"
    damaged[start:start + page] = bytes(page)
    return bytes(damaged), f"page at {start} zeroed"


def run_variant(template: Template, tmp_path: Path, index: int) -> str:
    project = template.project.copy_to(tmp_path / "p")
    for suffix in ("-wal", "-shm"):
        Path(str(project.db_path) + suffix).unlink(missing_ok=True)
    data, how = corrupt(template.state_bytes, index)
    project.db_path.write_bytes(data)
    changed = index % 5 != 4  # most variants come with a real change that must be seen
    if changed:
        project.write_raw(RAW_C)
    expected = template.expected["C" if changed else "A"]
    executed_before = len(project.executions())
    status = project.run("status", "--json")  # reads the state (and its fast path's caches) first
    assert "Traceback" not in status.stderr, f"{how}:\n{status.stderr}"
    if status.returncode == 0:
        rows = {row["name"]: row for row in json.loads(status.stdout)["assets"]}
        if changed:
            assert {n for n in ("clean", "count", "wide") if rows[n]["state"] == "fresh"} == set(), (how, rows)
    else:
        assert status.returncode == 2 and RECOVERY in status.stderr, f"{how}:\n{status.stderr}"
    proc = project.run("materialize", "--json")
    assert "Traceback" not in proc.stderr, f"{how}:\n{proc.stderr}"
    if proc.returncode == 0:
        outcome = "opened"
        payload = json.loads(proc.stdout)
        if changed:
            assert not payload.get("fast_path"), f"{how}: a corrupted state let the fast path vouch for a change"
    else:
        assert proc.returncode == 2, f"{how}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert CORRUPT_MESSAGE in proc.stderr and RECOVERY in proc.stderr, f"{how}:\n{proc.stderr}"
        outcome = "refused"
        repaired = project.run("doctor", "--repair", "--json")
        assert repaired.returncode == 0, f"{how}:\n{repaired.stdout}\n{repaired.stderr}"
        check_recorded_data(project)  # every salvaged pointer leads to verified data
        payload = project.materialize()
    # Either way, the run ends exactly like a clean run on these inputs.
    if integrity(project.db_path) != "ok":
        # Damage the run never read (an index, a free page) stays until doctor sees and repairs it.
        outcome += "+doctor"
        report = project.run("doctor", "--json")
        assert report.returncode == 1 and "state_corrupt" in report.stdout, (how, report.stdout)
        assert project.run("doctor", "--repair").returncode == 0
        payload = project.materialize()
    check_converged(project, expected)
    if changed:  # the change was seen: what depends on the source ran (in the refused run, or after repair)
        assert set(project.executions()[executed_before:]) >= {"clean", "count", "wide"}, (how, payload)
    return outcome


@pytest.mark.parametrize("index", range(VARIANTS))
def test_corrupted_state_is_opened_or_refused_never_trusted(template: Template, tmp_path: Path, index: int) -> None:
    outcome = run_variant(template, tmp_path, index)
    log_outcome(index, outcome)


def log_outcome(index: int, outcome: str) -> None:
    import os

    log = os.environ.get("ASSETFLOW_BATTERY_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps({"test": "corrupt_state", "variant": index, "outcome": outcome}) + "\n")


def test_garbage_file_is_refused_with_the_recovery_command(template: Template, tmp_path: Path) -> None:
    project = template.project.copy_to(tmp_path / "p")
    project.db_path.write_bytes(b"this is not a database" * 500)
    for command in (("materialize",), ("status",)):
        proc = project.run(*command)
        assert proc.returncode == 2
        assert "is unreadable or corrupt" in proc.stderr and RECOVERY in proc.stderr, proc.stderr
    report = json.loads(project.run("doctor", "--json").stdout)
    assert report["healthy"] is False and report["findings"][0]["kind"] == "state_corrupt"
    repaired = json.loads(project.run("doctor", "--repair", "--json").stdout)
    assert repaired["healthy"] is True and Path(repaired["moved_to"]).exists()
    payload = project.materialize()
    assert ran(payload) == set(ASSETS)  # nothing salvageable: everything recomputed
    check_converged(project, template.expected["A"])


def test_repair_salvages_verified_records_only(template: Template, tmp_path: Path) -> None:
    """A store with a broken index still yields its records; those whose data fails its hash are dropped."""
    project = template.project.copy_to(tmp_path / "p")
    records = {}
    db = sqlite3.connect(project.db_path)
    for asset, location in db.execute("SELECT asset, location FROM materializations"):
        records[asset] = location
    index_page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'materializations_by_recipe'").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(project.db_path.read_bytes())
    start = (index_page - 1) * page_size
    data[start + 8:start + page_size] = bytes(page_size - 8)  # the index's cells are gone
    project.db_path.write_bytes(bytes(data))
    # And one stored file no longer matches its hash.
    tampered = project.state / "data" / "parquet" / records["count"]
    shutil.copy(project.state / "data" / "parquet" / records["constant"], tampered)
    proc = project.run("doctor", "--repair", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["salvaged"]["materializations"] == len(ASSETS) - 1, report
    status = project.status()
    assert status["count"]["state"] == "missing"
    assert {n for n in ASSETS if status[n]["state"] == "fresh"} == set(ASSETS) - {"count"}
    assert ran(project.materialize()) == {"count"}
    check_converged(project, template.expected["A"])


def test_forged_snapshot_never_vouches(template: Template, tmp_path: Path) -> None:
    """A snapshot edited to match a changed source (without its seal) is not trusted."""
    project = template.project.copy_to(tmp_path / "p")
    project.materialize()  # the copy has new inodes: a full check, which writes a new snapshot
    assert project.materialize().get("fast_path")
    raw = project.root / "data" / "raw.csv"
    old_token = _token(raw)
    project.write_raw(RAW_C)
    db = sqlite3.connect(project.db_path)
    (text,) = db.execute("SELECT value FROM meta WHERE key = 'noop_snapshot'").fetchone()
    assert old_token in text
    db.execute("UPDATE meta SET value = ? WHERE key = 'noop_snapshot'", (text.replace(old_token, _token(raw)),))
    db.commit()
    db.close()
    payload = project.materialize()
    assert not payload.get("fast_path")
    assert ran(payload) >= {"clean", "count", "wide"}
    check_converged(project, template.expected["C"])


def _token(path: Path) -> str:
    from assetflow.hashing import stat_token

    return stat_token(path)


def test_repair_salvages_a_store_of_an_older_schema(template: Template, tmp_path: Path) -> None:
    """A corrupt store made before the state model's migration (one ``current`` pointer per asset, no
    partitions, no environments) is rebuilt as the latest schema with every verified record."""
    from assetflow.state.schema import MIGRATIONS

    project = template.project.copy_to(tmp_path / "p")
    new = sqlite3.connect(project.db_path)
    old_path = project.db_path.with_name("old.db")
    old = sqlite3.connect(old_path)
    for script in MIGRATIONS[:2]:
        old.executescript(script)
    for table in ("materializations", "runs", "events", "source_versions"):
        columns = [row[1] for row in old.execute(f"PRAGMA table_info({table})")]
        rows = new.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        old.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
    old.executemany("INSERT INTO current (asset, materialization) VALUES (?, ?)",
                    new.execute("SELECT asset, materialization FROM pointers WHERE env = 'prod' AND partition = ''"))
    old.execute("PRAGMA user_version = 2")
    old.commit()
    index_page = old.execute("SELECT rootpage FROM sqlite_master WHERE name = 'materializations_by_recipe'").fetchone()[0]
    page_size = old.execute("PRAGMA page_size").fetchone()[0]
    old.execute("PRAGMA journal_mode = DELETE")
    old.close()
    new.close()
    data = bytearray(old_path.read_bytes())
    data[(index_page - 1) * page_size + 8:index_page * page_size] = bytes(page_size - 8)  # the index's cells are gone
    for suffix in ("-wal", "-shm"):
        Path(str(project.db_path) + suffix).unlink(missing_ok=True)
    project.db_path.write_bytes(bytes(data))
    old_path.unlink()
    proc = project.run("doctor", "--repair", "--json")
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert report["salvaged"]["materializations"] == len(ASSETS) and report["salvaged"]["pointers"] == len(ASSETS)
    assert report["salvaged"]["runs"] >= 1, report
    assert all(row["state"] == "fresh" for name, row in project.status().items() if name in ASSETS)
    assert ran(project.materialize()) == set()  # the pointers came through: nothing recomputed
    check_converged(project, template.expected["A"])
