"""Exactly once, under SIGKILL: a daemon killed at random instants, restarted, runs every due tick once.

Slow lane. A daemon runs with an injected fast clock (one real second is ``SPEED`` clock seconds,
continuous across restarts), a minutely schedule with ``catchup="all"`` and ``force=True`` (so every
tick has work), the in-process executor, and two assets that each take ``SLOW`` real seconds (so a
run is long enough to be killed in). Each round starts a daemon, kills it with SIGKILL, and starts
the next; a round kills in one of three ways, chosen at random:

- ``random``: at a random instant of its life (loading, evaluating, idle or running);
- ``mid-run``: at a random instant while an asset of a tick's run is computing (the asset writes a
  mark as it starts; the kill lands within its ``SLOW`` seconds);
- ``failpoint``: the daemon kills itself at a failpoint of the run's commit path
  (``assetflow.failpoints``: a value written but not renamed, renamed but not recorded, recorded but
  not committed, committed, the fast path's snapshot about to be written).

A final daemon drains the queue. Then, from the state store and the stored files:

- every cron instant from the first sighting to the end has exactly one tick, succeeded (none lost,
  none twice);
- each tick's runs form one chain: every run but the last was killed (``running`` when it died,
  marked abandoned by the next start) and each run names all the earlier ones in its trigger's
  ``resumes`` (none dropped, none resumed twice); the last succeeded, or was killed after it had
  settled every asset (the tick is then closed without another run);
- across a tick's chain each asset ran exactly once, and ``b``'s recorded input is the very version
  of ``a`` made for that tick (``a`` writes the time it ran, so every version differs): a resume
  never re-runs what a killed run settled, nor builds on a version of another tick;
- nothing partial is recorded, or reported fresh: every materialization's stored file hashes to its
  recorded hash, no temporary file is left, no run is left ``running``, and ``status`` calls both
  assets fresh;
- at least a quarter of the kills landed while a tick's run was in progress (counted from the state:
  runs left unfinished), so the guarantees above were exercised where they matter.

The daemons are forked from one warm server process per project (polars and assetflow imported
once), so a round costs a fork and a project load instead of a Python start-up: each child is a
real process with its own SQLite connections and locks, killed with SIGKILL like any other.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

KILLS = int(os.environ.get("ASSETFLOW_DAEMON_KILLS", "200"))
SPEED = 30.0  # clock seconds per real second: a minutely tick every 2 real seconds
SLOW = 0.15  # real seconds each asset of a tick's run computes
START = 1_800_000_000.0  # the injected clock's origin (a round minute)
FAILPOINTS = ("after_data_write", "after_rename", "before_state_commit", "after_state_commit",
              "before_snapshot_write")

SERVER = """
import os, sys, time, traceback
import polars  # noqa: F401 - warm: every forked daemon inherits the import
from assetflow import failpoints
from assetflow.automation.daemon import Daemon
from assetflow.automation.lock import DaemonLock
import assetflow.execute.runner, assetflow.inspect.status, assetflow.fastpath  # noqa: F401,E401 - warm
import pyarrow.parquet, assetflow.storage.parquet, assetflow.fingerprint.data  # noqa: F401,E401 - warm
from assetflow.plugins import backend_classes, executor_classes
backend_classes(), executor_classes()  # plugins discovered once, not in every daemon (no thread, no file kept)

root, base_real, speed, start = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])


def daemon(end):
    clock = lambda: min(end, start + (time.time() - base_real) * speed)  # the final daemon drains up to end
    lock = DaemonLock(__import__("pathlib").Path(root) / ".assetflow")
    lock.acquire(wait=True, poll=0.01)
    d = Daemon(root, clock=clock, executor="inprocess", interval=0.02).open()
    print("ready", os.getpid(), flush=True)
    while True:
        d.tick()
        if clock() >= end and not d.ticks.unfinished():
            break
        time.sleep(0.02)
    d.close()
    print("done", os.getpid(), flush=True)


for line in sys.stdin:
    command, *args = line.split()
    if command == "spawn":  # spawn END [FAILPOINT]: fork a daemon
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                failpoints.arm(args[1] if len(args) > 1 else None)
                daemon(float(args[0]))
            except BaseException:
                traceback.print_exc()
                code = 1
            os._exit(code)
        print("pid", pid, flush=True)
    elif command == "reap":  # reap PID: wait for it, say how it ended
        _, status = os.waitpid(int(args[0]), 0)
        print("exit", os.waitstatus_to_exitcode(status), flush=True)
"""

PIPELINE = f"""
import os
import time
from pathlib import Path
import polars as pl
from assetflow import asset
from assetflow.automation import schedule


def _computing(name: str) -> None:
    with open(Path(__file__).parent / "marks.log", "a") as marks:  # the battery kills mid-run after seeing this
        marks.write(f"{{os.getpid()}} {{name}}\\n")
    time.sleep({SLOW})


