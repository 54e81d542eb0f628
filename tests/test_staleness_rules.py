"""One test per staleness rule of docs/concepts.md, through the real CLI on a real project."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import ProjectDir

PIPELINE = '''
    import polars as pl
    from assetflow import asset, source
    import helpers

    raw = source("data/raw.csv")


    @asset
    def clean(raw: pl.DataFrame) -> pl.DataFrame:
        """Rows with a positive value."""
        return raw.filter(pl.col("value") > 0)


    @asset
    def doubled(clean: pl.DataFrame) -> pl.DataFrame:
        return clean.with_columns(helpers.scale(pl.col("value")).alias("value"))


    @asset
    def total(doubled: pl.DataFrame) -> pl.DataFrame:
        return doubled.select(pl.col("value").sum())


    @asset
    def count(clean: pl.DataFrame) -> pl.DataFrame:
        return clean.select(pl.len())
'''

HELPERS = '''
    import polars as pl

    FACTOR = 2


    def scale(expr: pl.Expr) -> pl.Expr:
        return expr * FACTOR
'''

RAW = "id,value\n1,10\n2,-5\n3,7\n"
ALL = {"clean", "doubled", "total", "count"}


@pytest.fixture
def built(project: ProjectDir) -> ProjectDir:
    project.write("pipeline.py", PIPELINE)
    project.write("helpers.py", HELPERS)
    project.write("data/raw.csv", RAW)
    assert project.ran() == ALL
    return project


def stored_file(project: ProjectDir, asset: str) -> Path:
    files = list((project.root / ".assetflow" / "data" / "parquet" / asset).glob("*.parquet"))
    assert len(files) == 1, files
    return files[0]


def test_second_run_does_nothing(built: ProjectDir) -> None:
    result = built.materialize()
    assert {n: o for n, o in result.items() if n != "_"} == dict.fromkeys(ALL, "fresh")
    assert all(row["state"] in ("fresh", "observed") for row in built.status().values())


def test_rule1_missing_when_never_materialized(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    project.write("helpers.py", HELPERS)
    project.write("data/raw.csv", RAW)
    status = project.status()
    assert status["clean"]["state"] == "missing"
    assert status["clean"]["reasons"] == ["never materialized"]


def test_rule1_missing_when_stored_data_deleted(built: ProjectDir) -> None:
    stored_file(built, "doubled").unlink()
    status = built.status()
    assert status["doubled"]["state"] == "missing"
    assert status["total"]["state"] == "stale"
    result = built.materialize()
    assert result["doubled"] == "ran"
    assert result["total"] == "cutoff"  # same data as before: its downstream stays fresh


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda s: s.replace('"""Rows with a positive value."""', '"""A new docstring."""'), id="docstring"),
        pytest.param(lambda s: s.replace("return raw.filter(", "# a comment\n    return raw.filter(  # why\n"), id="comment"),
        pytest.param(lambda s: s.replace('pl.col("value") > 0', 'pl.col( "value" )>0'), id="formatting"),
        pytest.param(lambda s: s + "\n\ndef unused_helper():\n    return 42\n", id="unused-function"),
    ],
)
def test_rule4_cosmetic_code_edits_change_nothing(built: ProjectDir, edit) -> None:
    path = built.root / "pipeline.py"
    path.write_text(edit(path.read_text()))
    assert built.ran() == set()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param("return expr * FACTOR", "return expr * FACTOR + 1", {"doubled", "total"}, id="helper-body"),
        pytest.param("FACTOR = 2", "FACTOR = 3", {"doubled", "total"}, id="constant"),
    ],
)
def test_rule2_code_change_in_helper_reruns_its_users(built: ProjectDir, old: str, new: str, expected: set[str]) -> None:
    path = built.root / "helpers.py"
    path.write_text(path.read_text().replace(old, new))
    status = built.status()
    assert status["doubled"]["state"] == "stale"
    assert any(r.startswith("code changed") and "helpers" in r for r in status["doubled"]["reasons"]), status["doubled"]
    assert status["total"]["reasons"] == ["upstream `doubled` is stale"]
    assert built.ran() == expected


def test_rule2_asset_body_change_reruns_it_and_downstream_with_new_data(built: ProjectDir) -> None:
    path = built.root / "pipeline.py"
    path.write_text(path.read_text().replace('pl.col("value") > 0', 'pl.col("value") > 7'))
    assert built.ran() == ALL


def test_rule4_identical_rewrite_of_source_changes_nothing(built: ProjectDir) -> None:
    raw = built.root / "data" / "raw.csv"
    raw.unlink()
    raw.write_text(RAW)  # new inode, new mtime, same bytes
    os.utime(raw, ns=(1, 1))
    assert built.ran() == set()


def test_rule2_source_change_and_rule5_early_cutoff(built: ProjectDir) -> None:
    # Changing a row the filter drops: clean recomputes to identical data, so nothing below runs.
    (built.root / "data" / "raw.csv").write_text(RAW.replace("2,-5", "2,-6"))
    status = built.status()
    assert "source `raw` changed" in status["clean"]["reasons"]
    result = built.materialize()
    assert result["clean"] == "ran"
    assert result["doubled"] == result["count"] == result["total"] == "cutoff"


def test_rule2_real_source_change_propagates(built: ProjectDir) -> None:
    (built.root / "data" / "raw.csv").write_text(RAW + "4,1\n")
    assert built.ran() == ALL


def test_stored_data_changed_outside_assetflow_is_stale(built: ProjectDir) -> None:
    import polars as pl

    target = stored_file(built, "clean")
    pl.DataFrame({"id": [1], "value": [999]}).write_parquet(target)
    status = built.status()
    assert status["clean"]["state"] == "stale"
    assert "stored data changed outside assetflow (hash mismatch)" in status["clean"]["reasons"]
    result = built.materialize()
    assert result["clean"] == "ran"
    assert result["doubled"] == "cutoff"


def test_rule2_upstream_added_and_removed(built: ProjectDir) -> None:
    path = built.root / "pipeline.py"
    original = path.read_text()
    path.write_text(original.replace("def count(clean: pl.DataFrame)", "def count(clean: pl.DataFrame, doubled: pl.DataFrame)"))
    status = built.status()
    assert "upstream `doubled` was added" in status["count"]["reasons"]
    assert built.ran() == {"count"}
    path.write_text(original)
    assert built.ran() == set()  # back to a recipe seen before: restored, not run
    assert built.materialize()["count"] == "fresh"


def test_rule8_revert_restores_without_running(built: ProjectDir) -> None:
    path = built.root / "helpers.py"
    built.write("helpers.py", HELPERS.replace("FACTOR = 2", "FACTOR = 5"))
    assert built.ran() == {"doubled", "total"}
    built.write("helpers.py", HELPERS)
    result = built.materialize()
    assert result["doubled"] == "restored"
    assert result["total"] == "restored"
    assert built.ran() == set()


def test_rule6_force_reruns_selection(built: ProjectDir) -> None:
    assert built.ran("--force", "doubled") == {"doubled"}


def test_rule6_a_selection_behind_a_stale_upstream_it_does_not_select_waits(built: ProjectDir) -> None:
    """``clean`` is stale and not selected: ``doubled`` is up to date with the data ``clean`` holds, so nothing
    runs, and it is not fresh either. The run says so (it said 'Everything is fresh: 2 assets'), with what to
    select, and so does the plan; what ``doubled`` feeds waits too."""
    built.write("data/raw.csv", RAW + "4,3\n")
    plan = built.materialize("--dry-run", "doubled", "total")
    assert (plan["doubled"], plan["total"]) == ("waiting", "waiting")
    proc = built.run("materialize", "doubled", "total")
    assert proc.returncode == 0, proc.stderr
    assert "Everything is fresh" not in proc.stdout
    assert proc.stdout.strip() == ("Nothing to run, but not fresh: 2 assets wait on upstreams outside the "
                                   "selection (see above).")
    assert "waiting doubled: upstream `clean` is stale and not selected: select `clean` too, e.g. +doubled" in proc.stderr
    assert "waiting total: upstream `doubled` is behind a stale upstream outside the selection" in proc.stderr
    text = built.run("materialize", "--dry-run", "doubled").stdout
    assert "wait        doubled: upstream `clean` is stale and not selected: select `clean` too, e.g. +doubled" in text
    assert built.status()["doubled"]["state"] == "stale"
    assert built.ran("+total") == {"clean", "doubled", "total"}


def test_dry_run_reports_plan_and_runs_nothing(built: ProjectDir) -> None:
    path = built.root / "helpers.py"
    built.write("helpers.py", HELPERS.replace("FACTOR = 2", "FACTOR = 4"))
    plan = built.materialize("--dry-run")
    assert plan["doubled"] == "ran" and plan["clean"] == "fresh"
    assert plan["_"]["dry_run"] is True
    assert built.status()["doubled"]["state"] == "stale"  # still stale: nothing ran


def test_rule9_input_changed_during_run_is_not_recorded_fresh(project: ProjectDir) -> None:
    project.write("helpers.py", HELPERS)
    project.write("data/raw.csv", RAW)
    project.write("pipeline.py", '''
        from pathlib import Path
        import polars as pl
        from assetflow import asset, source

        raw = source("data/raw.csv")


        @asset
        def sneaky(raw: pl.DataFrame) -> pl.DataFrame:
            Path("data/raw.csv").write_text("id,value\\n1,1\\n")  # the input changes mid-run
            return raw
    ''')
    result = project.materialize()
    assert result["sneaky"] == "failed"
    error = next(a["error"] for a in result["_"]["assets"] if a["name"] == "sneaky")
    assert "`raw` changed while `sneaky` ran" in error
    assert project.status()["sneaky"]["state"] in ("missing", "failed")


# Rule 9 under several readers: ``a_sneaky`` reads the file through a path source declared first, so it runs
# first (one at a time, --executor inprocess), and rewrites it while assets that read ``raw`` wait their turn.
SNEAKY = '''
        from pathlib import Path
        import polars as pl
        from assetflow import asset, source

        a_file = source("data/raw.csv", format="path")  # first in the graph's order: its reader runs first
        raw = source("data/raw.csv")


        @asset
        def a_sneaky(a_file: Path) -> pl.DataFrame:
            a_file.write_text("id,value\\n1,99\\n")  # the input changes mid-run
            return pl.DataFrame({"x": [1]})
'''


def test_rule9_an_asset_that_read_the_new_bytes_after_another_saw_the_change_is_not_recorded(
        project: ProjectDir) -> None:
    """All three are decided against the first bytes. ``a_sneaky`` rewrites the file; ``b_reader`` reads the
    new bytes, and its re-check observes the source again (rule 9: failed). ``c_later`` then reads the new
    bytes too, and the source, as last observed, has not moved since: recorded under the first bytes' hash,
    its version was fresh once the file held the first bytes again, with the other bytes' data in it."""
    project.write("data/raw.csv", "id,value\n1,10\n")
    sneaky = SNEAKY + '''

        @asset
        def b_reader(raw: pl.DataFrame) -> pl.DataFrame:
            return raw


        @asset
        def c_later(raw: pl.DataFrame) -> pl.DataFrame:
            return raw
    '''
    project.write("pipeline.py", sneaky)
    result = project.materialize("--executor", "inprocess")  # one at a time, in the graph's order
    assert (result["a_sneaky"], result["b_reader"], result["c_later"]) == ("failed", "failed", "failed")
    error = next(a["error"] for a in result["_"]["assets"] if a["name"] == "c_later")
    assert "`raw` changed while `c_later` ran" in error

    project.write("data/raw.csv", "id,value\n1,10\n")  # the first bytes again, nothing rewrites them
    project.write("pipeline.py", sneaky.replace('a_file.write_text("id,value\\n1,99\\n")', "pass"))
    assert project.materialize("--executor", "inprocess")["c_later"] == "ran"
    from assetflow import api

    assert api.load("c_later", project=project.root)["value"].to_list() == [10]


