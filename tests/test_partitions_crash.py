"""A backfill killed with SIGKILL resumes: nothing recorded is done twice, nothing partial is recorded fresh.

Real subprocesses killed at the engine's failpoints (see assetflow/failpoints.py) in the
middle of a 12-partition backfill; the identical command then finishes it, and the data
equals a clean backfill's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PIPELINE = '''
    import os
    import polars as pl
    from assetflow import asset, source
    from assetflow.partitions import daily

    DAYS = daily("2024-01-01", end="2024-01-12")
    events = source("data/events/{date}.csv", partitions=DAYS)

    @asset(partitions=DAYS)
    def cleaned(events: pl.DataFrame, partition) -> pl.DataFrame:
        with open(os.path.join(os.path.dirname(__file__), "calls.log"), "a") as log:
            log.write(partition.key + "\\n")
        return events.with_columns(pl.lit(partition.key).alias("day"))

    @asset
    def summary(cleaned: pl.DataFrame) -> pl.DataFrame:
        return cleaned.group_by("day", maintain_order=True).agg(pl.col("amount").sum())
'''


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (root / "pipe.py").write_text(textwrap.dedent(PIPELINE))
    for day in range(1, 13):
        path = root / "data" / "events" / f"2024-01-{day:02d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"user,amount\na,{day}\nb,{day * 10}\n")
    return root


def _assetflow(root: Path, *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("ASSETFLOW_FAILPOINT", None)
    if failpoint:
        env["ASSETFLOW_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "assetflow", *args, "--project", str(root)], capture_output=True,
                          text=True, env=env, timeout=300)


def _calls(root: Path) -> list[str]:
    log = root / "calls.log"
    return log.read_text().split() if log.exists() else []


def _summary(root: Path) -> list[tuple[str, int]]:
    code = ("import assetflow, json; d = assetflow.load('summary', project='.'); "
            "print(json.dumps([list(r) for r in d.iter_rows()]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [tuple(r) for r in json.loads(proc.stdout)]


@pytest.fixture(scope="module")
def clean_summary(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int]]:
    root = _project(tmp_path_factory.mktemp("clean"))
    proc = _assetflow(root, "materialize", "--partition", "2024-01-01..2024-01-12", "--executor", "inprocess")
    assert proc.returncode == 0, proc.stderr
    return _summary(root)


@pytest.mark.parametrize(("point", "executor"), [
    ("after_state_commit:5", "inprocess"),   # five partitions recorded, then killed
    ("before_state_commit:4", "inprocess"),  # the 4th partition's data stored, its record not committed
    ("after_data_write:3", "inprocess"),     # the 3rd partition's file written, not renamed into place
    ("after_state_commit:6", "processes"),   # with worker processes (several partitions in flight)
])
def test_a_killed_backfill_resumes_without_redoing_recorded_partitions(
        tmp_path: Path, clean_summary: list[tuple[str, int]], point: str, executor: str) -> None:
    root = _project(tmp_path / "p")
    command = ("materialize", "--partition", "2024-01-01..2024-01-12", "--executor", executor, "--json")
    killed = _assetflow(root, *command, failpoint=point)
    assert killed.returncode == -9, f"the failpoint did not fire:\n{killed.stderr}"
    status = json.loads(_assetflow(root, "status", "--json").stdout)
    partitions = next(a for a in status["assets"] if a["name"] == "cleaned")["partitions"]
    fresh_before = {k for k, s in partitions.items() if s == "fresh"}
    calls_before = _calls(root)
    assert fresh_before <= set(calls_before)  # nothing is fresh that was not computed
    resumed = _assetflow(root, *command)
    assert resumed.returncode == 0, resumed.stderr
    outcomes = {a["name"]: a["outcome"] for a in json.loads(resumed.stdout)["assets"]}
    rerun = {n.split("[")[1].rstrip("]") for n, o in outcomes.items() if n.startswith("cleaned[") and o == "ran"}
    assert not rerun & fresh_before, f"recorded partitions ran again: {sorted(rerun & fresh_before)}"
    assert rerun | fresh_before == {f"2024-01-{d:02d}" for d in range(1, 13)}
    calls = _calls(root)
    twice = {k for k in calls if calls.count(k) > 1}
    assert twice <= set(calls_before) - fresh_before  # only partitions killed mid-way ran twice
    if executor == "inprocess":
        assert len(twice) <= 1
    assert _summary(root) == clean_summary
    again = json.loads(_assetflow(root, *command).stdout)
    assert {a["outcome"] for a in again["assets"]} == {"fresh"}
    shutil.rmtree(root)
