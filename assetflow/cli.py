"""The ``assetflow`` command: a thin layer over the Python API.

stdout carries data (tables, JSON); stderr carries progress and errors for people.
Library errors become exit codes here and nowhere else (see ``ExitCode``).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assetflow.errors import AssetflowError, ExitCode

F = TypeVar("F", bound=Callable[..., Any])
JSON_SCHEMA_VERSION = 1


def project_options(fn: F) -> F:
    """-m / -f / --project, shared by every command that loads a project."""
    fn = click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
                      help="Project folder (default: the nearest pyproject.toml with [tool.assetflow]).")(fn)
    fn = click.option("-f", "--file", "files", multiple=True, help="A Python file defining assets.")(fn)
    fn = click.option("-m", "--module", "modules", multiple=True, help="A module defining assets.")(fn)
    return fn


def handle_errors(fn: F) -> F:
    """Turn assetflow errors into a message on stderr and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AssetflowError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(int(exc.exit_code))

    return wrapper  # type: ignore[return-value]


def _emit_json(payload: dict[str, Any]) -> None:
    click.echo(json.dumps({"schema_version": JSON_SCHEMA_VERSION, **payload}, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="assetflow")
def main() -> None:
    """assetflow: declare data assets in Python; materialize only what changed."""


@main.command()
@click.argument("select", nargs=-1)
@click.option("--exclude", multiple=True, help="Selection to leave out.")
@click.option("--force", is_flag=True, help="Recompute the selection even if fresh.")
@click.option("--dry-run", is_flag=True, help="Print the plan with each asset's reason; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results on stdout.")
@click.option("--wait", is_flag=True, help="If another run holds the project, wait for it instead of exiting 3.")
@project_options
@handle_errors
def materialize(select: tuple[str, ...], exclude: tuple[str, ...], force: bool, dry_run: bool, as_json: bool,
                wait: bool, project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Bring the selected assets (default: all) up to date, running only what is stale."""
    if not (select or exclude or force or dry_run):
        fresh = _noop_fast_path(project_dir, modules, files)
        if fresh is not None:
            if as_json:
                _emit_json({"run_id": None, "dry_run": False, "ok": True, "fast_path": True,
                            "counts": {"fresh": len(fresh)},
                            "assets": [{"name": n, "outcome": "fresh", "reasons": []} for n in fresh]})
            else:
                click.echo(f"Everything is fresh: {len(fresh)} assets, nothing to do.")
            return
    from assetflow import api
    from assetflow.cli_render import Progress, render_plan, render_run, run_to_json

    progress = None if as_json or dry_run else Progress.for_stderr()
    try:
        result = api.materialize(select, exclude=exclude, force=force, dry_run=dry_run, wait=wait,
                                 project=project_dir, modules=modules, files=files,
                                 listener=progress.update if progress else None)
    finally:
        if progress:
            progress.close()
    if as_json:
        _emit_json(run_to_json(result))
    elif dry_run:
        render_plan(result)
    else:
        render_run(result)
    sys.exit(int(ExitCode.OK if result.ok else ExitCode.ASSET_FAILED))


def _noop_fast_path(project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> list[str] | None:
    """Asset names if the last complete run's snapshot proves nothing changed (no user import)."""
    from assetflow.fastpath import SNAPSHOT_KEY, check_snapshot
    from assetflow.project import load_config
    from assetflow.state.store import STATE_FILE, StateStore

    config = load_config(project_dir, modules, files)
    if not (config.state_path / STATE_FILE).exists():
        return None
    store = StateStore(config.state_path)
    try:
        return check_snapshot(config, store.get_meta(SNAPSHOT_KEY))
    finally:
        store.close()


@main.command()
@click.argument("select", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable status on stdout.")
@project_options
@handle_errors
def status(select: tuple[str, ...], as_json: bool, project_dir: Path | None, modules: tuple[str, ...],
           files: tuple[str, ...]) -> None:
    """Every asset: fresh, stale, missing or failed, and exactly why."""
    from assetflow import api
    from assetflow.cli_render import render_status, status_to_json

    rows = api.status(select, project=project_dir, modules=modules, files=files)
    if as_json:
        _emit_json(status_to_json(rows))
    else:
        render_status(rows)


@main.command(name="list")
@click.argument("select", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
@project_options
@handle_errors
def list_assets(select: tuple[str, ...], as_json: bool, project_dir: Path | None, modules: tuple[str, ...],
                files: tuple[str, ...]) -> None:
    """The assets and sources a selection means, in dependency order."""
    from assetflow.select import select as select_names
    from assetflow.workspace import Workspace

    ws = Workspace.load(project_dir, modules, files)
    names = select_names(ws.graph, select)
    rows = [{"name": n, "kind": ws.graph.specs[n].kind, "group": ws.graph.specs[n].group,
             "upstream": list(ws.graph.upstream[n]), "defined_at": ws.graph.specs[n].where} for n in names]
    if as_json:
        _emit_json({"assets": rows})
    else:
        for row in rows:
            ups = ", ".join(row["upstream"])
            click.echo(f"{row['name']}  [{row['kind']}]" + (f"  <- {ups}" if ups else ""))


@main.command()
@click.option("--keep", default=5, show_default=True, help="Earlier versions to keep per asset besides the current.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@project_options
@handle_errors
def gc(keep: int, dry_run: bool, project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Delete stored versions no pointer reaches, keeping the newest KEEP per asset."""
    from assetflow.gc import collect_garbage
    from assetflow.workspace import Workspace

    ws = Workspace.load(project_dir, modules, files)
    report = collect_garbage(ws, keep=keep, dry_run=dry_run)
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(f"{verb} {report.versions} versions ({report.files} stored objects, {report.bytes} bytes); "
               f"kept {report.kept}.")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
@handle_errors
def plugins(as_json: bool) -> None:
    """Installed plugins: name, version and the hooks they implement."""
    from assetflow.plugins import describe_plugins

    rows = describe_plugins()
    if as_json:
        _emit_json({"plugins": rows})
    else:
        for row in rows:
            click.echo(f"{row['name']} {row['version'] or ''}: {', '.join(row['hooks'])}")
