"""``why``: exactly what separates an asset's current version from what it would be now.

Inputs (old and new data hash, and when each was made), a unified diff of the
normalised code that changed (helpers included), configuration changes, and library
drift (reported, never a cause of staleness on its own).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.errors import UnknownAssetError
from assetflow.fingerprint.changes import changed_names, describe, unified_diff
from assetflow.inspect.status import AssetStatus, compute_status, failure_summary
from assetflow.inspect.versions import producer
from assetflow.workspace import Workspace


@dataclasses.dataclass(frozen=True)
class InputChange:
    name: str
    kind: str  # "asset" | "source"
    change: str  # "new data" | "added" | "removed"
    old_hash: str | None
    new_hash: str | None
    old_at: float | None  # when the old version was made (assets) or None when unknown
    new_at: float | None  # when the new version was made (assets) or last modified (sources)


@dataclasses.dataclass(frozen=True)
class CodeChange:
    name: str  # qualified name
    description: str
    diff: str


@dataclasses.dataclass(frozen=True)
class ConfigChange:
    field: str
    old: Any
    new: Any


@dataclasses.dataclass(frozen=True)
class LibraryDrift:
    distribution: str
    old: str | None
    new: str | None


@dataclasses.dataclass(frozen=True)
class WhyReport:
    """Everything that makes ``name`` what it is: state, reasons and the evidence for each."""

    name: str
    status: AssetStatus
    materialization_id: int | None
    materialized_at: float | None
    inputs: list[InputChange]
    code: list[CodeChange]
    code_sources_known: bool  # False when the old normalised sources are no longer stored
    config: list[ConfigChange]
    libraries: list[LibraryDrift]
    upstream_not_fresh: dict[str, str]  # upstream -> its state; run `why` on it for its reasons
    automation: dict[str, Any] | None = None  # its automation condition's verdict now (None: it declares none)

    def to_json(self) -> dict[str, Any]:
        payload = dataclasses.asdict(self)
        status = payload.pop("status")
        from assetflow.checks.report import verdict_document

        checks = self.status.checks
        return {"name": self.name, "state": status["state"], "states": list(status["states"]),
                "reasons": status["reasons"], **{k: v for k, v in payload.items() if k != "name"},
                "checks": None if checks is None else [verdict_document(v) for v in checks]}


def explain(ws: Workspace, name: str, partition: str | None = None) -> WhyReport:
    """The report on an asset, or on one partition of a partitioned asset (``partition``)."""
    spec = ws.graph.specs.get(name)
    if spec is None:
        raise UnknownAssetError(f"No asset named {name!r}; run `assetflow list` to see the assets.")
    if partition is not None:
        return explain_partition(ws, spec, partition)
    [status] = compute_status(ws, [name])
    if isinstance(spec, SourceSpec):
        return WhyReport(name, status, None, status.updated_at, [], [], True, [], [], {})
    assert isinstance(spec, AssetSpec)
    current = ws.store.current()
    mat = current.get(name)
    statuses = {s.name: s for s in compute_status(ws, [u for u in spec.inputs])}
    not_fresh = {u: s.state for u, s in statuses.items() if not s.ok}
    if mat is None:
        return WhyReport(name, status, None, None, [], [], True, [], [], not_fresh)
    inputs = _inputs(ws, spec, mat, current)
    return _report(ws, spec, status, mat, inputs, not_fresh)


def _report(ws: Workspace, spec: AssetSpec, status: AssetStatus, mat: Any, inputs: list[InputChange],
            not_fresh: dict[str, str]) -> WhyReport:
    """The code, configuration and library evidence against the current version ``mat``."""
    name = spec.name
    code = ws.code(spec)
    changes: list[CodeChange] = []
    known = True
    if code.digest != mat.code_fingerprint:
        old_sources = ws.store.code_sources(mat.code_fingerprint)
        known = old_sources is not None
        for key in changed_names(old_sources, code.sources):
            old, new = (old_sources or {}).get(key), code.sources.get(key)
            changes.append(CodeChange(key, describe(key, old, new, name),
                                      unified_diff(key, old, new, f"materialization {mat.id}", "now")))
    config = _config_changes(mat.config, _config(spec))
    drift = [LibraryDrift(d, mat.libraries.get(d), code.libraries.get(d))
             for d in sorted(set(mat.libraries) | set(code.libraries))
             if mat.libraries.get(d) != code.libraries.get(d)]
    return WhyReport(name, status, mat.id, mat.finished_at, inputs, changes, known, config, drift, not_fresh)


def _config(spec: AssetSpec) -> str:
    from assetflow.plan import canonical_config

    return canonical_config(spec.config)


def _inputs(ws: Workspace, spec: AssetSpec, mat: Any, current: dict[str, Any]) -> list[InputChange]:
    sources = [u for u in spec.upstreams if isinstance(ws.graph.specs[u], SourceSpec)]
    observed = ws.observe_sources(sources)
    changes = []
    for up in sorted(set(spec.upstreams) | set(mat.upstream)):
        old = mat.upstream.get(up)
        kind = "source" if up in observed else "asset"
        new_at: float | None = None
        if up in observed:
            new = observed[up].data_hash
            mtimes = [int(token.rsplit(":", 1)[1]) / 1e9 for _, token, _ in observed[up].files]
            new_at = max(mtimes) if mtimes else None
        elif up in spec.upstreams and up in current:
            new, new_at = current[up].data_hash, current[up].finished_at
        else:
            new = None
        if old == new and up in spec.upstreams:
            continue
        old_at = None
        if old is not None and kind == "asset":
            made = producer(ws.store, up, old, before=mat.started_at)
            old_at = made.finished_at if made else None
        change = "added" if old is None else "removed" if up not in spec.upstreams else "new data"
        changes.append(InputChange(up, kind, change, old, new, old_at, new_at))
    return changes


def _config_changes(old_text: str, new_text: str) -> list[ConfigChange]:
    if old_text == new_text:
        return []
    old = json.loads(old_text) if old_text else {}
    new = json.loads(new_text) if new_text else {}
    changes = []
    if old.get("type") != new.get("type"):
        changes.append(ConfigChange("(type)", old.get("type"), new.get("type")))
    old_fields, new_fields = _flatten(old.get("fields", {})), _flatten(new.get("fields", {}))
    for key in sorted(set(old_fields) | set(new_fields)):
        # as the recipe compares them, by their text: 10 -> 10.0 (int to float) is a change Python's == hides
        if json.dumps(old_fields.get(key)) != json.dumps(new_fields.get(key)) or (key in old_fields) != (key in new_fields):
            changes.append(ConfigChange(key, old_fields.get(key), new_fields.get(key)))
    return changes


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def explain_partition(ws: Workspace, spec: object, key: str) -> Any:
    """``why ASSET --partition KEY``: the report on one partition (its own version, inputs and reasons)."""
    import dataclasses

    from assetflow.errors import PartitionKeyError
    from assetflow.partitions.assess import upstream_hashes
    from assetflow.partitioning import check_key
    from assetflow.partitions.units import split_unit, unit_id
    from assetflow.state.partitions import last_failures

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
    states: tuple[str, ...] = (state,)
    failure = last_failures(ws.store).get(name, {}).get(key, False)
    if failure is not False and state != "fresh":  # as status says it: the partition's last run failed
        states = ("failed", state)
        reasons.insert(0, "the last run failed" + (f": {failure_summary(failure)}" if failure else ""))
    status = dataclasses.replace(row, name=unit_id(name, key), state=states[0], states=states, reasons=reasons,
                                 partitions=None)
    current = ws.current_units()
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
