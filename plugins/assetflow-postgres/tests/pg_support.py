"""Fixtures for the PostgreSQL tests (a helper module, not a conftest: the repository's test
folders share one pytest run, and a second ``conftest`` module would shadow tests/conftest.py).

The tests need a real server: ``ASSETFLOW_POSTGRES_DSN`` names it (``.ci/services.sh`` starts
one and exports it); without it they skip.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DSN = os.environ.get("ASSETFLOW_POSTGRES_DSN", "")
requires_postgres = pytest.mark.skipif(
    not DSN,
    reason="ASSETFLOW_POSTGRES_DSN is not set: run `. .ci/services.sh` to start a local PostgreSQL server",
)


def _load(path: Path, name: str) -> Any:
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def root_conftest() -> Any:
    """The repository's tests/conftest.py (ProjectDir), whether or not pytest loaded it already."""
    path = Path(__file__).resolve().parents[3] / "tests" / "conftest.py"
    loaded = sys.modules.get("conftest")
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path:
        return loaded
    return _load(path, "assetflow_tests_conftest")


def plugin_test_helper(plugin: str, module: str) -> Any:
    """A helper module from another plugin's tests folder, e.g. the S3 server fixtures."""
    return _load(Path(__file__).resolve().parents[2] / plugin / "tests" / f"{module}.py", module)


def sql(query: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one statement in its own connection and transaction; return its rows, if any.

    Statistics are flushed before the connection closes, as a tampering session's would be
    by the time anyone looks.
    """
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        cur = conn.execute(query, params or None)
        rows = cur.fetchall() if cur.description else []
        conn.execute("select pg_stat_force_next_flush()")
    return rows


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema name for one test; dropped afterwards with everything in it."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    sql(f'drop schema if exists "{name}" cascade')
