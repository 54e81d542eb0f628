"""How the CLI shows results: rich tables for people, stable snake_case JSON for programs."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from assetflow.api import AssetStatus
from assetflow.execute.runner import AssetResult, RunResult

_VERB = {"ran": "ran", "restored": "restored", "fresh": "fresh", "cutoff": "cut off",
         "failed": "FAILED", "skipped": "skipped"}
_STYLE = {"fresh": "green", "stale": "yellow", "missing": "magenta", "failed": "red", "observed": "cyan",
          "ran": "blue", "restored": "cyan", "cutoff": "green", "skipped": "yellow"}


class Progress:
    """A live line on stderr while assets run, only when stderr is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.count = 0
        self.status = self.console.status("materializing...")
        self.status.start()

    @classmethod
    def for_stderr(cls) -> Progress | None:
        return cls() if sys.stderr.isatty() else None

    def update(self, result: AssetResult) -> None:
        self.count += 1
        self.status.update(f"{self.count} settled, last: {result.name} ({_VERB[result.outcome]})")

    def close(self) -> None:
        self.status.stop()


def _asset_result_json(result: AssetResult) -> dict[str, Any]:
    return {"name": result.name, "outcome": result.outcome, "reasons": result.reasons,
            "duration_s": result.duration, "data_hash": result.data_hash, "error": result.error}


def run_to_json(result: RunResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "dry_run": result.dry_run, "ok": result.ok, "counts": result.counts(),
            "assets": [_asset_result_json(r) for r in result.results.values()]}


def status_to_json(rows: list[AssetStatus]) -> dict[str, Any]:
    return {"assets": [
        {"name": r.name, "kind": r.kind, "state": r.state, "reasons": r.reasons, "data_hash": r.data_hash,
         "rows": r.rows, "materialized_at": r.materialized_at, "group": r.group, "io": r.io}
        for r in rows
    ]}


def render_plan(result: RunResult) -> None:
    todo = [r for r in result.results.values() if r.outcome != "fresh"]
    if not todo:
        click.echo(f"Nothing to do: all {len(result.results)} selected assets are fresh.")
        return
    click.echo(f"Plan ({len(todo)} of {len(result.results)} assets; nothing was run):")
    for r in todo:
        action = "run" if r.outcome == "ran" else "restore"
        click.echo(f"  {action:8} {r.name}: {'; '.join(r.reasons)}")


def render_run(result: RunResult) -> None:
    counts = result.counts()
    for r in result.results.values():
        if r.outcome in ("ran", "restored"):
            took = f" in {r.duration:.2f}s" if r.duration is not None else ""
            click.echo(f"{_VERB[r.outcome]:>9} {r.name}{took}: {'; '.join(r.reasons)}", err=True)
        elif r.outcome == "cutoff":
            click.echo(f"{'cut off':>9} {r.name}: upstream recomputed with identical data", err=True)
    for r in result.by_outcome("failed"):
        click.echo(f"\nAsset {r.name!r} FAILED:\n{r.error}", err=True)
    for r in result.by_outcome("skipped"):
        click.echo(f"  skipped {r.name}: {'; '.join(r.reasons)}", err=True)
    if counts["ran"] == counts["restored"] == counts["failed"] == counts["skipped"] == 0:
        click.echo(f"Everything is fresh: {len(result.results)} assets, nothing to do.")
        return
    parts = [f"{counts[k]} {_VERB[k] if k != 'failed' else 'failed'}" for k in
             ("ran", "restored", "cutoff", "fresh", "failed", "skipped") if counts[k]]
    click.echo("Done: " + ", ".join(parts) + ".")


def _age(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    seconds = time.time() - timestamp
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def render_status(rows: list[AssetStatus]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("asset", "state", "age", "rows", "why"):
        table.add_column(column)
    for r in rows:
        style = _STYLE.get(r.state, "")
        table.add_row(r.name, f"[{style}]{r.state}[/]", _age(r.materialized_at),
                      "-" if r.rows is None else str(r.rows), "; ".join(r.reasons))
    Console(soft_wrap=True).print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    click.echo(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
