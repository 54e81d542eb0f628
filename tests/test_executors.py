"""Executors and scheduling (issue 5): parallel processes, retries, timeouts, pools, Ctrl-C.

Most tests run the real CLI in a subprocess on a real project, as a user would. Timing is
read from what the assets themselves log (start, end, pid), never from the clock of the
test, so a loaded machine slows the tests down but does not make them fail.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from conftest import ASSETFLOW, ProjectDir

SPANS = '''
    import os
    import time
    from pathlib import Path

    LOG = Path(__file__).parent / "spans.log"


    def span(name: str, seconds: float) -> None:
        """Sleep, then log (name, start, end, pid): what ran when, and where."""
        start = time.time()
        time.sleep(seconds)
        with LOG.open("a") as log:
            log.write(f"{name} {start} {time.time()} {os.getpid()}\\n")


    def attempt(name: str) -> int:
        """Count and return this asset's attempts (a file per asset survives killed workers)."""
        counter = Path(__file__).parent / f"attempts_{name}"
        count = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(count))
        return count
'''


def spans(project: ProjectDir) -> dict[str, tuple[float, float, int]]:
    log = project.root / "spans.log"
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return {name: (float(start), float(end), int(pid)) for name, start, end, pid in rows}


def overlap(a: tuple[float, float, int], b: tuple[float, float, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def events(project: ProjectDir, asset: str) -> list[tuple[str, str | None]]:
    with sqlite3.connect(project.root / ".assetflow" / "state.db") as db:
        return db.execute("SELECT outcome, detail FROM events WHERE asset = ? ORDER BY id", (asset,)).fetchall()


def materializations(project: ProjectDir, asset: str) -> int:
    with sqlite3.connect(project.root / ".assetflow" / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM materializations WHERE asset = ?", (asset,)).fetchone()[0])


def run_status(project: ProjectDir) -> list[str]:
    with sqlite3.connect(project.root / ".assetflow" / "state.db") as db:
        return [row[0] for row in db.execute("SELECT status FROM runs ORDER BY started_at")]


def error_of(result: dict[str, Any], asset: str) -> str:
    return next(a["error"] for a in result["_"]["assets"] if a["name"] == asset)


@pytest.fixture
def spanning(project: ProjectDir) -> ProjectDir:
    project.write("spans.py", SPANS)
    return project


# -- the executor registry -------------------------------------------------------------------


def test_builtin_executors_register_through_the_plugin_hook() -> None:
    from assetflow.execute.executors import InProcessExecutor
    from assetflow.plugins import executor_classes
    from assetflow.execute.pool import ProcessExecutor
    from assetflow.plugins import describe_plugins

    classes = executor_classes()
    from assetflow.execute.threads import ThreadExecutor

    assert classes["inprocess"] is InProcessExecutor
    assert classes["processes"] is ProcessExecutor
    assert classes["threads"] is ThreadExecutor
    rows = {row["name"]: row["hooks"] for row in describe_plugins()}
    assert "assetflow_executors" in rows["assetflow.execute.executors"]


def test_a_plugin_executor_is_found_by_name(tmp_path: Path) -> None:
    from assetflow import api
    from assetflow.execute.executors import InProcessExecutor
    from assetflow.hookspecs import hookimpl
    from assetflow.plugins import plugin_manager

    class Counting(InProcessExecutor):
        name: ClassVar[str] = "counting"
        submitted: ClassVar[list[str]] = []

        def submit(self, fn: Any, arg: Any, *, timeout: float | None = None) -> Any:
            Counting.submitted.append(arg.asset)
            return super().submit(fn, arg, timeout=timeout)

    class Plugin:
        @hookimpl
        def assetflow_executors(self) -> list[type]:
            return [Counting]

    (tmp_path / "counted_pipeline.py").write_text(
        "from assetflow import asset\nimport polars as pl\n\n@asset\ndef counted() -> pl.DataFrame:\n"
        "    return pl.DataFrame({'x': [1]})\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["counted_pipeline"]\n')
    manager = plugin_manager()
    plugin = Plugin()
    manager.register(plugin, name="test-counting-executor")
    try:
        result = api.materialize(project=tmp_path, executor="counting")
    finally:
        manager.unregister(plugin)
    assert result.results["counted"].outcome == "ran"
    assert Counting.submitted == ["counted"]


def test_a_freed_worker_starts_its_next_task_before_the_result_it_returned_is_recorded(tmp_path: Path) -> None:
    """Recording a result is the coordinator's serial work (~1 ms); the worker it freed computes meanwhile."""
    from assetflow import api
    from assetflow.execute.pool import ProcessExecutor
    from assetflow.hookspecs import hookimpl
    from assetflow.plugins import plugin_manager

    order: list[str] = []

    class Ordered(ProcessExecutor):
        name: ClassVar[str] = "ordered"

        def submit(self, fn: Any, arg: Any, *, timeout: float | None = None) -> Any:
            order.append(f"submit {arg.asset}")
            return super().submit(fn, arg, timeout=timeout)

    class Plugin:
        @hookimpl
        def assetflow_executors(self) -> list[type]:
            return [Ordered]

    (tmp_path / "two_pipeline.py").write_text(
        "from assetflow import asset\nimport polars as pl\n\n"
        "@asset\ndef first() -> pl.DataFrame:\n    return pl.DataFrame({'x': [1]})\n\n"
        "@asset\ndef second() -> pl.DataFrame:\n    return pl.DataFrame({'x': [2]})\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["two_pipeline"]\n')
    manager = plugin_manager()
    plugin = Plugin()
    manager.register(plugin, name="test-ordered-executor")
    try:
        api.materialize(project=tmp_path, executor="ordered", jobs=1,
                        listener=lambda result: order.append(f"recorded {result.name}"))
    finally:
        manager.unregister(plugin)
    assert len(order) == 4 and order[0].startswith("submit")
    first = order[0].split()[1]
    second = "second" if first == "first" else "first"
    assert order == [f"submit {first}", f"submit {second}", f"recorded {first}", f"recorded {second}"]


def test_the_next_task_is_sent_while_the_rest_of_a_batchs_downstream_is_still_undecided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deciding an asset costs ~0.2 ms on a cold run; deciding the twenty assets a result made ready
    before sending any left the workers idle. The runner decides a few, hands out work, decides on."""
    from assetflow import api
    from assetflow.execute.executors import InProcessExecutor
    from assetflow.execute.runner import DECIDE_BETWEEN_POLLS, Run

    trace: list[str] = []
    decide = Run._decide

    def traced_decide(self: Run, name: str, *args: Any) -> Any:
        trace.append(f"decide {name}")
        return decide(self, name, *args)

    class Traced(InProcessExecutor):
        def submit(self, fn: Any, arg: Any, *, timeout: float | None = None) -> Any:
            trace.append(f"submit {arg.asset}")
            return super().submit(fn, arg, timeout=timeout)

    monkeypatch.setattr(Run, "_decide", traced_decide)
    downstream = [f"d{i:02d}" for i in range(20)]
    (tmp_path / "fan_pipeline.py").write_text(
        "from assetflow import asset\nimport polars as pl\n\n"
        "@asset\ndef root() -> pl.DataFrame:\n    return pl.DataFrame({'x': [1]})\n\n"
        + "".join(f"@asset\ndef {d}(root: pl.DataFrame) -> pl.DataFrame:\n    return root\n\n" for d in downstream))
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["fan_pipeline"]\n')
    result = api.materialize(project=tmp_path, executor=Traced())
    assert {r.outcome for r in result.results.values()} == {"ran"}
    decided = [i for i, line in enumerate(trace) if line.startswith("decide d")]
    first_sent = next(i for i, line in enumerate(trace) if line.startswith("submit d"))
    assert len(decided) == 20
    assert first_sent < decided[DECIDE_BETWEEN_POLLS], trace


def test_a_pool_waited_on_without_a_timeout_collects_what_has_finished() -> None:
    """``wait_any(timeout=0)`` is how the runner looks for results between decisions: it must read the
    workers' pipes, not only return the futures it already knew were done."""
    from assetflow.execute.pool import ProcessExecutor
    from conftest import assert_collects_without_waiting

    assert_collects_without_waiting(ProcessExecutor(jobs=1))


def test_a_first_run_starts_its_workers_before_assessing_the_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no version recorded yet every asset will be computed, so the workers import the project while
    the run assesses it (code fingerprints: ~0.2 ms an asset); later runs start them only for what is stale."""
    from assetflow import api
    from assetflow.execute.executors import InProcessExecutor
    from assetflow.workspace import Workspace

    trace: list[str] = []
    assess_all = Workspace.assess_all

    def traced_assess_all(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        trace.append("assess")
        return assess_all(self, *args, **kwargs)

    class WarmedUp(InProcessExecutor):
        def warm_up(self, project: Any, tasks: int) -> None:
            trace.append(f"warm_up {tasks}")

    monkeypatch.setattr(Workspace, "assess_all", traced_assess_all)
    (tmp_path / "three_pipeline.py").write_text(
        "from assetflow import asset\nimport polars as pl\n\n"
        "@asset\ndef a() -> pl.DataFrame:\n    return pl.DataFrame({'x': [1]})\n\n"
        "@asset\ndef b(a: pl.DataFrame) -> pl.DataFrame:\n    return a\n\n"
        "@asset\ndef c(b: pl.DataFrame) -> pl.DataFrame:\n    return b\n")
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["three_pipeline"]\n')
    api.materialize(project=tmp_path, executor=WarmedUp())
    assert trace == ["warm_up 3", "assess"]

    trace.clear()
    api.materialize(project=tmp_path, executor=WarmedUp(), force=True)
    assert trace == ["assess", "warm_up 3"]  # versions exist (some may be restored): started once the plan is known


def test_a_task_sent_ahead_behind_a_long_one_is_taken_back_for_an_idle_worker() -> None:
    """Each worker holds its next task while it computes one, so it never waits for the coordinator;
    but a task queued behind a long one goes back to a worker that has nothing to do."""
    import time
    from types import SimpleNamespace

    from assetflow.execute.pool import ProcessExecutor

    pool = ProcessExecutor(jobs=2)
    try:
        pool.warm_up(None, 2)  # type: ignore[arg-type]  # no project: the tasks are standard-library calls
        while pool._starting:
            pool._poll(0.1)
        long = pool.submit(time.sleep, 4.0)
        short_first = pool.submit(time.sleep, 0.3)
        holder = next(w for w in pool._ready if w.jobs and w.jobs[0].future is long)
        holder.made["held"] = None  # the next task reads what the long task's worker holds: it is sent there
        behind = pool.submit(repr, SimpleNamespace(reads=("held",)))
        assert [j.future for j in holder.jobs] == [long, behind]  # sent ahead, behind the long one
        while not behind.done():
            pool.wait_any([f for f in (long, short_first, behind) if not f.done()], timeout=10)
        assert short_first.done() and not long.done(), "the task waited for the long one"
        assert behind.result().startswith("namespace(")
    finally:
        pool.shutdown(cancel=True)


def test_a_task_its_worker_cannot_unpickle_fails_as_a_lost_worker_instead_of_hanging() -> None:
    """The worker's inbox thread reads tasks; one it cannot unpickle ends the worker (exit 70), so the pool
    reports it lost rather than waiting for a result that will never come."""
    import sys
    import types

    from assetflow.errors import WorkerLost
    from assetflow.execute.pool import ProcessExecutor

    module = types.ModuleType("assetflow_test_only_here")  # importable in this process only
    sys.modules[module.__name__] = module
    exec("class OnlyHere:\n    pass\n", module.__dict__)  # noqa: S102 - a class the workers cannot import
    pool = ProcessExecutor(jobs=1)
    try:
        future = pool.submit(repr, module.OnlyHere())
        assert pool.wait_any([future], timeout=60) == {future}, "the pool waited for a worker that cannot go on"
        with pytest.raises(WorkerLost, match="exited with code 70"):
            future.result()
        after = pool.submit(repr, "still working")  # the pool goes on with a new worker
        pool.wait_any([after], timeout=60)
        assert after.result() == "'still working'"
    finally:
        pool.shutdown(cancel=True)
        del sys.modules[module.__name__]


def _frozen_objects(_: object) -> int:
    import gc

    return gc.get_freeze_count()


def test_a_worker_freezes_what_it_imported_so_collections_skip_it() -> None:
    """Full collections in a worker walked every object of polars, pyarrow and the project (~30 ms a
    1,000-asset run); frozen after start-up, they are left out."""
    from assetflow.execute.pool import ProcessExecutor

    pool = ProcessExecutor(jobs=1)
    try:
        future = pool.submit(_frozen_objects, None)
        pool.wait_any([future], timeout=60)
        assert future.result() > 1000
    finally:
        pool.shutdown()


def test_two_pools_in_one_process_each_shut_down_without_waiting_for_the_others_workers() -> None:
    """Both pools' workers are children of the one fork server, which lives while any of them does:
    the first pool to shut down stopped it and waited for the other pool's workers to end (for ever
    while that pool was kept, as the daemon keeps its own). Now the last pool stops it."""
    import threading
    from multiprocessing import forkserver

    from assetflow.execute.pool import ProcessExecutor

    first, second = ProcessExecutor(jobs=1), ProcessExecutor(jobs=1)
    try:
        for pool in (first, second):
            future = pool.submit(_pid, None)
            pool.wait_any([future], timeout=60)
            assert future.result() != os.getpid()
        stopping = threading.Thread(target=first.shutdown, daemon=True)
        stopping.start()
        stopping.join(timeout=30)
        assert not stopping.is_alive(), "shutting one pool down waited for the other pool's worker"
        future = second.submit(_pid, None)  # the other pool, its worker and the fork server still work
        second.wait_any([future], timeout=60)
        assert future.result() != os.getpid()
    finally:
        second.shutdown()
    server = getattr(forkserver, "_forkserver", None)
    assert getattr(server, "_forkserver_pid", None) is None  # the last pool stopped it


def _pid(_: object) -> int:
    return os.getpid()


def test_unknown_executor_is_a_usage_error_naming_the_installed_ones(project: ProjectDir) -> None:
    project.write("pipeline.py", "from assetflow import asset\n\n@asset\ndef a() -> int:\n    return 1\n")
    proc = project.run("materialize", "--executor", "nope", check=False)
    assert proc.returncode == 2
    assert "No executor named 'nope'" in proc.stderr and "inprocess" in proc.stderr and "processes" in proc.stderr


def test_inprocess_refuses_jobs(project: ProjectDir) -> None:
    project.write("pipeline.py", "from assetflow import asset\n\n@asset\ndef a() -> int:\n    return 1\n")
    proc = project.run("materialize", "--executor", "inprocess", "--jobs", "3", check=False)
    assert proc.returncode == 2
    assert "one asset at a time" in proc.stderr


# -- threads -----------------------------------------------------------------------------------

MEETING = """
    import threading
    import polars as pl
    from assetflow import asset

    # Both assets wait here for each other: they pass only if they run at the same time in one process.
    MEET = threading.Barrier(2, timeout=20)


    @asset
    def left() -> pl.DataFrame:
        MEET.wait()
        return pl.DataFrame({"side": ["left"], "thread": [threading.current_thread().name]})


    @asset
    def right() -> pl.DataFrame:
        MEET.wait()
        return pl.DataFrame({"side": ["right"], "thread": [threading.current_thread().name]})


    @asset
    def both(left: pl.DataFrame, right: pl.DataFrame) -> pl.DataFrame:
        return pl.concat([left, right])
"""


def test_threads_run_assets_at_once_in_the_runs_own_process(project: ProjectDir) -> None:
    project.write("pipeline.py", MEETING)
    result = project.materialize("--executor", "threads", "--jobs", "2")
    assert {result[n] for n in ("left", "right", "both")} == {"ran"}
    from assetflow import api

    both = api.load("both", project=project.root)
    assert sorted(both["side"]) == ["left", "right"]
    assert len(set(both["thread"])) == 2 and all(t.startswith("assetflow-task") for t in both["thread"])
    # One at a time, the first asset waits for a partner that never comes.
    project.write("pipeline.py", MEETING.replace("timeout=20", "timeout=1"))
    shutil.rmtree(project.root / ".assetflow")
    again = project.materialize("--executor", "threads", "--jobs", "1")
    assert again["left"] == "failed" and "BrokenBarrierError" in error_of(again, "left")


def test_threads_fail_an_asset_at_its_timeout_without_waiting_for_its_thread(project: ProjectDir) -> None:
    project.write("pipeline.py", '''
        import threading
        from assetflow import asset


        @asset(timeout="300ms", io="json")
        def stuck() -> int:
            threading.Event().wait(30)  # a call that cannot be interrupted from outside
            return 1


        @asset(io="json")
        def fine() -> int:
            return 2
    ''')
    started = time.monotonic()
    result = project.materialize("--executor", "threads")
    assert result["stuck"] == "failed" and result["fine"] == "ran"
    assert "timed out" in error_of(result, "stuck") and "--executor processes" in error_of(result, "stuck")
    assert time.monotonic() - started < 25, "the run waited for the abandoned thread"
    assert project.run("status", "stuck", "--json").stdout.count('"missing"') >= 1


# -- scheduling --------------------------------------------------------------------------------


def test_independent_assets_run_at_once_in_separate_worker_processes(spanning: ProjectDir) -> None:
    spanning.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset
        from spans import span


        @asset
        def left() -> pl.DataFrame:
            span("left", 3.0)
            return pl.DataFrame({"x": [1]})


        @asset
        def right() -> pl.DataFrame:
            span("right", 3.0)
            return pl.DataFrame({"x": [2]})
    ''')
    assert spanning.ran("--jobs", "2") == {"left", "right"}
    seen = spans(spanning)
    assert overlap(seen["left"], seen["right"]), seen
    assert seen["left"][2] != seen["right"][2] != os.getpid()


