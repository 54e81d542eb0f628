"""The Python API: the same operations, with the same semantics, as the CLI.

Every function takes ``project`` (a folder, or a loaded ``Workspace`` to reuse between
calls, see ``workspace``), or ``modules``/``files`` like ``-m``/``-f``; selections are the
CLI's language. This module is the only door: the CLI and the page call these functions and
render what they return (``assetflow.documents`` turns it into the ``--json`` documents).

Nothing heavy is imported at the top: ``materialize`` with nothing to do must answer from
the no-op snapshot before the engine (or the user's code) is imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assetflow.contracts import Executor
    from assetflow.declare import AssetSpec
    from assetflow.execute.gate import CheckRun
    from assetflow.execute.results import RunResult
    from assetflow.execute.runner import Listener
    from assetflow.gc import GcReport
    from assetflow.inspect.lineage import Lineage
    from assetflow.inspect.status import AssetStatus
    from assetflow.inspect.versions import VersionNode
    from assetflow.inspect.why import WhyReport
    from assetflow.project import ProjectConfig
    from assetflow.state.doctor import DoctorReport
    from assetflow.workspace import Workspace

    ProjectArg = Workspace | Path | str | None  # a folder, or a loaded workspace to reuse

__all__ = ["AssetStatus", "DoctorReport", "GcReport", "Lineage", "VersionNode", "WhyReport", "add_partitions",
           "automation", "column_lineage", "columns", "doctor", "gc", "history", "lineage", "list_assets",
           "list_partitions", "load", "logs", "materialize", "plugins", "project_config", "remove_partitions",
           "run_checks", "schedules", "selected", "sensors", "show", "status", "status_fast_or_full", "ticks",
           "version_tree", "why", "workspace"]

_TYPES = {"AssetStatus": "assetflow.inspect.status", "DoctorReport": "assetflow.state.doctor",
          "GcReport": "assetflow.gc", "Lineage": "assetflow.inspect.lineage",
          "VersionNode": "assetflow.inspect.versions", "WhyReport": "assetflow.inspect.why"}


def __getattr__(name: str) -> Any:
    """The result types, imported when first asked for (``api.AssetStatus``), not with the module."""
    if name in _TYPES:
        import importlib

        return getattr(importlib.import_module(_TYPES[name]), name)
    raise AttributeError(f"module 'assetflow.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, loaded or not: what ``dir()`` and a notebook's completion offer."""
    return sorted({*globals(), *__all__})


Selection = Iterable[str] | str | None


def workspace(project: ProjectArg = None, modules: Iterable[str] = (),
              files: Iterable[str] = ()) -> Workspace:
    """The project, loaded (its code imported, its state opened): pass it as ``project=`` to
    several calls to import the project once. ``close()`` it when done.

    Each call given it looks at the sources' files and partition keys again (``Workspace.start_call``);
    the code stays the one imported here."""
    from assetflow.automation.definitions import recording_automation
    from assetflow.workspace import Workspace

    if isinstance(project, Workspace):
        project.start_call()  # each call sees the files as they are now
        return project
    with recording_automation() as declared:  # schedules and sensors, for their listings
        ws = Workspace.load(project, modules, files)
    ws.automation = list(declared)
    return ws


_workspace = workspace


def project_config(project: ProjectArg = None, modules: Iterable[str] = (), files: Iterable[str] = ()) -> ProjectConfig:
    """The project's configuration (its root, state and data folders, ``[tool.assetflow]``) without
    importing its code: what the state-only commands (logs, doctor, history) and the page's watch need."""
    from assetflow.project import load_config
    from assetflow.workspace import Workspace

    if isinstance(project, Workspace):
        return project.config
    return load_config(Path(project) if project is not None else None, tuple(modules), tuple(files))


def _expressions(selection: Selection) -> list[str]:
    if selection is None:
        return []
    return [selection] if isinstance(selection, str) else list(selection)


