"""Progress of a run (issue 11, item 5): on a terminal a live line (k/N settled, what runs, elapsed,
an estimate); elsewhere one plain line per settled asset on stderr; nothing of it with --json."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from assetflow.cli import main
from assetflow.cli_render import Progress
from assetflow.execute.results import AssetResult
from conftest import ProjectDir


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_live_line_counts_names_the_running_and_estimates() -> None:
    clock = Clock()
    progress = Progress(live=False, clock=clock)
    progress.printed_lines = False  # only the line, as a terminal shows it
    progress.begin(total=5, to_run=3, capacity=1)
    assert progress.line() == "0/5 settled · 0s elapsed"
    progress.update(AssetResult("raw_orders", "fresh", []))
    progress.started("orders")
    clock.now += 4
    assert progress.line() == "1/5 settled · running: orders · 4s elapsed"  # no pace yet: no estimate
    progress.update(AssetResult("orders", "ran", ["code changed"], duration=4.0))
    progress.started("customers")
    clock.now += 1
    # pace 4 s; 2 still to compute (8 s), customers already ran 1 s of it, one at a time: ~7 s left
    assert progress.line() == "2/5 settled · running: customers · 5s elapsed · ~7s left"
    for name in ("a", "b", "c", "d"):
        progress.started(name)
    assert "running: customers, a, b and 2 more" in progress.line()


def test_the_estimate_divides_by_the_assets_that_run_at_once() -> None:
    clock = Clock()
    progress = Progress(live=False, clock=clock)
    progress.begin(total=10, to_run=9, capacity=4)
    progress.printed_lines = False
    progress.update(AssetResult("first", "ran", [], duration=2.0))
    assert progress.estimate() == pytest.approx(2.0 * 8 / 4)


@pytest.fixture
def here(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> ProjectDir:
    project.write("pipeline.py", """
        import polars as pl
        from assetflow import asset

        @asset
        def first() -> pl.DataFrame:
            return pl.DataFrame({"n": [1]})

        @asset
        def second(first: pl.DataFrame) -> pl.DataFrame:
            return first

        @asset
        def broken(first: pl.DataFrame) -> pl.DataFrame:
            raise ValueError("broken on purpose")
    """)
    monkeypatch.chdir(project.root)
    return project


def test_without_a_terminal_one_plain_line_per_settled_asset(here: ProjectDir) -> None:
    outcome = CliRunner().invoke(main, ["materialize", "--executor", "inprocess"])
    assert outcome.exit_code == 1
    lines = [line for line in outcome.stderr.splitlines() if line.startswith("[")]
    assert [line[:6] for line in lines] == ["[1/3] ", "[2/3] ", "[3/3] "]
    assert sorted(re.sub(r" in [0-9.]+s", "", line[6:]).strip() for line in lines) == [
        "FAILED broken (its error follows when the run ends)",
        "ran first: never materialized",
        "ran second: never materialized",
    ]
    assert "broken on purpose" in outcome.stderr
    assert sum("ran first" in line for line in outcome.stderr.splitlines()) == 1  # not repeated at the end
    assert outcome.stdout.strip() == "Done: 2 ran, 1 failed."


def test_no_progress_with_json(here: ProjectDir) -> None:
    outcome = CliRunner().invoke(main, ["materialize", "--executor", "inprocess", "--json"])
    assert "[1/3]" not in outcome.stderr
    assert json.loads(outcome.stdout)["counts"]["ran"] == 2
