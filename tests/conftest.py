"""Shared fixtures: a throwaway project on disk, driven through the real CLI in a subprocess."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ASSETFLOW = [sys.executable, "-m", "assetflow"]


class ProjectDir:
    """A project folder with helpers to write modules and data and to run assetflow on it."""

    def __init__(self, root: Path, modules: list[str]) -> None:
        self.root = root
        self.write("pyproject.toml", f"[tool.assetflow]\nmodules = {json.dumps(modules)}\n")

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*ASSETFLOW, *args], cwd=self.root, capture_output=True, text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}, timeout=300,
        )
        if check and proc.returncode not in (0, 1):
            raise AssertionError(f"assetflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def materialize(self, *args: str) -> dict[str, Any]:
        """Run ``materialize --json`` and return {asset: outcome} plus the raw payload under '_'."""
        proc = self.run("materialize", "--json", *args)
        payload = json.loads(proc.stdout)
        outcomes = {a["name"]: a["outcome"] for a in payload["assets"]}
        return {"_": payload, **outcomes}

    def ran(self, *args: str) -> set[str]:
        """The assets a materialize run actually computed."""
        result = self.materialize(*args)
        return {name for name, outcome in result.items() if outcome == "ran"}

    def status(self) -> dict[str, dict[str, Any]]:
        payload = json.loads(self.run("status", "--json").stdout)
        return {a["name"]: a for a in payload["assets"]}


@pytest.fixture
def project(tmp_path: Path) -> ProjectDir:
    return ProjectDir(tmp_path, ["pipeline"])


_MODULE_NAMES = itertools.count()


@pytest.fixture
def module_name() -> Iterator[str]:
    """A module name no other test uses, for a test that imports its project into this process;
    forgotten afterwards, with the workspaces this process loaded."""
    from assetflow.execute import task as task_module

    name = f"inproc_{os.getpid()}_{next(_MODULE_NAMES)}"
    yield name
    sys.modules.pop(name, None)
    task_module._WORKSPACES.clear()


def assert_collects_without_waiting(executor: Any) -> None:
    """``executor.wait_any([future], timeout=0)``, asked again and again as the runner asks between
    decisions, returns a task once it has finished: each call looks for finished tasks, none blocks."""
    import time

    try:
        future = executor.submit(repr, "done soon")
        give_up = time.monotonic() + 120
        while not (done := executor.wait_any([future], timeout=0)):
            assert time.monotonic() < give_up, "wait_any(timeout=0) never collected the finished task"
            time.sleep(0.01)
        assert done == {future}
        assert future.result() == "'done soon'"
    finally:
        executor.shutdown()


# -- the two lanes ---------------------------------------------------------------------------------
# `pytest -m "not slow"` is the fast in-process lane. A test is slow when it starts processes: its
# own code or a fixture it uses runs the CLI in a subprocess (ProjectDir.run), spawns or kills
# processes, or needs a service (PostgreSQL, S3, a Dask cluster, a browser). Marking by what the
# code does, at collection, keeps a new subprocess test out of the fast lane without anyone
# remembering the marker; `@pytest.mark.slow` by hand still works.
_SLOW_FILES = ("test_reliability_", "test_ui_browser", "test_executor_dask", "test_partitions_crash",
               "test_long_lived_process", "test_postgres_", "test_cross_backend_lineage", "test_s3_")
_SLOW_WORDS = ("subprocess", "Popen", "ProjectDir", "ASSETFLOW", "sys.executable", "multiprocessing", "os.kill",
               "requires_postgres", "s3_server", "LocalCluster", "playwright")


def _starts_processes(fn: object, seen: dict[object, bool]) -> bool:
    if fn not in seen:
        import inspect

        try:
            source = inspect.getsource(fn)  # type: ignore[arg-type]
        except (OSError, TypeError):
            source = ""
        seen[fn] = any(word in source for word in _SLOW_WORDS)
    return seen[fn]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seen: dict[object, bool] = {}
    for item in items:
        if item.get_closest_marker("slow"):
            continue
        fixtures = getattr(item, "_fixtureinfo", None)
        fixture_fns = [d.func for defs in (fixtures.name2fixturedefs.values() if fixtures else ()) for d in defs
                       if not d.baseid == "" or d.func.__module__.startswith(("tests", "conftest", "pg_", "s3_"))]
        if (item.path.name.startswith(_SLOW_FILES)
                or _starts_processes(getattr(item, "function", None), seen)
                or any(_starts_processes(fn, seen) for fn in fixture_fns)):
            item.add_marker(pytest.mark.slow)
        elif not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(120))  # an in-process test that hangs fails, naming itself