def test_an_asset_starts_when_its_own_upstreams_are_done_not_its_layer(spanning: ProjectDir) -> None:
    spanning.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset
        from spans import span


        @asset
        def slow() -> pl.DataFrame:
            span("slow", 5.0)
            return pl.DataFrame({"x": [1]})


        @asset
        def quick() -> pl.DataFrame:
            span("quick", 0.0)
            return pl.DataFrame({"x": [2]})


        @asset
        def after_quick(quick: pl.DataFrame) -> pl.DataFrame:
            span("after_quick", 0.0)
            return quick


        @asset
        def after_both(slow: pl.DataFrame, after_quick: pl.DataFrame) -> pl.DataFrame:
            span("after_both", 0.0)
            return slow
    ''')
    assert spanning.ran("--jobs", "2") == {"slow", "quick", "after_quick", "after_both"}
    seen = spans(spanning)
    assert seen["after_quick"][1] < seen["slow"][1], "layer-by-layer: after_quick waited for slow"
    assert seen["after_both"][0] >= seen["slow"][1]


def test_a_failure_skips_only_its_downstream_in_worker_processes(project: ProjectDir) -> None:
    project.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset


        @asset
        def broken() -> pl.DataFrame:
            raise ValueError("bad input")


        @asset
        def below(broken: pl.DataFrame) -> pl.DataFrame:
            return broken


        @asset
        def fine() -> pl.DataFrame:
            return pl.DataFrame({"x": [1]})


        @asset
        def below_fine(fine: pl.DataFrame) -> pl.DataFrame:
            return fine
    ''')
    proc = project.run("materialize", "--json", "--jobs", "2")
    assert proc.returncode == 1
    outcomes = {a["name"]: a for a in json.loads(proc.stdout)["assets"]}
    assert outcomes["broken"]["outcome"] == "failed" and "ValueError: bad input" in outcomes["broken"]["error"]
    assert 'raise ValueError("bad input")' in outcomes["broken"]["error"]  # the asset's own traceback
    assert outcomes["below"]["outcome"] == "skipped"
    assert outcomes["fine"]["outcome"] == outcomes["below_fine"]["outcome"] == "ran"


