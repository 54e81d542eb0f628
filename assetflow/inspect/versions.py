"""Stored versions: the exact upstream versions one was made from (finding one by reference: ``state.versions``)."""

from __future__ import annotations

import dataclasses
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
                    current_sources: dict[str, str], max_depth: int | None = None) -> VersionNode:
    """The tree of exact upstream versions ``mat`` was made from, down to the sources' data hashes."""
    current = {m.asset: m.data_hash for m in store.current().values()}

    def build(m: Materialization, depth: int) -> VersionNode:
        ups: list[VersionNode] = []
        if max_depth is None or depth < max_depth:
            for name in sorted(m.upstream):
                data_hash = m.upstream[name]
                kind = kinds.get(name, "unknown")
                if kind == "source":
                    ups.append(VersionNode(name, kind, data_hash, None, current_sources.get(name) == data_hash, ()))
                    continue
                made = producer(store, name, data_hash, before=m.started_at)
                if made is None:
                    ups.append(VersionNode(name, kind, data_hash, None, current.get(name) == data_hash, ()))
                else:
                    ups.append(build(made, depth + 1))
        return VersionNode(m.asset, kinds.get(m.asset, "unknown"), m.data_hash, m,
                           current.get(m.asset) == m.data_hash, tuple(ups))

    return build(mat, 0)
