"""Stored versions: the exact upstream versions one was made from (finding one by reference: ``state.versions``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from assetflow.state.store import Materialization, StateStore


def producer(store: StateStore, asset: str, data_hash: str, before: float | None = None) -> Materialization | None:
    """The materialization that made ``data_hash`` for ``asset``: the newest finished before ``before``."""
    matches = store.by_data_hash(asset, data_hash)
    if before is not None:
        earlier = [m for m in matches if m.finished_at <= before]
        if earlier:
            return earlier[0]
    return matches[0] if matches else None


def _by_age(versions: list[tuple[str, Materialization | None]],
            started_at: float) -> list[tuple[str, Materialization | None]]:
    """Versions (newest first) with those finished by ``started_at`` first: what a run that started then could read."""
    return sorted(versions, key=lambda hv: hv[1] is not None and hv[1].finished_at > started_at)


@dataclasses.dataclass(frozen=True)
class VersionNode:
    """One version in a materialization's lineage."""

    name: str
    kind: str  # "asset" | "source" | "unknown" (no longer declared)
    data_hash: str
    materialization: Materialization | None  # None for sources and versions no longer recorded
    current: bool
    upstream: tuple[VersionNode, ...]

    def to_json(self) -> dict[str, Any]:
        mat = self.materialization
        return {"name": self.name, "kind": self.kind, "data_hash": self.data_hash, "current": self.current,
                "materialization_id": mat.id if mat else None, "run_id": mat.run_id if mat else None,
                "materialized_at": mat.finished_at if mat else None,
                "upstream": [u.to_json() for u in self.upstream]}


def version_lineage(store: StateStore, mat: Materialization, kinds: dict[str, str],
                    current_sources: dict[str, str], max_depth: int | None = None,
                    reads: Callable[[str, str, str], list[str]] | None = None) -> VersionNode:
    """The tree of exact upstream versions ``mat`` was made from, down to the sources' data hashes.

    ``reads(asset, key, upstream)``: the upstream partitions partition ``key`` of ``asset`` reads (the project's
    mappings), for a partitioned upstream, whose recorded hash combines theirs: each is shown as its own version.
    """
    from assetflow.partitions.units import combined_hash, hashes_read, unit_id

    current = {(m.asset, m.partition): m.data_hash for m in store.current().values()}
    current.update({key: m.data_hash for key, m in store.current_partitions().items()})

    def partition_versions(name: str, key: str) -> list[tuple[str, Materialization | None]]:
        """(data hash, version) of each version partition ``key`` of ``name`` had, newest first (a source's: now)."""
        if kinds.get(name) == "source":
            now = store.source_partition_versions(name).get(key)
            return [] if now is None else [(now, None)]
        return [(m.data_hash, m) for m in store.history(name, limit=10_000) if m.partition == key]

    def read_partitions(m: Materialization, name: str, data_hash: str, depth: int) -> list[VersionNode] | None:
        """The upstream partitions behind a combined hash, when the versions found combine to it exactly."""
        keys = reads(m.asset, m.partition, name) if reads is not None else []
        if not keys:
            return None
        options = {key: _by_age(partition_versions(name, key), m.started_at) for key in keys}
        if len(keys) == 1:  # one partition read: whichever of its versions gives the recorded hash
            found = [(h, v) for h, v in options[keys[0]] if combined_hash([(keys[0], h)]) == data_hash][:1]
        else:  # several: those there when it started, or them with one replaced (a newer one refused, say)
            likely = [next(iter(options[key]), ("", None))[0] for key in keys]
            hashes = hashes_read(keys, data_hash, likely, lambda key: (h for h, _ in options[key]))
            if hashes is None:
                return None
            found = [next((h, v) for h, v in options[key] if h == part) for key, part in zip(keys, hashes)]
        if len(found) != len(keys):
            return None
        nodes = []
        for key, (part_hash, version) in zip(keys, found):
            if version is not None:
                nodes.append(build(version, depth + 1))
            else:
                nodes.append(VersionNode(unit_id(name, key), kinds.get(name, "unknown"), part_hash, None,
                                         True, ()))
        return nodes

    def build(m: Materialization, depth: int) -> VersionNode:
        ups: list[VersionNode] = []
        if max_depth is None or depth < max_depth:
            for name in sorted(m.upstream):
                data_hash = m.upstream[name]
                kind = kinds.get(name, "unknown")
                partitions = read_partitions(m, name, data_hash, depth)
                if partitions is not None:
                    ups.extend(partitions)
                    continue
                if kind == "source":
                    ups.append(VersionNode(name, kind, data_hash, None, current_sources.get(name) == data_hash, ()))
                    continue
                made = producer(store, name, data_hash, before=m.started_at)
                if made is None:
                    ups.append(VersionNode(name, kind, data_hash, None, current.get((name, "")) == data_hash, ()))
                else:
                    ups.append(build(made, depth + 1))
        return VersionNode(unit_id(m.asset, m.partition), kinds.get(m.asset, "unknown"), m.data_hash, m,
                           current.get((m.asset, m.partition)) == m.data_hash, tuple(ups))

    return build(mat, 0)
