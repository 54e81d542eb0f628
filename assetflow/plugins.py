"""The plugin manager and the registries: built-ins and entry-point plugins, registered the same way.

Entry points are loaded once, lazily, the first time something needs a plugin, so
commands that need none (``--help``) pay nothing. ``ASSETFLOW_PLUGINS`` chooses
which third-party plugins load: unset loads all, an empty string loads none, a
comma-separated list loads only those names.

The registries (storage backends and executors by name) are built from the hooks here,
with one lookup, ``find``, that names what is installed when a name is not.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import TYPE_CHECKING, Literal

import pluggy

from assetflow import hookspecs
from assetflow.errors import PluginError

if TYPE_CHECKING:
    from assetflow.contracts import Executor, IOBackend

ENTRY_POINT_GROUP = "assetflow"
PLUGINS_ENV = "ASSETFLOW_PLUGINS"
BUILTIN_PLUGINS = ("assetflow.storage.parquet", "assetflow.storage.duckdb", "assetflow.storage.formats",
                   "assetflow.execute.executors")


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with built-ins and chosen entry points loaded."""
    manager = pluggy.PluginManager("assetflow")
    manager.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    wanted = os.environ.get(PLUGINS_ENV)
    if wanted is None:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    else:
        for name in filter(None, (w.strip() for w in wanted.split(","))):
            if manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name) == 0:
                raise PluginError(
                    f"{PLUGINS_ENV} names plugin {name!r}, but no installed package provides an "
                    f"{ENTRY_POINT_GROUP!r} entry point with that name. Install it or fix {PLUGINS_ENV}."
                )
    return manager


def describe_plugins() -> list[dict[str, object]]:
    """Name, distribution version and implemented hooks of every registered plugin."""
    manager = plugin_manager()
    versions = {id(plugin): dist.version for plugin, dist in manager.list_plugin_distinfo()}
    rows = []
    for name, plugin in sorted(manager.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        version = versions.get(id(plugin))
        if version is None and name.startswith("assetflow."):
            from importlib.metadata import version as dist_version

            version = dist_version("assetflow")
        rows.append({"name": name, "version": version, "hooks": hooks})
    return rows


Kind = Literal["backend", "executor"]
# kind -> (the hook that provides classes, what one is called, the option that names one)
_REGISTRIES: dict[str, tuple[str, str, str]] = {
    "backend": ("assetflow_io_backends", "storage backend", "io={name!r}"),
    "executor": ("assetflow_executors", "executor", "--executor / $ASSETFLOW_EXECUTOR"),
}
_FIRST_PARTY = {("executor", "dask"): "assetflow-dask"}  # names whose plugin the error can name


def registry(kind: Kind) -> dict[str, type]:
    """Every class of ``kind`` the built-ins and installed plugins provide, by its ``name``."""
    hook, what, _ = _REGISTRIES[kind]
    found: dict[str, type] = {}
    for batch in getattr(plugin_manager().hook, hook)():
        for cls in batch:
            if cls.name in found and found[cls.name] is not cls:
                raise PluginError(
                    f"Two plugins provide a{'n' if what[0] in 'aeiou' else ''} {what} named {cls.name!r}: "
                    f"{found[cls.name].__module__} and {cls.__module__}. Uninstall one."
                )
            found[cls.name] = cls
    return found


def find(kind: Kind, name: str, classes: dict[str, type] | None = None) -> type:
    """The class of ``kind`` called ``name`` (from ``classes`` if given), or a PluginError listing the installed ones."""
    classes = registry(kind) if classes is None else classes
    if name in classes:
        return classes[name]
    _, what, option = _REGISTRIES[kind]
    package = _FIRST_PARTY.get((kind, name))
    hint = f" (pip install {package})" if package else ""
    raise PluginError(
        f"No {what} named {name!r}{hint}; installed: {', '.join(sorted(classes)) or 'none'}. "
        f"Install the plugin that provides it, or fix {option.format(name=name)}."
    )


def backend_classes() -> dict[str, type[IOBackend]]:
    """Every storage backend, by the name ``@asset(io=...)`` gives."""
    return registry("backend")


def executor_classes() -> dict[str, type[Executor]]:
    """Every executor, by the name ``--executor`` gives."""
    return registry("executor")
