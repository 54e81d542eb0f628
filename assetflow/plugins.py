"""The plugin manager: built-ins and entry-point plugins, registered the same way.

Entry points are loaded once, lazily, the first time something needs a plugin, so
commands that need none (``--help``) pay nothing. ``ASSETFLOW_PLUGINS`` chooses
which third-party plugins load: unset loads all, an empty string loads none, a
comma-separated list loads only those names.
"""

from __future__ import annotations

import functools
import importlib
import os

import pluggy

from assetflow import hookspecs
from assetflow.errors import PluginError

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