def selected(ws: Workspace, select: Selection = None, exclude: Selection = None, *,
             removed: bool = False) -> list[str]:
    """The names a selection means in this workspace (``status:`` selectors assess the project).

    With ``removed``, a plain name of an asset no longer declared whose versions are kept is
    taken as it is (``show`` reaches those), ahead of the rest of the selection.
    """
    from assetflow.inspect.status import selected as select_names

    ws.start_call()  # ``status:`` selectors judge the files as they are now
    expressions = _expressions(select)
    gone: list[str] = []
    if removed:
        from assetflow.inspect.show import is_removed

        gone = [s for s in expressions if is_removed(ws, s)]
        expressions = [s for s in expressions if s not in gone]
        if gone and not expressions:
            return gone
    return gone + select_names(ws, expressions, _expressions(exclude))


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
    partition: str | Sequence[str] | None = None,
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

    The whole project, asked for by a folder, with nothing forced: if the last complete run's
    snapshot proves nothing changed, the result comes from the state store alone (``fast_path``
    true, ``run_id`` None, every asset ``fresh``), without importing the project's code.
    """
    if partition is not None and not isinstance(partition, str):  # ["2024-01-01", "2024-01-05"]: those keys
        partition = ",".join(partition)
    everything = not (_expressions(select) or _expressions(exclude) or force or dry_run or partition)
    missed: set[str] = set()  # the sources whose new data kept the no-op snapshot from vouching
    if everything and trigger is None and run_id is None and (project is None or isinstance(project, (str, Path))):
        fresh = fresh_result(project, modules, files, missed)
        if fresh is not None:
            return fresh
    from assetflow.execute.runner import Run

    release = None
    if not dry_run and (executor is None or isinstance(executor, str)) and isinstance(project, (str, Path, type(None))):
        from assetflow.fastpath import has_state

        folder = None if project is None else Path(project)
        if missed:  # new data: worth it when what is downstream took long enough last time
            early = _worth_workers(folder, modules, files, missed)
        else:  # worth it on a first run only: a code edit may run nothing
            early = not has_state(folder, modules, files)
        if early:
            from assetflow.execute.executors import prepare_executor

            # The pool's fork server imports while the project loads; a run that computes nothing, or
            # here (a small plan), stops it unused.
            release = prepare_executor(executor)
    try:
        ws = _workspace(project, modules, files)
        names = selected(ws, select, exclude)
        run = Run(ws, names, force=force, listener=listener, executor=executor, jobs=jobs, address=address,
                  partition=partition, run_id=run_id, trigger=trigger)
        if dry_run:
            return run.plan()
        from assetflow.fastpath import cache_graph_after_run

        result = run.execute(wait_for_lock=wait)
        cache_graph_after_run(ws)
        return result
    finally:
        if release is not None:
            release()


def _worth_workers(project: Path | None, modules: Iterable[str], files: Iterable[str], sources: set[str]) -> bool:
    """Whether the assets downstream of ``sources`` took long enough last time to be computed by workers
    (``executors.small_work``), as the graph cache and the state tell before the project loads (True when
    they cannot tell)."""
    from assetflow.execute.executors import small_work
    from assetflow.fastpath import last_durations_downstream

    durations = last_durations_downstream(project, modules, files, sources)
    return durations is None or not small_work(durations)


def fresh_result(project: Path | str | None, modules: Iterable[str] = (), files: Iterable[str] = (),
                 missed: set[str] | None = None) -> RunResult | None:
    """What ``materialize`` of the whole project returns when the no-op snapshot proves every asset fresh (see
    ``assetflow.fastpath``), without importing the project; None when it cannot, and ``missed`` then gets the
    sources whose new data the snapshot found."""
    from assetflow.execute.results import AssetResult, RunResult
    from assetflow.fastpath import fresh_without_import

    hashes = fresh_without_import(Path(project) if project is not None else None, modules, files, with_hashes=True,
                                  missed=missed)
    if hashes is None:
        return None
    return RunResult(None, {name: AssetResult(name, "fresh", [], data_hash=digest) for name, digest in hashes.items()},
                     fast_path=True)


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
    from assetflow.inspect.status import compute_status

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
    ws = workspace if workspace is not None else _workspace(project_dir, modules, files)
    rows = status(select, exclude=exclude, project=ws)
    save_graph_cache(ws)
    return rows, False


def list_assets(select: Selection = None, *, exclude: Selection = (), project: ProjectArg = None,
                modules: Iterable[str] = (), files: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The assets and sources a selection means, in dependency order, each as a dict: name, kind,
    group, tags, io, freshness, upstream, downstream, defined_at (``assetflow list --json``)."""
    from assetflow.documents import list_payload

    ws = _workspace(project, modules, files)
    rows: list[dict[str, Any]] = list_payload(ws, selected(ws, select, exclude))["assets"]
    return rows


