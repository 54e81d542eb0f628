"""assetflow: declare data assets in Python; materialize only what changed.

Everything but the errors loads on first use, the declarations too: a no-op ``materialize``
imports no user module and declares nothing, and the declarations' modules (partitions,
freshness policies, datetime) were ~10% of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assetflow.version import __version__
from assetflow.errors import (
    AssetflowError,
    CheckDefinitionError,
    CycleError,
    DefinitionError,
    DuplicateAssetError,
    ExitCode,
    GraphError,
    MaterializationError,
    PluginError,
    ProjectLoadError,
    SelectionError,
    StateError,
    StorageError,
    UnknownAssetError,
)

if TYPE_CHECKING:
    from assetflow.api import lineage, load, materialize, run_checks, status, why
    from assetflow.declare import AssetSpec, SourceSpec, asset, source
    from assetflow.secrets import Secret, secret
    from assetflow.checks import *  # noqa: F403 - the check kinds, named once in assetflow.checks.__all__
    from assetflow.hookspecs import hookimpl
    from assetflow.sql.spec import sql_asset


__all__ = [
    "AssetSpec",
    "AssetflowError",
    "CheckDefinitionError",
    "CheckOutcome",
    "CycleError",
    "DefinitionError",
    "DuplicateAssetError",
    "ExitCode",
    "GraphError",
    "MaterializationError",
    "PluginError",
    "ProjectLoadError",
    "Secret",
    "SelectionError",
    "SourceSpec",
    "StateError",
    "StorageError",
    "UnknownAssetError",
    "accepted_values",
    "asset",
    "check",
    "expr",
    "hookimpl",
    "lineage",
    "load",
    "materialize",
    "not_null",
    "relationship",
    "row_count",
    "run_checks",
    "schema",
    "secret",
    "source",
    "sql_asset",
    "status",
    "unique",
    "why",
]

_CHECK_KINDS = ("CheckOutcome", "accepted_values", "check", "expr", "not_null", "relationship", "row_count",
                "schema", "unique")
_LAZY = {"lineage": "assetflow.api", "load": "assetflow.api", "materialize": "assetflow.api", "status": "assetflow.api",
         "run_checks": "assetflow.api",
         "why": "assetflow.api",
         "hookimpl": "assetflow.hookspecs", "sql_asset": "assetflow.sql.spec",
         **dict.fromkeys(("AssetSpec", "SourceSpec", "asset", "source"), "assetflow.declare"),
         **dict.fromkeys(("Secret", "secret"), "assetflow.secrets"),
         **dict.fromkeys(_CHECK_KINDS, "assetflow.checks")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'assetflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, loaded or not: what ``dir(assetflow)`` and a notebook's completion offer."""
    return sorted({*globals(), *__all__})
