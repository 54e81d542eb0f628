"""The ``assetflow`` command's entry point: a no-op ``materialize`` answers here, before the command line is parsed.

A whole-project ``materialize`` (``--project`` and ``--json`` at most) whose no-op snapshot proves every asset
fresh (``assetflow.fastpath``) needs neither click nor the command-line layer: imported, they were a quarter
of such a run (~25 of ~100 ms at 1,000 assets), the run a data team's scheduler makes most often. Its output
is the full command's, byte for byte: the same text (``all_fresh``) or the same document
(``documents.run_payload``). Any other command line, or a snapshot that cannot vouch, or anything raised
on the way, goes to ``assetflow.cli``, which then reports as it always does.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main() -> None:
    """The console script: the no-op answered here, everything else by ``assetflow.cli.main``."""
    plain = _plain_materialize(sys.argv[1:])
    try:
        if plain is not None and _answered(*plain):
            sys.exit(0)
    except KeyboardInterrupt:  # as click reports Ctrl-C in the full command
        sys.stderr.write("\nAborted!\n")
        sys.exit(1)
    import assetflow.cli  # noqa: F401 - importing it registers every command on the group
    from assetflow.cli_base import main as full

    full()


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