def show(name: str, *, limit: int = 5, version: str | None = None, project: ProjectArg = None,
         modules: Iterable[str] = (), files: Iterable[str] = ()) -> dict[str, Any]:
    """Everything about one asset or source, as a dict (one of ``assetflow show --json``'s ``assets``).

    Its state and reasons, its ``limit`` newest versions (hashes, schema, rows, storage, the
    checks' verdicts), code fingerprint, columns; with ``version`` (an id or data-hash prefix)
    also that version. An asset removed from the code is still shown while its versions are kept.
    """
    from assetflow.inspect.show import show as details

    return details(_workspace(project, modules, files), name, limit, version)


def history(select: Selection = None, *, exclude: Selection = (), limit: int = 20, logs: bool = False,
            project: ProjectArg = None, modules: Iterable[str] = (),
            files: Iterable[str] = ()) -> dict[str, Any]:
    """Runs, newest first, and what each did to each asset: ``{"runs": [...]}`` as ``assetflow history --json``.

    Without a selection the project's code is not imported (the state store answers alone);
    ``logs`` adds what each asset printed and logged in each run.
    """
    from assetflow.inspect.history import history as run_history

    if _expressions(select) or _expressions(exclude) or not (project is None or isinstance(project, (str, Path))):
        ws = _workspace(project, modules, files)
        names = selected(ws, select, exclude) if _expressions(select) or _expressions(exclude) else None
        return run_history(ws.store, names, limit, logs_from=ws.config.state_path if logs else None)
    from assetflow.state.store import StateStore

    state_path = project_config(project, modules, files).state_path
    store = StateStore(state_path)
    try:
        return run_history(store, None, limit, logs_from=state_path if logs else None)
    finally:
        store.close()


def logs(asset: str, run_id: str | None = None, *, partition: str | None = None, project: ProjectArg = None,
         modules: Iterable[str] = (), files: Iterable[str] = ()) -> dict[str, Any]:
    """What ``asset`` printed and logged in one run (default: the latest that captured any; of one ``partition``
    key, if given), without importing the project: ``asset``, ``run_id``, ``partition``, ``log`` (None if nothing
    was kept), ``path``, ``runs``."""
    from assetflow.documents import logs_payload
    from assetflow.errors import ParameterError, UnknownAssetError
    from assetflow.names import NAME_PATTERN
    from assetflow.state.logs import log_path

    state_path = project_config(project, modules, files).state_path
    if not NAME_PATTERN.fullmatch(asset):
        raise UnknownAssetError(f"{asset!r} is not an asset name; run `assetflow list` to see the assets.")
    if run_id is not None:
        try:
            log_path(state_path, run_id, asset)
        except ValueError:
            raise ParameterError(f"{run_id!r} is not a run id; `assetflow history {asset}` lists them.",
                                 "run") from None
    return logs_payload(state_path, asset, run_id, partition)


def gc(keep: int = 5, *, dry_run: bool = False, wait: bool = False, project: ProjectArg = None,
       modules: Iterable[str] = (), files: Iterable[str] = ()) -> GcReport:
    """Keep each asset's current version and its ``keep`` newest earlier ones; delete the other
    versions and the logs of older runs (``dry_run``: only count them). Returns what went.

    Deleting holds the project lock: while a run holds it, ``ProjectLockedError`` (exit 3),
    or ``wait`` for the run to finish."""
    from assetflow.gc import collect_garbage

    return collect_garbage(_workspace(project, modules, files), keep=keep, dry_run=dry_run, wait=wait)


