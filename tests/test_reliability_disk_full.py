"""Disk full (issue 6 item 5): writes fail with EFBIG at several sizes, via RLIMIT_FSIZE.

The run is started with a file-size limit (and SIGXFSZ ignored, so an oversized write fails
with EFBIG instead of killing the process), which makes data writes, or state store writes,
or both, fail at some point. Then: the exit status is non-zero and the output names the
asset and the error; nothing partial is recorded; once the limit is lifted, the rerun
converges to a clean run's data.
"""

from __future__ import annotations

import json
import resource
import signal
from pathlib import Path

import pytest

from reliability_harness import (
    ASSETS,
    FULL,
    RAW_A,
    RAW_B,
    Project,
    check_converged,
    check_fresh_is_true,
    check_recorded_data,
    clean_hashes,
    integrity,
    ran,
)

# Bytes a single file may grow to. The state store is ~100 KB and the `wide` asset ~2 MB,
# so the small limits fail state writes too and the middle ones only the data writes.
LIMITS = (8_192, 65_536, 262_144, 1_048_576, 4_194_304)
ERRORS = ("File too large", "database or disk is full", "disk I/O error", "No space left")


def limited(limit: int):  # noqa: ANN201 - a preexec_fn
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    base = tmp_path_factory.mktemp("clean")
    return {"A": clean_hashes(base / "a", RAW_A), "B": clean_hashes(base / "b", RAW_B)}


CASES = [(limit, scenario, executor) for limit in LIMITS for scenario in ("cold", "change")
         for executor in ("inprocess", "processes")] if FULL else [(65_536, "change", "inprocess"),
                                                                  (1_048_576, "cold", "processes")]


@pytest.mark.parametrize(("limit", "scenario", "executor"), CASES)
def test_writes_failing_with_efbig(tmp_path: Path, expected: dict[str, dict[str, str]], limit: int, scenario: str,
                                   executor: str) -> None:
    project = Project.create(tmp_path / "p", RAW_A)
    want = expected["A"]
    if scenario == "change":
        project.materialize()
        project.write_raw(RAW_B)
        want = expected["B"]
    log_before = len(project.executions())
    proc = project.run("materialize", "--json", env={"ASSETFLOW_EXECUTOR": executor}, preexec_fn=limited(limit))
    output = proc.stdout + proc.stderr
    assert "Traceback (most recent call last)" not in proc.stderr, proc.stderr
    if limit < 1_000_000:
        assert proc.returncode != 0, f"nothing failed under a {limit}-byte limit:\n{output}"
    if proc.returncode == 1:  # the run finished; the assets whose writes failed are named with the error
        assert named_failures(proc), f"no asset named with the error:\n{output}"
    elif proc.returncode == 2:  # the state store could not be written: the message says so, and while doing what
        assert "The state store" in proc.stderr and any(e in proc.stderr for e in ERRORS), proc.stderr
        if len(project.executions()) > log_before:
            assert "asset '" in proc.stderr or "recording" in proc.stderr, proc.stderr
    else:
        assert proc.returncode == 0, f"exit {proc.returncode}:\n{output}"
    record_outcome(limit, scenario, executor, proc.returncode)
    # Nothing partial recorded: every pointer leads to intact data, fresh means a clean run's data.
    assert integrity(project.db_path) == "ok"
    check_recorded_data(project)
    status = check_fresh_is_true(project, want)
    not_fresh = {name for name in ASSETS if status[name]["state"] != "fresh"}
    assert named_failures(proc) <= not_fresh
    rerun = project.materialize(env={"ASSETFLOW_EXECUTOR": executor})
    assert ran(rerun) <= not_fresh
    check_converged(project, want)


def named_failures(proc) -> set[str]:  # noqa: ANN001
    """Assets the output names as failed by the write error (JSON results, or the error message)."""
    names: set[str] = set()
    try:
        payload = json.loads(proc.stdout)
    except ValueError:
        payload = None
    if payload:  # the run's document, or (exit 2) the error document, whose message is also on stderr
        names |= {a["name"] for a in payload.get("assets", [])
                  if a["outcome"] == "failed" and any(e in (a["error"] or "") for e in ERRORS)}
    names |= {name for name in ASSETS if f"asset {name!r}" in proc.stderr or f"`{name}`" in proc.stderr}
    return names


def record_outcome(limit: int, scenario: str, executor: str, code: int) -> None:
    import os

    log = os.environ.get("ASSETFLOW_BATTERY_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps({"test": "disk_full", "limit": limit, "scenario": scenario,
                                     "executor": executor, "exit": code}) + "\n")
