"""``show``: everything known about one asset or source, as a JSON-ready dict.

An asset no longer declared in the code keeps its stored versions until ``gc`` collects
them; ``show`` (and ``load``) still reach them by name, as kind ``removed``.
"""

from __future__ import annotations

from typing import Any

from assetflow.checks.report import current_verdicts, verdict_document
from assetflow.declare import AssetSpec, SourceSpec
from assetflow.errors import UnknownAssetError
from assetflow.inspect.status import compute_status
from assetflow.state.versions import resolve_version
from assetflow.state.store import Materialization
from assetflow.workspace import Workspace


def materialization_json(mat: Materialization, current_id: int | None = None) -> dict[str, Any]:
    return {
        "id": mat.id, "run_id": mat.run_id, "current": mat.id == current_id, "data_hash": mat.data_hash,
        "recipe_key": mat.recipe_key, "code_fingerprint": mat.code_fingerprint, "config": mat.config or None,
        "upstream": dict(mat.upstream), "deps": list(mat.deps), "io": mat.io, "location": mat.location,
        "rows": mat.rows, "bytes": mat.bytes, "schema": [{"name": n, "type": t} for n, t in mat.schema],
        "libraries": dict(mat.libraries), "started_at": mat.started_at, "finished_at": mat.finished_at,
        "duration_s": mat.finished_at - mat.started_at, "partition": mat.partition or None,
    }


def _columns(ws: Workspace, name: str) -> dict[str, Any]:
    """The asset's columns with their origins (see assetflow.inspect.columns), or why they are unknown."""
    from assetflow.inspect.columns import ColumnIndex

    found = ColumnIndex(ws).of(name).to_json()
    return {"known": found["columns"] is not None, "note": found["note"], "list": found["columns"] or [],
            "dropped": found["dropped"]}


def is_removed(ws: Workspace, name: str) -> bool:
    """Whether ``name`` is no longer declared but the state store still has versions of it."""
    return name not in ws.graph.specs and bool(ws.store.history(name, limit=1))


def show(ws: Workspace, name: str, limit: int = 5, version: str | None = None) -> dict[str, Any]:
    """Everything about ``name``; with ``version`` (an id or data-hash prefix) also that version, as ``version``."""
    spec = ws.graph.specs.get(name)
    if spec is None:
        if is_removed(ws, name):
            return _show_removed(ws, name, limit, version)
        raise UnknownAssetError(f"No asset named {name!r}; run `assetflow list` to see the assets.")
    if version is not None and isinstance(spec, SourceSpec):
        raise UnknownAssetError(f"{name!r} is a source: it has no stored versions (its files are read where they are).")
    [status] = compute_status(ws, [name])
    common = {
        "name": name, "kind": spec.kind, "state": status.state, "states": list(status.states),
        "reasons": status.reasons, "description": spec.description, "group": spec.group, "tags": dict(spec.tags),
        "defined_at": spec.where, "freshness": spec.freshness, "overdue_by_s": status.overdue_by,
        "upstream": list(ws.graph.upstream[name]), "downstream": list(ws.graph.downstream[name]),
    }
    if isinstance(spec, SourceSpec) and spec.partitions is not None:  # one file per key
        files = [f for v in ws.source_partitions(name).values() for f in v.files]
        return {**common, "path": spec.path, "format": spec.format, "data_hash": None, "updated_at": status.updated_at,
                "files": [{"path": rel, "hash": digest, "modified_at": int(token.rsplit(":", 1)[1]) / 1e9}
                          for rel, token, digest in files]}
    if isinstance(spec, SourceSpec):
        version_now = ws.observe_sources([name])[name]
        return {**common, "path": spec.path, "format": spec.format, "data_hash": version_now.data_hash,
                "updated_at": status.updated_at,
                "files": [{"path": rel, "hash": digest, "modified_at": int(token.rsplit(":", 1)[1]) / 1e9}
                          for rel, token, digest in version_now.files]}
    assert isinstance(spec, AssetSpec)
    current = ws.store.current().get(name)
    history = ws.store.history(name, limit=limit)
    pointed = {m.id for m in ws.store.current_partitions(asset=name).values()} if spec.partitions else set()
    def judged(mat: Materialization) -> dict[str, Any]:
        """A version with the verdicts of the asset's checks on it (null: it declares none): for the current one
        those that stand with the upstreams of now (``Workspace.verdicts_in_effect``), for another the latest of
        each check on its data."""
        if not spec.checks:
            return {"checks": None}
        is_current = current is not None and mat.id == current.id
        verdicts = ws.verdicts_in_effect(spec, mat) if is_current else \
            current_verdicts(ws.store, spec, mat.data_hash)
        return {"checks": [verdict_document(v) for v in verdicts]}

    details = {**common, "owners": list(spec.owners), "io": ws.io_of(spec), "code_fingerprint": ws.code(spec).digest,
               "language": getattr(spec, "language", "python"), "columns": _columns(ws, name),
               "current": {**materialization_json(current, current.id), **judged(current)} if current else None,
               "materializations": [{**materialization_json(m, current.id if current else None),
                                     **({"current": m.id in pointed} if spec.partitions else {}), **judged(m)}
                                    for m in history]}
    if version is not None:
        chosen = resolve_version(ws.store, name, version)
        details["version"] = {**materialization_json(chosen, current.id if current else None), **judged(chosen)}
    return details


def _show_removed(ws: Workspace, name: str, limit: int, version: str | None) -> dict[str, Any]:
    current = ws.store.current().get(name)
    current_id = current.id if current else None
    history = ws.store.history(name, limit=limit)
    newest = history[0]
    details: dict[str, Any] = {
        "name": name, "kind": "removed", "state": "removed", "states": ["removed"],
        "reasons": ["no longer declared in the project's code; its stored versions stay reachable "
                    "(show/load --version) until `assetflow gc` collects them"],
        "description": None, "group": None, "tags": {}, "defined_at": None, "freshness": None, "overdue_by_s": None,
        "upstream": sorted(newest.upstream), "downstream": [], "owners": [], "io": newest.io, "code_fingerprint": None,
        "current": materialization_json(current, current_id) if current else None,
        "materializations": [materialization_json(m, current_id) for m in history],
    }
    if version is not None:
        details["version"] = materialization_json(resolve_version(ws.store, name, version), current_id)
    return details
