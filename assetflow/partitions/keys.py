"""Listing keys in a loaded workspace: the clock, dynamic keys, partitioned sources' files.

Also the Python side of ``assetflow partitions add|remove|list`` (``add_partitions``...).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from assetflow.declare import SourceSpec
from assetflow.errors import PartitionKeyError
from assetflow.partitioning import DynamicPartitions, ProductPartitions, _valid_key_text
from assetflow.partitions.units import KeyClock, PartitionPlan, PartitionWorkspace, definition_of

if TYPE_CHECKING:
    from assetflow.fingerprint.source import SourceVersion


def dynamic_names(ws: PartitionWorkspace) -> set[str]:
    """Every dynamic definition some asset or source of the project uses."""
    found = set()
    for spec in ws.graph.specs.values():
        definition = definition_of(spec)
        parts = definition.dimensions if isinstance(definition, ProductPartitions) else (definition,)
        found.update(d.name for d in parts if isinstance(d, DynamicPartitions))
    return found


def key_clock(ws: PartitionWorkspace) -> KeyClock:
    from assetflow.state.partitions import dynamic_keys

    clock = ws.key_clock
    if not isinstance(clock, KeyClock):
        now = datetime.datetime.fromtimestamp(time.time() if ws.now is None else ws.now, datetime.UTC)
        clock = ws.key_clock = KeyClock(now, {name: dynamic_keys(ws.store, name) for name in dynamic_names(ws)})
    return clock


def observe_source_partitions(ws: PartitionWorkspace, name: str) -> dict[str, SourceVersion]:
    from assetflow.partitions.sources import observe_partitions
    from assetflow.state.partitions import save_source_partitions

    spec = ws.graph.specs[name]
    assert isinstance(spec, SourceSpec) and spec.partitions is not None
    cache = ws.store.stat_cache()
    updates: dict[str, tuple[str, str]] = {}
    found = observe_partitions(spec, spec.partitions.keys(key_clock(ws)), ws.root, cache, updates)
    if updates:
        with ws.store.transaction(f"caching the file hashes of source {name!r}") as db:
            ws.store.save_stat_cache(db, updates)
    save_source_partitions(ws.store, name, {k: v.data_hash for k, v in found.items()})
    return found


def build_plan(ws: PartitionWorkspace) -> PartitionPlan:
    clock = key_clock(ws)
    sources = {s.name: list(ws.source_partitions(s.name)) for s in ws.graph.sources()
               if s.partitions is not None and s.name is not None}
    return PartitionPlan(ws.graph, clock, sources)


def reset(ws: PartitionWorkspace) -> None:
    """Forget listed keys and the plan (after keys were added or removed), and the no-op snapshot."""
    from assetflow.state.snapshot import SNAPSHOT_KEY

    ws.forget_partition_keys()
    ws.store.set_meta(SNAPSHOT_KEY, None)  # the keys changed: the next run must look


def _known_definition(ws: PartitionWorkspace, definition: str) -> None:
    names = dynamic_names(ws)
    if definition not in names:
        raise PartitionKeyError(
            f"No asset of this project uses dynamic partitions {definition!r} (used: "
            f"{', '.join(sorted(names)) or 'none'}). Declare one with partitions=dynamic({definition!r}), "
            f"or fix the name.", key=definition)


def add_partitions(ws: PartitionWorkspace, definition: str, keys: Iterable[str]) -> list[str]:
    """Add keys to a dynamic definition; returns the ones that were new."""
    from assetflow.state.partitions import add_keys

    _known_definition(ws, definition)
    keys = list(keys)
    for key in keys:
        if not _valid_key_text(key) or key.strip().lower() in ("latest", "all"):
            raise PartitionKeyError(f"Dynamic partitions {definition!r}: key {key!r} is not allowed; a key is "
                                    f"non-empty printable text without ',', '|', '/', '\\\\' or '..', and not 'latest' "
                                    f"or 'all' (they mean something else to --partition).", key=key)
    added = add_keys(ws.store, definition, keys)
    reset(ws)
    return added


def remove_partitions(ws: PartitionWorkspace, definition: str, keys: Iterable[str]) -> list[str]:
    """Remove keys from a dynamic definition (stored versions stay until gc); returns those that were there."""
    from assetflow.state.partitions import remove_keys

    _known_definition(ws, definition)
    removed = remove_keys(ws.store, definition, list(keys))
    reset(ws)
    return removed


def list_partitions(ws: PartitionWorkspace, definition: str) -> list[str]:
    from assetflow.state.partitions import dynamic_keys

    _known_definition(ws, definition)
    return dynamic_keys(ws.store, definition)
