"""assetflow: declare data assets in Python; materialize only what changed.

Declaration is imported eagerly (user modules need it and it is cheap); the
operations load lazily so ``import assetflow`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assetflow.declare import AssetSpec, SourceSpec, asset, source
from assetflow.errors import (
    AssetflowError,
    CycleError,
    DefinitionError,
    DuplicateAssetError,
    ExitCode,
    GraphError,
    MaterializationError,
    PluginError,
    ProjectLoadError,
    StateError,
    StorageError,
    UnknownAssetError,
)
from assetflow.hookspecs import hookimpl

if TYPE_CHECKING:
    from assetflow.api import load, materialize, status

__all__ = [
    "AssetSpec",
    "AssetflowError",
    "CycleError",
    "DefinitionError",
    "DuplicateAssetError",
    "ExitCode",
    "GraphError",
    "MaterializationError",
    "PluginError",
    "ProjectLoadError",
    "SourceSpec",
    "StateError",
    "StorageError",
    "UnknownAssetError",
    "asset",
    "hookimpl",
    "load",
    "materialize",
    "source",
    "status",
]

_LAZY = {"load", "materialize", "status"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from assetflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'assetflow' has no attribute {name!r}")
