"""The project lock: one materialization at a time per project, held with flock.

The kernel releases an flock when its process dies, even by SIGKILL, so a crashed
run never leaves the project locked.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path

from assetflow.errors import ProjectLockedError
from assetflow.state.folder import ensure_state_folder, os_error

LOCK_FILE = "lock"


class ProjectLock:
    """An exclusive lock on a project's state folder."""

    def __init__(self, folder: Path) -> None:
        ensure_state_folder(folder)
        self.path = folder / LOCK_FILE
        self._fd: int | None = None
        self._info: dict[str, object] = {}

    def acquire(self, run_id: str, wait: bool = False, timeout: float | None = None) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise os_error(self.path, exc, "open the project lock") from exc
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or (deadline is not None and time.monotonic() > deadline):
                    holder = self.holder()
                    os.close(fd)
                    raise ProjectLockedError(
                        f"Another assetflow run holds the lock on this project ({self.path}): {holder}. "
                        f"Wait for it to finish, or queue behind it: --wait on the command line, wait=True from Python."
                    ) from None
                time.sleep(0.05)
        self._info = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id, "since": time.time()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(self._info).encode(), 0)
        except OSError as exc:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise os_error(self.path, exc, "write the project lock") from exc
        self._fd = fd

    def holder(self) -> str:
        info: dict[str, object] = {}
        for _ in range(50):  # the holder writes its name just after taking the lock: give it a moment
            try:
                info = json.loads(self.path.read_text() or "{}")
            except (OSError, ValueError):
                info = {}
            if "pid" in info:
                break
            time.sleep(0.01)
        if not info:
            return "unknown holder"
        return f"run {info.get('run_id', '?')} (pid {info.get('pid', '?')} on {info.get('host', '?')})"

    def note_running(self, names: Iterable[str]) -> None:
        """Say in the lock file which assets are computing now, for ``status`` (best effort, no fsync)."""
        if self._fd is None:
            return
        text = json.dumps({**self._info, "running": sorted(names)}).encode()
        try:
            os.pwrite(self._fd, text, 0)
            os.ftruncate(self._fd, len(text))
        except OSError:
            pass  # a full disk: status then does not know what runs; the run itself is unaffected

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def running_now(folder: Path, running_runs: Iterable[str]) -> tuple[str, list[str]] | None:
    """(run id, assets computing now) if the run named in the lock file is alive; else None.

    Alive: the state says the run is running (``running_runs``), and its process exists on
    this machine. A run killed mid-asset leaves the lock file behind, but not a live process.
    """
    info = _holder_info(folder)
    if info is None or info.get("run_id") not in set(running_runs) or holder_alive(info) is not True:
        return None
    running = info.get("running", [])
    return str(info["run_id"]), [str(n) for n in running] if isinstance(running, list) else []


def gone_from_lock(folder: Path, run_ids: Iterable[str]) -> set[str]:
    """Of these runs (recorded running), those that no longer hold the lock, read from the lock file alone:
    another holder took it since (each writes its name on taking it), or this machine's process named in it
    is gone. Never takes the lock (a run starting at that instant would find it held). None of them when
    the file cannot be read or names a process of another machine: then it cannot be told."""
    info = _holder_info(folder)
    if info is None:
        return set()
    holder = info.get("run_id")
    return {run_id for run_id in run_ids if run_id != holder or holder_alive(info) is False}


def _holder_info(folder: Path) -> dict[str, object] | None:
    """What the last holder wrote in the lock file, or None when it cannot be read."""
    try:
        info = json.loads((folder / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def holder_alive(info: dict[str, object]) -> bool | None:
    """Whether the lock file's process exists: None when it cannot be told (another machine, no pid)."""
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def lock_is_held(folder: Path) -> bool:
    """Whether a process holds the lock of the state folder now (``doctor`` reports it, never waits)."""
    path = folder / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return False