# -- retries -----------------------------------------------------------------------------------


def test_retries_back_off_exponentially_then_succeed(spanning: ProjectDir) -> None:
    spanning.write("pipeline.py", '''
        import time
        import polars as pl
        from assetflow import asset
        from spans import attempt, span


        @asset(retries=3, retry_delay="0.4s")
        def flaky() -> pl.DataFrame:
            number = attempt("flaky")
            span(f"attempt{number}", 0.0)
            if number < 3:
                raise ConnectionError(f"warehouse unavailable (attempt {number})")
            return pl.DataFrame({"x": [1]})
    ''')
    result = spanning.materialize("--jobs", "1")
    assert result["flaky"] == "ran"
    retried = [detail for outcome, detail in events(spanning, "flaky") if outcome == "retried"]
    assert len(retried) == 2
    assert retried[0].startswith("attempt 1 of 4 failed; retrying in") and "warehouse unavailable (attempt 1)" in retried[0]
    seen = spans(spanning)
    first_gap = seen["attempt2"][0] - seen["attempt1"][0]
    second_gap = seen["attempt3"][0] - seen["attempt2"][0]
    assert first_gap >= 0.2 and second_gap >= 0.4  # 0.4s then 0.8s, each jittered down to no less than half
    assert materializations(spanning, "flaky") == 1


