"""The Python API: the same operations, with the same semantics, as the CLI.

Every function takes ``project`` (a folder, or a loaded ``Workspace`` to reuse between
calls), or ``modules``/``files`` like ``-m``/``-f``; selections are the CLI's language.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assetflow.contracts import Executor
from assetflow.declare import AssetSpec
from assetflow.errors import UnknownAssetError
from assetflow.execute.gate import CheckRun
from assetflow.execute.runner import Listener, Run, RunResult
from assetflow.inspect.lineage import Lineage, build_lineage
from assetflow.inspect.status import AssetStatus, compute_status, state_map
from assetflow.inspect.versions import VersionNode, resolve_version, version_lineage
from assetflow.inspect.why import WhyReport, explain
from assetflow.select import select as select_names
from assetflow.workspace import Workspace

__all__ = ["AssetStatus", "Lineage", "VersionNode", "WhyReport", "column_lineage", "columns", "lineage", "load",
           "materialize", "run_checks", "status", "why"]

ProjectArg = Workspace | Path | str | None
Selection = Iterable[str] | str | None


def _workspace(project: ProjectArg, modules: Iterable[str] = (), files: Iterable[str] = ()) -> Workspace:
    if isinstance(project, Workspace):
        return project
    return Workspace.load(project, modules, files)


def _expressions(selection: Selection) -> list[str]:
    if selection is None:
        return []
    return [selection] if isinstance(selection, str) else list(selection)


def selected(ws: Workspace, select: Selection = None, exclude: Selection = None) -> list[str]:
    """The names a selection means in this workspace (``status:`` selectors assess the project)."""
    return select_names(ws.graph, _expressions(select), _expressions(exclude), default_io=ws.config.default_io,
                        statuses=lambda: state_map(compute_status(ws, ws.graph.order)))


def materialize(
    select: Selection = None,
    *,
    exclude: Selection = (),
    force: bool = False,
    dry_run: bool = False,
    wait: bool = False,
    project: ProjectArg = None,
    modules: Iterable[str] = (),
    files: Iterable[str] = (),
    listener: Listener | None = None,
    executor: Executor | str | None = None,
    jobs: int | None = None,
    address: str | None = None,
    partition: str | None = None,
    trigger: dict[str, object] | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Bring the selected assets up to date, running only what is stale.

    ``partition`` (``"2024-01-01..2024-03-31"``, ``"latest"``, ``"a,b"``, ``"all"``) limits
    partitioned assets to those keys: a backfill (docs/partitions.md).

    ``dry_run`` returns the plan (each asset's outcome and reasons) without running.
    ``executor`` is an executor name (default ``processes``, or ``$ASSETFLOW_EXECUTOR``) or
    instance; ``jobs`` how many assets run at once; ``address`` a cluster's (e.g. Dask's).
    Ctrl-C raises ``RunInterrupted`` (a ``KeyboardInterrupt``) once running assets are cancelled.
    ``trigger`` records what started the run (default ``{"kind": "person"}``; the daemon passes its
    schedule, sensor or condition tick) and ``run_id`` lets a caller name the run before it begins.
    """
    ws = _workspace(project, modules, files)
    names = selected(ws, select, exclude)
    run = Run(ws, names, force=force, listener=listener, executor=executor, jobs=jobs, address=address,
              partition=partition, run_id=run_id, trigger=trigger)
    if dry_run:
        return run.plan()
    result = run.execute(wait_for_lock=wait)
    _cache_graph_after_complete_run(ws)
    return result


def _cache_graph_after_complete_run(ws: Workspace) -> None:
    """After a run that left a no-op snapshot, cache the graph so the next ``status`` need not import the project."""
    from assetflow.fastpath import SNAPSHOT_KEY, save_graph_cache

    if ws.store.get_meta(SNAPSHOT_KEY) is not None:
        save_graph_cache(ws)


def run_checks(select: Selection = None, *, exclude: Selection = (), project: ProjectArg = None,
          modules: Iterable[str] = (), files: Iterable[str] = ()) -> list[CheckRun]:
    """Run the checks of the selected assets' current versions (each partition's), as ``assetflow check``.

    Verdicts already known for (check, data) are read, not re-run; nothing is published or
    unpublished. Each ``CheckRun`` has ``results`` (one dict per check), ``ok`` (no blocking
    failure) and ``headline()``. See docs/checks.md.
    """
    from assetflow.execute.gate import check_current

    ws = _workspace(project, modules, files)
    return check_current(ws, selected(ws, select, exclude))


def status(
    select: Selection = None,
    *,
    exclude: Selection = (),
    project: ProjectArg = None,
    modules: Iterable[str] = (),
    files: Iterable[str] = (),
) -> list[AssetStatus]:
    """Every selected asset and source, in topological order: its state, every reason, age and rows.

    States: fresh, stale, missing, failed, overdue (assets); observed or overdue (sources).
    """
    ws = _workspace(project, modules, files)
    return compute_status(ws, selected(ws, select, exclude))


def status_fast_or_full(
    select: Selection = None,
    *,
    exclude: Selection = (),
    project_dir: Path | str | None = None,
    modules: Iterable[str] = (),
    files: Iterable[str] = (),
    workspace: Workspace | None = None,
) -> tuple[list[AssetStatus], bool]:
    """``status``, answered from the no-op snapshot without importing the project when nothing changed.

    Returns the rows and whether that fast path answered. Otherwise the project is loaded (or
    ``workspace`` reused) and fully assessed, and its graph cached so that the next call can
    skip the import while nothing changes.
    """
    from assetflow.fastpath import fast_status, save_graph_cache

    rows = fast_status(Path(project_dir) if project_dir else None, modules, files,
                       _expressions(select), _expressions(exclude))
    if rows is not None:
        return rows, True
    ws = workspace if workspace is not None else Workspace.load(project_dir, modules, files)
    rows = status(select, exclude=exclude, project=ws)
    save_graph_cache(ws)
    return rows, False


