"""Reading partitioned assets back: ``load`` per partition or all, status rows per key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.errors import StorageError, UnknownAssetError
from assetflow.partitions.assess import key_states
from assetflow.partitions.summary import KeyRange, snapshot_report

if TYPE_CHECKING:
    from assetflow.plan import Assessment
    from assetflow.partitions.units import PartitionWorkspace


def load_partitions(ws: PartitionWorkspace, spec: AssetSpec, partition: str | None, version: str | int | None,
                    kind: str) -> Any:
    """One partition's value, or every current partition concatenated in key order."""
    from assetflow.partitioning import check_key

    name = spec.name
    if spec.partitions is None:
        raise UnknownAssetError(f"Asset {name!r} is not partitioned; load it without partition=.")
    plan = ws.partition_plan
    current = ws.store.current_partitions(asset=name)
    value_kind = "arrow" if kind == "arrow" else "polars"
    if partition is not None or version not in (None, "current"):
        from assetflow.state.versions import resolve_version

        if partition is not None:
            check_key(spec.partitions, partition, plan.keys[name], name)
        mat = resolve_version(ws.store, name, version, partition)  # one partition's version: ~N counts within it
        return ws.backends.get(mat.io).load(name, mat.location, value_kind)
    values = {k: ws.backends.get(current[(name, k)].io).load(name, current[(name, k)].location, value_kind)
              for k in plan.present(name) if (name, k) in current}  # not keys that left the definition or lost data
    if not values:
        raise UnknownAssetError(f"Asset {name!r} has no materialized partition; run `assetflow materialize {name}`.")
    try:
        return _concat(values)
    except TypeError as exc:  # Arrow: a column whose types in two partitions no type holds both
        raise StorageError(f"Asset {name!r}: its partitions cannot be stacked as one Arrow table: {exc}. Load them "
                           f"one by one (partition=KEY), or with kind='polars', which casts both to a common type.") \
            from exc


def _concat(values: dict[str, Any]) -> Any:
    """Tables stacked in key order, their columns matched by name (as the DuckDB view does: a partition that adds a
    column or orders them otherwise still stacks); values that are no table (``io="json"``) as a dict by key."""
    first = next(iter(values.values()))
    if len(values) == 1:
        return first
    import polars as pl

    if isinstance(first, pl.DataFrame):
        return pl.concat(list(values.values()), how="diagonal_relaxed")
    import pyarrow as pa

    if isinstance(first, pa.Table):
        from assetflow.partitions.values import concat_arrow

        return concat_arrow(values)
    return values


def partition_report(ws: PartitionWorkspace, name: str, verdict: Assessment,
                     failed: Mapping[str, str] | None = None,
                     refused: Mapping[str, str] | None = None) -> dict[str, Any]:
    """For status --json and the page: each key's state, and the ranges; ``failed`` (key -> the
    error in one line) the partitions whose last run failed, also summarised under "failed"; ``refused``
    those whose current version fails a blocking check of now, failed too (status says why on its own line)."""
    from assetflow.partitions.summary import describe, report

    found_report, found = report(key_states(name, ws.partition_plan, verdict.partitions or {},
                                            {**(refused or {}), **(failed or {})}))
    failures = [r for r in found if r.state == "failed" and (failed or {}).get(r.first) == r.reason]
    return {**found_report, "summary": describe(found) if found else "no partitions yet",
            "failed": failure_line(failures) if failures else None}


def failure_line(failures: list[KeyRange]) -> str:
    """``the last run failed for partitions 2024-01-02..2024-01-03 (2): ValueError: ...``."""
    count = sum(r.count for r in failures)
    spans = ", ".join(r.span for r in failures[:6]) + (", ..." if len(failures) > 6 else "")
    noun = "partition" if count == 1 else "partitions"
    return f"the last run failed for {noun} {spans}" + (f" ({count})" if count > 1 else "") + \
        (f": {failures[0].reason}" if failures[0].reason else "")


def source_report(ws: PartitionWorkspace, spec: SourceSpec) -> tuple[list[str], dict[str, Any], float | None]:
    """A partitioned source's status: reasons, per-key report, and its newest file's time."""
    assert spec.name is not None
    plan = ws.partition_plan
    versions = ws.source_partitions(spec.name)
    keys = plan.keys[spec.name]
    found_report, reasons = snapshot_report(keys, {k for k in keys if k not in versions}, source=True)
    mtimes = [int(t.rsplit(":", 1)[1]) / 1e9 for v in versions.values() for _, t, _ in v.files]
    return reasons, found_report, max(mtimes) if mtimes else None
