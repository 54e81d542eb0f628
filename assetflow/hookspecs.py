"""The hooks a plugin can implement; built-in backends implement them too.

A plugin is any module or object with functions marked ``@assetflow.hookimpl``,
registered through the ``assetflow`` entry-point group. See docs/plugins.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from assetflow.contracts import Executor, IOBackend

hookspec = pluggy.HookspecMarker("assetflow")
hookimpl = pluggy.HookimplMarker("assetflow")


@hookspec
def assetflow_io_backends() -> list[type[IOBackend]]:
    """Return storage backend classes (see ``assetflow.contracts.IOBackend``).

    Each class has a unique ``name`` (what ``@asset(io=...)`` names) and is built with
    the project's storage root and its ``[tool.assetflow.io.<name>]`` options. Built in:
    ``parquet`` (the default), ``duckdb``, and the opt-in ``json`` and ``pickle`` for
    non-table values. The contract (atomic ``store``, the data hash from
    ``fingerprint.data.table_hash`` so equal content hashes alike in every backend, cheap
    ``check`` tokens, optional ``activate`` and ``local_file``) is in docs/plugins.md.
    """
    return []  # a specification: pluggy calls the plugins' implementations, never this body


@hookspec
def assetflow_executors() -> list[type[Executor]]:
    """Return executor classes (see ``assetflow.contracts.Executor``).

    Each class has a unique ``name`` (what ``--executor`` names) and is built with
    ``jobs`` (``--jobs``, None for its default) and ``address`` (``--address``, None if
    not given). Built in: ``processes`` (the default) and ``inprocess``.
    """
    return []  # a specification: pluggy calls the plugins' implementations, never this body
