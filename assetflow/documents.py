"""The JSON documents of docs/json-schema.md, built in one place.

The CLI's ``--json`` and the web page's API (``assetflow ui``) serve the same documents,
so there is one schema to keep stable and one test that pins it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assetflow.execute.results import RunResult
    from assetflow.inspect.status import AssetStatus
    from assetflow.workspace import Workspace

SCHEMA_VERSION = 1


def verdict_document(result: Mapping[str, Any]) -> dict[str, Any]:
    from assetflow.checks.report import verdict_document as document_of

    return document_of(result)


def document(command: str | None, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` under the two keys every document starts with."""
    return {"schema_version": SCHEMA_VERSION, "command": command, **payload}


def status_payload(rows: Iterable[AssetStatus], fast_path: bool) -> dict[str, Any]:
    rows = list(rows)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    now = time.time()
    return {"ok": all(r.ok for r in rows), "counts": counts, "assets": [
        {"name": r.name, "kind": r.kind, "state": r.state, "states": list(r.states), "reasons": r.reasons,
         "data_hash": r.data_hash, "rows": r.rows, "materialized_at": r.materialized_at, "updated_at": r.updated_at,
         "age_s": None if r.updated_at is None else now - r.updated_at, "group": r.group, "io": r.io,
         "tags": r.tags, "freshness": r.freshness, "overdue_by_s": r.overdue_by,
         "checks": None if r.checks is None else [verdict_document(v) for v in r.checks],
         "rejected": None if r.rejected is None else
         {**r.rejected, "checks": [verdict_document(v) for v in r.rejected["checks"]]},  # type: ignore[attr-defined]
         **({"partitions": r.partitions["partitions"], "ranges": r.partitions["ranges"]} if r.partitions else {})}
        for r in rows
    ], "fast_path": fast_path}


def check_payload(runs: Iterable[Any]) -> dict[str, Any]:
    """``assetflow check --json``: each checked version and its verdicts."""
    from assetflow.checks.report import counts

    runs = list(runs)
    return {"ok": all(r.ok for r in runs), "counts": counts(v for r in runs for v in r.results), "assets": [
        {"name": r.asset, "partition": r.partition or None, "data_hash": r.materialization.data_hash,
         "version": r.materialization.id, "ok": r.ok, "checks": [verdict_document(v) for v in r.results]}
        for r in runs]}


def list_payload(ws: Workspace, names: Iterable[str]) -> dict[str, Any]:
    specs = ws.graph.specs
    return {"assets": [
        {"name": n, "kind": specs[n].kind, "group": specs[n].group, "tags": dict(specs[n].tags),
         "io": ws.io_of(specs[n]) if specs[n].kind == "asset" else None,  # type: ignore[arg-type]
         "freshness": specs[n].freshness, "upstream": list(ws.graph.upstream[n]),
         "downstream": list(ws.graph.downstream[n]), "defined_at": specs[n].where}
        for n in names
    ]}


def _outcome_row(name: str, outcome: str, reasons: list[str], duration_s: float | None = None,
                 data_hash: str | None = None, error: str | None = None,
                 checks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "outcome": outcome, "reasons": reasons, "duration_s": duration_s, "data_hash": data_hash,
            "error": error, "checks": None if checks is None else [verdict_document(v) for v in checks]}


def run_payload(result: RunResult) -> dict[str, Any]:
    """``materialize --json``; ``fast_path`` is there (true) only when the no-op snapshot proved every asset fresh."""
    return {"run_id": result.run_id, "dry_run": result.dry_run, "ok": result.ok,
            **({"fast_path": True} if result.fast_path else {}),
            "left_out": result.left_out, "counts": result.counts(),
            "assets": [_outcome_row(r.name, r.outcome, r.reasons, r.duration, r.data_hash, r.error, r.checks)
                       for r in result.results.values()]}


def logs_payload(state_path: Any, asset: str, run_id: str | None = None,
                 partition: str | None = None) -> dict[str, Any]:
    """``assetflow logs ASSET [--run ID] [--partition KEY] --json``: what the asset printed and logged in one run.

    Without ``run_id``, the latest run that kept a log of it (of that partition, with ``partition``). ``log`` is
    null when that run captured nothing (the asset printed nothing, or ``gc`` collected the log).
    """
    from assetflow.state.logs import latest_log, partition_log, read_log, runs_with_logs

    if run_id:
        found = read_log(state_path, run_id, asset)
        if found is not None and partition is not None:
            found = partition_log(found, partition)
    else:
        found = latest_log(state_path, asset, partition)
    return {"asset": asset, "run_id": found.run_id if found else run_id, "partition": partition,
            "log": found.text if found else None, "path": str(found.path) if found else None,
            "runs": runs_with_logs(state_path, asset)}
