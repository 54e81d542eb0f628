"""``show``: everything known about one asset or source, as a JSON-ready dict."""

from __future__ import annotations

from typing import Any

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.errors import UnknownAssetError
from assetflow.inspect.status import compute_status
from assetflow.state.store import Materialization
from assetflow.workspace import Workspace


def materialization_json(mat: Materialization, current_id: int | None = None) -> dict[str, Any]:
    return {
        "id": mat.id, "run_id": mat.run_id, "current": mat.id == current_id, "data_hash": mat.data_hash,
        "recipe_key": mat.recipe_key, "code_fingerprint": mat.code_fingerprint, "config": mat.config or None,
        "upstream": dict(mat.upstream), "deps": list(mat.deps), "io": mat.io, "location": mat.location,
        "rows": mat.rows, "bytes": mat.bytes, "schema": [{"name": n, "type": t} for n, t in mat.schema],
        "libraries": dict(mat.libraries), "started_at": mat.started_at, "finished_at": mat.finished_at,
        "duration_s": mat.finished_at - mat.started_at,
    }


def show(ws: Workspace, name: str, limit: int = 5) -> dict[str, Any]:
    spec = ws.graph.specs.get(name)
    if spec is None:
        raise UnknownAssetError(f"No asset named {name!r}; run `assetflow list` to see the assets.")
    [status] = compute_status(ws, [name])
    common = {
        "name": name, "kind": spec.kind, "state": status.state, "states": list(status.states),
        "reasons": status.reasons, "description": spec.description, "group": spec.group, "tags": dict(spec.tags),
        "defined_at": spec.where, "freshness": spec.freshness, "overdue_by_s": status.overdue_by,
        "upstream": list(ws.graph.upstream[name]), "downstream": list(ws.graph.downstream[name]),
    }
    if isinstance(spec, SourceSpec):
        version = ws.observe_sources([name])[name]
        return {**common, "path": spec.path, "format": spec.format, "data_hash": version.data_hash,
                "updated_at": status.updated_at,
                "files": [{"path": rel, "hash": digest, "modified_at": int(token.rsplit(":", 1)[1]) / 1e9}
                          for rel, token, digest in version.files]}
    assert isinstance(spec, AssetSpec)
    current = ws.store.current().get(name)
    history = ws.store.history(name, limit=limit)
    return {**common, "owners": list(spec.owners), "io": ws.io_of(spec), "code_fingerprint": ws.code(spec).digest,
            "current": materialization_json(current, current.id) if current else None,
            "materializations": [materialization_json(m, current.id if current else None) for m in history]}
