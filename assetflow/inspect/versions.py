"""Stored versions: finding one by id or data-hash prefix, and the exact upstream versions it was made from."""

from __future__ import annotations

import dataclasses
from typing import Any

from assetflow.errors import UnknownAssetError
from assetflow.state.store import Materialization, StateStore

MIN_PREFIX = 4


def _earlier(store: StateStore, asset: str, n: int) -> Materialization:
    """The ``n``-th newest materialization of ``asset`` other than its current one (``~0``: the current)."""
    current = store.current().get(asset)
    if n == 0 and current is not None:
        return current
    earlier = [m for m in store.history(asset, limit=n + 1) if current is None or m.id != current.id]
    if n < 1 or len(earlier) < n:
        raise UnknownAssetError(
            f"Asset {asset!r} has {len(earlier)} earlier version(s), so there is no ~{n}. Run "
            f"`assetflow history {asset}` to see its versions."
        )
    return earlier[n - 1]


def resolve_version(store: StateStore, asset: str, version: str | int | None) -> Materialization:
    """The materialization ``version`` names: None or "current", ``~N`` (the Nth newest earlier version,
    besides the current one: ``~1`` is the one before), a materialization id, or a data-hash prefix.

    A prefix may omit the algorithm (``9f2c`` or ``blake3:9f2c``); when several versions
    share the data hash, the newest is taken.
    """
    if version is None or version == "current":
        found = store.current().get(asset)
        if found is None:
            raise UnknownAssetError(f"Asset {asset!r} has no current version; run `assetflow materialize {asset}`.")
        return found
    text = str(version).strip()
    if text.startswith("~") and text[1:].isdigit():
        return _earlier(store, asset, int(text[1:]))
    if text.isdigit() and len(text) < 19:
        by_id = store.materialization(int(text))
        if by_id is not None and by_id.asset == asset:
            return by_id
    prefix = text if ":" in text else f"blake3:{text}"
    matches = store.by_data_hash(asset, prefix) if len(prefix.partition(":")[2]) >= MIN_PREFIX else []
    hashes = sorted({m.data_hash for m in matches})
    if len(hashes) > 1:
        raise UnknownAssetError(
            f"Version {text!r} of {asset!r} is ambiguous: it matches {', '.join(h[:19] for h in hashes)}. "
            f"Give more digits."
        )
    if not matches:
        raise UnknownAssetError(
            f"Asset {asset!r} has no version {text!r} (a materialization id, or a data-hash prefix of at "
            f"least {MIN_PREFIX} hex digits). "
            f"Run `assetflow history {asset}` to see its versions."
        )
    return matches[0]


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
