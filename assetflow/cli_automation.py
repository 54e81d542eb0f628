"""The automation commands: ``daemon``, ``serve``, ``schedules``, ``sensors``, ``automation``, ``ticks``.

Registered on ``assetflow.cli_base.main`` (this module is imported at the end of cli.py); the same thin layer:
options read here, work done by ``assetflow.automation``, errors turned into exit codes by
``handle_errors``. Logs go to stderr; listings' ``--json`` to stdout.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assetflow.cli_base import emit_json, handle_errors, main, project_options

if TYPE_CHECKING:
    import threading


@contextlib.contextmanager
def _stopping(daemon: Any, stop: threading.Event) -> Iterator[None]:
    """SIGTERM and Ctrl-C stop the loop; during a run they interrupt it cleanly (the next start resumes it)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # `serve`: the page's server owns the signals
        yield
        return

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        if daemon.running:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _log_to_stderr(verbose: bool) -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger = logging.getLogger("assetflow.daemon")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def _daemon_options(fn: Any) -> Any:
    fn = click.option("--interval", type=click.FloatRange(min=0.01), default=5.0, show_default=True,
                      help="Seconds between two evaluations.")(fn)
    fn = click.option("--wait", is_flag=True, help="If another daemon serves the project, wait to take over "
                      "instead of exiting 3.")(fn)
    fn = click.option("-j", "--jobs", type=click.IntRange(min=1), default=None, help="Assets to run at once.")(fn)
    fn = click.option("--executor", default=None, metavar="NAME", help="Where assets run (default: processes).")(fn)
    fn = click.option("--keep-workers", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
                      help="Keep the process pool's workers this long after a run, for the next (default: 300; "
                      "0: start them for each run).")(fn)
    return fn


def run_daemon(project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...], *, interval: float,
               wait: bool, once: bool, executor: str | None, jobs: int | None, keep_workers: float | None = None,
               stop: threading.Event | None = None) -> None:
    """Take the daemon lock, then evaluate every ``interval`` until stopped (or once)."""
    import logging
    import threading

    from assetflow.automation.daemon import Daemon
    from assetflow.automation.lock import DaemonLock
    from assetflow.errors import AssetflowError, RunInterrupted
    from assetflow.project import load_config

    config = load_config(project_dir, modules, files)
    lock = DaemonLock(config.state_path)
    lock.acquire(wait=wait)
    stop = stop or threading.Event()
    daemon = Daemon(project_dir, modules, files, interval=interval, executor=executor, jobs=jobs,
                    keep_workers=0.0 if once else keep_workers)  # --once: there is no next run to keep them for
    log = logging.getLogger("assetflow.daemon")
    try:
        try:
            daemon.open()
        except AssetflowError as exc:  # e.g. a project that does not import: wait for its fix, as after an edit
            if once:
                raise
            daemon.evaluation_failed(exc)
        else:
            log.info("daemon for %s: %d schedule(s), %d sensor(s), %d automated asset(s); every %gs",
                     config.root, len(daemon.schedules), len(daemon.sensors), len(daemon.automated), interval)
        with _stopping(daemon, stop):
            try:
                daemon.serve(stop, once=once)
            except (RunInterrupted, KeyboardInterrupt):
                log.info("stopped during a run: it is marked interrupted and the next start resumes its tick")
    finally:
        daemon.close()
        lock.release()
    log.info("daemon stopped")


