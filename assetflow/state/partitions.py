"""State queries of partitions: dynamic keys, and source versions per partition in bulk.

Kept beside ``store.py`` so that every SQL statement lives under ``state/``; these take
a ``StateStore`` (reads) or a connection inside its transaction (writes).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from assetflow.state.store import StateStore


def dynamic_keys(store: StateStore, definition: str) -> list[str]:
    """A dynamic definition's keys, in the order they were added."""
    rows = store._db.execute(  # noqa: SLF001 - state/ owns the connection
        "SELECT key FROM partition_keys WHERE definition = ? ORDER BY added_at, rowid", (definition,))
    return [r[0] for r in rows]


def add_keys(store: StateStore, definition: str, keys: Iterable[str]) -> list[str]:
    """Add keys (those already present are left as they are); return the ones that were new."""
    now = time.time()
    added = []
    with store.transaction(f"adding keys to dynamic partitions {definition!r}") as db:
        for key in keys:
            cursor = db.execute("INSERT OR IGNORE INTO partition_keys (definition, key, added_at) VALUES (?, ?, ?)",
                                (definition, key, now))
            if cursor.rowcount:
                added.append(key)
    return added


def remove_keys(store: StateStore, definition: str, keys: Iterable[str]) -> list[str]:
    """Remove keys; return the ones that were there. Stored versions stay (gc decides)."""
    removed = []
    with store.transaction(f"removing keys from dynamic partitions {definition!r}") as db:
        for key in keys:
            if db.execute("DELETE FROM partition_keys WHERE definition = ? AND key = ?", (definition, key)).rowcount:
                removed.append(key)
    return removed


def save_source_partitions(store: StateStore, name: str, versions: Mapping[str, str]) -> None:
    """Record a partitioned source's observed hash per key, writing only the ones that changed."""
    known = store.source_partition_versions(name)
    changed = {k: h for k, h in versions.items() if known.get(k) != h}
    if not changed:
        return
    now = time.time()
    with store.transaction(f"recording partitions of source {name!r}") as db:
        db.executemany(
            "INSERT INTO source_versions (name, partition, data_hash, observed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name, partition) DO UPDATE SET data_hash = excluded.data_hash, "
            "observed_at = excluded.observed_at",
            [(name, key, h, now) for key, h in changed.items()],
        )


def current_partition_rows(store: StateStore) -> dict[str, dict[str, tuple[int | None, float]]]:
    """asset -> key -> (rows, finished_at) of every current partition: what status sums, without
    building a ``Materialization`` per partition (the fast path over thousands of them)."""
    from assetflow.state.store import PROD

    found: dict[str, dict[str, tuple[int | None, float]]] = {}
    rows = store._db.execute(  # noqa: SLF001 - state/ owns the connection
        "SELECT c.asset, c.partition, m.rows, m.finished_at FROM pointers c JOIN materializations m "
        "ON m.id = c.materialization WHERE c.env = ? AND c.partition != '' AND m.asset = c.asset "
        "AND m.partition = c.partition", (PROD,))
    for asset, key, count, finished in rows:
        found.setdefault(asset, {})[key] = (count, finished)
    return found


def last_failures(store: StateStore) -> dict[str, dict[str, str | None]]:
    """asset -> key -> the error of every partition whose latest event is a failure."""
    found: dict[str, dict[str, str | None]] = {}
    rows = store._db.execute(  # noqa: SLF001 - state/ owns the connection
        "SELECT asset, partition, detail FROM events WHERE id IN "
        "(SELECT max(id) FROM events WHERE partition != '' GROUP BY asset, partition) AND outcome = 'failed'")
    for asset, key, detail in rows:
        found.setdefault(asset, {})[key] = detail
    return found
