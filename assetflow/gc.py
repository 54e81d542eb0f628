"""Garbage collection of stored versions: keep what pointers reach plus recent history.

An asset no longer declared in the code has no pointer that counts: all its versions are
history, of which the newest ``keep`` stay (reachable with ``show``/``load --version``,
and restored if the asset comes back) and the rest go, with any pointer at them. So do the
partitions of keys their definition no longer has.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from assetflow.state.lock import ProjectLock
from assetflow.state.logs import collect_logs
from assetflow.state.store import Materialization
from assetflow.workspace import Workspace


@dataclasses.dataclass(frozen=True)
class GcReport:
    versions: int  # materialization records deleted
    files: int  # stored objects deleted (content-addressed: several records may share one)
    bytes: int
    kept: int
    logs: int = 0  # captured asset logs deleted (assetflow.state.logs)
    undeclared: int = 0  # of ``versions``: versions of assets no longer declared
    unsized: int = 0  # of ``files``: objects whose backend records no size (a DuckDB table shares its file's blocks)


def collect_garbage(ws: Workspace, keep: int, dry_run: bool = False, wait: bool = False) -> GcReport:
    """Delete materializations beyond the pointed ones and the ``keep`` newest others per asset.

    Deleting holds the project lock (``ProjectLockedError`` while a run holds it, or ``wait``
    for it): a run may be about to restore an old version or to write a file whose content
    equals a doomed one, and the pointers gc read would be stale by then.

    Every pointer (any environment, any partition) of a declared asset keeps its version;
    an undeclared asset keeps only its ``keep`` newest. Stored data is deleted only when no
    kept record still points at the same location. Captured logs are collected with their runs:
    per asset, those of its ``keep + 1`` newest runs stay.
    """
    if dry_run:
        return _collect(ws, keep, dry_run=True)
    lock = ProjectLock(ws.config.state_path)
    lock.acquire("gc", wait=wait)
    try:
        return _collect(ws, keep, dry_run=False)
    finally:
        lock.release()


def _collect(ws: Workspace, keep: int, dry_run: bool) -> GcReport:
    pointed = ws.store.pointed_ids()
    declared = set(ws.graph.specs)
    by_asset: dict[str, list[Materialization]] = defaultdict(list)
    for mat in ws.store.all_materializations():
        by_asset[mat.asset].append(mat)
    doomed: list[Materialization] = []
    kept: list[Materialization] = []
    left = _keys_that_left(ws)
    for asset, mats in by_asset.items():
        mats.sort(key=lambda m: m.id or 0, reverse=True)
        reached = pointed - left if asset in declared else set()
        history = [m for m in mats if m.id not in reached]
        kept += [m for m in mats if m.id in reached] + history[:keep]
        doomed += history[keep:]
    still_used = {(m.io, m.location) for m in kept}
    unused = {(m.asset, m.io, m.location): m.bytes for m in doomed if (m.io, m.location) not in still_used}
    if not dry_run and doomed:
        ids = [m.id for m in doomed if m.id is not None]
        with ws.store.transaction("collecting garbage") as db:
            ws.store.drop_pointers_to(db, ids)  # of undeclared assets and of keys that left their definition
            ws.store.delete_materializations(db, ids)
        for asset, io, location in unused:
            ws.backends.get(io).delete(asset, location)
    # Logs go with their runs: each asset keeps the logs of its newest ``keep + 1`` runs that printed anything.
    known_runs = [str(r["run_id"]) for r in ws.store.runs(limit=1_000_000)]
    logs = collect_logs(ws.config.state_path, keep + 1, known_runs, dry_run=dry_run)
    undeclared = sum(1 for m in doomed if m.asset not in declared)
    sizes = list(unused.values())
    return GcReport(len(doomed), len(unused), sum(b for b in sizes if b is not None), len(kept), logs, undeclared,
                    sizes.count(None))


def _keys_that_left(ws: Workspace) -> set[int]:
    """The versions pointed at for partition keys their asset's definition no longer has (a dynamic key removed, a
    range start moved later): nothing reads them, so they are history, like an undeclared asset's versions."""
    from assetflow.partitions.units import is_partitioned

    if not is_partitioned(ws.graph):
        return set()
    keys = {asset: set(listed) for asset, listed in ws.partition_plan.keys.items()}
    return {mat.id for (asset, key), mat in ws.store.current_partitions().items()
            if asset in keys and key not in keys[asset] and mat.id is not None}
