"""The Python API: the same operations, with the same semantics, as the CLI."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.errors import StorageError, UnknownAssetError
from assetflow.execute.runner import Listener, Run, RunResult
from assetflow.plan import Assessment
from assetflow.select import select as select_names
from assetflow.workspace import Workspace

ProjectArg = Workspace | Path | str | None


def _workspace(project: ProjectArg, modules: Iterable[str] = (), files: Iterable[str] = ()) -> Workspace:
    if isinstance(project, Workspace):
        return project
    return Workspace.load(project, modules, files)


def materialize(
    select: Iterable[str] | str | None = None,
    *,
    exclude: Iterable[str] = (),
    force: bool = False,
    dry_run: bool = False,
    wait: bool = False,
    project: ProjectArg = None,
    modules: Iterable[str] = (),
    files: Iterable[str] = (),
    listener: Listener | None = None,
) -> RunResult:
    """Bring the selected assets up to date, running only what is stale.

    ``dry_run`` returns the plan (each asset's outcome and reasons) without running.
    """
    ws = _workspace(project, modules, files)
    names = select_names(ws.graph, [select] if isinstance(select, str) else (select or ()), exclude)
    run = Run(ws, names, force=force, listener=listener)
    return run.plan() if dry_run else run.execute(wait_for_lock=wait)


@dataclasses.dataclass(frozen=True)
class AssetStatus:
    """One row of ``status``: an asset or source, its state and why."""

    name: str
    kind: str
    state: str
    reasons: list[str]
    data_hash: str | None
    rows: int | None
    materialized_at: float | None
    group: str | None
    io: str | None


def status(
    select: Iterable[str] | str | None = None,
    *,
    project: ProjectArg = None,
    modules: Iterable[str] = (),
    files: Iterable[str] = (),
) -> list[AssetStatus]:
    """Every selected asset: fresh, stale or missing, with every reason, in topological order."""
    ws = _workspace(project, modules, files)
    names = select_names(ws.graph, [select] if isinstance(select, str) else (select or ()))
    verdicts: dict[str, Assessment] = ws.assess_all(names)
    sources = ws.observe_sources([n for n in names if isinstance(ws.graph.specs[n], SourceSpec)])
    last_events = ws.store.last_events()
    rows = []
    for name in names:
        spec = ws.graph.specs[name]
        if isinstance(spec, SourceSpec):
            rows.append(AssetStatus(name, "source", "observed", [], sources[name].data_hash, None, None, spec.group, None))
            continue
        verdict = verdicts[name]
        current = verdict.current
        state = verdict.state
        reasons = list(verdict.reasons)
        last = last_events.get(name)
        if state != "fresh" and last is not None and last[0] == "failed":
            state = "failed"
            reasons.insert(0, "the last run failed")
        rows.append(AssetStatus(
            name, "asset", state, reasons, current.data_hash if current else None,
            current.rows if current else None, current.finished_at if current else None,
            spec.group, ws.io_of(spec),
        ))
    return rows


def load(name: str, *, kind: str = "polars", project: ProjectArg = None,
         modules: Iterable[str] = (), files: Iterable[str] = ()) -> object:
    """The current stored value of an asset (e.g. in a notebook), as polars or Arrow."""
    ws = _workspace(project, modules, files)
    spec = ws.graph.specs.get(name)
    if not isinstance(spec, AssetSpec):
        raise UnknownAssetError(f"No asset named {name!r}; run `assetflow list` to see the assets.")
    current = ws.store.current().get(name)
    if current is None:
        raise StorageError(f"Asset {name!r} has never been materialized; run `assetflow materialize {name}`.")
    return ws.backends.get(current.io).load(name, current.location, "arrow" if kind == "arrow" else "polars")
