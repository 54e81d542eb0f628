"""Concurrent runs (issue 6 item 4): four ``assetflow materialize`` started together, many rounds.

Each round changes the source, then starts four processes at once (two with ``--wait``):
every asset executes at most once (counted from a side-effect log the assets append to),
nothing prints a traceback or "database is locked", ``--wait`` runs succeed, the others
succeed or exit 3 at once naming the holder. A lock held by a SIGKILLed run is released.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from reliability_harness import (
    ASSETS,
    FULL,
    RAW_A,
    Project,
    check_converged,
    check_recorded_data,
    clean_hashes,
    integrity,
    outcomes,
)

ROUNDS = 50 if FULL else 2
HOLDER = re.compile(r"holds the lock on this project .*: run \S+ \(pid (\d+) on \S+\)")
RAW_DEPENDENT = set(ASSETS) - {"constant"}


def raw_for_round(number: int) -> str:
    return RAW_A + f"{100 + number},{number + 1}\n"  # a new positive row: everything below raw reruns


def start(project: Project, *args: str, executor: str) -> tuple[subprocess.Popen[str], float]:
    return project.popen("materialize", "--json", *args, env={"ASSETFLOW_EXECUTOR": executor}), time.monotonic()


@pytest.mark.parametrize("executor", ["inprocess", "processes"])
def test_four_concurrent_runs_per_round(tmp_path: Path, executor: str) -> None:
    project = Project.create(tmp_path / "p", RAW_A)
    project.materialize()
    rounds = ROUNDS if executor == "inprocess" or FULL else 1
    exit_codes: Counter[int] = Counter()
    for number in range(rounds):
        project.write_raw(raw_for_round(number))
        log_before = len(project.executions())
        procs = [start(project, *(["--wait"] if i % 2 else []), executor=executor) for i in range(4)]
        results = []
        for proc, started in procs:
            out, err = proc.communicate(timeout=600)
            results.append((proc, out, err, time.monotonic() - started, time.monotonic()))
        executed = Counter(project.executions()[log_before:])
        assert max(executed.values(), default=0) <= 1, f"round {number}: executed more than once: {executed}"
        assert set(executed) == RAW_DEPENDENT, f"round {number}: {executed}"
        for index, (proc, out, err, took, end) in enumerate(results):
            exit_codes[proc.returncode] += 1
            assert "Traceback" not in err and "database is locked" not in err, err
            if index % 2:  # --wait
                assert proc.returncode == 0, err
            else:
                assert proc.returncode in (0, 3), err
            if proc.returncode == 3:  # --json: the error document on stdout, with the same exit code
                assert json.loads(out)["error"]["exit_code"] == 3, out
                match = HOLDER.search(err)
                assert match, f"exit 3 without naming the holder: {err}"
                holder = [r for r in results if r[0].pid == int(match.group(1))]
                assert holder, f"the named holder is none of this round's processes: {err}"
                assert end < holder[0][4] + 5, "exit 3 came long after the holder finished: it waited"
            if proc.returncode == 0:
                payload = json.loads(out)
                assert payload["ok"]
        ran_counts = Counter(n for proc, out, *_ in results if proc.returncode == 0
                             for n, o in outcomes(json.loads(out)).items() if o == "ran")
        assert ran_counts == Counter(RAW_DEPENDENT), ran_counts
        check_recorded_data(project)
    assert integrity(project.db_path) == "ok"
    expected = clean_hashes(tmp_path / "clean", raw_for_round(rounds - 1))
    check_converged(project, expected)
    status = project.status()
    assert all(status[name]["state"] == "fresh" for name in ASSETS), status
    record("concurrency", executor=executor, rounds=rounds, exit_codes=dict(exit_codes))


def record(test: str, **figures: object) -> None:
    import os

    log = os.environ.get("ASSETFLOW_BATTERY_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps({"test": test, **figures}) + "\n")


def wait_for_holder(project: Project, pid: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    lock = project.state / "lock"
    while time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never took the project lock")


@pytest.mark.parametrize("executor", ["inprocess", "processes"])
def test_lock_of_a_killed_run_is_released(tmp_path: Path, executor: str) -> None:
    project = Project.create(tmp_path / "p", RAW_A)
    (project.root / "logs" / "slow-clean").write_text("600")
    holder = project.popen("materialize", "--json", env={"ASSETFLOW_EXECUTOR": executor})
    wait_for_holder(project, holder.pid)
    # While it runs: a second run exits 3 at once and names it.
    started = time.monotonic()
    second = project.run("materialize", env={"ASSETFLOW_EXECUTOR": executor})
    assert second.returncode == 3, second.stderr
    match = HOLDER.search(second.stderr)
    assert match and int(match.group(1)) == holder.pid, second.stderr
    assert time.monotonic() - started < 60
    holder.send_signal(signal.SIGKILL)
    # Read its output before reaping it, as subprocess.run(timeout=...) does: the workers share the
    # pipes, so this returns only once they have seen their coordinator die even as a zombie.
    holder.communicate(timeout=60)
    (project.root / "logs" / "slow-clean").unlink()
    # The kernel released the lock with the process (and its workers): the next run proceeds.
    third = project.run("materialize", "--json", env={"ASSETFLOW_EXECUTOR": executor}, timeout=300)
    assert third.returncode == 0, third.stderr
    assert "clean" in {a["name"] for a in json.loads(third.stdout)["assets"] if a["outcome"] == "ran"}
    check_converged(project, clean_hashes(tmp_path / "clean", RAW_A))


def test_two_threads_of_one_process_load_the_project_at_once(tmp_path: Path) -> None:
    """`assetflow serve` loads the project for the page and for the daemon, each in its thread: a load forgets the
    project's modules first, so two at once pulled a module from under each other ('KeyError: pipeline')."""
    import threading

    from assetflow.workspace import Workspace

    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
    (tmp_path / "pipeline.py").write_text(
        "import polars as pl\nfrom assetflow import asset\n\n@asset\ndef one() -> pl.DataFrame:\n"
        "    return pl.DataFrame({'x': [1]})\n")
    errors: list[str] = []

    def load() -> None:
        try:
            Workspace.load(tmp_path).close()
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(repr(exc))

    for _ in range(30):
        threads = [threading.Thread(target=load) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