@main.command()
@_daemon_options
@click.option("--once", is_flag=True, help="Evaluate once, run what is due, and exit (for system cron and CI: give --interval the period it is called at).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logs.")
@project_options
@handle_errors
def daemon(interval: float, wait: bool, jobs: int | None, executor: str | None, keep_workers: float | None, once: bool,
           verbose: bool, project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Run schedules, sensors and automation conditions in the foreground (logs on stderr).

    SIGTERM or Ctrl-C stop it; a run in progress is interrupted cleanly and resumed by the next start.
    One daemon per project: a second one exits 3 naming the first, or waits with --wait.
    """
    _log_to_stderr(verbose)
    run_daemon(project_dir, modules, files, interval=interval, wait=wait, once=once, executor=executor, jobs=jobs,
               keep_workers=keep_workers)


@main.command()
@_daemon_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the page.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="Port of the page.")
@click.option("--token", envvar="ASSETFLOW_UI_TOKEN", default=None, help="Token the page requires (beyond loopback).")
@project_options
@handle_errors
def serve(interval: float, wait: bool, jobs: int | None, executor: str | None, keep_workers: float | None, host: str,
          port: int, token: str | None, project_dir: Path | None, modules: tuple[str, ...],
          files: tuple[str, ...]) -> None:
    """The daemon and the page together, one process, one port: for a team's shared machine.

    See docs/automation.md for running it as a systemd service.
    """
    import logging
    import signal
    import threading

    from assetflow.ui.project_view import ProjectView
    from assetflow.ui.security import is_loopback
    from assetflow.ui.serve import serve as serve_page

    if not is_loopback(host) and not token:
        raise click.UsageError(f"Refusing to listen on {host} without a token; pass --token or keep 127.0.0.1.")
    _log_to_stderr(False)
    stop = threading.Event()
    errors: list[BaseException] = []

    def automate() -> None:
        try:
            run_daemon(project_dir, modules, files, interval=interval, wait=wait, once=False, executor=executor,
                       jobs=jobs, keep_workers=keep_workers, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported, and the page keeps serving
            errors.append(exc)
            logging.getLogger("assetflow.daemon").error("the daemon stopped: %s", exc)

    thread = threading.Thread(target=automate, name="assetflow-daemon", daemon=True)
    thread.start()
    # uvicorn shuts its server down on SIGTERM, then raises the signal again for the handler it found: with
    # Python's default one the process died there, before the daemon stopped (its run left running, its
    # workers orphaned until they noticed). This one ends serve_page instead, so the daemon stops below.
    previous = signal.signal(signal.SIGTERM, _end_serving)
    try:
        serve_page(ProjectView(project_dir, modules, files), host=host, port=port, token=token, allow_run=False)
    except _ServingEnded:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop.set()  # the daemon ends after its current tick (a run in its thread cannot be interrupted)
        thread.join(timeout=60)


class _ServingEnded(Exception):
    """SIGTERM reached ``serve`` once the page's server had shut down."""


def _end_serving(signum: int, frame: object) -> None:
    raise _ServingEnded


def _now(at: str | None) -> float:
    if at is None:
        return time.time()
    import datetime

    try:
        moment = datetime.datetime.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(f"{at!r} is not an ISO 8601 instant such as 2026-03-29T01:00+01:00",
                                 param_hint="--at") from None
    return moment.timestamp()


_at_option = click.option("--at", default=None, metavar="ISO",
                          help="Evaluate as of this instant instead of now (e.g. to see ticks across a DST change).")


@main.command()
@_at_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
@project_options
@handle_errors
def schedules(at: str | None, as_json: bool, project_dir: Path | None, modules: tuple[str, ...],
              files: tuple[str, ...]) -> None:
    """Schedules: cron, time zone, selection, next ticks (in their time zone), last tick and its run."""
    from assetflow import api

    payload = api.schedules(at=_now(at), project=project_dir, modules=modules, files=files)
    if as_json:
        emit_json(payload)
        return
    _echo_health(payload["daemon"])
    if not payload["schedules"]:
        click.echo("No schedules declared.")
    for row in payload["schedules"]:
        click.echo(f"{row['name']}: {row['cron']!r} {row['timezone'] or 'local time'}, select "
                   f"{' '.join(row['select']) or '(all)'}, catchup={row['catchup']}")
        click.echo(f"  next: {', '.join(t['local'] for t in row['next_ticks'])}")
        _echo_last(row["last_tick"])


def _echo_health(health: dict[str, Any]) -> None:
    from assetflow.cli_render import render_daemon_health

    click.echo(render_daemon_health(health))


def _echo_last(last: dict[str, Any] | None) -> None:
    from assetflow.cli_render import render_last_tick

    click.echo(render_last_tick(last))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
@project_options
@handle_errors
def sensors(as_json: bool, project_dir: Path | None, modules: tuple[str, ...], files: tuple[str, ...]) -> None:
    """Sensors: interval, selection, cursor, next evaluation, last tick and its run."""
    from assetflow import api

    payload = api.sensors(project=project_dir, modules=modules, files=files)
    if as_json:
        emit_json(payload)
        return
    _echo_health(payload["daemon"])
    if not payload["sensors"]:
        click.echo("No sensors declared.")
    for row in payload["sensors"]:
        click.echo(f"{row['name']}: every {row['interval_s']:g}s, select {' '.join(row['select']) or '(its requests)'}, "
                   f"cursor {_shown_cursor(row['cursor'])}; next {row['next_tick']['local']}")
        _echo_last(row["last_tick"])


CURSOR_SHOWN = 80  # characters of a sensor's cursor that ``sensors`` prints (--json has it whole)


def _shown_cursor(cursor: str | None) -> str:
    if cursor is None or len(cursor) <= CURSOR_SHOWN:
        return repr(cursor)
    return f"{cursor[:CURSOR_SHOWN]!r}... ({len(cursor):,} characters; sensors --json has it whole)"


@main.command()
@_at_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
@project_options
@handle_errors
def automation(at: str | None, as_json: bool, project_dir: Path | None, modules: tuple[str, ...],
               files: tuple[str, ...]) -> None:
    """Automated assets: each condition, its verdict now and why, and its last tick."""
    from assetflow import api

    payload = api.automation(at=_now(at), project=project_dir, modules=modules, files=files)
    if as_json:
        emit_json(payload)
        return
    _echo_health(payload["daemon"])
    if not payload["automation"]:
        click.echo("No asset declares automation=.")
    for row in payload["automation"]:
        click.echo(f"{row['asset']}: {row['condition']} -> {'fires' if row['fires'] else 'waits'}: {row['reason']}")
        _echo_last(row["last_tick"])


@main.command()
@click.argument("name", required=False)
@click.option("--limit", default=50, show_default=True, help="How many ticks to list.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
@project_options
@handle_errors
def ticks(name: str | None, limit: int, as_json: bool, project_dir: Path | None, modules: tuple[str, ...],
          files: tuple[str, ...]) -> None:
    """Ticks, newest first (of one schedule, sensor or automated asset if NAME): verdict and reason."""
    from assetflow import api

    rows = api.ticks(name, limit=limit, project=project_dir, modules=modules, files=files)
    if as_json:
        emit_json({"ticks": rows})
        return
    from assetflow.cli_render import render_tick_line

    if not rows:
        click.echo("No ticks yet." if name is None else f"No ticks of {name!r} yet.")
    for row in rows:
        click.echo(render_tick_line(row))
