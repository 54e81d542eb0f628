"""With ``--json``, stdout carries exactly one JSON document, whatever else happens.

While a command runs with ``--json`` (or ``--format json``), everything that would reach
stdout goes to stderr instead: ``print()`` at a project module's import, an asset run in
this process, a library's chatter, and (when stdout is a real file descriptor) what C code
or child processes write to descriptor 1. The command's document is held back and printed
on the real stdout when the command ends. If the command fails, that document is the
``error`` document of docs/json-schema.md, carrying the exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import click

_documents: list[str] | None = None  # held back while guarded; None when not guarded


def wants_json(args: Sequence[str]) -> bool:
    """Whether a command line asks for JSON on stdout."""
    args = list(args[: args.index("--")] if "--" in args else args)
    return "--json" in args or "--format=json" in args or any(
        a == "--format" and b == "json" for a, b in zip(args, args[1:]))


@contextlib.contextmanager
def json_only_stdout() -> Iterator[None]:
    """Send everything but the held-back documents to stderr until the block ends, then print them."""
    global _documents
    if _documents is not None:  # already guarded (a command invoking another)
        yield
        return
    _documents = []
    stdout = sys.stdout
    saved_fd = _point_fd1_at_stderr(stdout)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stdout = stdout
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)
        documents, _documents = _documents, None
        for text in documents[:1]:  # one document: the command's, or its error
            stdout.write(text + "\n")
        stdout.flush()


def _point_fd1_at_stderr(stdout: Any) -> int | None:
    """Point descriptor 1 at stderr if ``stdout`` is it; return a copy of the original to restore."""
    try:
        if stdout.fileno() != 1:
            return None
        stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)
        return saved
    except (AttributeError, OSError, ValueError):  # not a real file (click's test runner, a notebook)
        return None


def emit(text: str) -> None:
    """Print one JSON document: held back while guarded, else at once."""
    if _documents is None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        _documents.append(text)


def emit_error(command: str | None, exc: BaseException, message: str, exit_code: int,
               with_traceback: bool = False) -> None:
    """The ``error`` document for a command that failed, when its stdout is JSON; else nothing."""
    if _documents is None:
        return
    from assetflow.documents import document
    from assetflow.secrets import redact

    if with_traceback:
        import traceback  # an error's path only: not on every command's start-up

        tb: str | None = redact("".join(traceback.format_exception(exc)))
    else:
        tb = None
    emit(json.dumps(document("error", {"error": {
        "type": type(exc).__name__, "message": message, "traceback": tb, "exit_code": int(exit_code),
        "command": command}}), indent=2, default=str))


def guarded() -> bool:
    return _documents is not None


class JsonAwareGroup(click.Group):
    """A click group whose commands, with ``--json``, print one document only on stdout.

    Usage errors found by click (a bad option value, an unknown command) become the
    ``error`` document too.
    """

    def main(self, args: Any = None, *rest: Any, **options: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not wants_json(argv):
            return super().main(argv, *rest, **options)
        with json_only_stdout():
            return super().main(argv, *rest, **options)

    def make_context(self, *args: Any, **options: Any) -> click.Context:
        with _click_errors_as_json(None):
            return super().make_context(*args, **options)

    def invoke(self, ctx: click.Context) -> Any:
        with _click_errors_as_json(ctx):
            return super().invoke(ctx)


@contextlib.contextmanager
def _click_errors_as_json(ctx: click.Context | None) -> Iterator[None]:
    try:
        yield
    except click.ClickException as exc:
        emit_error(ctx.invoked_subcommand if ctx else None, exc, exc.format_message(), exc.exit_code)
        raise
