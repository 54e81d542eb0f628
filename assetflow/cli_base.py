"""What every ``assetflow`` command shares: the group, the project options, errors to exit codes, --json.

Command modules (cli.py, cli_automation.py) register on ``main`` here, so neither imports
the other to reach it.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from assetflow.cli_stdout import JsonAwareGroup, emit, emit_error
from assetflow.errors import AssetflowError
from assetflow.secrets import redact

F = TypeVar("F", bound=Callable[..., Any])


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
            _fail(_first_error(exc))
        except Exception as exc:
            sqlite3 = sys.modules.get("sqlite3")
            if sqlite3 is None or not isinstance(exc, sqlite3.Error):
                context = click.get_current_context(silent=True)
                emit_error(context.info_name if context else None, exc, redact(str(exc)), 1, with_traceback=True)
                raise
            from assetflow.state.store import state_error  # the state store failed mid-command

            _fail(state_error(None, exc))

    return wrapper  # type: ignore[return-value]


def _fail(exc: AssetflowError) -> None:
    """Say what went wrong on stderr (and, with --json, as the error document on stdout); exit with its code."""
    message = redact(str(exc))
    click.echo(f"Error: {message}", err=True)
    context = click.get_current_context(silent=True)
    emit_error(context.info_name if context else None, exc, message, int(exc.exit_code))
    sys.exit(int(exc.exit_code))


def _first_error(exc: AssetflowError) -> AssetflowError:
    """The earliest assetflow error that ``exc`` was raised while handling (not wrapping).

    E.g. the state store failing while recording an asset, then again while recording the
    run's end: the first names the asset, so it is the one to show.
    """
    first: AssetflowError = exc
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__cause__ is not None:
            current = current.__cause__
            continue
        current = None if current.__suppress_context__ else current.__context__
        if isinstance(current, AssetflowError):
            first = current
    return first


def emit_json(payload: dict[str, Any]) -> None:
    """Every command's --json: ``schema_version`` and ``command`` first (documented in docs/json-schema.md)."""
    from assetflow.documents import document

    context = click.get_current_context(silent=True)
    while context is not None and context.parent is not None and context.parent.parent is not None:
        context = context.parent  # a subcommand's document is its group's: `partitions list` is "partitions"
    emit(json.dumps(document(context.info_name if context else None, payload), indent=2, default=str))


COLLECTOR_THRESHOLDS = (100_000, 20, 20)  # Python's default: (700, 10, 10)


def tune_collector() -> None:
    """Python's cycle collector run less often in an ``assetflow`` process, as mypy does for its own.

    Assessing a project allocates a few objects per asset, none in a cycle, and every few
    hundred allocations the default thresholds walk the young objects, and regularly all of
    them: with 10,000 assets loaded (a daemon, a full ``status``) a full collection took
    0.17-0.2 s of each 0.5 s assessment. Memory is still freed by reference counting; only
    cyclic garbage waits longer. Set for the command's own process, never by the library.
    """
    import gc

    gc.set_threshold(*COLLECTOR_THRESHOLDS)


@click.group(cls=JsonAwareGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="assetflow")
def main() -> None:
    """assetflow: declare data assets in Python; materialize only what changed."""
    tune_collector()
