"""The smaller defects new users met (issue 11, item 10), each pinned in process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assetflow import api
from assetflow.cli import main
from assetflow.errors import DefinitionError
from conftest import ProjectDir

README = Path(__file__).resolve().parent.parent / "README.md"


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def here(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> ProjectDir:
    monkeypatch.chdir(project.root)
    return project


def test_the_suggested_name_splits_camel_case() -> None:
    from assetflow import asset

    def DailyTrips() -> None:  # noqa: N802 - the name under test
        return None

    with pytest.raises(DefinitionError, match="Rename it, e.g. 'daily_trips'"):
        asset(DailyTrips)


def test_definition_errors_show_the_users_frame_not_assetflows(here: ProjectDir) -> None:
    here.write("pipeline.py", """
        import polars as pl
        from assetflow import asset

        @asset(retries=-1)
        def numbers() -> pl.DataFrame:
            return pl.DataFrame({"n": [1]})
    """)
    outcome = cli("status")
    assert outcome.exit_code == 2
    assert "pipeline.py\", line 5" in outcome.stderr and "@asset(retries=-1)" in outcome.stderr
    assert "declare.py" not in outcome.stderr and "assetflow.errors." not in outcome.stderr
    assert "DefinitionError: " in outcome.stderr


def test_returning_none_asks_about_a_forgotten_return(here: ProjectDir) -> None:
    here.write("pipeline.py", """
        import polars as pl
        from assetflow import asset

        @asset
        def numbers() -> pl.DataFrame:
            pl.DataFrame({"n": [1]})
    """)
    result = api.materialize(project=here.root, executor="inprocess")
    error = result.results["numbers"].error or ""
    assert "returned None: did you forget `return`?" in error and "pipeline.py:5" in error
    assert "Traceback" not in error


CHAIN = """
    import polars as pl
    from assetflow import asset

    @asset
    def base() -> pl.DataFrame:
        return pl.DataFrame({"n": [1, 2]})  # VERSION

    @asset
    def total(base: pl.DataFrame) -> pl.DataFrame:
        return base.select(pl.col("n").sum())
"""


def test_history_says_cut_off_like_materialize(here: ProjectDir) -> None:
    here.write("pipeline.py", CHAIN)
    cli("materialize", "--executor", "inprocess")
    here.write("pipeline.py", CHAIN.replace('{"n": [1, 2]})  # VERSION', '{"n": [2, 1]}).sort("n")'))
    assert "cut off" in cli("materialize", "--executor", "inprocess").stdout + cli("history").stdout
    text = cli("history").stdout
    assert re.search(r"cut off total", text) and "cutoff" not in text


def test_one_asset_is_counted_in_the_singular(here: ProjectDir) -> None:
    here.write("pipeline.py", CHAIN.split("@asset\n    def total")[0])
    cli("materialize", "--executor", "inprocess")
    assert cli("materialize", "--dry-run").stdout.strip() == "Nothing to do: the 1 selected asset is fresh."
    assert cli("materialize", "--force", "--dry-run").stdout.startswith("Plan (1 of 1 asset;")


def test_doctor_does_not_say_verified_above_problems(here: ProjectDir) -> None:
    here.write("pipeline.py", CHAIN)
    cli("materialize", "--executor", "inprocess")
    stored = next((here.root / ".assetflow" / "data").rglob("*.parquet"))
    stored.write_bytes(b"not parquet any more")
    outcome = cli("doctor")
    first = outcome.stdout.splitlines()[0]
    assert outcome.exit_code == 1 and "verified" not in first and "1 problem found" in first
    assert "PROBLEM" in outcome.stdout
    stored.unlink()
    cli("doctor", "--repair")
    cli("materialize", "--executor", "inprocess")
    assert "2 current versions verified" in cli("doctor").stdout.splitlines()[0]


def test_gc_keep_means_the_same_in_readme_and_help() -> None:
    help_text = " ".join(cli("gc", "--help").stdout.split())
    readme = " ".join(README.read_text().split())
    assert "Earlier versions to keep per asset besides the current one" in help_text
    assert "keeps, per asset, the current version and the N newest earlier ones" in readme
    assert "no pointer reaches beyond N versions" not in readme


def test_the_readmes_load_example_works_when_pasted(here: ProjectDir) -> None:
    example = re.search(r'assetflow\.load\("daily_revenue", version="([^"]+)"', README.read_text())
    assert example is not None
    here.write("pipeline.py", CHAIN)
    api.materialize(project=here.root, executor="inprocess")
    here.write("pipeline.py", CHAIN.replace('[1, 2]', '[1, 2, 3]'))
    api.materialize(project=here.root, executor="inprocess")
    before = api.load("total", version=example[1], project=here.root)
    assert before["n"].to_list() == [3] and api.load("total", project=here.root)["n"].to_list() == [6]
    with pytest.raises(Exception, match="no ~5"):
        api.load("total", version="~5", project=here.root)


def test_a_run_in_progress_shows_as_running(here: ProjectDir, tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    here.write("pipeline.py", f"""
        import json
        import polars as pl
        import assetflow
        from assetflow import asset

        @asset
        def first() -> pl.DataFrame:
            return pl.DataFrame({{"n": [1]}})

        @asset
        def watching(first: pl.DataFrame) -> pl.DataFrame:
            # While this asset computes, ask status (another process would see the same).
            rows = assetflow.status(project={str(here.root)!r})
            with open({str(seen)!r}, "w") as handle:
                json.dump({{r.name: [r.state, r.reasons] for r in rows}}, handle)
            return first
    """)
    result = api.materialize(project=here.root, executor="inprocess")
    assert result.ok
    during = json.loads(seen.read_text())
    assert during["watching"][0] == "running" and during["watching"][1][0].startswith("being computed now by run ")
    assert during["first"][0] == "fresh"
    assert {r.name: r.state for r in api.status(project=here.root)} == {"first": "fresh", "watching": "fresh"}
