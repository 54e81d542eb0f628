"""Staleness per unit: the rules of docs/concepts.md applied to every (asset, partition).

``assess_units`` is ``Workspace.assess_all`` for a graph with partitions: each unit is
assessed with ``plan.assess`` against its own current version, upstream hashes coming
from exactly the upstream partitions its mappings read. A partitioned asset's verdict
summarises its partitions (``Assessment.partitions`` holds them by key); its reasons
are ranges (``2024-03-31 stale (source `events` changed)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.partitions.summary import describe, ranges
from assetflow.partitions.units import PartitionPlan, PartitionWorkspace, combined_hash, split_unit, unit_id
from assetflow.plan import Assessment


def upstream_hashes(plan: PartitionPlan, spec: AssetSpec, key: str,
                    hash_of: Callable[[str], str | None]) -> tuple[dict[str, str], list[str]]:
    """Each data upstream's hash for unit (spec, key), combined over the partitions it reads; and what is missing."""
    hashes: dict[str, str] = {}
    missing: list[str] = []
    for up in spec.upstreams:
        if plan.partitioned(up):
            keys = plan.upstream_keys(spec.name, up, key)
            parts = [(k, hash_of(unit_id(up, k))) for k in keys]
            absent = [unit_id(up, k) for k, h in parts if h is None]
            if absent or not parts:
                missing.extend(absent or [up])
                continue
            hashes[up] = combined_hash([(k, h) for k, h in parts if h is not None])
        else:
            found = hash_of(up)
            if found is None:
                missing.append(up)
            else:
                hashes[up] = found
    return hashes, missing


def source_hashes(ws: PartitionWorkspace, plan: PartitionPlan, names: Iterable[str]) -> dict[str, str]:
    """unit id -> data hash of every source unit among ``names`` (each key of a partitioned one)."""
    found: dict[str, str] = {}
    plain = []
    for name in names:
        if plan.partitioned(name):
            found.update({unit_id(name, k): v.data_hash for k, v in ws.source_partitions(name).items()})
        else:
            plain.append(name)
    found.update({n: v.data_hash for n, v in ws.observe_sources(plain).items()})
    return found


def assess_units(ws: PartitionWorkspace, names: Iterable[str] | None = None) -> dict[str, Assessment]:
    """Predict every asset's (and every partition's) state from the state store as it is now."""
    graph = ws.graph
    plan = ws.partition_plan
    wanted = set(graph.order if names is None else names)
    needed = wanted | graph.ancestors(wanted)
    order = [n for n in graph.order if n in needed]
    hashes = source_hashes(ws, plan, [n for n in order if isinstance(graph.specs[n], SourceSpec)])
    current = ws.store.current()
    by_partition = ws.store.current_partitions()
    units: dict[str, Assessment] = {}
    verdicts: dict[str, Assessment] = {}
    for name in order:
        spec = graph.specs[name]
        if isinstance(spec, SourceSpec):
            continue
        for unit in plan.units_of(name):
            _, key = split_unit(unit)
            mat = by_partition.get((name, key)) if key else current.get(name)
            ups, missing = upstream_hashes(plan, spec, key, hashes.get)
            if missing:
                verdict = Assessment(name, "stale" if mat else "missing",
                                     [f"upstream {units_text(plan.index, group)} missing" for group in by_asset(missing)],
                                     None, mat)
            else:
                verdict = ws.assess_one(spec, ups, mat, partition=key)
            missing_assets = {split_unit(u)[0] for u in missing}
            unsettled: dict[str, list[str]] = {}
            for up_unit in plan.unit_inputs(unit):
                upstream = units.get(up_unit)
                if upstream is not None and not upstream.fresh and split_unit(up_unit)[0] not in missing_assets:
                    unsettled.setdefault(upstream.state, []).append(up_unit)
            for state, group in sorted(unsettled.items()):
                if verdict.state == "fresh":
                    verdict.state = "stale"
                verdict.reasons.extend(f"upstream {units_text(plan.index, g)} {state}" for g in by_asset(group))
            units[unit] = verdict
            if verdict.current is not None and verdict.state != "missing":
                hashes[unit] = verdict.current.data_hash
        verdicts[name] = summarise(name, plan, units) if plan.partitioned(name) else units[name]
    return {n: v for n, v in verdicts.items() if n in wanted}


def summarise(name: str, plan: PartitionPlan, units: dict[str, Assessment]) -> Assessment:
    """A partitioned asset's verdict: fresh when every partition that can be built is fresh."""
    partitions = {split_unit(u)[1]: units[u] for u in plan.units_of(name)}
    states = {v.state for v in partitions.values()}
    if not partitions:
        state, reasons = "missing", ["no partition has data yet"]
    else:
        state = "fresh" if states == {"fresh"} else "stale" if "stale" in states else "missing"
        found = ranges(key_states(name, plan, partitions))
        reasons = [] if state == "fresh" else [describe([r for r in found if r.state != "fresh"])]
    return Assessment(name, state, reasons, None, None, partitions=partitions)  # type: ignore[arg-type]


def key_states(name: str, plan: PartitionPlan, partitions: dict[str, Assessment],
               failed: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(key, state, first reason) for every key of the definition, those without data included;
    ``failed`` (key -> the error in one line) marks the keys whose last run failed."""
    items = []
    for key in plan.keys.get(name, ()):
        verdict = partitions.get(key)
        if failed and key in failed:
            items.append((key, "failed", failed[key]))
        elif verdict is None:
            items.append((key, "missing", plan.missing_reason(name, key)))
        else:
            items.append((key, verdict.state, verdict.reasons[0] if verdict.reasons else ""))
    return items


def by_asset(units: list[str]) -> list[list[str]]:
    groups: dict[str, list[str]] = {}
    for unit in units:
        groups.setdefault(split_unit(unit)[0], []).append(unit)
    return list(groups.values())


def units_text(index: Mapping[str, Mapping[str, int]], group: list[str]) -> str:
    """`x` is, `x[2024-01-01]` is, or `x` partitions 2024-01-01..2024-01-03 are (one asset's units, in key order;
    ``index``: each partitioned asset's key -> its position, ``PartitionPlan.index``)."""
    asset, first = split_unit(group[0])
    if len(group) == 1:
        return f"`{group[0]}` is"
    found = ranges(((split_unit(u)[1], "", "") for u in group), index.get(asset, {}))
    spans = ", ".join(r.span for r in found[:3]) + (", ..." if len(found) > 3 else "")
    return f"`{asset}` partitions {spans} ({len(group)}) are"
