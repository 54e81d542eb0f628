"""Reading partitioned assets back: ``load`` per partition or all, status rows per key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.errors import UnknownAssetError
from assetflow.partitions.assess import key_states
from assetflow.partitions.summary import ranges

if TYPE_CHECKING:
    from assetflow.plan import Assessment
    from assetflow.workspace import Workspace


def load_partitions(ws: Workspace, spec: AssetSpec, partition: str | None, version: str | int | None,
                    kind: str) -> Any:
    """One partition's value, or every current partition concatenated in key order."""
    from assetflow.partitions.definitions import check_key

    name = spec.name
    if spec.partitions is None:
        raise UnknownAssetError(f"Asset {name!r} is not partitioned; load it without partition=.")
    plan = ws.partition_plan
    current = ws.store.current_partitions(asset=name)
    value_kind = "arrow" if kind == "arrow" else "polars"
    if partition is not None:
        check_key(spec.partitions, partition, plan.keys[name], name)
        if version is not None:
            from assetflow.inspect.versions import resolve_version

            mat = resolve_version(ws.store, name, version)
        else:
            mat = current.get((name, partition))
        if mat is None:
            raise UnknownAssetError(f"Partition {partition!r} of {name!r} has no current version; run "
                                    f"`assetflow materialize {name} --partition {partition}`.")
        return ws.backends.get(mat.io).load(name, mat.location, value_kind)
    order = plan.index[name]
    values = {k: ws.backends.get(m.io).load(name, m.location, value_kind)
              for (_, k), m in sorted(current.items(), key=lambda i: (order.get(i[0][1], 1 << 60), i[0][1]))}
    if not values:
        raise UnknownAssetError(f"Asset {name!r} has no materialized partition; run `assetflow materialize {name}`.")
    return _concat(list(values.values()))


def _concat(values: list[Any]) -> Any:
    if len(values) == 1:
        return values[0]
    import polars as pl

    if isinstance(values[0], pl.DataFrame):
        return pl.concat(values, how="vertical_relaxed")
    import pyarrow as pa

    return pa.concat_tables(values, promote_options="default")


def partition_report(ws: Workspace, name: str, verdict: Assessment) -> dict[str, Any]:
    """For status --json and the page: each key's state, and the ranges."""
    plan = ws.partition_plan
    from assetflow.partitions.summary import describe

    items = key_states(name, plan, verdict.partitions or {})
    found = ranges(items)
    return {"partitions": {k: s for k, s, _ in items}, "ranges": [r.as_json() for r in found],
            "summary": describe(found) if found else "no partitions yet"}


def source_report(ws: Workspace, spec: SourceSpec) -> tuple[list[str], dict[str, Any], float | None]:
    """A partitioned source's status: reasons, per-key report, and its newest file's time."""
    assert spec.name is not None
    plan = ws.partition_plan
    versions = ws.source_partitions(spec.name)
    items = [(k, "observed" if k in versions else "missing", "" if k in versions else "no file yet")
             for k in plan.keys[spec.name]]
    found = ranges(items)
    mtimes = [int(t.rsplit(":", 1)[1]) / 1e9 for v in versions.values() for _, t, _ in v.files]
    report = {"partitions": {k: s for k, s, _ in items}, "ranges": [r.as_json() for r in found]}
    reasons = [", ".join(str(r) for r in found[:6])] if found else ["no partition yet"]
    return reasons, report, max(mtimes) if mtimes else None


def explain_partition(ws: Workspace, spec: object, key: str) -> Any:
    """``why ASSET --partition KEY``: the report on one partition (its own version, inputs and reasons)."""
    import dataclasses

    from assetflow.errors import PartitionKeyError
    from assetflow.inspect.status import compute_status
    from assetflow.inspect.why import InputChange, WhyReport, _report
    from assetflow.partitions.assess import upstream_hashes
    from assetflow.partitions.definitions import check_key
    from assetflow.partitions.run import current_units
    from assetflow.partitions.units import split_unit, unit_id

    if not isinstance(spec, AssetSpec) or spec.partitions is None:
        raise PartitionKeyError(f"{getattr(spec, 'name', spec)!r} is not a partitioned asset; leave out --partition.",
                                asset=str(getattr(spec, "name", "")), key=key)
    name = spec.name
    plan = ws.partition_plan
    check_key(spec.partitions, key, plan.keys[name], name)
    [row] = compute_status(ws, [name])
    verdict = ws.assess_all([name])[name]
    unit = (verdict.partitions or {}).get(key)
    state, reasons = ("missing", ["no source data yet"]) if unit is None else (unit.state, list(unit.reasons))
    status = dataclasses.replace(row, name=unit_id(name, key), state=state, states=(state,), reasons=reasons,
                                 partitions=None)
    current = current_units(ws)
    mat = current.get(unit_id(name, key))
    not_fresh = {}
    for up_unit in plan.unit_inputs(unit_id(name, key)):
        up_verdict = ws.assess_all([split_unit(up_unit)[0]]).get(split_unit(up_unit)[0]) \
            if not isinstance(ws.graph.specs[split_unit(up_unit)[0]], SourceSpec) else None
        if up_verdict is not None:
            part = split_unit(up_unit)[1]
            found = (up_verdict.partitions or {}).get(part) if part else up_verdict
            if found is not None and not found.fresh:
                not_fresh[up_unit] = found.state
    if mat is None:
        return WhyReport(unit_id(name, key), status, None, None, [], [], True, [], [], not_fresh)

    def hash_of(u: str) -> str | None:
        asset, part = split_unit(u)
        if isinstance(ws.graph.specs[asset], SourceSpec):
            version = ws.source_partitions(asset).get(part) if part else ws.observe_sources([asset])[asset]
            return None if version is None else version.data_hash
        found = current.get(u)
        return None if found is None else found.data_hash

    now, _ = upstream_hashes(plan, spec, key, hash_of)
    inputs = []
    for up in sorted(set(spec.upstreams) | set(mat.upstream)):
        old, new = mat.upstream.get(up), now.get(up)
        if old == new and up in spec.upstreams:
            continue
        kind = "source" if isinstance(ws.graph.specs.get(up), SourceSpec) else "asset"
        change = "added" if old is None else "removed" if up not in spec.upstreams else "new data"
        inputs.append(InputChange(up, kind, change, old, new, None, None))
    report = _report(ws, spec, status, mat, inputs, not_fresh)
    return dataclasses.replace(report, name=unit_id(name, key))
