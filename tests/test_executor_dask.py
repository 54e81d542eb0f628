"""The Dask executor (plugins/assetflow-dask) on a real LocalCluster of worker processes.

One cluster run covers the hard cases at once, to keep the suite quick: tasks pickled to
other processes, parallel assets, a worker SIGKILLed mid-asset with and without retries,
and a timeout. Skipped when assetflow-dask is not installed.
"""

from __future__ import annotations

import os
import sqlite3

import pytest

from conftest import ProjectDir

pytest.importorskip("distributed")
pytest.importorskip("assetflow_dask")

PIPELINE = '''
    import os
    import signal
    import time
    from pathlib import Path
    import polars as pl
    from assetflow import asset, source

    HERE = Path(__file__).parent
    raw = source("data/raw.csv")


    def log(name: str, start: float) -> None:
        with (HERE / "spans.log").open("a") as f:
            f.write(f"{name} {start} {time.time()} {os.getpid()}\\n")


    def first_attempt(name: str) -> bool:
        marker = HERE / f"tried_{name}"
        if marker.exists():
            return False
        marker.write_text("1")
        return True


    @asset
    def left(raw: pl.DataFrame) -> pl.DataFrame:
        start = time.time()
        time.sleep(1.0)
        log("left", start)
        return raw.filter(pl.col("value") > 0)


    @asset
    def right(raw: pl.DataFrame) -> pl.DataFrame:
        start = time.time()
        time.sleep(1.0)
        log("right", start)
        return raw.with_columns(double=pl.col("value") * 2)


    @asset
    def joined(left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
        return left.join(right, on="id")


    @asset(retries=1, retry_delay="100ms")
    def killed_then_retried(left: pl.DataFrame) -> pl.DataFrame:
        if first_attempt("killed_then_retried"):
            os.kill(os.getpid(), signal.SIGKILL)  # the whole Dask worker process dies mid-asset
        return left.select(pl.len())


    @asset
    def killed_for_good(right: pl.DataFrame) -> pl.DataFrame:
        if first_attempt("killed_for_good"):
            os.kill(os.getpid(), signal.SIGKILL)
        return right


    @asset
    def below_killed(killed_for_good: pl.DataFrame) -> pl.DataFrame:
        return killed_for_good


    @asset(timeout="2s")
    def stuck(raw: pl.DataFrame) -> pl.DataFrame:
        time.sleep(600)
        return raw
'''


def count(project: ProjectDir, sql: str, *args: str) -> int:
    with sqlite3.connect(project.root / ".assetflow" / "state.db") as db:
        return int(db.execute(sql, args).fetchone()[0])


def test_dask_local_cluster_runs_the_plan_and_survives_killed_workers(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    project.write("data/raw.csv", "id,value\n1,10\n2,-5\n3,7\n")
    result = project.materialize("--executor", "dask", "--jobs", "2")
    assets = {a["name"]: a for a in result["_"]["assets"]}
    assert {n: a["outcome"] for n, a in assets.items()} == {
        "left": "ran", "right": "ran", "joined": "ran", "killed_then_retried": "ran",
        "killed_for_good": "failed", "below_killed": "skipped", "stuck": "failed",
    }
    assert "Dask worker died" in assets["killed_for_good"]["error"]
    assert "timed out" in assets["stuck"]["error"]

    spans = {line.split()[0]: line.split()[1:] for line in (project.root / "spans.log").read_text().splitlines()}
    left, right = spans["left"], spans["right"]
    assert float(left[0]) < float(right[1]) and float(right[0]) < float(left[1]), "left and right did not overlap"
    assert len({left[2], right[2], str(os.getpid())}) == 3  # two worker processes, neither of them this one

    # Killed mid-asset: retried once and recorded exactly once; the other failed and recorded nothing.
    sql = "SELECT count(*) FROM materializations WHERE asset = ?"
    assert count(project, sql, "killed_then_retried") == 1
    assert count(project, sql, "killed_for_good") == count(project, sql, "stuck") == 0
    assert count(project, "SELECT count(*) FROM events WHERE asset = ? AND outcome = 'retried'", "killed_then_retried") == 1

    # The coordinator wrote the state: the results read back as fresh, and a re-run computes only what failed.
    status = project.status()
    assert all(status[n]["state"] == "fresh" for n in ("left", "right", "joined", "killed_then_retried"))
    again = project.materialize("--executor", "dask", "--jobs", "2", "left", "right", "joined", "killed_for_good")
    assert {n: o for n, o in again.items() if n != "_"} == {
        "left": "fresh", "right": "fresh", "joined": "fresh", "killed_for_good": "ran",
    }


def test_workers_of_your_own_cluster_drop_the_kept_tables_when_a_run_ends(project: ProjectDir) -> None:
    """A cluster given by --address outlives the run: its workers must not keep the run's tables (up to 256 MB each)."""
    from distributed import Client, LocalCluster

    project.write("pipeline.py", """
        import polars as pl
        from assetflow import asset

        @asset
        def first() -> pl.DataFrame:
            return pl.DataFrame({"x": list(range(1000))})

        @asset
        def second(first: pl.DataFrame) -> pl.DataFrame:
            return first.with_columns(y=pl.col("x") * 2)
    """)

    def kept() -> int:
        from assetflow.execute import handoff

        return handoff.kept_count()

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        result = project.materialize("--executor", "dask", "--address", cluster.scheduler_address)
        assert {n: o for n, o in result.items() if n != "_"} == {"first": "ran", "second": "ran"}
        assert list(client.run(kept).values()) == [0]  # the worker stored two tables and dropped them at the end


@pytest.mark.slow
def test_a_dask_executor_waited_on_without_a_timeout_collects_what_has_finished() -> None:
    """``wait_any(timeout=0)`` is how the runner looks for results between decisions: it must look at the
    cluster's finished tasks, neither return at once without looking nor block."""
    from assetflow_dask import DaskExecutor
    from conftest import assert_collects_without_waiting

    assert_collects_without_waiting(DaskExecutor(jobs=1))
