"""The daemon keeps its process pool between runs (``keep_workers``): real worker processes, an injected clock.

A worker writes its pid into the asset it computes, so each test reads which process computed each run.
"""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assetflow import api
from assetflow.automation.daemon import KEEP_WORKERS, Daemon
from assetflow.cli import main
from assetflow.errors import AssetflowError
from assetflow.execute import handoff
from assetflow.execute.pool import ProcessExecutor
from assetflow.execute.runner import Run
from assetflow.workspace import Workspace
from tests.test_automation import HEADER, Clock, make

pytestmark = pytest.mark.slow  # starts worker processes

PIDS = """
import os

orders_raw = source("data/orders.csv")

@asset(automation=eager())
def where(orders_raw: pl.DataFrame) -> pl.DataFrame:
    return orders_raw.with_columns(pid=pl.lit(os.getpid()))
"""


def computed_by(project: Daemon | Workspace) -> int:
    """The pid of the process that computed the current version of ``where``."""
    return int(api.load("where", project=project.ws if isinstance(project, Daemon) else project)["pid"][0])


def in_worker(pool: ProcessExecutor, fn: Callable[[], object]) -> object:
    """What ``fn()`` returns in the pool's worker (the pool moves only while the caller waits on it)."""
    future = pool.submit(operator.call, fn)
    pool.wait_any([future], timeout=60)
    return future.result(timeout=0)


def new_orders(root: Path, amount: int) -> None:
    (root / "data" / "orders.csv").write_text(f"id,amount\n1,{amount}\n")