def test_rule9_bytes_read_between_a_change_and_its_undoing_are_not_recorded(project: ProjectDir) -> None:
    """``a_sneaky`` rewrites the file; ``b_restorer``, decided against the first bytes, reads the second ones
    and then puts the first bytes back (two writers, in one asset). After it the file hashes as decided, so
    the coordinator's re-check passes: the worker itself saw that the files it read had moved since the
    decision, and the asset fails instead of being recorded under the first bytes with the second's data."""
    project.write("data/raw.csv", "id,value\n1,10\n")
    sneaky = SNEAKY + '''

        @asset(retries=2)  # not retried: it would read what it was not decided against again
        def b_restorer(raw: pl.DataFrame) -> pl.DataFrame:
            Path("data/raw.csv").write_text("id,value\\n1,10\\n")  # ... and changes back
            return raw
    '''
    project.write("pipeline.py", sneaky)
    result = project.materialize("--executor", "inprocess")
    assert (result["a_sneaky"], result["b_restorer"]) == ("failed", "failed")
    error = next(a["error"] for a in result["_"]["assets"] if a["name"] == "b_restorer")
    assert error.startswith("input `raw` changed while `b_restorer` ran")  # once, not "Failed after 3 attempts"

    project.write("data/raw.csv", "id,value\n1,10\n")  # b_restorer failed as it read: the file holds 99
    project.write("pipeline.py", sneaky.replace('a_file.write_text("id,value\\n1,99\\n")', "pass").replace(
        'Path("data/raw.csv").write_text("id,value\\n1,10\\n")', "pass"))
    assert project.materialize("--executor", "inprocess")["b_restorer"] == "ran"
    from assetflow import api

    assert api.load("b_restorer", project=project.root)["value"].to_list() == [10]


