"""The command's entry point answers a no-op ``materialize`` before click is imported (issue 17), with the
very output of the full command; anything else goes to the full command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ProjectDir

PIPELINE = """
import polars as pl
from assetflow import asset, source

raw = source("raw.csv")


@asset
def doubled(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.with_columns(v=pl.col("v") * 2)


@asset
def total(doubled: pl.DataFrame) -> pl.DataFrame:
    return doubled.select(pl.col("v").sum())
"""

# Runs the entry point in a child and says, as it exits (atexit: the entry point ends the process itself), whether
# click was imported.
ENTRY = """
import atexit, sys
sys.argv = ["assetflow", *sys.argv[1:]]

def report():
    print("declare imported:", "assetflow.declare" in sys.modules, file=sys.stderr)
    print("click imported:", "click" in sys.modules, file=sys.stderr)

atexit.register(report)
from assetflow.cli_fast import main
main()
"""
# The full command, as it was the entry point before.
FULL = "import sys; sys.argv = ['assetflow', *sys.argv[1:]]; from assetflow.cli import main; main()"


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def done(tmp_path: Path) -> ProjectDir:
    """A project whose every asset is fresh, with its no-op snapshot."""
    project = ProjectDir(tmp_path, ["pipeline"])
    project.write("pipeline.py", PIPELINE)
    project.write("raw.csv", "v\n1\n2\n")
    project.materialize()
    assert project.materialize()["_"]["fast_path"] is True  # the snapshot vouches
    return project


@pytest.mark.parametrize("args", [(), ("--json",), ("--project", "."), ("--json", "--project=.")])
def test_a_no_op_is_answered_without_click_and_prints_what_the_full_command_prints(
        done: ProjectDir, args: tuple[str, ...]) -> None:
    fast = _run(ENTRY, "materialize", *args, cwd=done.root)
    full = _run(FULL, "materialize", *args, cwd=done.root)
    assert "click imported: False" in fast.stderr and fast.returncode == 0
    assert "declare imported: False" in fast.stderr  # nor the declarations (partitions, freshness, datetime)
    assert fast.stdout == full.stdout and full.returncode == 0
    assert "Everything is fresh: 2 assets" in fast.stdout or '"fast_path": true' in fast.stdout


@pytest.mark.parametrize("args", [("doubled",), ("--force",), ("--dry-run",), ("--jobs", "2"), ("--project",),
                                  ("-m", "pipeline")])
def test_any_other_command_line_goes_to_the_full_command(done: ProjectDir, args: tuple[str, ...]) -> None:
    fast = _run(ENTRY, "materialize", *args, cwd=done.root)
    full = _run(FULL, "materialize", *args, cwd=done.root)
    assert "click imported: True" in fast.stderr
    assert fast.stdout == full.stdout and fast.returncode == full.returncode
    assert _timeless(fast.stderr.rsplit("declare imported", 1)[0]) == _timeless(full.stderr)


def _timeless(text: str) -> str:
    return re.sub(r"in \d+\.\d+s", "in Ns", text)


def test_a_change_or_a_broken_project_goes_to_the_full_command(done: ProjectDir) -> None:
    done.write("raw.csv", "v\n1\n3\n")
    fast = _run(ENTRY, "materialize", "--json", cwd=done.root)
    assert "click imported: True" in fast.stderr and fast.returncode == 0 and '"ran": 2' in fast.stdout

    done.write("pyproject.toml", "[tool.assetflow\n")  # unreadable: the full command says why
    fast = _run(ENTRY, "materialize", cwd=done.root)
    full = _run(FULL, "materialize", cwd=done.root)
    assert "click imported: True" in fast.stderr and full.returncode != 0
    assert fast.stderr.rsplit("declare imported", 1)[0] == full.stderr


EXIT = """
import atexit, sys, threading, time
from assetflow.cli_fast import exit_now

class Teardown:
    def __del__(self):
        sys.stdout.write("torn down\\n")

kept = Teardown()  # freed only by the interpreter's teardown
atexit.register(lambda: sys.stdout.write("atexit ran\\n"))
sys.stdout.write("buffered, not yet flushed\\n")
if sys.argv[1] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.2), sys.stdout.write("thread finished\\n"))).start()
exit_now(sys.argv[2] if not sys.argv[2].isdigit() else int(sys.argv[2]))
"""


def test_the_entry_point_ends_after_its_atexit_handlers_without_the_interpreters_teardown(tmp_path: Path) -> None:
    ended = _run(EXIT, "plain", "3", cwd=tmp_path)
    assert ended.returncode == 3
    assert ended.stdout == "buffered, not yet flushed\natexit ran\n"  # flushed, handlers run, no teardown
    ended = _run(EXIT, "plain", "bad input", cwd=tmp_path)  # as sys.exit("bad input"): said, status 1
    assert ended.returncode == 1 and ended.stderr == "bad input\n"


def test_with_a_thread_to_wait_for_the_entry_point_exits_the_normal_way(tmp_path: Path) -> None:
    ended = _run(EXIT, "thread", "4", cwd=tmp_path)
    assert ended.returncode == 4
    assert "thread finished" in ended.stdout and "atexit ran" in ended.stdout and "torn down" in ended.stdout
