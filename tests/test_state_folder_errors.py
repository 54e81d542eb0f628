"""The file system refusing the state folder (issue 11, item 15): a one-line error naming the path and
what to do, exit code 2, never a raw traceback; and ``status`` still answers on a full disk."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from assetflow.cli import main
from conftest import ASSETFLOW, ProjectDir

PIPELINE = """
    import polars as pl
    from assetflow import asset

    @asset
    def numbers() -> pl.DataFrame:
        return pl.DataFrame({"n": [1, 2]})
"""


@pytest.fixture
def here(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> ProjectDir:
    project.write("pipeline.py", PIPELINE)
    monkeypatch.chdir(project.root)
    return project


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_a_lock_file_replaced_by_a_folder(here: ProjectDir) -> None:
    (here.root / ".assetflow" / "lock").mkdir(parents=True)
    outcome = CliRunner().invoke(main, ["materialize", "--executor", "inprocess"])
    assert outcome.exit_code == 2
    line = one_line_error(outcome.stderr)
    assert str(here.root / ".assetflow" / "lock") in line and "rm -r" in line


@pytest.mark.parametrize("command", [["materialize", "--executor", "inprocess"], ["status"], ["history", "numbers"],
                                     ["doctor"], ["gc"]])
def test_a_state_folder_that_is_a_file(here: ProjectDir, command: list[str]) -> None:
    (here.root / ".assetflow").write_text("not a folder")
    outcome = CliRunner().invoke(main, command)
    assert outcome.exit_code == 2, outcome.output
    line = one_line_error(outcome.stderr)
    assert f"{here.root / '.assetflow'} is a file, not a folder" in line and "mv " in line
    json_outcome = CliRunner().invoke(main, [*command, "--json"]) if command[0] in ("status", "doctor") else None
    if json_outcome is not None:
        assert json.loads(json_outcome.stdout)["error"]["type"] == "StateError"


def full_disk() -> Callable[[], None]:
    def apply() -> None:  # every write that grows a file fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    return apply


def run_on_full_disk(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ASSETFLOW, *args], cwd=root, capture_output=True, text=True, timeout=300,
                          preexec_fn=full_disk())


@pytest.mark.slow
def test_a_full_disk_on_a_fresh_project(here: ProjectDir) -> None:
    proc = run_on_full_disk(here.root, "materialize", "--executor", "inprocess")
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc.stderr)
    assert str(here.root / ".assetflow") in line and "free some space" in line
    status = run_on_full_disk(here.root, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert {a["name"]: a["state"] for a in json.loads(status.stdout)["assets"]} == {"numbers": "missing"}


@pytest.mark.slow
def test_status_works_on_a_full_disk(here: ProjectDir) -> None:
    assert here.run("materialize").returncode == 0
    here.write("pipeline.py", PIPELINE + "\n    # an edit: the no-op snapshot no longer holds, status imports and assesses\n")
    status = run_on_full_disk(here.root, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert {a["name"]: a["state"] for a in json.loads(status.stdout)["assets"]} == {"numbers": "fresh"}
    materialize = run_on_full_disk(here.root, "materialize", "--force", "--executor", "inprocess")
    assert materialize.returncode == 2 and "Traceback" not in materialize.stderr, materialize.stderr
    assert "free some space" in materialize.stderr or "disk space" in materialize.stderr
    assert here.status()["numbers"]["state"] == "fresh"  # nothing partial was recorded