def ended(pid: int, within: float = 10.0) -> bool:
    """Whether process ``pid`` has exited (a zombie counts: it runs nothing), waiting up to ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False


def test_runs_reuse_the_kept_workers_until_they_idle_past_keep_workers(tmp_path: Path) -> None:
    root = make(tmp_path, PIDS)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = Daemon(root, clock=clock, jobs=1, keep_workers=60).open()
    try:
        d.tick()  # where is missing: it runs, in a worker of the pool the daemon keeps
        first = computed_by(d)
        assert first != os.getpid()
        for amount in (20, 30):  # new data each time: the eager asset runs again, in the same worker
            new_orders(root, amount)
            clock.now += 5
            d.tick()
            assert computed_by(d) == first
            assert int(api.load("where", project=d.ws)["amount"][0]) == amount
        new_orders(root, 35)
        clock.now += 60  # exactly keep_workers since the last run (a schedule of that period): still kept
        d.tick()
        assert computed_by(d) == first
        assert not ended(first, within=0.2)
        clock.now += 61  # a minute without a run: the pool is stopped, its worker gone
        d.tick()
        assert ended(first)
        new_orders(root, 40)
        clock.now += 5
        d.tick()
        assert computed_by(d) not in (first, os.getpid())  # a new pool's worker
    finally:
        d.close()


def test_a_code_edit_stops_the_kept_workers_and_the_next_run_uses_new_ones(tmp_path: Path) -> None:
    root = make(tmp_path, PIDS)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = Daemon(root, clock=clock, jobs=1, keep_workers=600).open()
    try:
        d.tick()
        first = computed_by(d)
        (root / "pipeline.py").write_text(HEADER + PIDS.replace("pid=pl.lit", "edited=pl.lit(1), pid=pl.lit"))
        clock.now += 5
        report = d.tick()  # reloads the project; the workers had imported the code it replaces
        assert report.reloaded
        assert ended(first)
        new_orders(root, 50)
        clock.now += 5
        d.tick()
        table = api.load("where", project=d.ws)
        assert "edited" in table.columns and int(table["pid"][0]) != first
    finally:
        d.close()


def test_keep_workers_zero_computes_a_small_run_in_the_daemon_as_before(tmp_path: Path) -> None:
    root = make(tmp_path, PIDS)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = Daemon(root, clock=clock, keep_workers=0).open()
    try:
        d.tick()
        assert computed_by(d) == os.getpid()  # a plan of one asset: computed in process, no pool started
    finally:
        d.close()


def test_end_run_keeps_the_worker_and_drops_the_tables_it_kept(tmp_path: Path) -> None:
    root = make(tmp_path, PIDS.replace("@asset(automation=eager())", "@asset"))
    pool = ProcessExecutor(jobs=1)
    ws = api.workspace(root)
    try:
        Run(ws, ["where"], executor=pool).execute()
        worker = computed_by(ws)
        assert in_worker(pool, handoff.kept_count) == 1  # where's table, kept for inputs of the same run
        pool.end_run()
        assert in_worker(pool, handoff.kept_count) == 0
        assert in_worker(pool, os.getpid) == worker  # the same process
    finally:
        pool.shutdown()
        ws.close()


@pytest.mark.parametrize(("options", "kept"), [((), True), (("--keep-workers", "0"), False)])
def test_a_daemon_process_keeps_its_worker_as_told_and_a_sigkill_leaves_none_behind(
        tmp_path: Path, options: tuple[str, ...], kept: bool) -> None:
    root = make(tmp_path, PIDS)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    daemon = subprocess.Popen([sys.executable, "-m", "assetflow", "daemon", "--interval", "0.2", "--jobs", "1",
                               *options], cwd=root, stderr=subprocess.DEVNULL, env=env)
    try:
        first = stored_when(root, lambda table: table is not None)
        assert int(first["pid"][0]) not in (daemon.pid, os.getpid())
        new_orders(root, 70)
        second = stored_when(root, lambda table: table is not None and int(table["amount"][0]) == 70)
        assert (int(second["pid"][0]) == int(first["pid"][0])) is kept  # kept from the first run, or a new one
    finally:
        daemon.kill()
        daemon.wait(timeout=60)
    assert ended(int(first["pid"][0]))  # its worker noticed the daemon was gone and exited, or had ended


def test_the_daemons_help_states_the_default_it_keeps_workers_for() -> None:
    shown = " ".join(CliRunner().invoke(main, ["daemon", "--help"]).output.split())
    assert f"default: {KEEP_WORKERS:g};" in shown


def test_serve_runs_assets_in_kept_workers_never_in_the_page_servers_process(tmp_path: Path) -> None:
    root = make(tmp_path, PIDS)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    server = subprocess.Popen([sys.executable, "-m", "assetflow", "serve", "--port", "0", "--interval", "0.2"],
                              cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        first = stored_when(root, lambda table: table is not None)
        worker = int(first["pid"][0])
        assert worker not in (server.pid, os.getpid())  # computed outside the process serving the page
        new_orders(root, 80)
        second = stored_when(root, lambda table: table is not None and int(table["amount"][0]) == 80)
        assert int(second["pid"][0]) == worker  # kept between the daemon's runs
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=120) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=60)
    assert ended(worker)  # the daemon's close stopped it


def stored_when(root: Path, wanted: Callable[[Any], bool], within: float = 120.0) -> Any:
    """The current version of ``where`` once ``wanted`` holds for it (the daemon runs on its own time)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            table = api.load("where", project=root)
        except AssetflowError:  # not materialized yet
            table = None
        if wanted(table):
            return table
        time.sleep(0.2)
    raise AssertionError(f"the daemon did not store the expected version of `where` within {within:g} s")


def test_a_pool_that_cannot_be_built_fails_the_tick_and_the_daemon_goes_on(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path, PIDS)
    monkeypatch.setenv("ASSETFLOW_START_METHOD", "teleport")
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = Daemon(root, clock=clock, keep_workers=60).open()
    try:
        d.tick()  # where is missing: its run needs the pool, which names an unknown start method
        [tick] = [t for t in d.ticks.ticks(limit=10) if t.origin == "condition:where"]
        assert tick.status == "failed" and "ASSETFLOW_START_METHOD='teleport'" in tick.reason
    finally:
        d.close()
