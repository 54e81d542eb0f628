"""assetflow-postgres: store assets as tables in a PostgreSQL schema.

Registered through the ``assetflow`` entry-point group; choose it per asset with
``@asset(io="postgres")`` or for a project with ``default_io = "postgres"``, and
configure it under ``[tool.assetflow.io.postgres]`` (see docs/storage.md).
"""

from __future__ import annotations

from assetflow.ext import hookimpl
from assetflow_postgres.backend import PostgresBackend

__all__ = ["PostgresBackend"]


@hookimpl
def assetflow_io_backends() -> list[type[PostgresBackend]]:
    return [PostgresBackend]