def doctor(*, repair: bool = False, verify_data: bool = True, wait: bool = False,
           project: ProjectArg = None, modules: Iterable[str] = (),
           files: Iterable[str] = ()) -> DoctorReport:
    """Check the state store and stored data without importing the project's code; ``repair`` fixes
    what it finds, holding the project lock (``wait`` for a run that holds it instead of failing)."""
    from assetflow.state import doctor as checkup

    config = project_config(project, modules, files)
    if repair:
        return checkup.repair(config, wait=wait, verify_data=verify_data)
    return checkup.examine(config, verify_data=verify_data)


def plugins() -> list[dict[str, object]]:
    """Installed plugins, each as ``{"name", "version", "hooks"}`` (the hooks it implements)."""
    from assetflow.plugins import describe_plugins

    return describe_plugins()


def why(name: str, *, project: ProjectArg = None, modules: Iterable[str] = (),
        files: Iterable[str] = (), partition: str | None = None) -> WhyReport:
    """What exactly makes ``name`` (or its ``partition``) stale: changed inputs, a code diff, configuration,
    libraries; and its automation condition's verdict now (``automation``, None without one)."""
    import dataclasses
    import time

    from assetflow.automation.report import condition_verdict
    from assetflow.inspect.why import explain

    ws = _workspace(project, modules, files)
    report = explain(ws, name, partition)
    return dataclasses.replace(report, automation=condition_verdict(ws, name, time.time()))


def schedules(*, at: float | None = None, project: ProjectArg = None, modules: Iterable[str] = (),
              files: Iterable[str] = ()) -> dict[str, Any]:
    """``{"schedules": [...]}``: each schedule's cron, time zone, selection, next ticks after ``at``
    (default: now) in its time zone, and its last tick with that run's outcome. Nothing is written."""
    from assetflow.automation.report import schedules_payload

    return _automation_listing(schedules_payload, at, project, modules, files)


def sensors(*, at: float | None = None, project: ProjectArg = None, modules: Iterable[str] = (),
            files: Iterable[str] = ()) -> dict[str, Any]:
    """``{"sensors": [...]}``: each sensor's interval, selection, cursor, next evaluation, last tick and its run."""
    from assetflow.automation.report import sensors_payload

    return _automation_listing(sensors_payload, at, project, modules, files)


def automation(*, at: float | None = None, project: ProjectArg = None, modules: Iterable[str] = (),
               files: Iterable[str] = ()) -> dict[str, Any]:
    """``{"automation": [...]}``: each automated asset's condition, its verdict at ``at`` (default: now)
    and why, and its last tick. Nothing is written, not even a condition's first sighting."""
    from assetflow.automation.report import automation_payload

    return _automation_listing(automation_payload, at, project, modules, files)


def _automation_listing(payload: Any, at: float | None, project: ProjectArg, modules: Iterable[str],
                        files: Iterable[str]) -> dict[str, Any]:
    """A listing built from a read-only daemon over the project (loaded here unless given loaded)."""
    import time

    from assetflow.automation.daemon import Daemon

    ws = _workspace(project, modules, files)
    try:
        listing: dict[str, Any] = payload(Daemon.for_workspace(ws, declared=ws.automation),
                                          time.time() if at is None else at)
        return listing
    finally:
        if ws is not project:
            ws.close()


