"""One daemon per project: an flock on ``<state>/daemon.lock`` naming its holder.

The kernel drops an flock when its process dies, even by SIGKILL, so a killed daemon never
blocks the next one. The lock is separate from the run lock (``state.lock``): the daemon
holds it for its whole life and takes the run lock for each run, like any person would.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from assetflow.errors import DaemonRunningError
from assetflow.state.lock import holder_alive

LOCK_FILE = "daemon.lock"


class DaemonLock:
    """An exclusive, process-lifetime lock on a project's automation."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, wait: bool = False, poll: float = 0.2) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    holder = self.holder()
                    os.close(fd)
                    raise DaemonRunningError(
                        f"Another assetflow daemon already automates this project ({self.path}): {holder}. "
                        f"Stop it first (SIGTERM finishes its run cleanly), or pass --wait to take over when "
                        f"it stops.", holder) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}).encode(), 0)
        self._fd = fd

    def holder(self) -> str:
        info: dict[str, object] = {}
        for _ in range(50):  # the holder writes its name just after taking the lock
            try:
                info = json.loads(self.path.read_text() or "{}")
            except (OSError, ValueError):
                info = {}
            if "pid" in info:
                break
            time.sleep(0.01)
        if not info:
            return "unknown holder"
        since = info.get("since")
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(since))) if isinstance(since, int | float) else "?"
        return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, running since {started}"

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # a daemon that stopped names no holder (``running_daemon``)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def running_daemon(folder: Path) -> dict[str, object] | None:
    """The daemon automating the project (``pid``, ``host``, ``since``), read from its lock file without taking the
    lock (a daemon starting at that instant would find it held); None when none runs: the file names no one (a
    daemon empties it as it stops) or a process of this machine that is gone (a killed daemon)."""
    try:
        info = json.loads((folder / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or "pid" not in info or holder_alive(info) is False:
        return None
    return info
