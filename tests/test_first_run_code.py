"""A first run with many workers has each worker walk the code of the assets it computes (issue 17).

The coordinator walks an asset's code (~0.2 ms) to record it; with nothing recorded yet every asset
is new and none can be restored, so from ``WALK_CODE_IN_WORKERS_FROM`` workers the walk moves to the
worker computing the asset and the coordinator records what it sends back (docs/execution.md).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from assetflow import api
from assetflow.execute.runner import WALK_CODE_IN_WORKERS_FROM
from assetflow.fingerprint import code as code_module
from assetflow.workspace import Workspace
from conftest import ProjectDir

PIPELINE = """
import polars as pl
from assetflow import asset

SCALE = 3


def scaled(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(v=pl.col("v") * SCALE)


@asset
def raw() -> pl.DataFrame:
    return pl.DataFrame({"v": [1, 2, 3]})


@asset
def tripled(raw: pl.DataFrame) -> pl.DataFrame:
    return scaled(raw)


@asset
def total(tripled: pl.DataFrame) -> pl.DataFrame:
    return tripled.select(pl.col("v").sum())


@asset
def count(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.select(pl.len())
"""


@pytest.fixture
def module(tmp_path: Path, module_name: str) -> ProjectDir:
    """The project, imported into this process under a name no other test uses (``module_name``)."""
    project = ProjectDir(tmp_path, [module_name])
    project.write(f"{module_name}.py", PIPELINE)
    return project


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions this process walks (workers are other processes: theirs are not counted)."""
    walked: list[str] = []
    real = code_module.fingerprint_function

    def counting(fn, **options):  # type: ignore[no-untyped-def]
        walked.append(fn.__name__)
        return real(fn, **options)

    monkeypatch.setattr(code_module, "fingerprint_function", counting)
    return walked


def _run(project: ProjectDir, jobs: int) -> dict[str, str]:
    ws = api.workspace(project.root)
    try:
        result = api.materialize(project=ws, jobs=jobs)
    finally:
        ws.close()
    return {name: r.outcome for name, r in result.results.items()}


def _walked_afresh(project: ProjectDir) -> dict[str, str]:
    """Each asset's code digest as a new workspace walks it, and the digest recorded for it."""
    ws = Workspace.load(project.root)
    try:
        current = ws.store.current()
        return {spec.name: (ws.code(spec).digest, current[spec.name].code_fingerprint) for spec in ws.graph.assets()}
    finally:
        ws.close()


def test_workers_walk_the_code_of_a_first_run_and_its_record_is_what_a_walk_here_finds(
        module: ProjectDir, walks: list[str]) -> None:
    assert _run(module, WALK_CODE_IN_WORKERS_FROM) == dict.fromkeys(("raw", "tripled", "total", "count"), "ran")
    assert walks == []  # every asset's code was walked by the worker that computed it
    walks.clear()
    for name, (here, recorded) in _walked_afresh(module).items():
        assert here == recorded, name

    ws = Workspace.load(module.root)
    try:  # the digests the workers walked are in the code cache: the next full check walks nothing
        assert set(ws._code_cache()) == {"raw", "tripled", "total", "count"}
    finally:
        ws.close()


def test_the_coordinator_walks_once_versions_exist_or_with_fewer_workers(
        module: ProjectDir, module_name: str, walks: list[str]) -> None:
    assert _run(module, WALK_CODE_IN_WORKERS_FROM - 1) == dict.fromkeys(("raw", "tripled", "total", "count"), "ran")
    assert sorted(walks) == ["count", "raw", "total", "tripled"]  # few workers: they are fed while it walks
    walks.clear()

    added = '\n\n@asset\ndef added(raw: pl.DataFrame) -> pl.DataFrame:\n    return raw.head(1)\n'
    module.write(f"{module_name}.py", PIPELINE.replace("SCALE = 3", "SCALE = 4") + added)
    sys.modules.pop(module_name, None)  # the run imports the edited module
    # Versions exist: an asset may have an earlier version to restore, found by its recipe (code included),
    # so this process walks, the code of a changed asset and of one never built alike.
    assert _run(module, WALK_CODE_IN_WORKERS_FROM) == {"raw": "fresh", "tripled": "ran", "total": "ran",
                                                        "count": "fresh", "added": "ran"}
    assert {"tripled", "added"} <= set(walks)
    for asset, (here, recorded) in _walked_afresh(module).items():
        assert here == recorded, asset


SLOW_FIRST = """
import time

import polars as pl
from assetflow import asset


@asset
def slow() -> pl.DataFrame:
    time.sleep(0.5)  # the coordinator has nothing else to do meanwhile
    return pl.DataFrame({"v": [1]})


@asset
def after(slow: pl.DataFrame) -> pl.DataFrame:
    return slow


@asset
def last(after: pl.DataFrame) -> pl.DataFrame:
    return after
"""


def test_with_few_workers_the_coordinator_walks_code_ahead_while_it_waits_for_results(
        tmp_path: Path, module_name: str, walks: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Walked at its turn, ``last``'s code would be walked once ``after`` is decided, after ``slow`` finished:
    the workers would wait for it. Walked ahead, it is walked while ``slow`` computes."""
    from assetflow.execute.runner import Run

    project = ProjectDir(tmp_path, [module_name])
    project.write(f"{module_name}.py", SLOW_FIRST)
    finished: list[tuple[int, str]] = []
    real_finish = Run._finish

    def finish(self: Run, name: str, *args: object) -> None:
        finished.append((len(walks), name))  # how many walks had happened when ``name`` finished
        real_finish(self, name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Run, "_finish", finish)
    assert _run(project, WALK_CODE_IN_WORKERS_FROM - 2) == dict.fromkeys(("slow", "after", "last"), "ran")
    assert sorted(walks) == ["after", "last", "slow"]  # each walked once, by this process
    walked_before_slow_finished = next(count for count, name in finished if name == "slow")
    assert walked_before_slow_finished == 3


def test_code_that_cannot_be_walked_fails_at_its_own_turn_not_when_walked_ahead(
        tmp_path: Path, module_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Walking ahead is an optimisation: an asset whose walk fails stops the run where it did before,
    at its decision, once what it depends on is recorded, not while ``slow`` still computes."""
    project = ProjectDir(tmp_path, [module_name])
    project.write(f"{module_name}.py", SLOW_FIRST)
    real = code_module.fingerprint_function

    def failing_for_last(fn, **options):  # type: ignore[no-untyped-def]
        if fn.__name__ == "last":
            raise RuntimeError("cannot walk last")
        return real(fn, **options)

    monkeypatch.setattr(code_module, "fingerprint_function", failing_for_last)
    with pytest.raises(RuntimeError, match="cannot walk last"):
        _run(project, WALK_CODE_IN_WORKERS_FROM - 2)
    ws = Workspace.load(project.root)
    try:
        assert set(ws.store.current()) == {"slow", "after"}
    finally:
        ws.close()


def _fork_server_running() -> bool:
    from multiprocessing import forkserver

    return getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None) is not None


def _children() -> list[int]:
    """This process's live children (Linux): a fork server or resource tracker left behind would be one."""
    import os

    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] != "Z":
                found.append(int(pid))
    return found


@pytest.mark.parametrize("jobs", [None, 2])
def test_a_first_run_starts_the_fork_server_before_it_imports_the_project_and_leaves_none_behind(
        module: ProjectDir, module_name: str, monkeypatch: pytest.MonkeyPatch, jobs: int | None) -> None:
    """The fork server's imports (~90 ms) overlap the project's instead of holding up the first worker;
    a later run, which may compute nothing or little in process, starts none before it knows."""
    import assetflow.workspace as workspace_module

    seen: list[bool] = []
    real_load_specs = workspace_module.load_specs

    def load_specs(config):  # type: ignore[no-untyped-def]
        seen.append(_fork_server_running())
        return real_load_specs(config)

    monkeypatch.setattr(workspace_module, "load_specs", load_specs)
    assert not _fork_server_running()
    result = api.materialize(project=module.root, jobs=jobs)
    assert {r.outcome for r in result.results.values()} == {"ran"}
    assert seen == [True]
    assert not _fork_server_running() and _children() == []

    module.write(f"{module_name}.py", PIPELINE.replace("SCALE = 3", "SCALE = 5"))
    sys.modules.pop(module_name, None)
    api.materialize(project=module.root, jobs=jobs)
    assert seen == [True, False]  # state exists: nothing started before the project is loaded
    assert not _fork_server_running() and _children() == []


def test_a_first_run_computed_in_process_stops_the_fork_server_it_started(
        tmp_path: Path, module_name: str) -> None:
    project = ProjectDir(tmp_path, [module_name])
    project.write(f"{module_name}.py", "import polars as pl\nfrom assetflow import asset\n\n\n"
                  "@asset\ndef only() -> pl.DataFrame:\n    return pl.DataFrame({'v': [1]})\n")
    result = api.materialize(project=project.root)  # one asset: computed in this process, no worker started
    assert result.results["only"].outcome == "ran"
    assert not _fork_server_running() and _children() == []



SOURCED = """
import os
import time
from pathlib import Path

import polars as pl
from assetflow import asset, source

raw = source("raw.csv")
other = source("other.csv")
DELAY = Path(__file__).parent / "delay.txt"  # not a name an import could take: the folder's listing stays


def slow(frame: pl.DataFrame) -> pl.DataFrame:
    time.sleep(float(DELAY.read_text()))
    (DELAY.parent / "pid.txt").write_text(str(os.getpid()))  # where it was computed
    return frame


@asset
def first(raw: pl.DataFrame) -> pl.DataFrame:
    return slow(raw.with_columns(v=pl.col("v") * 2))


@asset
def second(first: pl.DataFrame) -> pl.DataFrame:
    return slow(first)


@asset
def third(second: pl.DataFrame) -> pl.DataFrame:
    return slow(second)


@asset
def single(other: pl.DataFrame) -> pl.DataFrame:
    return other
"""


def test_a_run_after_new_data_starts_the_fork_server_before_the_project_when_its_cone_is_worth_workers(
        tmp_path: Path, module_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """New data in a source whose downstream assets took longer last time than starting workers costs
    (``small_work``, from the graph cache and the state) starts the fork server before the project loads,
    as a first run does. New data for a quick asset (computed in process), a code edit (may run nothing)
    and a source rewritten with the same bytes (proved fresh, nothing loaded) start none."""
    import assetflow.workspace as workspace_module
    from assetflow.execute.executors import SMALL_PLAN, SMALL_WORK_S

    assert SMALL_PLAN < 3
    project = ProjectDir(tmp_path, [module_name])
    project.write(f"{module_name}.py", SOURCED)
    project.write("raw.csv", "v\n1\n2\n")
    project.write("other.csv", "v\n1\n")
    project.write("delay.txt", str(SMALL_WORK_S / 2.5))  # three of them: more than SMALL_WORK_S together
    for code in (f"{module_name}.py", "pyproject.toml"):  # older than the racy-clean window, as in a real project:
        os.utime(tmp_path / code, (time.time() - 3600,) * 2)  # the run leaves a snapshot and a graph cache
    seen: list[bool] = []
    real_load_specs = workspace_module.load_specs

    def load_specs(config):  # type: ignore[no-untyped-def]
        seen.append(_fork_server_running())
        return real_load_specs(config)

    def run(expected: dict[str, str]) -> bool:
        """Run; whether the computed assets ran in workers."""
        result = api.materialize(project=project.root)
        assert {name: r.outcome for name, r in result.results.items() if name in expected} == expected
        assert not _fork_server_running() and _children() == []
        return int((tmp_path / "pid.txt").read_text()) != os.getpid()

    monkeypatch.setattr(workspace_module, "load_specs", load_specs)
    assert run({"first": "ran", "second": "ran", "third": "ran", "single": "ran"})
    assert seen == [True]  # the first run

    project.write("delay.txt", "0")
    project.write("raw.csv", "v\n1\n2\n3\n")  # its three assets took ~1.2 s last time: workers
    assert run({"first": "ran", "second": "ran", "third": "ran", "single": "fresh"})
    assert seen == [True, True]

    # Last time includes each worker's warm-up (recorded with its first task): the prediction reads the
    # same durations as the run's own choice, and the two agree.
    project.write("raw.csv", "v\n1\n2\n4\n")
    in_workers = run({"first": "ran", "second": "ran", "third": "ran", "single": "fresh"})
    assert seen == [True, True, in_workers]

    project.write("other.csv", "v\n2\n")  # one asset: computed in process
    assert not run({"first": "fresh", "single": "ran"})
    assert seen == [True, True, in_workers, False]

    project.write("other.csv", "v\n2\n")  # the same bytes: nothing to load
    assert api.materialize(project=project.root).fast_path
    project.write(f"{module_name}.py", SOURCED + "\n# a comment\n")
    sys.modules.pop(module_name, None)
    (tmp_path / "pid.txt").write_text(str(os.getpid()))
    assert not run({"first": "fresh", "single": "fresh"})
    assert seen == [True, True, in_workers, False, False]
