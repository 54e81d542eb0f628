"""The public surface for plugins: everything a storage backend or an executor may use.

A plugin imports from here, never from assetflow's private modules, so that assetflow can
move its insides without breaking plugins; ``tests/test_public_surface.py`` pins this list.
docs/plugins.md says how each name is used.

- Hooks: ``hookimpl`` marks a plugin's ``assetflow_io_backends`` / ``assetflow_executors``.
- Storage backends: the contract (``IOBackend``, ``StoredData``, ``CheckResult``,
  ``ValueKind``, ``CheckStatus``); ``TableBackend``, the base class of backends that store
  tables (it turns a value into an Arrow table and hashes it, once); ``table_hash`` (the
  canonical content hash equal content has in every backend); ``require_table``; the file
  helpers ``atomic_target``, ``write_atomically``, ``confined``, ``stat_token``.
- Executors: the contract (``Executor``); ``TaskTimeout`` and ``WorkerLost`` (a task's
  future raises them); ``warm_up`` (import the project in a worker ahead of its first task);
  ``main_module_hidden`` (start worker processes without re-running the caller's script);
  ``ProjectConfig`` (what ``warm_up`` is given).
- Errors: ``StorageError``, ``PluginError``.

Names whose modules import pyarrow load lazily, so that merely having a plugin installed
costs assetflow nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assetflow.contracts import CheckResult, CheckStatus, Executor, IOBackend, StoredData, ValueKind
from assetflow.errors import PluginError, StorageError, TaskTimeout, WorkerLost
from assetflow.hookspecs import hookimpl
from assetflow.project import ProjectConfig
from assetflow.storage.files import atomic_target, confined, stat_token, write_atomically

if TYPE_CHECKING:
    from assetflow.execute.pool import main_module_hidden
    from assetflow.execute.task import run_ended, warm_up
    from assetflow.fingerprint.data import table_hash
    from assetflow.storage.table import require_table
    from assetflow.storage.table import TableBackend

__all__ = [
    "CheckResult",
    "CheckStatus",
    "Executor",
    "IOBackend",
    "PluginError",
    "ProjectConfig",
    "StorageError",
    "StoredData",
    "TableBackend",
    "TaskTimeout",
    "ValueKind",
    "WorkerLost",
    "atomic_target",
    "confined",
    "hookimpl",
    "main_module_hidden",
    "require_table",
    "run_ended",
    "stat_token",
    "table_hash",
    "warm_up",
    "write_atomically",
]

_LAZY = {
    "TableBackend": "assetflow.storage.table",
    "main_module_hidden": "assetflow.execute.pool",
    "require_table": "assetflow.storage.table",
    "run_ended": "assetflow.execute.task",
    "table_hash": "assetflow.fingerprint.data",
    "warm_up": "assetflow.execute.task",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'assetflow.ext' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, loaded or not: what ``dir()`` and a notebook's completion offer."""
    return sorted({*globals(), *__all__})
