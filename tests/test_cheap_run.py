"""A run costs its work: small plans compute in the run's own process, and a run that computes
nothing imports neither polars nor pyarrow (issue 17; docs/execution.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ProjectDir

# polars only inside the functions: what the run imports is then assetflow's (and its plugins') doing.
LAZY_PIPELINE = """
    import os
    from assetflow import asset

    PIDS = {pids!r}

    def note(name):
        with open(PIDS, "a") as handle:
            handle.write(f"{{name}} {{os.getpid()}}\\n")

    @asset
    def first():
        import polars as pl
        note("first")
        return pl.DataFrame({{"x": [1, 2, 3]}})

    @asset
    def second(first):
        note("second")
        return first.head(2)

    @asset
    def third(second):
        note("third")
        return second.head({value})
"""

PROBE = """
import json, sys
sys.argv = ["assetflow", "materialize", "--json"] + sys.argv[1:]
from assetflow.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"polars", "pyarrow", "duckdb", "pandas", "numpy"})
import os
children = []  # processes this one started that are still alive once the run returned (Linux)
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(fields[1]) == os.getpid() and fields[0] != "Z":
        children.append(int(pid))
print(json.dumps({"pid": os.getpid(), "heavy": heavy, "children": children}), file=sys.stderr)
"""


def _probe(project: ProjectDir, *args: str, env: dict[str, str] | None = None) -> tuple[dict[str, str], dict]:
    """Run materialize --json in a child that reports its pid and the heavy modules it imported."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=project.root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    probe = json.loads(proc.stderr.strip().splitlines()[-1])
    return {a["name"]: a["outcome"] for a in payload["assets"]}, probe


def _pids(path: os.PathLike[str]) -> dict[str, set[int]]:
    found: dict[str, set[int]] = {}
    for line in open(path).read().split("\n"):
        if line:
            name, pid = line.split()
            found.setdefault(name, set()).add(int(pid))
    return found


def test_a_run_that_computes_nothing_imports_neither_polars_nor_pyarrow(project: ProjectDir, tmp_path) -> None:
    pids = tmp_path / "pids.txt"
    project.write("pipeline.py", LAZY_PIPELINE.format(pids=str(pids), value=3))
    outcomes, _ = _probe(project)
    assert set(outcomes.values()) == {"ran"}
    # the fast path off: the full check loads the project, the plugins and the storage backends
    outcomes, probe = _probe(project, env={"ASSETFLOW_NO_FAST_PATH": "1"})
    assert set(outcomes.values()) == {"fresh"}
    assert probe["heavy"] == [], f"a run that computed nothing imported {probe['heavy']}"


def test_a_small_plan_runs_in_process_and_a_chosen_executor_is_kept(project: ProjectDir, tmp_path) -> None:
    pids = tmp_path / "pids.txt"
    project.write("pipeline.py", LAZY_PIPELINE.format(pids=str(pids), value=3))
    outcomes, probe = _probe(project)  # three assets: more than a small plan, so workers compute them
    assert set(outcomes.values()) == {"ran"}
    assert probe["pid"] not in set().union(*_pids(pids).values())

    pids.unlink()
    project.write("pipeline.py", LAZY_PIPELINE.format(pids=str(pids), value=4))
    outcomes, probe = _probe(project)  # only the leaf's code changed
    assert outcomes == {"first": "fresh", "second": "fresh", "third": "ran"}
    assert _pids(pids) == {"third": {probe["pid"]}}, "a one-asset plan started a worker"
    assert probe["children"] == [], "a plan computed in process started workers all the same"

    pids.unlink()
    project.write("pipeline.py", LAZY_PIPELINE.format(pids=str(pids), value=5))
    outcomes, probe = _probe(project, "--executor", "processes")
    assert outcomes["third"] == "ran"
    assert probe["pid"] not in _pids(pids)["third"], "--executor processes was not honoured"


TIMED_PIPELINE = """
    import os
    import time
    from pathlib import Path

    import polars as pl
    from assetflow import asset, source

    PIDS = {pids!r}
    s = source("data/s.csv")

    def note(name):
        with open(PIDS, "a") as handle:
            handle.write(f"{{name}} {{os.getpid()}}\\n")

    @asset
    def first(s: pl.DataFrame) -> pl.DataFrame:
        note("first")
        return s

    @asset
    def second(first: pl.DataFrame) -> pl.DataFrame:
        note("second")
        time.sleep(float((Path(PIDS).parent / "delay").read_text()))  # how long: data, not code
        return first

    @asset
    def third(second: pl.DataFrame) -> pl.DataFrame:
        note("third")
        return second
"""