def test_retries_exhausted_fail_with_the_last_error(spanning: ProjectDir) -> None:
    spanning.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset
        from spans import attempt


        @asset(retries=1, retry_delay="10ms")
        def hopeless() -> pl.DataFrame:
            raise RuntimeError(f"no luck on attempt {attempt('hopeless')}")
    ''')
    result = spanning.materialize("--executor", "inprocess")
    assert result["hopeless"] == "failed"
    error = error_of(result, "hopeless")
    assert error.startswith("Failed after 2 attempts") and "no luck on attempt 2" in error
    assert [o for o, _ in events(spanning, "hopeless")] == ["retried", "failed"]


# -- timeouts and lost workers -----------------------------------------------------------------


def test_a_timed_out_asset_is_killed_and_its_worker_replaced(spanning: ProjectDir) -> None:
    spanning.write("pipeline.py", '''
        import os
        import time
        from pathlib import Path
        import polars as pl
        from assetflow import asset
        from spans import span


        @asset(timeout="1s")
        def stuck() -> pl.DataFrame:
            (Path(__file__).parent / "stuck.pid").write_text(str(os.getpid()))
            time.sleep(600)
            return pl.DataFrame({"x": [1]})


        @asset
        def sibling() -> pl.DataFrame:
            span("sibling", 2.5)
            return pl.DataFrame({"x": [2]})


        @asset
        def later(sibling: pl.DataFrame) -> pl.DataFrame:
            span("later", 0.0)
            return sibling
    ''')
    started = time.monotonic()
    result = spanning.materialize("--jobs", "2")
    assert time.monotonic() - started < 120
    assert result["stuck"] == "failed"
    assert "timed out: it ran longer than its timeout of 1s" in error_of(result, "stuck")
    assert result["sibling"] == result["later"] == "ran"
    stuck_pid = int((spanning.root / "stuck.pid").read_text())
    assert stuck_pid not in {pid for _, _, pid in spans(spanning).values()}
    with pytest.raises(ProcessLookupError):
        os.kill(stuck_pid, 0)


def test_a_timed_out_attempt_is_retried(spanning: ProjectDir) -> None:
    spanning.write("pipeline.py", '''
        import time
        import polars as pl
        from assetflow import asset
        from spans import attempt


        @asset(timeout="1s", retries=1, retry_delay="10ms")
        def slow_once() -> pl.DataFrame:
            if attempt("slow_once") == 1:
                time.sleep(600)
            return pl.DataFrame({"x": [1]})
    ''')
    result = spanning.materialize("--jobs", "1")
    assert result["slow_once"] == "ran"
    assert "timed out" in events(spanning, "slow_once")[0][1]


def test_inprocess_timeout_interrupts_the_asset(project: ProjectDir) -> None:
    project.write("pipeline.py", '''
        import time
        from assetflow import asset


        @asset(timeout="500ms")
        def sleepy() -> int:
            time.sleep(600)
            return 1
    ''')
    result = project.materialize("--executor", "inprocess")
    assert result["sleepy"] == "failed"
    assert "TaskTimeout" in error_of(result, "sleepy") and "time.sleep(600)" in error_of(result, "sleepy")


@pytest.mark.parametrize("retries", [1, 0])
def test_a_worker_killed_mid_asset_is_retried_or_failed_and_never_recorded_twice(
    spanning: ProjectDir, retries: int
) -> None:
    spanning.write("pipeline.py", f'''
        import os
        import signal
        import polars as pl
        from assetflow import asset
        from spans import attempt


        @asset(retries={retries}, retry_delay="10ms")
        def fragile() -> pl.DataFrame:
            if attempt("fragile") == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return pl.DataFrame({{"x": [1]}})


        @asset
        def steady() -> pl.DataFrame:
            return pl.DataFrame({{"x": [2]}})
    ''')
    result = spanning.materialize("--jobs", "2")
    assert result["steady"] == "ran"
    if retries:
        assert result["fragile"] == "ran"
        assert materializations(spanning, "fragile") == 1
        assert "was killed by signal 9 (SIGKILL)" in events(spanning, "fragile")[0][1]
    else:
        assert result["fragile"] == "failed"
        assert "was killed by signal 9 (SIGKILL)" in error_of(result, "fragile")
        assert materializations(spanning, "fragile") == 0
    assert spanning.status()["steady"]["state"] == "fresh"


# -- concurrency pools -------------------------------------------------------------------------


@pytest.mark.parametrize(("pool_key", "declaration"), [
    ("warehouse", 'pool="warehouse"'),
    ('"tag:kind=heavy"', 'tags={"kind": "heavy"}'),
])
def test_a_pool_limits_how_many_of_its_assets_run_at_once(spanning: ProjectDir, pool_key: str, declaration: str) -> None:
    spanning.write("pyproject.toml", f'[tool.assetflow]\nmodules = ["pipeline"]\n\n[tool.assetflow.pools]\n{pool_key} = 1\n')
    spanning.write("pipeline.py", "import polars as pl\nfrom assetflow import asset\nfrom spans import span\n" + "".join(
        f"\n\n@asset({declaration})\ndef pooled_{i}() -> pl.DataFrame:\n    span('pooled_{i}', 1.5)\n"
        f"    return pl.DataFrame({{'x': [{i}]}})\n" for i in range(3)
    ) + "\n\n@asset\ndef free() -> pl.DataFrame:\n    span('free', 3.0)\n    return pl.DataFrame({'x': [9]})\n")
    assert spanning.ran("--jobs", "3") == {"pooled_0", "pooled_1", "pooled_2", "free"}
    seen = spans(spanning)
    pooled = [seen[f"pooled_{i}"] for i in range(3)]
    assert not any(overlap(a, b) for i, a in enumerate(pooled) for b in pooled[i + 1:]), pooled
    assert any(overlap(seen["free"], p) for p in pooled)  # the pool does not hold up other assets


def test_pool_limits_must_be_positive_integers(project: ProjectDir) -> None:
    project.write("pyproject.toml", '[tool.assetflow]\nmodules = ["pipeline"]\n\n[tool.assetflow.pools]\nwarehouse = 0\n')
    project.write("pipeline.py", "from assetflow import asset\n\n@asset\ndef a() -> int:\n    return 1\n")
    proc = project.run("materialize", check=False)
    assert proc.returncode == 2 and "[tool.assetflow.pools]" in proc.stderr


# -- Ctrl-C ------------------------------------------------------------------------------------


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_cli(project: ProjectDir, procs: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*ASSETFLOW, "materialize", *args], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, start_new_session=True,
    )
    procs.append(proc)
    return proc


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"assetflow exited {proc.returncode} early:\n{proc.communicate()}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


CTRL_C_PIPELINE = '''
    import os
    import time
    from pathlib import Path
    import polars as pl
    from assetflow import asset

    HERE = Path(__file__).parent


    @asset
    def quick() -> pl.DataFrame:
        return pl.DataFrame({"x": [1]})


    @asset
    def endless(quick: pl.DataFrame) -> pl.DataFrame:
        (HERE / "endless.pid").write_text(str(os.getpid()))
        time.sleep(600)
        return quick


    @asset
    def after(endless: pl.DataFrame) -> pl.DataFrame:
        return endless
