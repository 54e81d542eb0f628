"""``--dry-run`` predicts restores the version store makes certain, and says "may restore" where it cannot know."""

from __future__ import annotations

from click.testing import CliRunner

from assetflow import api
from assetflow.cli import main
from conftest import ProjectDir

PIPELINE = '''
    import polars as pl
    from assetflow import asset

    VALUE = 1

    @asset
    def a() -> pl.DataFrame:
        return pl.DataFrame({"v": [VALUE]})

    @asset
    def b(a: pl.DataFrame) -> pl.DataFrame:
        return a.with_columns(w=pl.col("v") * 10)

    @asset
    def c(b: pl.DataFrame) -> pl.DataFrame:
        return b.with_columns(x=pl.col("w") + 1)
'''


def _outcomes(project: ProjectDir, dry_run: bool) -> dict[str, str]:
    result = api.materialize(project=project.root, executor="inprocess", dry_run=dry_run)
    return {name: r.outcome for name, r in result.results.items()}


def test_a_restore_downstream_of_a_restore_is_predicted(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    assert set(_outcomes(project, dry_run=False).values()) == {"ran"}
    project.write("pipeline.py", PIPELINE.replace("VALUE = 1", "VALUE = 2"))
    assert set(_outcomes(project, dry_run=False).values()) == {"ran"}
    project.write("pipeline.py", PIPELINE)  # back to code and data seen before: all three come back
    plan = _outcomes(project, dry_run=True)
    assert plan == {"a": "restored", "b": "restored", "c": "restored"}  # b and c were "ran"
    assert _outcomes(project, dry_run=False) == plan
    assert set(_outcomes(project, dry_run=True).values()) == {"fresh"}


def test_may_restore_where_the_upstream_must_run_first(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    _outcomes(project, dry_run=False)
    project.write("pipeline.py", PIPELINE.replace("VALUE = 1", "VALUE = 2"))
    _outcomes(project, dry_run=False)
    # New code for a that happens to make the data of VALUE = 1 again: a runs, and only then is
    # it known that b and c can be restored.
    project.write("pipeline.py", PIPELINE.replace('{"v": [VALUE]}', '{"v": [VALUE * 1]}'))
    plan = api.materialize(project=project.root, executor="inprocess", dry_run=True)
    assert {n: r.outcome for n, r in plan.results.items()} == {"a": "ran", "b": "may_restore", "c": "may_restore"}
    assert "restored if `a` produces data seen before" in plan.results["b"].reasons
    assert plan.counts()["may_restore"] == 2
    text = CliRunner().invoke(main, ["materialize", "--dry-run", "--project", str(project.root)])
    assert "may restore b:" in " ".join(text.output.split()), text.output
    assert _outcomes(project, dry_run=False) == {"a": "ran", "b": "restored", "c": "restored"}
