"""A malformed source file is reported as the source's, with its file and line, not as the downstream's traceback."""

from __future__ import annotations

import json

from click.testing import CliRunner

from assetflow import api
from assetflow.cli import main
from conftest import ProjectDir

PIPELINE = '''
    import polars as pl
    from assetflow import asset, source

    raw = source("data/raw.csv")

    @asset(retries=2, retry_delay="1ms")
    def clean(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.filter(pl.col("b") > 0)

    @asset
    def other() -> pl.DataFrame:
        return pl.DataFrame({"x": [1]})
'''
GOOD = "a,b\n" + "".join(f"{i},{i}\n" for i in range(150))


def test_a_malformed_csv_names_the_source_its_file_and_line(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    project.write("data/raw.csv", GOOD + "7,x\n8,8\n")  # line 152: a text in an integer column
    result = api.materialize(project=project.root, executor="inprocess")
    assert {n: r.outcome for n, r in result.results.items()} == {"clean": "failed", "other": "ran"}
    error = result.results["clean"].error or ""
    assert error.startswith("SourceReadError: Source `raw` (") and "pipeline.py:5)" in error
    assert "cannot read data/raw.csv, line 152: could not parse `x` as dtype `i64` at column 'b'" in error
    assert "Traceback" not in error and "polars" not in error.split("(ComputeError)")[0].lower()
    assert result.results["clean"].attempts == 1  # the same bytes are not read again

    rows = {r.name: r for r in api.status(project=project.root)}
    assert rows["raw"].state == "failed" and "data/raw.csv, line 152" in rows["raw"].reasons[0]
    assert rows["clean"].state == "failed" and "Source `raw`" in rows["clean"].reasons[0]
    shown = CliRunner().invoke(main, ["status", "--json", "--project", str(project.root)])
    by_name = {a["name"]: a for a in json.loads(shown.output)["assets"]}
    assert by_name["raw"]["state"] == "failed" and "line 152" in by_name["raw"]["reasons"][0]
    history = CliRunner().invoke(main, ["history", "raw", "--json", "--project", str(project.root)])
    assert "line 152" in history.output

    project.write("data/raw.csv", GOOD + "7,9,10\n")  # line 152: one field too many
    result = api.materialize(project=project.root, executor="inprocess")
    assert "data/raw.csv, line 152: found more fields than defined" in (result.results["clean"].error or "")

    project.write("data/raw.csv", GOOD)
    rows = {r.name: r for r in api.status(project=project.root)}
    assert rows["raw"].state == "observed"  # fixed: the old failure no longer applies
    assert api.materialize(project=project.root, executor="inprocess").results["clean"].outcome == "ran"


def test_status_joins_a_failure_that_ends_in_a_period_and_the_next_reason_cleanly(project: ProjectDir) -> None:
    """The failure's advice ends in a period; joined with the next reason it read '...=None.; never materialized'."""
    project.write("pipeline.py", PIPELINE)
    project.write("data/raw.csv", GOOD + "7,x\n")
    api.materialize(project=project.root, executor="inprocess")
    line = next(row for row in CliRunner().invoke(main, ["status", "--project", str(project.root)]).output.splitlines()
                if row.startswith("clean "))
    assert "infer_schema_length=None; never materialized" in line and ".;" not in line