'''


def test_ctrl_c_cancels_running_assets_records_nothing_partial_and_marks_the_run_interrupted(
    project: ProjectDir, spawned: list[subprocess.Popen[str]]
) -> None:
    project.write("pipeline.py", CTRL_C_PIPELINE)
    proc = start_cli(project, spawned, "--jobs", "2")
    wait_for(project.root / "endless.pid", proc)
    worker = int((project.root / "endless.pid").read_text())
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "endless" in err and "Traceback" not in err
    assert gone(worker), "the worker running the cancelled asset is still alive"
    assert run_status(project) == ["interrupted"]
    assert materializations(project, "quick") == 1  # settled before Ctrl-C: kept
    assert materializations(project, "endless") == materializations(project, "after") == 0
    assert not list((project.root / ".assetflow" / "data").rglob("endless/*"))


def test_workers_exit_when_their_coordinator_is_killed(project: ProjectDir, spawned: list[subprocess.Popen[str]]) -> None:
    project.write("pipeline.py", CTRL_C_PIPELINE)
    proc = start_cli(project, spawned, "--jobs", "2")
    wait_for(project.root / "endless.pid", proc)
    worker = int((project.root / "endless.pid").read_text())
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    assert gone(worker, timeout=15), "a worker outlived its SIGKILLed coordinator"


def test_a_second_ctrl_c_exits_at_once(project: ProjectDir, spawned: list[subprocess.Popen[str]]) -> None:
    project.write("pipeline.py", '''
        import time
        from pathlib import Path
        import polars as pl
        from assetflow import asset

        HERE = Path(__file__).parent


        @asset
        def stubborn() -> pl.DataFrame:
            while True:
                try:
                    (HERE / "started").write_text("1")  # inside the try: Ctrl-C comes only after this
                    time.sleep(600)
                except KeyboardInterrupt:
                    (HERE / "swallowed").write_text("1")  # bad manners: a clean stop cannot happen


        @asset
        def other() -> pl.DataFrame:
            return pl.DataFrame({"x": [1]})
    ''')
    proc = start_cli(project, spawned, "--executor", "inprocess", "stubborn")
    wait_for(project.root / "started", proc)
    proc.send_signal(signal.SIGINT)
    wait_for(project.root / "swallowed", proc)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert run_status(project) == ["interrupted"]
    assert project.ran("other") == {"other"}
    assert run_status(project) == ["interrupted", "succeeded"]


# -- units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("10m", 600.0), ("1h30m", 5400.0), ("45s", 45.0), ("250ms", 0.25), ("1.5s", 1.5), ("2d", 172800.0),
    (30, 30.0), (0.5, 0.5),
])
def test_durations(text: object, seconds: float) -> None:
    from assetflow.durations import parse_duration

    assert parse_duration(text, what="timeout") == seconds


@pytest.mark.parametrize("text", ["10 minutes", "m10", "", "0s", -1, True, "1h 30"])
def test_bad_durations_say_how_to_write_one(text: object) -> None:
    from assetflow.durations import parse_duration

    with pytest.raises(ValueError, match="timeout"):
        parse_duration(text, what="timeout")


def test_declaration_checks_timeout_and_pool() -> None:
    from assetflow import DefinitionError, asset

    def table() -> int:
        return 1

    spec = asset(timeout="10m", pool=["warehouse", "api"], retries=2, retry_delay="2s")(table)
    assert (spec.timeout, spec.pools, spec.retries, spec.retry_delay) == (600.0, ("warehouse", "api"), 2, 2.0)
    with pytest.raises(DefinitionError, match="timeout of asset 'table'"):
        asset(timeout="ten minutes")(table)
    with pytest.raises(DefinitionError, match="pool must be a pool name"):
        asset(pool=3)(table)  # type: ignore[arg-type]


def test_backoff_doubles_and_is_capped() -> None:
    from assetflow.execute.policy import MAX_RETRY_DELAY, retry_delay

    assert [retry_delay(1.0, n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_delay(1.0, 40) == MAX_RETRY_DELAY


def test_pool_queue_starts_the_longest_waiting_asset_that_fits() -> None:
    from assetflow.execute.policy import PoolLimits

    limits = PoolLimits({"warehouse": 1})
    pools = limits.pools_of(["warehouse", "unlimited"])
    assert pools == frozenset({"warehouse"})
    for name in ("w1", "w2"):
        limits.push(name, pools)
    limits.push("free", frozenset())
    assert limits.pop_startable() == ("w1", pools)
    assert limits.pop_startable() == ("free", frozenset())  # w2 must wait for the warehouse slot
    assert limits.pop_startable() is None
    limits.release(pools)
    assert limits.pop_startable() == ("w2", pools)


def test_a_worker_refuses_code_that_changed_after_the_run_started(tmp_path: Path) -> None:
    """A worker imports the project itself; if its code differs from the coordinator's, it reloads, then refuses."""
    script = f'''
