"""The ``assetflow`` command: a thin layer over the Python API.

stdout carries data (tables, JSON); stderr carries progress and errors for people.
Library errors become exit codes here and nowhere else (see ``ExitCode``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from assetflow.cli_base import F, emit_json, handle_errors, main, project_options
from assetflow.cli_stdout import emit_error
from assetflow.errors import ExitCode


@main.command()
@click.argument("select", nargs=-1)
@click.option("--exclude", multiple=True, help="Selection to leave out.")
@click.option("--force", is_flag=True, help="Recompute the selection even if fresh.")
@click.option("--dry-run", is_flag=True, help="Print the plan with each asset's reason; run nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results on stdout.")
@click.option("--wait", is_flag=True, help="If another run holds the project, wait for it instead of exiting 3.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Assets to run at once (default: the number of cores).")
@click.option("--executor", "executor", metavar="NAME", default=None,
              help="Where assets run: processes (default), threads, inprocess, or a plugin's (e.g. dask).")
@click.option("--address", default=None, help="The cluster to run on, for executors that connect to one "
              "(e.g. --executor dask --address tcp://scheduler:8786).")
@click.option("--partition", metavar="KEYS", default=None, help="Partitions of partitioned assets to bring up to "
              "date: a key, a range 2024-01-01..2024-03-31, a list a,b, latest or all (a backfill).")
@project_options
@handle_errors
def materialize(select: tuple[str, ...], exclude: tuple[str, ...], force: bool, dry_run: bool, as_json: bool,
                wait: bool, jobs: int | None, executor: str | None, address: str | None, partition: str | None,
                project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Bring the selected assets (default: all) up to date, running only what is stale.

    Independent assets run in parallel; Ctrl-C cancels running assets and marks the run
    interrupted (exit 130); a second Ctrl-C exits at once.
    """
    from assetflow import api  # light: with nothing to do, it answers before the engine is imported
    from assetflow.errors import RunInterrupted

    progress = None
    if not (as_json or dry_run):
        from assetflow.cli_render import Progress

        progress = Progress.for_stderr()
    try:
        result = api.materialize(select, exclude=exclude, force=force, dry_run=dry_run, wait=wait,
                                 project=project_dir, modules=modules, files=files,
                                 listener=progress,
                                 executor=executor, jobs=jobs, address=address, partition=partition)
    except RunInterrupted as exc:
        if progress:
            progress.close()
            progress = None
        running = f"; cancelled while running: {', '.join(exc.cancelled)}" if exc.cancelled else ""
        message = (f"Interrupted: run {exc.run_id} stopped and is marked interrupted{running}. "
                   f"Nothing partial was recorded; {len(exc.results)} assets settled before the interrupt "
                   f"stay recorded. Run `assetflow materialize` again to finish.")
        click.echo(message, err=True)
        emit_error("materialize", exc, message, int(ExitCode.INTERRUPTED))
        sys.exit(int(ExitCode.INTERRUPTED))
    finally:
        if progress:
            progress.close()
    from assetflow.cli_render import render_left_out, render_plan, render_run
    from assetflow.cli_text import all_fresh
    from assetflow.documents import run_payload

    if as_json:
        emit_json(run_payload(result))
    elif result.fast_path:
        click.echo(all_fresh(result.results))
    elif partition is not None and not result.results:  # every selected partition lacks what it is made from
        render_left_out(result)
        click.echo(f"Nothing to run: no partition that --partition {partition} selects has the data it is made from "
                   f"yet (its source file for that key, or an upstream partition); `assetflow status` shows which.")
    elif dry_run:
        render_plan(result)
    else:
        render_run(result, progress_printed=bool(progress and progress.printed_lines))
    sys.exit(int(ExitCode.OK if result.ok else ExitCode.ASSET_FAILED))


def _selection_options(fn: F) -> F:
    fn = click.option("--exclude", multiple=True, metavar="SELECT", help="Selection to leave out.")(fn)
    return click.argument("select", nargs=-1)(fn)