def test_a_plan_whose_assets_ran_quickly_last_time_runs_in_process_and_a_slow_one_in_workers(
        project: ProjectDir, tmp_path) -> None:
    """Three assets are more than SMALL_PLAN, but if their last runs took less than starting workers
    costs (SMALL_WORK_S), the run computes them itself; an asset never run, or one that took long, gets workers."""
    from assetflow.execute.executors import SMALL_PLAN, SMALL_WORK_S

    assert SMALL_PLAN < 3
    pids = tmp_path / "pids.txt"
    (tmp_path / "delay").write_text("0")
    project.write("pipeline.py", TIMED_PIPELINE.format(pids=str(pids)))
    project.write("data/s.csv", "x\n1\n")
    outcomes, probe = _probe(project)  # never run: how long they take is unknown
    assert set(outcomes.values()) == {"ran"}
    assert probe["pid"] not in set().union(*_pids(pids).values())

    pids.unlink()
    project.write("data/s.csv", "x\n2\n")
    (tmp_path / "delay").write_text(str(SMALL_WORK_S + 0.1))
    outcomes, probe = _probe(project)  # quick last time: here, although `second` now sleeps
    assert outcomes == {"first": "ran", "second": "ran", "third": "ran"}
    assert _pids(pids) == {"first": {probe["pid"]}, "second": {probe["pid"]}, "third": {probe["pid"]}}
    assert probe["children"] == []

    pids.unlink()
    project.write("data/s.csv", "x\n3\n")
    (tmp_path / "delay").write_text("0")
    outcomes, probe = _probe(project)  # `second` took longer than starting workers: workers
    assert set(outcomes.values()) == {"ran"}
    assert probe["pid"] not in set().union(*_pids(pids).values())


def test_assets_reading_one_source_share_its_read_never_its_frame(project: ProjectDir) -> None:
    """A worker parses a source once for all the assets that read it (issue 17); each gets its own frame,
    so one changing its input in place changes nothing for the others, and new bytes are read again."""
    from assetflow import api

    project.write("data/s.csv", "x,y\n1,2\n3,4\n")
    project.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset, source

        s = source("data/s.csv")

        @asset
        def mutates(s: pl.DataFrame) -> pl.DataFrame:
            s.drop_in_place("y")  # in place, on its own input
            return s

        @asset
        def keeps(mutates: pl.DataFrame, s: pl.DataFrame) -> pl.DataFrame:
            return s
    ''')
    api.materialize(project=project.root, executor="inprocess")
    assert api.load("mutates", project=project.root).columns == ["x"]
    assert api.load("keeps", project=project.root).to_dict(as_series=False) == {"x": [1, 3], "y": [2, 4]}
    project.write("data/s.csv", "x,y\n5,6\n")
    api.materialize(project=project.root, executor="inprocess")
    assert api.load("keeps", project=project.root).to_dict(as_series=False) == {"x": [5], "y": [6]}


def test_an_assetflow_command_runs_the_cycle_collector_less_often(tmp_path) -> None:
    """Full collections walked every object of a large loaded project every few hundred allocations
    (0.17-0.2 s of a 0.5 s assessment at 10,000 assets); the command's own process raises the thresholds."""
    import gc

    from click.testing import CliRunner

    from assetflow.cli import main
    from assetflow.cli_base import COLLECTOR_THRESHOLDS

    module = f"collector_probe_{os.getpid()}"  # imported into this process: a name no other test uses
    (tmp_path / "pyproject.toml").write_text(f'[tool.assetflow]\nmodules = ["{module}"]\n')
    (tmp_path / f"{module}.py").write_text("from assetflow import asset\n\n@asset(io='json')\ndef one() -> int:\n"
                                          "    return 1\n")
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        result = CliRunner().invoke(main, ["status", "--project", str(tmp_path)])
        assert result.exit_code in (0, 1) and "one" in result.output, result.output
        assert gc.get_threshold() == COLLECTOR_THRESHOLDS != (700, 10, 10)
    finally:
        gc.set_threshold(*before)
        sys.modules.pop(module, None)
