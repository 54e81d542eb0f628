"""Failpoints: kill the process at a named point of the commit path, for crash testing.

``ASSETFLOW_FAILPOINT=name:n`` makes the ``n``-th hit (1-based, counted per process)
of ``failpoint("name")`` send SIGKILL to the current process: no ``finally`` block, no
atexit handler and no buffered write survives, exactly like a power cut for
everything above the kernel. Several points can be armed at once, comma-separated
(``after_rename:2,after_event:5``). Unset, a failpoint costs one truth test of an
empty dict.

The points (see docs/RELIABILITY.md for what each proves):

``after_data_write``
    a stored value is fully written to its temporary file, not yet renamed into place
``after_rename``
    the value is renamed into place (synced, or listed for the coordinator's one syncfs before it
    records: ``storage.files.deferred_sync``); the state knows nothing yet
``before_state_commit``
    the materialization is inserted in an open state transaction, not yet committed
``after_state_commit``
    the materialization is committed in the state store
``before_publish``
    a checked asset's new version is stored and recorded, not yet checked nor current
``after_checks``
    its checks' verdicts are recorded; the storage is not activated, the pointer not moved
``after_event``
    an event (fresh, cutoff, restored, failed, skipped) was recorded: mid-run bookkeeping
``before_snapshot_write``
    every asset is done; the no-op fast path's snapshot is about to be written

Only the process that reads the variable at import time is armed; child processes
inherit the variable and count their own hits.
"""

from __future__ import annotations

import os
import signal

FAILPOINT_ENV = "ASSETFLOW_FAILPOINT"
POINTS = (
    "after_data_write",
    "after_rename",
    "before_state_commit",
    "after_state_commit",
    "before_publish",
    "after_checks",
    "after_event",
    "before_snapshot_write",
)


def _parse(spec: str | None) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        name, _, count = item.partition(":")
        if name not in POINTS or not (count or "1").isdigit() or int(count or "1") < 1:
            raise ValueError(
                f"{FAILPOINT_ENV}={spec!r}: {item!r} is not NAME[:N] with N >= 1 and NAME one of "
                f"{', '.join(POINTS)}."
            )
        armed[name] = int(count or "1")
    return armed


_armed: dict[str, int] = _parse(os.environ.get(FAILPOINT_ENV))
_hits: dict[str, int] = {}


def failpoint(name: str) -> None:
    """SIGKILL this process if ``name`` is armed and this is its chosen hit; else nothing."""
    if _armed and name in _armed:
        _hit(name)


def _hit(name: str) -> None:
    count = _hits.get(name, 0) + 1
    _hits[name] = count
    if count == _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)


def arm(spec: str | None) -> None:
    """Re-read a failpoint specification (tests in one process); ``None`` disarms all."""
    global _armed
    _armed = _parse(spec)
    _hits.clear()
