"""Plugins: built-ins and entry points registered alike, chosen by ASSETFLOW_PLUGINS, listed by
`assetflow plugins`, every hook documented; the example plugin found through its entry point."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from assetflow import hookimpl, hookspecs
from assetflow.errors import PluginError
from assetflow.plugins import BUILTIN_PLUGINS, plugin_manager
from assetflow.storage.base import Backends
from conftest import ASSETFLOW, ProjectDir

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "plugins.md"
STORAGE_BUILTINS = {"assetflow.storage.parquet", "assetflow.storage.duckdb", "assetflow.storage.formats"}


def assetflow(*args: str, plugins: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ASSETFLOW_PLUGINS"}
    if plugins is not None:
        env["ASSETFLOW_PLUGINS"] = plugins
    return subprocess.run([*ASSETFLOW, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def listed(plugins: str | None = None) -> dict[str, dict[str, Any]]:
    proc = assetflow("plugins", "--json", plugins=plugins)
    assert proc.returncode == 0, proc.stderr
    return {row["name"]: row for row in json.loads(proc.stdout)["plugins"]}


def backend_names(plugins: str | None = None) -> list[str]:
    env = {**os.environ, "ASSETFLOW_PLUGINS": plugins} if plugins is not None else dict(os.environ)
    code = "from pathlib import Path; from assetflow.storage.base import Backends; print(*sorted(Backends(Path('.'), {}).classes()))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


# -- listing and choosing -----------------------------------------------------------------------


def test_plugins_lists_builtins_and_the_example_with_version_and_hooks() -> None:
    rows = listed()
    version = importlib.metadata.version("assetflow")
    for name in STORAGE_BUILTINS:
        assert rows[name] == {"name": name, "version": version, "hooks": ["assetflow_io_backends"]}
    assert rows["example"] == {"name": "example", "version": "0.1.0", "hooks": ["assetflow_io_backends"]}
    assert set(BUILTIN_PLUGINS) <= set(rows)


def test_every_backend_is_found_by_name() -> None:
    assert {"parquet", "duckdb", "json", "pickle", "csv"} <= set(backend_names())


def test_plugins_text_output_has_a_line_per_plugin() -> None:
    proc = assetflow("plugins", plugins="example")
    assert proc.returncode == 0, proc.stderr
    assert "example 0.1.0: assetflow_io_backends" in proc.stdout.splitlines()
    assert "assetflow.storage.duckdb" in proc.stdout


def test_empty_assetflow_plugins_loads_only_builtins() -> None:
    rows = listed(plugins="")
    assert set(rows) == set(BUILTIN_PLUGINS)
    assert "csv" not in backend_names(plugins="")
    assert {"parquet", "duckdb", "json", "pickle"} <= set(backend_names(plugins=""))


def test_assetflow_plugins_chooses_by_entry_point_name() -> None:
    rows = listed(plugins=" example ,")
    assert set(rows) == set(BUILTIN_PLUGINS) | {"example"}


def test_assetflow_plugins_naming_a_missing_plugin_is_an_error() -> None:
    proc = assetflow("plugins", plugins="example,nonesuch")
    assert proc.returncode == 2
    assert "ASSETFLOW_PLUGINS names plugin 'nonesuch'" in proc.stderr


# -- documentation -------------------------------------------------------------------------------


def hook_names() -> list[str]:
    return sorted(name for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "assetflow_spec"))


def test_hookspecs_are_found() -> None:
    assert "assetflow_io_backends" in hook_names()


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_documented_in_the_plugin_guide(hook: str) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    assert re.search(rf"^#+ `{hook}`$", guide, re.MULTILINE), (
        f"hook {hook!r} (assetflow/hookspecs.py) has no section '### `{hook}`' in {GUIDE.relative_to(REPO)}"
    )


@pytest.mark.parametrize("member", ["name", "format", "store", "load", "check", "delete", "activate", "local_file"])
def test_every_backend_member_is_documented_in_the_plugin_guide(member: str) -> None:
    assert f"`{member}" in GUIDE.read_text(encoding="utf-8")


# -- registering a plugin in a test, as pluggy's own tests do ---------------------------------------


@pytest.fixture
def register() -> Iterator[Any]:
    registered: list[object] = []

    def add(plugin: object) -> None:
        plugin_manager().register(plugin)
        registered.append(plugin)

    yield add
    for plugin in registered:
        plugin_manager().unregister(plugin)


def test_a_registered_plugin_provides_a_backend(register: Any, tmp_path: Path) -> None:
    class Memory:
        name: ClassVar[str] = "memory"
        format: ClassVar[str] = "memory"

        def __init__(self, root: Path, options: dict[str, Any]) -> None:
            self.options = options

    class MemoryPlugin:
        @hookimpl
        def assetflow_io_backends(self) -> list[type[Memory]]:
            return [Memory]

    register(MemoryPlugin())
    backend = Backends(tmp_path, {"memory": {"size": 3}}).get("memory")
    assert isinstance(backend, Memory) and backend.options == {"size": 3}


def test_two_plugins_with_one_backend_name_are_refused_naming_both(register: Any, tmp_path: Path) -> None:
    class Impostor:
        name: ClassVar[str] = "parquet"
        format: ClassVar[str] = "parquet"

    class ImpostorPlugin:
        @hookimpl
        def assetflow_io_backends(self) -> list[type[Impostor]]:
            return [Impostor]

    register(ImpostorPlugin())
    with pytest.raises(PluginError, match="Two plugins provide a storage backend named 'parquet': .*Uninstall one"):
        Backends(tmp_path, {}).classes()


def test_an_unknown_backend_name_lists_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match=r"No storage backend named 'nosuch'; installed: .*duckdb.*json.*parquet.*pickle"):
        Backends(tmp_path, {}).get("nosuch")


# -- the example plugin, found through its entry point -----------------------------------------------


PIPELINE = '''
    import polars as pl
    from assetflow import asset


    @asset(io="csv")
    def cities() -> pl.DataFrame:
        return pl.DataFrame({"city": ["Lyon", "Oslo"], "population": [522_000, 709_000]})


    @asset
    def big(cities: pl.DataFrame) -> pl.DataFrame:
        return cities.filter(pl.col("population") > 600_000)
'''


def test_the_example_plugin_stores_an_asset_through_its_entry_point(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    assert project.ran() == {"cities", "big"}
    (stored,) = (project.root / ".assetflow" / "data" / "csv" / "cities").glob("*.csv")
    assert stored.read_text().splitlines()[0] == '"city","population"'
    assert project.ran() == set()
    stored.write_text(stored.read_text().replace("Oslo", "Bergen"))
    status = project.status()
    assert "stored data changed outside assetflow (hash mismatch)" in status["cities"]["reasons"]
    result = project.materialize()
    assert (result["cities"], result["big"]) == ("ran", "cutoff")


def test_moving_an_asset_to_the_example_backend_keeps_its_hash(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE.replace('@asset(io="csv")', "@asset"))
    assert project.ran() == {"cities", "big"}
    before = {n: row["data_hash"] for n, row in project.status().items()}
    project.write("pipeline.py", PIPELINE)
    result = project.materialize()
    assert (result["cities"], result["big"]) == ("ran", "cutoff")
    assert {n: row["data_hash"] for n, row in project.status().items()} == before


def test_without_the_plugin_its_backend_is_reported_missing(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    proc = project.run("materialize", "--json", check=False, env={"ASSETFLOW_PLUGINS": ""})
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "No storage backend named 'csv'" in output and "Install the plugin that provides it" in output


def test_a_backend_that_cannot_activate_fails_only_that_asset(register: Any, tmp_path: Path) -> None:
    """``activate`` runs before the state records the version: a failure fails the asset, names it
    and the backend, records nothing, and the next run (storage fixed) makes it current."""
    from assetflow import api
    from assetflow.storage.parquet import ParquetBackend

    broken = tmp_path / "view-broken"

    class Switching(ParquetBackend):
        name: ClassVar[str] = "switching"
        activated: ClassVar[list[str]] = []

        def activate(self, asset: str, location: str) -> None:
            if broken.exists():
                raise OSError("the warehouse refused the view switch")
            Switching.activated.append(location)

    class SwitchingPlugin:
        @hookimpl
        def assetflow_io_backends(self) -> list[type[Switching]]:
            return [Switching]

    register(SwitchingPlugin())
    project = ProjectDir(tmp_path / "p", ["pipeline"])
    module = '''
        import polars as pl
        from assetflow import asset

        @asset(io="switching")
        def served() -> pl.DataFrame:
            return pl.DataFrame({"n": [N]})

        @asset
        def below(served: pl.DataFrame) -> pl.DataFrame:
            return served

        @asset
        def apart() -> pl.DataFrame:
            return pl.DataFrame({"k": [N]})
    '''
    project.write("pipeline.py", module.replace("N", "1"))
    first = api.materialize(project=project.root, executor="inprocess")
    assert first.ok and len(Switching.activated) == 1
    version_one = api.status(project=project.root)
    project.write("pipeline.py", module.replace("N", "2"))
    broken.touch()
    second = api.materialize(project=project.root, executor="inprocess")
    outcomes = {name: r.outcome for name, r in second.results.items()}
    assert outcomes == {"served": "failed", "below": "skipped", "apart": "ran"}
    error = second.results["served"].error or ""
    assert "switching backend could not make this version of `served` current" in error
    assert "the warehouse refused the view switch" in error
    rows = {r.name: r for r in api.status(project=project.root)}
    assert rows["served"].data_hash == {r.name: r for r in version_one}["served"].data_hash  # nothing recorded
    assert rows["served"].state == "failed" and "stale" in rows["served"].states
    broken.unlink()
    third = api.materialize(project=project.root, executor="inprocess")
    assert third.ok and third.results["served"].outcome == "ran" and len(Switching.activated) == 2
    assert api.load("served", project=project.root)["n"].to_list() == [2]
