"""Shared machinery of the reliability battery (tests/test_reliability_*.py).

A small real project (a source, six assets, one of them a few MB so that writes take
measurable time), driven through the real CLI in subprocesses, and the checks every
fault-injection test ends with: the state store passes ``PRAGMA integrity_check``,
every asset the state points at has intact data of exactly the recorded hash
(recomputed here from the stored file, not through assetflow's cheap checks), and no
temporary file is left behind.

``FULL`` (``ASSETFLOW_FULL_BATTERY=1``) selects the full battery; without it each test
runs a CI-sized sample of the same cases.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FULL = os.environ.get("ASSETFLOW_FULL_BATTERY", "") not in ("", "0")
ASSETFLOW = [sys.executable, "-m", "assetflow"]
STATE = ".assetflow"
MODULE = "relpipe"
EXECUTION_LOG = "logs/executions.log"

PIPELINE = '''
    import os
    import time
    import polars as pl
    from assetflow import asset, source

    raw = source("data/raw.csv")


    def _executed(name: str) -> None:
        """Append to a side-effect log, so tests can count executions across processes."""
        with open("logs/executions.log", "a") as log:
            log.write(f"{name} {os.getpid()}\\n")
        if os.path.exists(f"logs/slow-{name}"):  # a test wants this asset to take a while
            time.sleep(float(open(f"logs/slow-{name}").read()))


    @asset
    def clean(raw: pl.DataFrame) -> pl.DataFrame:
        _executed("clean")
        return raw.filter(pl.col("value") > 0)


    @asset
    def doubled(clean: pl.DataFrame) -> pl.DataFrame:
        _executed("doubled")
        return clean.with_columns(pl.col("value") * 2)


    @asset
    def total(doubled: pl.DataFrame) -> pl.DataFrame:
        _executed("total")
        return doubled.select(pl.col("value").sum())


    @asset
    def count(raw: pl.DataFrame) -> pl.DataFrame:
        _executed("count")
        return raw.select(pl.len().alias("rows"))


    @asset
    def wide(raw: pl.DataFrame) -> pl.DataFrame:
        """A few MB, so that writing it takes a while and random kills land inside writes."""
        _executed("wide")
        n = 300_000
        return pl.DataFrame({
            "i": pl.arange(0, n, eager=True),
            "v": (pl.arange(0, n, eager=True) * 7919 + raw.height) % 1_000_003,
            "s": pl.arange(0, n, eager=True).cast(pl.Utf8) + "-" + str(raw["value"].sum()),
        })


    @asset
    def constant() -> pl.DataFrame:
        _executed("constant")
        return pl.DataFrame({"k": ["a", "b", "c"]})
'''

ASSETS = ("clean", "doubled", "total", "count", "wide", "constant")
RAW_A = "id,value\n1,10\n2,-5\n3,7\n"
RAW_B = "id,value\n1,10\n2,-6\n3,7\n"  # only a row the filter drops: clean cuts off, count/wide rerun
RAW_C = "id,value\n1,10\n2,-5\n3,7\n4,1\n"  # a real change: everything downstream of raw reruns


class Project:
    """A reliability project on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def create(cls, root: Path, raw: str = RAW_A, pipeline: str = PIPELINE, module: str = MODULE) -> Project:
        root.mkdir(parents=True, exist_ok=True)
        (root / "pyproject.toml").write_text(f'[tool.assetflow]\nmodules = ["{module}"]\n')
        (root / f"{module}.py").write_text(textwrap.dedent(pipeline))
        (root / "data").mkdir(exist_ok=True)
        (root / "logs").mkdir(exist_ok=True)
        (root / "data" / "raw.csv").write_text(raw)
        for path in (root / "pyproject.toml", root / f"{module}.py", root / "data" / "raw.csv", root / "data", root):
            backdate(path)
        return cls(root)

    def copy_to(self, target: Path) -> Project:
        shutil.copytree(self.root, target, symlinks=True)
        return Project(target)

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def db_path(self) -> Path:
        return self.state / "state.db"

    def write_raw(self, text: str) -> None:
        (self.root / "data" / "raw.csv").write_text(text)
        backdate(self.root / "data" / "raw.csv")

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETFLOW_")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra or {})
        return env

    def popen(self, *args: str, env: Mapping[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen([*ASSETFLOW, *args], cwd=self.root, env=self.env(env), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)

    def run(self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ASSETFLOW, *args], cwd=self.root, env=self.env(env), text=True,
                              capture_output=True, timeout=timeout, **kwargs)

    def materialize(self, *args: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """``materialize --json``, which must succeed; returns the payload."""
        proc = self.run("materialize", "--json", *args, env=env)
        assert proc.returncode == 0, f"materialize exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout)

    def status(self) -> dict[str, dict[str, Any]]:
        proc = self.run("status", "--json")
        assert proc.returncode == 0, f"status exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return {row["name"]: row for row in json.loads(proc.stdout)["assets"]}

    def executions(self) -> list[str]:
        log = self.root / EXECUTION_LOG
        return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []

    def temp_files(self) -> list[Path]:
        return sorted(p for p in self.state.rglob(".tmp-*")) if self.state.exists() else []


def backdate(path: Path) -> None:
    """Set an mtime 30 s in the past (each call a distinct one), out of the racy-clean window.

    Files written a moment before a run are, rightly, not trusted by the no-op fast path's
    snapshot; tests that want the snapshot written backdate what they wrote.
    """
    stamp = time.time_ns() - 30_000_000_000
    os.utime(path, ns=(stamp, stamp))


def outcomes(payload: Mapping[str, Any]) -> dict[str, str]:
    return {a["name"]: a["outcome"] for a in payload["assets"]}


def ran(payload: Mapping[str, Any]) -> set[str]:
    return {name for name, outcome in outcomes(payload).items() if outcome == "ran"}


# -- independent checks ----------------------------------------------------------------------


def integrity(db_path: Path) -> str:
    """``PRAGMA integrity_check`` of the state store ('ok' when it passes)."""
    db = sqlite3.connect(db_path)
    try:
        return "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))
    except sqlite3.DatabaseError as exc:  # damage so deep (e.g. a table's root page) that the check cannot run
        return str(exc)
    finally:
        db.close()


def current_records(project: Project) -> dict[str, dict[str, Any]]:
    """What the state store's ``current`` pointers say, read with plain SQL."""
    if not project.db_path.exists():
        return {}
    db = sqlite3.connect(project.db_path)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'pointers'").fetchall():
            return {}  # the schema was never created (e.g. the disk filled up before it could be)
        rows = db.execute(
            "SELECT m.asset, m.io, m.location, m.data_hash, m.run_id FROM pointers c "
            "JOIN materializations m ON m.id = c.materialization WHERE c.env = 'prod' AND c.partition = ''"
        ).fetchall()
    finally:
        db.close()
    return {a: {"io": io, "location": loc, "data_hash": h, "run_id": r} for a, io, loc, h, r in rows}


def stored_hash(project: Project, io: str, location: str) -> str | None:
    """The canonical hash of the stored file, recomputed from its bytes; None if unreadable."""
    import pyarrow.parquet as pq

    from assetflow.fingerprint.data import table_hash

    assert io == "parquet", io
    path = project.state / "data" / "parquet" / location
    try:
        return table_hash(pq.read_table(path))
    except Exception:  # noqa: BLE001 - missing, truncated or garbled all count as "not intact"
        return None


def check_recorded_data(project: Project, expected: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every current pointer leads to intact data of exactly its recorded hash.

    With ``expected`` (the hashes of a clean run on the same inputs), also returns the
    assets whose recorded hash differs from it (stale ones legitimately do).
    """
    differing: dict[str, str] = {}
    for asset, record in current_records(project).items():
        actual = stored_hash(project, record["io"], record["location"])
        assert actual == record["data_hash"], (
            f"{asset}: the state points at {record['location']} with hash {record['data_hash']}, "
            f"but the stored data hashes to {actual}"
        )
        if expected is not None and expected.get(asset) != actual:
            differing[asset] = actual
    return differing


def check_fresh_is_true(project: Project, expected: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``status --json``: every asset it calls fresh has exactly a clean run's data. Returns the status."""
    status = project.status()
    records = current_records(project)
    for name in ASSETS:
        if status[name]["state"] == "fresh":
            record = records[name]
            actual = stored_hash(project, record["io"], record["location"])
            assert actual == expected[name], (
                f"{name} is reported fresh but its stored data hashes to {actual}, "
                f"a clean run gives {expected[name]}"
            )
            assert status[name]["data_hash"] == expected[name]
    return status


def check_converged(project: Project, expected: Mapping[str, str]) -> None:
    """After a successful rerun: the clean run's hashes, verified on disk; nothing left over."""
    assert check_recorded_data(project, expected) == {}
    assert set(current_records(project)) == set(ASSETS)
    assert integrity(project.db_path) == "ok"
    assert project.temp_files() == [], project.temp_files()
    db = sqlite3.connect(project.db_path)
    try:
        running = db.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()
    finally:
        db.close()
    assert running == [], f"runs still marked running after a completed rerun: {running}"


def clean_hashes(workdir: Path, raw: str) -> dict[str, str]:
    """The data hashes a clean run from scratch produces on these inputs."""
    project = Project.create(workdir, raw)
    payload = project.materialize()
    assert ran(payload) == set(ASSETS)
    return {a["name"]: a["data_hash"] for a in payload["assets"]}


def kill_after(proc: subprocess.Popen[str], delay: float) -> bool:
    """SIGKILL ``proc`` after ``delay`` seconds unless it ended first; True if it was killed."""
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def seeded_random(name: str) -> random.Random:
    """A reproducible random source; ``ASSETFLOW_BATTERY_SEED`` varies it between battery runs."""
    return random.Random(f"{name}:{os.environ.get('ASSETFLOW_BATTERY_SEED', '0')}")


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start