def why(name: str, *, project: ProjectArg = None, modules: Iterable[str] = (), files: Iterable[str] = (),
        partition: str | None = None) -> WhyReport:
    """What exactly makes ``name`` (or its ``partition``) stale: changed inputs, a code diff, configuration, libraries."""
    return explain(_workspace(project, modules, files), name, partition)


def lineage(
    select: Selection = None,
    *,
    upstream: bool = True,
    downstream: bool = True,
    depth: int | None = None,
    with_status: bool = True,
    project: ProjectArg = None,
    modules: Iterable[str] = (),
    files: Iterable[str] = (),
) -> Lineage:
    """The graph around the selected assets, each node marked with its state.

    ``Lineage.render("text" | "mermaid" | "dot" | "json")`` gives what the CLI prints.
    """
    ws = _workspace(project, modules, files)
    roots = selected(ws, select)
    graph = build_lineage(ws.graph, roots, upstream=upstream, downstream=downstream, depth=depth)
    if not with_status:
        return graph
    states = {r.name: r.state for r in compute_status(ws, list(graph.nodes))}
    return build_lineage(ws.graph, roots, upstream=upstream, downstream=downstream, depth=depth, states=states)


def column_lineage(asset: str, column: str, *, upstream: bool = True, downstream: bool = False,
                   depth: int | None = None, project: ProjectArg = None, modules: Iterable[str] = (),
                   files: Iterable[str] = ()) -> Any:
    """Where ``asset.column`` comes from (exact through SQL assets, by name through Python ones), as a
    ``ColumnLineage`` whose ``render("text" | "mermaid" | "dot" | "json")`` is what the CLI prints."""
    from assetflow.sql.lineage import column_lineage as trace

    return trace(_workspace(project, modules, files), asset, column, upstream=upstream, downstream=downstream,
                 depth=depth)


def columns(name: str, *, project: ProjectArg = None, modules: Iterable[str] = (), files: Iterable[str] = ()) -> Any:
    """An asset's columns with their origins (``AssetColumns``); see docs/sql.md."""
    from assetflow.sql.lineage import ColumnIndex

    return ColumnIndex(_workspace(project, modules, files)).of(name)


def version_tree(name: str, version: str | int | None = None, *, depth: int | None = None,
                 project: ProjectArg = None, modules: Iterable[str] = (), files: Iterable[str] = ()) -> VersionNode:
    """The exact upstream versions (data hashes, materializations) a version of ``name`` was made from."""
    ws = _workspace(project, modules, files)
    _asset(ws, name, removed_ok=True)
    mat = resolve_version(ws.store, name, version)
    kinds = {n: s.kind for n, s in ws.graph.specs.items()}
    return version_lineage(ws.store, mat, kinds, ws.store.source_versions(), depth)


def load(name: str, version: str | int | None = None, *, kind: str = "polars", project: ProjectArg = None,
         modules: Iterable[str] = (), files: Iterable[str] = (), partition: str | None = None) -> Any:
    """An asset's stored value (e.g. in a notebook): the current version, or an earlier one.

    ``version`` is a materialization id, a data-hash prefix (see ``assetflow history``), or
    ``"~N"``, the Nth newest earlier version (``"~1"``: the one before the current);
    ``kind`` is "polars" or "arrow" for tables. A partitioned asset gives one partition
    (``partition="2024-01-05"``) or, without it, every current partition concatenated in key order.
    """
    ws = _workspace(project, modules, files)
    spec = _asset(ws, name, removed_ok=True)
    if spec is not None and (spec.partitions is not None or partition is not None):
        from assetflow.partitions.inspect import load_partitions

        return load_partitions(ws, spec, partition, version, kind)
    mat = resolve_version(ws.store, name, version)
    return ws.backends.get(mat.io).load(name, mat.location, "arrow" if kind == "arrow" else "polars")


def add_partitions(definition: str, keys: Iterable[str], *, project: ProjectArg = None) -> list[str]:
    """Add keys to dynamic partitions ``definition``; returns the new ones (``assetflow partitions add``)."""
    from assetflow.partitions.keys import add_partitions as add

    return add(_workspace(project, (), ()), definition, keys)


def remove_partitions(definition: str, keys: Iterable[str], *, project: ProjectArg = None) -> list[str]:
    """Remove keys from dynamic partitions ``definition``; returns those that were there."""
    from assetflow.partitions.keys import remove_partitions as remove

    return remove(_workspace(project, (), ()), definition, keys)


def _asset(ws: Workspace, name: str, removed_ok: bool = False) -> AssetSpec | None:
    """The declared asset ``name``; with ``removed_ok``, None for one removed from the code whose versions are kept."""
    spec = ws.graph.specs.get(name)
    if spec is None and removed_ok:
        from assetflow.inspect.show import is_removed

        if is_removed(ws, name):
            return None
    if not isinstance(spec, AssetSpec):
        what = "a source (it is read, not stored)" if spec is not None else "not an asset"
        raise UnknownAssetError(f"{name!r} is {what}; run `assetflow list` to see the assets.")
    return spec
