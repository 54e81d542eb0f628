"""Exactly once, under SIGKILL: a daemon killed at random instants, restarted, runs every due tick once.

Slow lane. The daemon runs in a real subprocess with an injected fast clock (one real second is
``SPEED`` clock seconds, continuous across restarts), a minutely schedule with ``catchup="all"`` and
``force=True`` (so every tick has work), and the in-process executor. Each round starts it, waits
until it is evaluating, kills it with SIGKILL after a random delay, and starts the next. A final
daemon drains the queue. Then: every cron instant from the first sighting to the end has exactly
one tick, succeeded; exactly one succeeded run per tick; and across the runs of one tick (a resumed
run included) each asset's recorded "ran" happens exactly once: none twice, none lost.
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
SPEED = 12.0  # clock seconds per real second: a minutely tick every 5 real seconds
START = 1_800_000_000.0  # the injected clock's origin (a round minute)

DRIVER = """
import sys, threading, time
from assetflow.automation.daemon import Daemon
from assetflow.automation.lock import DaemonLock

root, base_real, speed, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
clock = lambda: min(end, start + (time.time() - base_real) * speed)  # the final daemon drains up to ``end``
lock = DaemonLock(__import__("pathlib").Path(root) / ".assetflow")
lock.acquire(wait=True, poll=0.01)
d = Daemon(root, clock=clock, executor="inprocess", interval=0.02).open()
print("ready", flush=True)
stop = threading.Event()
while True:
    d.tick()
    if clock() >= end and not d.ticks.unfinished():
        break
    time.sleep(0.02)
d.close()
print("done", flush=True)
"""

PIPELINE = """
import polars as pl
from assetflow import asset
from assetflow.automation import schedule

@asset
def a() -> pl.DataFrame:
    return pl.DataFrame({"x": [1, 2, 3]})

@asset
def b(a: pl.DataFrame) -> pl.DataFrame:
    return a.with_columns(y=pl.col("x") * 2)

schedule("every_minute", cron="* * * * *", select="+b", force=True, catchup="all", timezone="UTC")
"""


def _driver(root: Path, base_real: float, end: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(root), repr(base_real), repr(SPEED), repr(START),
                             repr(end)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def _first_sighting(root: Path) -> None:
    """The project, and its schedule seen at START (nothing before it is due)."""
    from assetflow.automation.daemon import Daemon

    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    Daemon(root, clock=lambda: START, executor="inprocess").open().close()


def _battery(root: Path, kills: int, seed: int) -> str:
    """Kill a daemon on ``root`` ``kills`` times at random instants, drain, and check every tick ran once."""
    rng = random.Random(seed)
    base_real = time.time()
    for _ in range(kills):
        proc = _driver(root, base_real, float("inf"))
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.6))  # a random instant of its evaluating life (not a timing assertion)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    end = START + (time.time() - base_real) * SPEED
    final = _driver(root, base_real, end)
    out, _ = final.communicate(timeout=600)
    assert final.returncode == 0 and out.split() == ["ready", "done"], out
    return _check(root, end)


def _check(root: Path, end: float) -> str:
    db = sqlite3.connect(root / ".assetflow" / "state.db")
    ticks = db.execute("SELECT tick_at, status, run_id FROM ticks WHERE origin = 'schedule:every_minute' "
                       "ORDER BY tick_at").fetchall()
    instants = [t for t, _, _ in ticks]
    expected = [START + 60 * i for i in range(1, int((end - START) // 60) + 1)]
    assert instants == expected  # none lost, none twice (the key is unique anyway)
    assert {s for _, s, _ in ticks} == {"succeeded"}
    by_tick: dict[float, list[tuple[str, str]]] = {}
    for run_id, status, trigger in db.execute("SELECT run_id, status, trigger FROM runs"):
        data = json.loads(trigger)
        if data.get("kind") == "schedule":
            by_tick.setdefault(data["tick"], []).append((run_id, status))
    ran_by_run: dict[str, list[str]] = {}
    for run_id, asset in db.execute("SELECT run_id, asset FROM events WHERE outcome = 'ran'"):
        ran_by_run.setdefault(run_id, []).append(asset)
    resumed = 0
    for tick_at in instants:
        tick_runs = by_tick[tick_at]
        assert [s for _, s in tick_runs].count("succeeded") == 1, (tick_at, tick_runs)
        resumed += len(tick_runs) > 1
        assets = sorted(a for run_id, _ in tick_runs for a in ran_by_run.get(run_id, []))
        assert assets == ["a", "b"], (tick_at, tick_runs, assets)  # each asset once per tick, across resumes
    db.close()
    return f"{len(instants)} ticks, {resumed} resumed after a kill mid-run"


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