import sys, time
from pathlib import Path
from assetflow.execute.task import ComputeTask, _workspace, code_token, compute, register_workspace
from assetflow.workspace import Workspace

ws = Workspace.load({str(tmp_path)!r})
token = register_workspace(ws)
module = Path({str(tmp_path)!r}) / "drifting.py"
time.sleep(0.01)
module.write_text(module.read_text().replace("[1]", "[2]"))
task = ComputeTask(ws.config, "drifting", (), "parquet", token)
from assetflow.execute import task as task_module
task_module._WORKSPACES.clear()  # as in a fresh worker process
result = compute(task)
print(result.error)
'''
    (tmp_path / "drifting.py").write_text(
        "import polars as pl\nfrom assetflow import asset\n\n@asset\ndef drifting() -> pl.DataFrame:\n"
        "    return pl.DataFrame({'x': [1]})\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["drifting"]\n')
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "changed on disk after this run started" in proc.stdout


def _write_waiting_pipeline(project: ProjectDir, go: Path) -> None:
    """``first``, then ``waiting``, which computes until the file ``go`` exists."""
    project.write("pipeline.py", f"""
        import pathlib, time
        import polars as pl
        from assetflow import asset

        @asset
        def first() -> pl.DataFrame:
            return pl.DataFrame({{"n": [1]}})

        @asset
        def waiting(first: pl.DataFrame) -> pl.DataFrame:
            deadline = time.monotonic() + 120
            while not pathlib.Path({str(go)!r}).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            return first
    """)


def test_assets_computing_in_workers_show_as_running_while_the_run_waits_for_them(project: ProjectDir,
                                                                                   tmp_path: Path) -> None:
    """A pool run names the assets computing in the lock file when it waits for them (``status`` reads it),
    not at each task sent and each result."""
    from assetflow import api

    go = tmp_path / "go"
    _write_waiting_pipeline(project, go)
    run = subprocess.Popen([*ASSETFLOW, "materialize", "--jobs", "2"], cwd=project.root,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        states: dict[str, str] = {}
        while time.monotonic() < deadline and states.get("waiting") != "running":
            time.sleep(0.1)
            try:
                states = {r.name: r.state for r in api.status(project=project.root)}
            except Exception:  # noqa: BLE001 - the run may not have created its state yet
                states = {}
        assert states == {"first": "fresh", "waiting": "running"}
    finally:
        go.touch()
        _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert {r.name: r.state for r in api.status(project=project.root)} == {"first": "fresh", "waiting": "fresh"}


def test_status_never_shows_the_upstream_of_a_running_asset_missing(project: ProjectDir, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``status`` reads the assets' state and which are computing in two steps; a run that records ``first``
    and starts ``waiting`` between them must not make ``first`` look missing while ``waiting`` computes from it.
    The run is made to move exactly there: while ``status`` asks which assets are computing."""
    from assetflow import api
    from assetflow.inspect import status as status_module

    go = tmp_path / "go"
    _write_waiting_pipeline(project, go)
    real_in_progress = status_module._in_progress
    runs: list[subprocess.Popen[str]] = []

    def run_moves_on_meanwhile(ws: Any) -> tuple[str, list[str]] | None:
        runs.append(subprocess.Popen([*ASSETFLOW, "materialize", "--jobs", "2"], cwd=project.root,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = real_in_progress(ws)
            if found is not None and found[1] == ["waiting"]:
                return found
            time.sleep(0.05)
        raise AssertionError("the run never started `waiting`")

    monkeypatch.setattr(status_module, "_in_progress", run_moves_on_meanwhile)
    try:
        rows = {r.name: (r.state, r.reasons) for r in api.status(project=project.root)}
    finally:
        go.touch()
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err
    assert rows["waiting"][0] == "running"
    assert rows["first"][0] == "fresh", rows["first"]


def _epoll_fds() -> int:
    return sum(1 for fd in os.listdir("/proc/self/fd") if _link(fd) == "anon_inode:[eventpoll]")


def _link(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def test_the_pool_waits_on_one_selector_while_the_same_workers_are_busy() -> None:
    """Waiting registered every worker's pipe and sentinel anew at each call (the coordinator waits
    about once a result): now one selector serves while the same workers are busy, and goes at shutdown."""
    from assetflow.execute.pool import ProcessExecutor

    before = _epoll_fds()
    pool = ProcessExecutor(jobs=2)
    try:
        futures = [pool.submit(time.sleep, 1.0) for _ in range(2)]
        deadline = time.monotonic() + 60
        while len(pool._holding()) < 2 and time.monotonic() < deadline:  # both workers started, each computing
            pool.wait_any(futures, timeout=0.02)
        assert len(pool._holding()) == 2
        pool.wait_any(futures, timeout=0.01)
        selector = pool._selector
        assert selector is not None
        assert pool.wait_any(futures, timeout=0.01) == set()
        assert pool._selector is selector  # the same workers busy: the same selector
        done: set[object] = set()
        while len(done) < 2:
            done |= pool.wait_any([f for f in futures if f not in done])
        assert [f.result() for f in futures] == [None, None]
        assert pool.wait_any([pool.submit(time.sleep, 0.01)]) and pool._selector is not selector  # one worker now
    finally:
        pool.shutdown()
    assert pool._selector is None and _epoll_fds() == before


def test_each_worker_gets_its_share_of_blas_threads_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy's BLAS starts a thread per core in every worker that imports it; workers that already fill the
    cores get cores // workers of them, and a user's own setting (OMP_NUM_THREADS included) is left alone."""
    from assetflow.execute.pool import BLAS_THREADS_ENV, ProcessExecutor

    for name in (*BLAS_THREADS_ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)

    def worker_env(jobs: int, names: tuple[str, ...]) -> list[object]:
        pool = ProcessExecutor(jobs=jobs)
        try:
            futures = [pool.submit(os.getenv, name) for name in names]
            while pending := [f for f in futures if not f.done()]:
                pool.wait_any(pending, timeout=60)
            return [f.result() for f in futures]
        finally:
            pool.shutdown()

    assert worker_env(os.cpu_count() or 1, BLAS_THREADS_ENV) == ["1"] * len(BLAS_THREADS_ENV)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_env(1, (*BLAS_THREADS_ENV, "OMP_NUM_THREADS")) == [None] * len(BLAS_THREADS_ENV) + ["3"]


def test_what_the_fork_server_preloads_starts_no_thread_and_imports_no_threaded_library() -> None:
    """Workers fork from the fork server: a thread there (polars', Arrow's, a BLAS pool) would be forked with
    its locks in whatever state they were. Its preload list must stay free of such imports."""
    from assetflow.execute.pool import _PRELOAD

    probe = (
        "import importlib, os, sys\n"
        f"for name in {_PRELOAD!r}:\n"
        "    importlib.import_module(name)\n"
        "print(len(os.listdir('/proc/self/task')), sorted(m for m in ('polars', 'pyarrow', 'numpy', 'duckdb')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split(maxsplit=1) == ["1", "[]\n"]