@main.command()
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable verdicts on stdout.")
@project_options
@handle_errors
def check(select: tuple[str, ...], exclude: tuple[str, ...], as_json: bool, project_dir: Path | None,
          modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Run the checks of the selected assets' current versions (cached verdicts are reused); exit 1 on a failure."""
    from assetflow import api
    from assetflow.cli_render import render_checks
    from assetflow.documents import check_payload

    runs = api.run_checks(select, exclude=exclude, project=project_dir, modules=modules, files=files)
    if as_json:
        emit_json(check_payload(runs))
    else:
        render_checks(runs)
    sys.exit(int(ExitCode.OK if all(r.ok for r in runs) else ExitCode.ASSET_FAILED))


@main.command()
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable status on stdout.")
@click.option("--check", is_flag=True, help="Exit 1 if anything selected is not fresh (for CI).")
@project_options
@handle_errors
def status(select: tuple[str, ...], exclude: tuple[str, ...], as_json: bool, check: bool, project_dir: Path | None,
           modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Every asset: fresh, stale, missing, failed or overdue, and exactly why."""
    from assetflow.api import status_fast_or_full

    rows, fast = status_fast_or_full(select, exclude=exclude, project_dir=project_dir, modules=modules, files=files)
    from assetflow.cli_render import render_status
    from assetflow.documents import status_payload

    if as_json:
        emit_json(status_payload(rows, fast))
    else:
        render_status(rows)
    if check and not all(r.ok for r in rows):
        sys.exit(int(ExitCode.ASSET_FAILED))


def _verdict_lines(verdict: dict[str, Any], depth: int = 0) -> list[str]:
    lines = [f"{'  ' * depth}{'yes' if verdict['holds'] else 'no'}: {verdict['reason']}"]
    for part in verdict.get("parts", []):
        lines += _verdict_lines(part, depth + 1)
    return lines


def _loaded_workspace(project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> Any:
    """The project loaded once for a command that makes several API calls."""
    from assetflow import api

    ws = api.workspace(project_dir, modules, files)
    ws.keep_observations = True  # one command, one look at the files: its calls need not stat them again
    return ws


@main.command(name="list")
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
@project_options
@handle_errors
def list_assets(select: tuple[str, ...], exclude: tuple[str, ...], as_json: bool, project_dir: Path | None,
                modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """The assets and sources a selection means, in dependency order."""
    from assetflow import api
    from assetflow.cli_render import render_list

    payload = {"assets": api.list_assets(select, exclude=exclude, project=project_dir, modules=modules, files=files)}
    if as_json:
        emit_json(payload)
    else:
        render_list(payload)


@main.command()
@click.argument("asset")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
@click.option("--partition", metavar="KEY", default=None, help="One partition of a partitioned asset.")
@project_options
@handle_errors
def why(asset: str, as_json: bool, partition: str | None, project_dir: Path | None, modules: tuple[str, ...],
        files: tuple[str, ...]) -> None:
    """What exactly makes ASSET stale: inputs, a diff of the code, configuration, library drift."""
    from assetflow import api
    from assetflow.cli_render import render_why

    report = api.why(asset, project=project_dir, modules=modules, files=files, partition=partition)
    automation = report.automation
    if as_json:
        emit_json(report.to_json())
    else:
        render_why(report)
        if automation:
            click.echo(f"automation: {automation['condition']} -> {'fires' if automation['fires'] else 'waits'}: "
                       f"{automation['reason']}")
            click.echo("\n".join("  " + line for line in _verdict_lines(automation["verdict"])))


@main.command()
@click.argument("select", nargs=-1, required=True)
@click.option("--upstream", "direction", flag_value="upstream", help="Only what the assets are made from.")
@click.option("--downstream", "direction", flag_value="downstream", help="Only what is made from the assets.")
@click.option("--depth", type=click.IntRange(min=0), help="How many levels to follow (default: all).")
@click.option("--format", "fmt", type=click.Choice(["text", "mermaid", "dot", "json"]), default="text",
              show_default=True, help="Output format.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--version", "version", metavar="VERSION",
              help="For one asset: the exact upstream versions a version (materialization id, data-hash prefix, "
                   "'current' or '~N', the Nth earlier) was made from.")
@project_options
@handle_errors
def lineage(select: tuple[str, ...], direction: str | None, depth: int | None, fmt: str, as_json: bool,
            version: str | None, project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """The graph around the selected assets, marked with each asset's state.

    ASSET.COLUMN (e.g. daily_revenue.revenue) shows the columns that column is computed from
    instead (exact for SQL assets, by name through Python ones; --downstream: where it goes).
    """
    from assetflow import api
    from assetflow.cli_render import render_version_tree

    ws = _loaded_workspace(project_dir, modules, files)
    fmt = "json" if as_json else fmt
    if len(select) == 1 and "." in select[0] and not any(ch in select[0] for ch in "*?:+ "):  # ASSET.COLUMN
        asset, _, column = select[0].partition(".")
        trail = api.column_lineage(asset, column, upstream=direction != "downstream",
                                   downstream=direction == "downstream", depth=depth, project=ws)
        if fmt == "json":
            emit_json(trail.to_json())
        else:
            click.echo(trail.render(fmt), nl=False)
        return
    if version is not None:
        names = api.selected(ws, select)
        if len(names) != 1:
            raise click.UsageError(f"--version needs exactly one asset; the selection means {len(names)}.")
        tree = api.version_tree(names[0], version, depth=depth, project=ws)
        if fmt == "json":
            emit_json({"version": tree.to_json()})
        else:
            render_version_tree(tree)
        return
    graph = api.lineage(select, upstream=direction != "downstream", downstream=direction != "upstream",
                        depth=depth, project=ws)
    if fmt == "json":
        emit_json(graph.to_json())
    else:
        click.echo(graph.render(fmt), nl=False)


@main.command()
@click.argument("select", nargs=-1, required=True)
@click.option("--limit", default=5, show_default=True, help="How many of the last materializations to list.")
@click.option("--version", "version", metavar="VERSION",
              help="For one asset: also this version (materialization id or data-hash prefix), e.g. of an asset "
                   "no longer declared.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable details on stdout.")
@project_options
@handle_errors
def show(select: tuple[str, ...], limit: int, version: str | None, as_json: bool, project_dir: Path | None,
         modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Everything about the selected assets: version, hashes, schema, rows, storage, code, metadata.

    An asset removed from the code is still shown by its name while its versions are kept.
    """
    from assetflow import api
    from assetflow.cli_render import render_show

    ws = _loaded_workspace(project_dir, modules, files)
    names = api.selected(ws, select, removed=True)
    if version is not None and len(names) != 1:
        raise click.UsageError(f"--version needs exactly one asset; the selection means {len(names)}.")
    details = [api.show(name, limit=limit, version=version, project=ws) for name in names]
    if as_json:
        emit_json({"assets": details})
    else:
        render_show(details)


@main.command()
@_selection_options
@click.option("--limit", default=20, show_default=True, help="How many runs to list.")
@click.option("--logs", "with_logs", is_flag=True, help="Show what each asset printed and logged in each run.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable history on stdout.")
@project_options
@handle_errors
def history(select: tuple[str, ...], exclude: tuple[str, ...], limit: int, with_logs: bool, as_json: bool,
            project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Runs, newest first, and what each did to each asset: outcome, duration, error (--logs: its output)."""
    from assetflow import api
    from assetflow.cli_render import render_history

    payload = api.history(select, exclude=exclude, limit=limit, logs=with_logs, project=project_dir,
                          modules=modules, files=files)
    if as_json:
        emit_json(payload)
    else:
        render_history(payload)


@main.command()
@click.argument("asset")
@click.option("--run", "run_id", metavar="RUN_ID",
              help="The run to show (see `assetflow history ASSET`); default: the last that captured output of ASSET.")
@click.option("--partition", metavar="KEY", default=None, help="Only what this partition of ASSET printed.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable log on stdout.")
@project_options
@handle_errors
def logs(asset: str, run_id: str | None, partition: str | None, as_json: bool, project_dir: Path | None,
         modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """What ASSET printed (stdout, stderr) and logged while it ran, kept per run in the state folder."""
    from assetflow import api

    payload = api.logs(asset, run_id, partition=partition, project=project_dir, modules=modules, files=files)
    if as_json:
        emit_json(payload)
    elif payload["log"] is None:
        where = f"run {run_id}" if run_id else "any run kept"
        who = f"`{asset}` partition {partition}" if partition else f"`{asset}`"
        click.echo(f"No output of {who} in {where}: it printed and logged nothing, or `assetflow gc` "
                   f"collected the log. `assetflow history {asset}` lists its runs.", err=True)
    else:
        click.echo(f"run {payload['run_id']}, {payload['path']}:", err=True)
        click.echo(payload["log"], nl=not payload["log"].endswith("\n"))


@main.command()
@click.option("--keep", default=5, show_default=True,
              help="Earlier versions to keep per asset besides the current one (and the logs of N+1 runs).")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@click.option("--wait", is_flag=True, help="If a run holds the project, wait for it instead of exiting 3.")
@project_options
@handle_errors
def gc(keep: int, dry_run: bool, wait: bool, project_dir: Path | None, modules: tuple[str, ...],
       files: tuple[str, ...]) -> None:
    """Keep each asset's current version and its KEEP newest earlier ones; delete the other versions.

    Deleting holds the project lock: while a run is going, gc exits 3 (or waits, with --wait)."""
    from assetflow import api

    report = api.gc(keep, dry_run=dry_run, wait=wait, project=project_dir, modules=modules, files=files)
    verb = "Would delete" if dry_run else "Deleted"
    undeclared = f", {report.undeclared} of them of assets no longer declared" if report.undeclared else ""
    click.echo(f"{verb} {report.versions} versions ({report.files} stored objects, {_gc_size(report)}"
               f"{undeclared}); kept {report.kept}; {report.logs} asset logs of older runs.")


def _gc_size(report: Any) -> str:
    """``1234 bytes``, or what is known of it: a DuckDB table has no size of its own (it shares its file's blocks)."""
    if not report.unsized:
        return f"{report.bytes} bytes"
    why = "their backend records no size (a DuckDB table shares its file's blocks)"
    if report.unsized == report.files:
        return f"size unknown: {why}"
    return f"{report.bytes} bytes and {report.unsized} of unknown size: {why}"


@main.command()
@click.option("--repair", is_flag=True, help="Fix what is found: rebuild a corrupt state store from the records "
              "that can be salvaged and verified, forget versions whose data is gone or changed, mark dead runs "
              "failed, delete temporary files.")
@click.option("--no-verify-data", "verify_data", is_flag=True, flag_value=False, default=True,
              help="Do not rehash the stored data of every current version.")
@click.option("--wait", is_flag=True, help="With --repair: if a run holds the project, wait for it instead of exiting 3.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report on stdout.")
@project_options
@handle_errors
def doctor(repair: bool, verify_data: bool, wait: bool, as_json: bool, project_dir: Path | None,
           modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Check the state store and stored data (no project code is imported); --repair fixes them.

    Exit status: 0 when nothing is wrong (or everything found was repaired), 1 otherwise.
    """
    from assetflow import api

    report = api.doctor(repair=repair, verify_data=verify_data, wait=wait, project=project_dir, modules=modules,
                        files=files)
    if as_json:
        emit_json(report.to_json())
    else:
        from assetflow.cli_text import plural

        problems = [f for f in report.findings if not f.repaired]
        if problems:  # not "verified" above a list of problems
            click.echo(f"State store {report.state_file}: integrity {report.integrity}; "
                       f"{plural(len(problems), 'problem')} found ({report.verified} current versions intact):")
        else:
            click.echo(f"State store {report.state_file}: integrity {report.integrity}; "
                       f"{plural(report.verified, 'current version')} verified against their stored data.")
        for finding in report.findings:
            where = f" ({finding.asset})" if finding.asset else ""
            click.echo(f"  {'repaired' if finding.repaired else 'PROBLEM'}: {finding.kind}{where}: {finding.detail}")
        if report.moved_to:
            kept = ", ".join(f"{n} {t}" for t, n in (report.salvaged or {}).items())
            click.echo(f"The corrupt store was moved to {report.moved_to}; salvaged and verified: {kept}.")
        if not report.healthy:
            click.echo("Run `assetflow doctor --repair` to fix these.")
        elif repair and report.findings:
            click.echo("Run `assetflow materialize` to recompute what is missing.")
    sys.exit(int(ExitCode.OK if report.healthy else ExitCode.ASSET_FAILED))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
@handle_errors
def plugins(as_json: bool) -> None:
    """Installed plugins: name, version and the hooks they implement."""
    from assetflow import api

    rows = api.plugins()
    if as_json:
        emit_json({"plugins": rows})
    else:
        for row in rows:
            click.echo(f"{row['name']} {row['version'] or ''}: {', '.join(row['hooks'])}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs --token.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option("--token", envvar="ASSETFLOW_UI_TOKEN", default=None,
              help="Require this token (also $ASSETFLOW_UI_TOKEN); needed to listen beyond loopback.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Another name the page is reached under (Host header), e.g. behind a proxy.")
@click.option("--allow-run", is_flag=True, help="Let the page launch `assetflow materialize` (CSRF-protected).")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write a static snapshot of the page and its data to this folder, and exit.")
@project_options
@handle_errors
def ui(host: str, port: int, token: str | None, allowed_hosts: tuple[str, ...], allow_run: bool,
       export_dir: Path | None, project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """A web page of the asset graph: states, lineage, why, runs; it follows the project live."""
    from assetflow.ui.project_view import ProjectView

    if export_dir is not None:
        from assetflow.ui.export import export_site

        view = ProjectView(project_dir, modules, files)
        try:
            if view.error is not None:
                raise click.ClickException(
                    f"the project does not load, nothing exported:\n{view.error['error']['message']}")
            counts = export_site(view, export_dir)
        finally:
            view.close()
        click.echo(f"Exported {counts['documents']} documents and the page to {export_dir}; host the folder with "
                   f"any web server, e.g. `python -m http.server -d {export_dir}`.", err=True)
        return
    from assetflow.ui.security import is_loopback
    from assetflow.ui.serve import serve

    if not is_loopback(host) and not token:
        raise click.UsageError(f"Refusing to listen on {host} without a token: anyone who reaches the port would "
                               f"see the project. Pass --token (or set ASSETFLOW_UI_TOKEN), or keep 127.0.0.1.")
    serve(ProjectView(project_dir, modules, files), host=host, port=port, token=token, allow_run=allow_run,
          extra_hosts=allowed_hosts)


@main.group()
def partitions() -> None:
    """Keys of dynamic partitions: add, remove, list (docs/partitions.md)."""


def _dynamic_command(action: str) -> Callable[..., None]:
    @click.argument("definition")
    @click.argument("keys", nargs=-1, required=action != "list")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable result on stdout.")
    @project_options
    @handle_errors
    def command(definition: str, keys: tuple[str, ...], as_json: bool, project_dir: Path | None,
                modules: tuple[str, ...], files: tuple[str, ...]) -> None:
        from assetflow import api

        where: dict[str, Any] = {"project": project_dir, "modules": modules, "files": files}
        if action == "list":
            found = api.list_partitions(definition, **where)
        else:
            found = (api.add_partitions if action == "add" else api.remove_partitions)(definition, keys, **where)
        if as_json:
            emit_json({"definition": definition, "action": action, "keys": found})
        elif action == "list":
            click.echo("\n".join(found) if found else f"dynamic partitions {definition!r} has no keys yet")
        else:
            verb = "added" if action == "add" else "removed"
            click.echo(f"{verb} {len(found)} key(s) of {definition!r}" + (f": {', '.join(found)}" if found else ""),
                       err=True)

    command.__doc__ = {"add": "Add KEYS to dynamic partitions DEFINITION.",
                       "remove": "Remove KEYS from dynamic partitions DEFINITION (stored versions stay until gc).",
                       "list": "List the keys of dynamic partitions DEFINITION, in the order added."}[action]
    return command


for _action in ("add", "remove", "list"):
    partitions.command(_action)(_dynamic_command(_action))


from assetflow import cli_automation  # noqa: F401 - registers daemon, serve, schedules, sensors, automation, ticks