@asset
def a() -> pl.DataFrame:
    _computing("a")
    return pl.DataFrame({{"x": [1, 2, 3], "made": [time.time_ns()] * 3}})  # every version differs


@asset
def b(a: pl.DataFrame) -> pl.DataFrame:
    _computing("b")
    return a.with_columns(y=pl.col("x") * 2)


schedule("every_minute", cron="* * * * *", select="+b", force=True, catchup="all", timezone="UTC")
"""


class Server:
    """A warm process that forks daemons on ``root`` (each a real process, killed by pid)."""

    def __init__(self, root: Path, base_real: float) -> None:
        self.root = root
        self.lines: list[str] = []  # what else the server and its daemons printed (shown on failure)
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(root), repr(base_real), repr(SPEED),
                                      repr(START)], cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore"})

    def _send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, f"the daemon server ended while waiting for {word!r}"
            kind, _, value = line.strip().partition(" ")
            if kind == word:
                return value
            self.lines.append(line.strip())

    def spawn(self, end: float = float("inf"), failpoint: str | None = None) -> int:
        self._send(f"spawn {end!r}" + (f" {failpoint}" if failpoint else ""))
        return int(self._expect("pid"))

    def ready(self, pid: int) -> None:
        while int(self._expect("ready")) != pid:
            pass

    def reap(self, pid: int) -> int:
        self._send(f"reap {pid}")
        return int(self._expect("exit"))

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _first_sighting(root: Path) -> None:
    """The project, and its schedule seen at START (nothing before it is due)."""
    from assetflow.automation.daemon import Daemon

    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    (root / "marks.log").write_text("")
    Daemon(root, clock=lambda: START, executor="inprocess").open().close()


def _marked_since(root: Path, offset: int, pid: int, timeout: float) -> bool:
    """Wait until daemon ``pid`` marks an asset as computing (after ``offset`` in marks.log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(root / "marks.log") as marks:
            marks.seek(offset)
            if any(line.split()[:1] == [str(pid)] for line in marks.read().splitlines()):
                return True
        time.sleep(0.005)
    return False


def _battery(root: Path, kills: int, seed: int) -> str:
    """Kill a daemon on ``root`` ``kills`` times, drain, and check every tick ran exactly once."""
    rng = random.Random(seed)
    base_real = time.time()
    server = Server(root, base_real)
    modes = {"random": 0, "mid-run": 0, "failpoint": 0, "self-killed": 0}
    try:
        for _ in range(kills):
            mode = rng.choice(("random", "mid-run", "failpoint"))
            modes[mode] += 1
            offset = (root / "marks.log").stat().st_size
            failpoint = f"{rng.choice(FAILPOINTS)}:{rng.randint(1, 2)}" if mode == "failpoint" else None
            pid = server.spawn(failpoint=failpoint)
            if mode == "random":
                server.ready(pid)
                time.sleep(rng.uniform(0.0, 0.5))  # a random instant of its life (not a timing assertion)
            elif mode == "mid-run" and _marked_since(root, offset, pid, timeout=6.0):
                time.sleep(rng.uniform(0.0, SLOW * 0.8))  # within the asset's computation
            elif mode == "failpoint":
                deadline = time.monotonic() + 6.0  # a tick's run comes within 2 real seconds
                while time.monotonic() < deadline and _alive(pid):
                    time.sleep(0.01)
                modes["self-killed"] += not _alive(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            status = server.reap(pid)
            assert status == -signal.SIGKILL, f"daemon {pid} ended with {status}, not by SIGKILL"
        end = START + (time.time() - base_real) * SPEED
        final = server.spawn(end)
        assert server.reap(final) == 0, server.lines
    finally:
        server.close()
    return _check(root, end, kills) + f" ({modes['random']} random, {modes['mid-run']} mid-run, " \
                                      f"{modes['failpoint']} at failpoints, " \
                                      f"{modes['self-killed']} of them killed by it)"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, killed by its failpoint and not yet reaped, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _check(root: Path, end: float, kills: int) -> str:
    from reliability_harness import Project, check_recorded_data, integrity

    db = sqlite3.connect(root / ".assetflow" / "state.db")
    ticks = db.execute("SELECT tick_at, status, run_id FROM ticks WHERE origin = 'schedule:every_minute' "
                       "ORDER BY tick_at").fetchall()
    instants = [t for t, _, _ in ticks]
    expected = [START + 60 * i for i in range(1, int((end - START) // 60) + 1)]
    assert instants == expected  # none lost, none twice (the key is unique anyway)
    assert {s for _, s, _ in ticks} == {"succeeded"}
    by_tick: dict[float, list[tuple[str, str, str | None, list[str]]]] = {}
    for run_id, status, summary, trigger in db.execute("SELECT run_id, status, summary, trigger FROM runs "
                                                       "ORDER BY started_at, run_id"):
        data = json.loads(trigger)
        if data.get("kind") == "schedule":
            by_tick.setdefault(data["tick"], []).append((run_id, status, summary, data.get("resumes", [])))
    made: dict[str, dict[str, tuple[str, dict[str, str]]]] = {}
    for run_id, asset, data_hash, upstream in db.execute("SELECT run_id, asset, data_hash, upstream "
                                                         "FROM materializations"):
        made.setdefault(run_id, {})[asset] = (data_hash, json.loads(upstream))
    ran_by_run: dict[str, list[str]] = {}
    for run_id, asset in db.execute("SELECT run_id, asset FROM events WHERE outcome = 'ran'"):
        ran_by_run.setdefault(run_id, []).append(asset)
    killed_runs = 0
    settled_by_killed = 0
    for tick_at, _, final_run in ticks:
        chain = by_tick[tick_at]
        assert chain[-1][0] == final_run, (tick_at, chain)
        for i, (_, _, _, resumes) in enumerate(chain):  # each run resumes all the earlier ones: none dropped
            assert resumes == [run_id for run_id, *_ in chain[:i]], (tick_at, chain)
        *killed, (_, last_status, last_summary, _) = chain
        if last_status != "succeeded":  # killed after it settled every asset: closed without another run
            killed.append(chain[-1])
            settled_by_killed += 1
        for run_id, status, summary, _ in killed:
            assert (status, json.loads(summary or "null")) == ("failed", {"abandoned": 1}), (tick_at, chain)
        killed_runs += len(killed)
        assets = sorted(a for run_id, *_ in chain for a in ran_by_run.get(run_id, []))
        assert assets == ["a", "b"], (tick_at, chain, assets)  # each asset once per tick, across resumes
        versions = {asset: v for run_id, *_ in chain for asset, v in made.get(run_id, {}).items()}
        assert versions["b"][1] == {"a": versions["a"][0]}, (tick_at, versions)  # b built on this tick's a
    assert db.execute("SELECT count(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
    db.close()
    project = Project(root)
    check_recorded_data(project)  # every current pointer: intact data of exactly its recorded hash
    for run_id in made:  # and every version ever recorded, not only the current ones
        for asset, (data_hash, _) in made[run_id].items():
            assert _stored_hash(root, asset, run_id) == data_hash, (asset, run_id)
    assert integrity(project.db_path) == "ok"
    assert project.temp_files() == [], project.temp_files()
    status = {row["name"]: row["state"] for row in project.status().values()}
    assert status == {"a": "fresh", "b": "fresh"}, status
    assert killed_runs >= kills // 4, f"only {killed_runs} of {kills} kills landed during a tick's run"
    return (f"{len(instants)} ticks, {killed_runs} runs killed mid-run and resumed "
            f"({settled_by_killed} had settled every asset)")


def _stored_hash(root: Path, asset: str, run_id: str) -> str | None:
    """The hash of a version's stored file, recomputed from its bytes (None: missing or damaged)."""
    from reliability_harness import Project, stored_hash

    db = sqlite3.connect(root / ".assetflow" / "state.db")
    row = db.execute("SELECT io, location FROM materializations WHERE asset = ? AND run_id = ?",
                     (asset, run_id)).fetchone()
    db.close()
    return stored_hash(Project(root), row[0], row[1])


@pytest.mark.slow
def test_sigkill_at_random_instants_every_tick_runs_exactly_once(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    projects = 4  # independent projects killed side by side: the battery's wall time is a quarter
    seed = int(os.environ.get("ASSETFLOW_SEED", "14"))
    share = [KILLS // projects + (i < KILLS % projects) for i in range(projects)]
    for i in range(projects):  # in this process, one at a time: importing a project is not thread-safe
        _first_sighting(tmp_path / f"p{i}")
    with ThreadPoolExecutor(projects) as pool:
        futures = [pool.submit(_battery, tmp_path / f"p{i}", share[i], seed + i) for i in range(projects)]
        reports = [f.result() for f in futures]
    print(f"{sum(share)} kills over {projects} projects: " + "; ".join(reports))


@pytest.mark.slow
def test_daemon_cli_refuses_a_second_daemon_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    first = subprocess.Popen([sys.executable, "-m", "assetflow", "daemon", "--interval", "0.2", "--executor",
                              "inprocess"], cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=env)
    assert first.stderr is not None
    line = first.stderr.readline()
    assert "daemon for" in line, line
    second = subprocess.run([sys.executable, "-m", "assetflow", "daemon", "--once"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 3
    assert f"pid {first.pid} on" in second.stderr and "--wait" in second.stderr
    first.send_signal(signal.SIGTERM)
    rest = first.stderr.read()
    assert first.wait(timeout=120) == 0
    assert "daemon stopped" in rest
