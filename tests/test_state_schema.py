"""The state schema's migrations: an older store opens with its records and pointers intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from assetflow.state.schema import MIGRATIONS
from assetflow.state.store import StateStore


def _old_store(folder: Path, version: int) -> None:
    """A store as an older assetflow left it: the first ``version`` migrations and one current version."""
    folder.mkdir(parents=True)
    db = sqlite3.connect(folder / "state.db")
    for migration in MIGRATIONS[:version]:
        db.executescript(migration)
    db.execute(
        "INSERT INTO materializations (id, asset, run_id, recipe_key, data_hash, code_fingerprint, config, upstream, "
        "deps, io, location, token, rows, schema, bytes, libraries, started_at, finished_at) VALUES "
        "(7, 'orders', 'r1', 'recipe', 'blake3:aa', 'code', '{}', '{}', '[]', 'parquet', 'orders/x.parquet', 't', "
        "3, '[]', 10, '{}', 1.0, 2.0)")
    db.execute("INSERT INTO current (asset, materialization) VALUES ('orders', 7)")
    db.execute("INSERT INTO source_versions (name, data_hash, observed_at) VALUES ('raw', 'blake3:bb', 1.0)")
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


def test_a_version_2_store_keeps_its_pointers_and_sources(tmp_path: Path) -> None:
    _old_store(tmp_path / "state", 2)
    store = StateStore(tmp_path / "state")
    try:
        current = store.current()
        assert list(current) == ["orders"] and current["orders"].id == 7 and current["orders"].partition == ""
        assert store.source_versions() == {"raw": "blake3:bb"}
        assert store.pointed_ids() == {7}
    finally:
        store.close()


def test_pointers_are_per_partition_and_environment(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    try:
        with store.transaction() as db:
            db.execute("INSERT INTO environments (name, base, created_at) VALUES ('dev', 'prod', 0)")
            for mid, partition in ((1, ""), (2, "2024-01-01"), (3, "2024-01-02")):
                db.execute(
                    "INSERT INTO materializations (id, asset, run_id, recipe_key, data_hash, code_fingerprint, "
                    "config, upstream, deps, io, location, token, rows, schema, bytes, libraries, started_at, "
                    "finished_at, partition) VALUES (?, 'a', 'r', 'k', 'h', 'c', '{}', '{}', '[]', 'parquet', 'l', "
                    "'t', 1, '[]', 1, '{}', 0, 0, ?)", (mid, partition))
            store.point(db, "a", 1)
            store.point(db, "a", 1, env="dev")
            store.point(db, "a", 2, "2024-01-01")  # an asset is partitioned or not: its unpartitioned pointer goes
            store.point(db, "a", 3, "2024-01-02", env="dev")
            store.point(db, "a", 2, "2024-01-02")  # a pointer at another partition's version is damage
        assert store.current() == {} and set(store.current_partitions()) == {("a", "2024-01-01")}
        assert store.current(env="dev") == {} and set(store.current_partitions(env="dev")) == {("a", "2024-01-02")}
        with store.transaction() as db:
            store.point(db, "a", 1)
        assert set(store.current()) == {"a"} and store.current_partitions() == {}
        assert set(store.current_partitions(env="dev")) == {("a", "2024-01-02")}  # per environment
        with store.transaction() as db:
            store.point(db, "a", 2, "2024-01-01")
        assert store.by_recipe("a", "k", "2024-01-01")[0].id == 2
        with store.transaction() as db:
            store.unpoint(db, "a", None)
        assert store.current() == {} and store.current_partitions() == {}
    finally:
        store.close()
