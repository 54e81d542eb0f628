"""Verdicts in words and in JSON: one shape for materialize, check, status, show and the page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def one_line(result: Mapping[str, Any]) -> str:
    """``check not_null(id): 3 null rows, e.g. row 17``."""
    summary = str(result.get("summary") or "")
    prefix = f"check {result['check']}"
    return summary if summary.startswith(prefix) else f"{prefix}: {summary}"


def verdict_document(result: Mapping[str, Any]) -> dict[str, Any]:
    """One verdict as every ``--json`` shows it (docs/json-schema.md, "Check verdicts"); a verdict on one partition
    of a partitioned asset (``status`` lists one per current partition) says which first."""
    where = {"partition": result["partition"]} if result.get("partition") else {}  # "": not partitioned
    return {**where, "check": result["check"], "severity": result["severity"], "passed": bool(result["passed"]),
            "summary": result.get("summary"), "findings": result.get("findings"),
            "metadata": dict(result.get("metadata") or {}), "cached": bool(result.get("cached", False)),
            "run_id": result.get("run_id"), "defined_at": result.get("where")}


def counts(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many passed, failed (blocking) and warned."""
    found = {"passed": 0, "failed": 0, "warned": 0}
    for r in results:
        found["passed" if r["passed"] else "failed" if r["severity"] == "error" else "warned"] += 1
    return found


def badge(results: Iterable[Mapping[str, Any]]) -> str | None:
    """The word a node of the page shows: failed, warned or passed (None: no verdicts)."""
    found = counts(results)
    if not sum(found.values()):
        return None
    return "failed" if found["failed"] else "warned" if found["warned"] else "passed"


def verdicts_under(store: Any, checks: Iterable[Any], data_hash: str, fingerprints: Iterable[str]) -> list[dict[str, Any]]:
    """The verdicts on ``data_hash`` cached under ``fingerprints`` (``checks.standing``), in check name order, each with
    the check's severity and place as declared now; a check without one is left out."""
    by_name = {str(row["check"]): row for row in store.check_results(data_hash, fingerprints).values()}
    return [dict(by_name[c.name], check=c.name, where=c.where, severity=c.severity)
            for c in sorted(checks, key=lambda c: str(c.name)) if c.name in by_name]


def current_verdicts(store: Any, spec: Any, data_hash: str | None) -> list[dict[str, Any]]:
    """The latest verdicts of the asset's declared checks on one version (checks since removed left out)."""
    if data_hash is None or not getattr(spec, "checks", ()):
        return []
    names = {c.name: c for c in spec.checks}
    found = []
    for row in store.checks_of(spec.name, data_hash):
        chk = names.get(row["check"])
        if chk is not None:
            found.append(dict(row, where=chk.where, severity=chk.severity))
    return found


def upstream_problem(up: str, result: Any) -> str:
    """Why a downstream asset cannot run: its upstream failed (naming the check that refused it), or was skipped."""
    error = getattr(result, "error", None)
    if result.outcome == "failed" and getattr(result, "checks", None) and error:
        return f"upstream `{up}` failed its {error.splitlines()[0]}"
    return f"upstream `{up}` {result.outcome}"
