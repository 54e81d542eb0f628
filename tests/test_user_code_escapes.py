"""User code that tries to leave the run (issue 11, items 13 and 16): ``sys.exit()`` in an asset or
at import, and ``os.fork()`` whose child returns into assetflow. None may end or double the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from assetflow import api
from assetflow.cli import main
from assetflow.errors import ProjectLoadError
from assetflow.workspace import Workspace
from conftest import ProjectDir

EXITING = """
    import sys
    import polars as pl
    from assetflow import asset

    @asset
    def quits() -> pl.DataFrame:
        sys.exit(0)

    @asset
    def after(quits: pl.DataFrame) -> pl.DataFrame:
        return quits

    @asset
    def apart() -> pl.DataFrame:
        return pl.DataFrame({"n": [1]})
"""


def test_sys_exit_in_an_asset_fails_that_asset(project: ProjectDir) -> None:
    project.write("pipeline.py", EXITING)
    result = api.materialize(project=project.root, executor="inprocess")
    outcomes = {name: r.outcome for name, r in result.results.items()}
    assert outcomes == {"quits": "failed", "after": "skipped", "apart": "ran"}
    error = result.results["quits"].error or ""
    assert "sys.exit(0)" in error and "SystemExit" in error and "pipeline.py" in error
    assert not result.ok


def test_sys_exit_in_an_asset_exits_1_from_the_cli(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write("pipeline.py", EXITING)
    monkeypatch.chdir(project.root)
    outcome = CliRunner().invoke(main, ["materialize", "--executor", "inprocess", "--json"])
    assert outcome.exit_code == 1, outcome.output
    payload = json.loads(outcome.stdout)
    assert {a["name"]: a["outcome"] for a in payload["assets"]}["quits"] == "failed"


@pytest.mark.parametrize("code", ["0", "None", "'bye'"])
def test_sys_exit_at_import_is_a_definition_error(project: ProjectDir, monkeypatch: pytest.MonkeyPatch,
                                                  code: str) -> None:
    project.write("pipeline.py", f"""
        import sys
        import polars as pl
        from assetflow import asset

        @asset
        def numbers() -> pl.DataFrame:
            return pl.DataFrame({{"n": [1]}})

        sys.exit({code})
    """)
    with pytest.raises(ProjectLoadError, match=r"called sys\.exit\(") as caught:
        Workspace.load(project.root)
    assert "pipeline.py" in str(caught.value) and '__name__ == "__main__"' in str(caught.value)
    monkeypatch.chdir(project.root)
    for command in (["status"], ["materialize", "--executor", "inprocess"]):
        outcome = CliRunner().invoke(main, command)
        assert outcome.exit_code == 2, (command, outcome.output)
        assert "sys.exit(" in outcome.stderr


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inprocess", "processes"])
def test_a_forked_child_never_continues_the_run(project: ProjectDir, tmp_path: Path, executor: str) -> None:
    """The child of an ``os.fork()`` that returns from the asset is stopped: every asset runs once."""
    ledger = tmp_path / "ledger.txt"
    project.write("pipeline.py", f"""
        import os
        import polars as pl
        from assetflow import asset

        def note(what):
            with open({str(ledger)!r}, "a") as handle:
                handle.write(f"{{what}} {{os.getpid()}}\\n")

        @asset
        def forks() -> pl.DataFrame:
            child = os.fork()  # the child forgets os._exit() and returns, like its parent
            note("forks-child" if child == 0 else "forks-parent")
            if child:
                os.waitpid(child, 0)
            return pl.DataFrame({{"n": [1]}})

        @asset
        def downstream(forks: pl.DataFrame) -> pl.DataFrame:
            note("downstream")
            return forks
    """)
    proc = project.run("materialize", "--json", "--executor", executor)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)  # one document: the child printed nothing to stdout
    assert {a["name"]: a["outcome"] for a in payload["assets"]} == {"forks": "ran", "downstream": "ran"}
    lines = sorted(line.split()[0] for line in ledger.read_text().splitlines())
    assert lines == ["downstream", "forks-child", "forks-parent"]
    assert "forked by asset `forks`" in proc.stderr
    history = json.loads(project.run("history", "--json").stdout)
    assert len(history["runs"]) == 1 and history["runs"][0]["status"] == "succeeded"