def ticks(name: str | None = None, *, limit: int = 50, project: ProjectArg = None, modules: Iterable[str] = (),
          files: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The newest ``limit`` ticks (of the schedule, sensor or automated asset ``name``), newest first,
    each as a dict (origin, tick_at, status, reason, run_id, ...); the project's code is not imported."""
    from assetflow.state.store import StateStore
    from assetflow.state.ticks import TickStore

    store = StateStore(project_config(project, modules, files).state_path)
    try:
        origins = None if name is None else [f"{k}:{name}" for k in ("schedule", "sensor", "condition")]
        return [t.to_json() for t in TickStore(store).ticks(origins, limit)]
    finally:
        store.close()


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
    from assetflow.inspect.lineage import build_lineage
    from assetflow.inspect.status import compute_status

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
    from assetflow.inspect.columns import column_lineage as trace

    return trace(_workspace(project, modules, files), asset, column, upstream=upstream, downstream=downstream,
                 depth=depth)


def columns(name: str, *, project: ProjectArg = None, modules: Iterable[str] = (), files: Iterable[str] = ()) -> Any:
    """An asset's columns with their origins (``AssetColumns``); see docs/sql.md."""
    from assetflow.inspect.columns import ColumnIndex

    return ColumnIndex(_workspace(project, modules, files)).of(name)


def version_tree(name: str, version: str | int | None = None, *, depth: int | None = None,
                 project: ProjectArg = None, modules: Iterable[str] = (), files: Iterable[str] = ()) -> VersionNode:
    """The exact upstream versions (data hashes, materializations) a version of ``name`` was made from."""
    from assetflow.inspect.versions import version_lineage
    from assetflow.state.versions import resolve_version

    ws = _workspace(project, modules, files)
    _asset(ws, name, removed_ok=True)
    mat = resolve_version(ws.store, name, version)
    kinds = {n: s.kind for n, s in ws.graph.specs.items()}
    reads = None
    from assetflow.partitions.units import is_partitioned

    if is_partitioned(ws.graph):
        plan = ws.partition_plan

        def reads(asset: str, key: str, up: str) -> list[str]:  # what a partition (or a reader of all) read of ``up``
            if not plan.partitioned(up) or (asset, up) not in plan.mappings:
                return []
            return plan.upstream_keys(asset, up, key)
    return version_lineage(ws.store, mat, kinds, ws.store.source_versions(), depth, reads)


def load(name: str, version: str | int | None = None, *, kind: str = "polars", project: ProjectArg = None,
         modules: Iterable[str] = (), files: Iterable[str] = (), partition: str | None = None) -> Any:
    """An asset's stored value (e.g. in a notebook): the current version, or an earlier one.

    ``version`` is a materialization id, a data-hash prefix (see ``assetflow history``), or
    ``"~N"``, the Nth newest earlier version (``"~1"``: the one before the current);
    ``kind`` is "polars" or "arrow" for tables. A partitioned asset gives one partition
    (``partition="2024-01-05"``) or, without it, every current partition concatenated in key order.
    """
    from assetflow.state.versions import resolve_version

    ws = _workspace(project, modules, files)
    spec = _asset(ws, name, removed_ok=True)
    if spec is not None and (spec.partitions is not None or partition is not None):
        from assetflow.partitions.inspect import load_partitions

        return load_partitions(ws, spec, partition, version, kind)
    mat = resolve_version(ws.store, name, version)
    return ws.backends.get(mat.io).load(name, mat.location, "arrow" if kind == "arrow" else "polars")


def add_partitions(definition: str, keys: Iterable[str], *, project: ProjectArg = None, modules: Iterable[str] = (),
                   files: Iterable[str] = ()) -> list[str]:
    """Add keys to dynamic partitions ``definition``; returns the new ones (``assetflow partitions add``)."""
    from assetflow.partitions.keys import add_partitions as add

    return add(_workspace(project, modules, files), definition, keys)


def remove_partitions(definition: str, keys: Iterable[str], *, project: ProjectArg = None,
                      modules: Iterable[str] = (), files: Iterable[str] = ()) -> list[str]:
    """Remove keys from dynamic partitions ``definition``; returns those that were there (versions stay until gc)."""
    from assetflow.partitions.keys import remove_partitions as remove

    return remove(_workspace(project, modules, files), definition, keys)


def list_partitions(definition: str, *, project: ProjectArg = None, modules: Iterable[str] = (),
                    files: Iterable[str] = ()) -> list[str]:
    """The keys of dynamic partitions ``definition``, in the order they were added."""
    from assetflow.partitions.keys import list_partitions as keys_of

    return keys_of(_workspace(project, modules, files), definition)


def _asset(ws: Workspace, name: str, removed_ok: bool = False) -> AssetSpec | None:
    """The declared asset ``name``; with ``removed_ok``, None for one removed from the code whose versions are kept."""
    from assetflow.declare import AssetSpec
    from assetflow.errors import UnknownAssetError

    spec = ws.graph.specs.get(name)
    if spec is None and removed_ok:
        from assetflow.inspect.show import is_removed

        if is_removed(ws, name):
            return None
    if not isinstance(spec, AssetSpec):
        what = "a source (it is read, not stored)" if spec is not None else "not an asset"
        raise UnknownAssetError(f"{name!r} is {what}; run `assetflow list` to see the assets.")
    return spec
