"""With --json, a failing command prints the documented ``error`` document on stdout and exits with
the code it carries (issue 11, item 7); stdout never carries anything but that one document."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from assetflow.cli import main
from conftest import ProjectDir
from test_json_schema import documented, paths

PIPELINE = """
    import polars as pl
    from assetflow import asset

    @asset
    def numbers() -> pl.DataFrame:
        return pl.DataFrame({"n": [1]})
"""


@pytest.fixture
def here(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> ProjectDir:
    project.write("pipeline.py", PIPELINE)
    monkeypatch.chdir(project.root)
    return project


@pytest.mark.parametrize(("args", "error_type", "exit_code", "command"), [
    (["status", "nope", "--json"], "SelectionError", 2, "status"),
    (["materialize", "numbrs*", "--json"], "SelectionError", 2, "materialize"),
    (["materialize", "--jobs", "0", "--json"], "BadParameter", 2, "materialize"),
    (["materialize", "--executor", "nowhere", "--json"], "PluginError", 2, "materialize"),
    (["lineage", "numbers", "--format", "json", "--depth", "-1"], "BadParameter", 2, "lineage"),
    (["why", "nope", "--json"], "UnknownAssetError", 2, "why"),
    (["nope", "--json"], "NoSuchCommand", 2, None),
])
def test_errors_are_a_json_document_on_stdout(here: ProjectDir, args: list[str], error_type: str, exit_code: int,
                                              command: str | None) -> None:
    outcome = CliRunner().invoke(main, args)
    assert outcome.exit_code == exit_code, outcome.output
    doc = json.loads(outcome.stdout)
    assert doc["schema_version"] == 1 and doc["command"] == "error"
    error = doc["error"]
    assert (error["type"], error["exit_code"], error["command"]) == (error_type, exit_code, command)
    assert error["message"] and error["message"] in outcome.stderr  # people still read it on stderr
    keys, types = documented()["error"]
    body = {k: v for k, v in doc.items() if k not in ("schema_version", "command")}
    assert paths(body, types) <= keys


def test_a_project_that_fails_to_import_is_an_error_document(here: ProjectDir) -> None:
    here.write("pipeline.py", "print('half')\nraise ImportError('a broken module')\n")
    outcome = CliRunner().invoke(main, ["materialize", "--json"])
    assert outcome.exit_code == 2
    doc = json.loads(outcome.stdout)  # the module's print went to stderr
    assert doc["error"]["type"] == "ProjectLoadError" and "a broken module" in doc["error"]["message"]
    assert "half" in outcome.stderr


def test_without_json_stdout_stays_empty_on_error(here: ProjectDir) -> None:
    outcome = CliRunner().invoke(main, ["status", "nope"])
    assert outcome.exit_code == 2 and outcome.stdout == "" and "Unknown asset" in outcome.stderr
