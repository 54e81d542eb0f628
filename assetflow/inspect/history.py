"""``history``: runs, and what each did to each asset (outcome, duration, error), newest first."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assetflow.state.logs import read_log
from assetflow.state.store import ABANDONED_SUMMARY, StateStore


def history(store: StateStore, assets: Iterable[str] | None = None, limit: int = 20,
            logs_from: Path | None = None) -> dict[str, Any]:
    """The last ``limit`` runs (only those touching ``assets`` when given), each with its events.

    With ``logs_from`` (the state folder), each event carries ``log``: what the asset printed
    and logged in that run (null if nothing was captured).
    """
    names = None if assets is None else list(assets)
    runs = store.runs(limit=limit if names is None else 100_000)
    if names is not None:
        wanted = set(store.runs_of(names, limit))
        runs = [r for r in runs if r["run_id"] in wanted][:limit]
    dead = store.dead_runs(str(r["run_id"]) for r in runs if r["status"] == "running")  # shown as they will be
    run_ids = [str(r["run_id"]) for r in runs]
    events = store.events(names, run_ids)
    made = {(m.run_id, m.asset, m.partition): m for m in store.history(None, limit=len(events) + 1000) if m.run_id in set(run_ids)}
    by_run: dict[str, list[dict[str, Any]]] = {}
    for event in reversed(events):
        mat = made.get((str(event["run_id"]), str(event["asset"]), str(event.get("partition") or "")))
        failed = event["outcome"] == "failed"
        detail = event["detail"]
        by_run.setdefault(str(event["run_id"]), []).append({
            "asset": event["asset"], "partition": event.get("partition") or None, "outcome": event["outcome"],
            "at": event["at"],
            "duration_s": event["duration"], "error": detail if failed else None,
            "reasons": [] if failed or not detail else str(detail).split("; "),
            "data_hash": mat.data_hash if mat else None, "materialization_id": mat.id if mat else None,
            "rows": mat.rows if mat else None,
        })
        if logs_from is not None:
            found = read_log(logs_from, str(event["run_id"]), str(event["asset"]))
            by_run[str(event["run_id"])][-1]["log"] = found.text if found else None
    return {"runs": [
        {"run_id": r["run_id"], "status": "failed" if r["run_id"] in dead else r["status"], "command": r["command"],
         "started_at": r["started_at"], "finished_at": r["finished_at"],
         "duration_s": (r["finished_at"] - r["started_at"]) if r["finished_at"] else None,  # type: ignore[operator]
         "counts": dict(ABANDONED_SUMMARY) if r["run_id"] in dead else r["summary"], "trigger": r.get("trigger"),
         "assets": by_run.get(str(r["run_id"]), [])}
        for r in runs
    ]}