def test_rule9_a_file_rewritten_in_place_with_its_stat_put_back_is_caught_by_its_bytes(
        project: ProjectDir) -> None:
    """``a_sneaky`` rewrites the file in place (same inode, same size) and sets its mtime back to the
    nanosecond: its stat is the one observed when ``b_reader`` was decided, so neither the worker's stat
    check nor the coordinator's re-check can tell. The bytes can: ``b_reader`` fails instead of being
    recorded under the first bytes' hash with the second's data (``status`` would have called it fresh),
    and the next run hashes the file again instead of trusting its cached hash for that stat."""
    raw = project.root / "data" / "raw.csv"
    project.write("data/raw.csv", "id,value\n1,10\n")
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(raw, ns=(an_hour_ago, an_hour_ago))  # an old file: its stat is cached and trusted
    in_place = """before = a_file.stat()
            with open(a_file, "r+b") as handle:  # in place: same inode, same size
                handle.write(b"id,value\\n1,99\\n")
            os.utime(a_file, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the mtime put back"""
    pipeline = SNEAKY.replace("from pathlib import Path", "import os\n        from pathlib import Path").replace(
        'a_file.write_text("id,value\\n1,99\\n")  # the input changes mid-run', in_place) + '''

        @asset
        def b_reader(raw: pl.DataFrame) -> pl.DataFrame:
            return raw
    '''
    project.write("pipeline.py", pipeline)
    before = os.stat(raw)
    result = project.materialize("--executor", "inprocess")  # one at a time, in the graph's order
    after = os.stat(raw)
    assert (before.st_ino, before.st_size, before.st_mtime_ns) == (after.st_ino, after.st_size, after.st_mtime_ns)
    assert raw.read_text() == "id,value\n1,99\n"
    assert result["b_reader"] == "failed"
    error = next(a["error"] for a in result["_"]["assets"] if a["name"] == "b_reader")
    assert error.startswith("input `raw` changed while `b_reader` ran")
    assert project.status()["b_reader"]["state"] in ("missing", "failed")

    quiet = pipeline.replace('handle.write(b"id,value\\n1,99\\n")', "pass")
    assert quiet != pipeline
    project.write("pipeline.py", quiet)
    os.utime(raw, ns=(after.st_atime_ns, after.st_mtime_ns))  # writing the module did not touch it; to be sure
    assert project.materialize("--executor", "inprocess")["b_reader"] == "ran"
    from assetflow import api

    assert api.load("b_reader", project=project.root)["value"].to_list() == [99]  # what the file holds
