"""The ``assetflow`` command's entry point: a no-op ``materialize`` answers here, before the command line is parsed.

A whole-project ``materialize`` (``--project`` and ``--json`` at most) whose no-op snapshot proves every asset
fresh (``assetflow.fastpath``) needs neither click nor the command-line layer: imported, they were a quarter
of such a run (~25 of ~100 ms at 1,000 assets), the run a data team's scheduler makes most often. Its output
is the full command's, byte for byte: the same text (``all_fresh``) or the same document
(``documents.run_payload``). Any other command line, or a snapshot that cannot vouch, or anything raised
on the way, goes to ``assetflow.cli``, which then reports as it always does.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

__all__ = ["main"]


def main() -> NoReturn:
    """The console script: the no-op answered here, everything else by ``assetflow.cli.main``; then the process
    ends without tearing its heap down (``exit_now``)."""
    try:
        _command()
    except SystemExit as exc:
        exit_now(exc.code)
    exit_now(0)


def _command() -> None:
    plain = _plain_materialize(sys.argv[1:])
    try:
        if plain is not None and _answered(*plain):
            return
    except KeyboardInterrupt:  # as click reports Ctrl-C in the full command
        sys.stderr.write("\nAborted!\n")
        sys.exit(1)
    import assetflow.cli  # noqa: F401 - importing it registers every command on the group
    from assetflow.cli_base import main as full

    full()


def exit_now(code: str | int | None) -> NoReturn:
    """End the command with exit status ``code`` (as ``SystemExit`` takes it) once its output is flushed and the
    ``atexit`` handlers ran, without the interpreter's teardown.

    Python frees every module and object at exit: after a run that loaded a 1,000-asset project, polars and
    the state, ~70 ms of nothing a user can see (a twentieth of a run with one source changed). Everything that
    must happen at exit is an ``atexit`` handler (``weakref.finalize``, logging, multiprocessing, coverage), so
    they run first; the state stores are closed, so each empties its write-ahead log as a clean exit does (a
    read-only command on a full disk can read only a database whose log is empty). A thread that is not a
    daemon is waited for at a normal exit, so with one alive the normal exit is taken; so is it when a store
    cannot be closed here or flushing fails (a closed pipe), for Python to report it as it always does.
    """
    threading = sys.modules.get("threading")
    if threading is not None and any(t.is_alive() and not t.daemon and t is not threading.main_thread()
                                     for t in threading.enumerate()):
        sys.exit(code)
    store = sys.modules.get("assetflow.state.store")
    if store is not None and not store.close_open_stores():  # an empty write-ahead log, as a clean close leaves
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - the normal exit reports it
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code & 0xFF
    else:  # as Python does for sys.exit("message")
        sys.stderr.write(f"{code}\n")
        sys.stderr.flush()
        status = 1
    os._exit(status)


def _plain_materialize(argv: Sequence[str]) -> tuple[Path | None, bool] | None:
    """(project folder or None, --json) for ``materialize [--project DIR] [--json]``, else None."""
    if not argv or argv[0] != "materialize":
        return None
    project: Path | None = None
    as_json = False
    rest = list(argv[1:])
    while rest:
        arg = rest.pop(0)
        if arg == "--json":
            as_json = True
        elif arg == "--project" and rest and not rest[0].startswith("-"):
            project = Path(rest.pop(0))
        elif arg.startswith("--project=") and len(arg) > len("--project="):
            project = Path(arg.split("=", 1)[1])
        else:
            return None
    return project, as_json


def _answered(project: Path | None, as_json: bool) -> bool:
    """Print what ``materialize`` prints when the snapshot proves everything fresh; False when it cannot."""
    try:
        from assetflow.api import fresh_result

        result = fresh_result(project)
        if result is None:
            return False
        if as_json:
            import json

            from assetflow.documents import document, run_payload

            text = json.dumps(document("materialize", run_payload(result)), indent=2, default=str)
        else:
            from assetflow.cli_text import all_fresh

            text = all_fresh(result.results)
    except Exception:  # noqa: BLE001 - the full command runs instead, and reports whatever this was
        return False
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return True

