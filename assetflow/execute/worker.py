"""A pool worker's side of its pipe: import the project once, then compute the tasks sent, in order.

The coordinator's side is ``assetflow.execute.pool``. A worker answers ("ready",) once the
project is imported, then for each task (id, fn, arg, notify) ("started", id) if asked and
("done", id, ok, value); ``END_RUN`` between two runs of a pool kept for more than one. It may
hold a task sent ahead while it computes another; a thread reads the pipe so the coordinator can
take that one back for an idle worker (``Inbox``).
Only the standard library and ``assetflow.project`` are imported here: the fork server
preloads this module, and it must start no thread of polars', Arrow's or DuckDB's.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from assetflow.project import ProjectConfig

__all__ = ["END_RUN", "Inbox", "serve"]

WATCH_EVERY = 1.0  # seconds between a worker's checks that its coordinator is alive
END_RUN = ("end_run",)  # from a pool kept for more runs (``ProcessExecutor.end_run``): the run ended


def serve(conn: Connection, project: ProjectConfig | None, coordinator: int,
          environ: dict[str, str] | None = None) -> None:
    """A worker's loop. Says ("ready",) once the project is imported, then for each
    (id, fn, arg, notify) received answers ("started", id) if asked and ("done", id, ok, value).
    ``environ`` is set first, before any library reads it (``pool.worker_environ``)."""
    os.environ.update(environ or {})
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    threading.Thread(target=_watch, args=(coordinator,), daemon=True, name="assetflow-watchdog").start()
    if project is not None:
        from assetflow.execute.task import warm_up

        warm_up(project)
    gc.freeze()  # the libraries and the project, imported for good: no collection walks them again
    inbox = Inbox(conn)
    try:
        inbox.send(("ready",))
    except OSError:
        return
    while True:
        message = inbox.next()
        if message is None:
            return  # told to stop, or the coordinator is gone
        if message == END_RUN:  # a kept pool's run ended: drop what was kept for its inputs
            from assetflow.execute.task import run_ended

            run_ended()
            continue
        job_id, fn, arg, notify = message
        if notify:
            inbox.send(("started", job_id))
        try:
            reply: tuple[object, ...] = ("done", job_id, True, fn(arg))
        except BaseException as exc:  # noqa: BLE001 - reported to the coordinator, the worker lives on
            reply = ("done", job_id, False, "".join(traceback.format_exception(exc)))
        try:
            inbox.send(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
            inbox.send(("done", job_id, False, f"cannot send the result back: {exc!r}"))


class Inbox:
    """A worker's end of its pipe: tasks are read as they arrive by a thread of their own.

    So the coordinator can take back a task it sent ahead while this worker still computes
    another (``("retract", id)``, answered ``("retracted", id)`` if it had not started, else
    ``("kept", id)``). Tasks start in the order they were sent.
    """

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sending = threading.Lock()  # the reader answers retracts while the worker sends results
        self._arrived = threading.Condition()
        self._tasks: deque[Any] = deque()  # received, not started; None: stop
        threading.Thread(target=self._read, daemon=True, name="assetflow-inbox").start()

    def send(self, message: tuple[object, ...]) -> None:
        with self._sending:
            self._conn.send(message)

    def next(self) -> Any:
        """The next task to compute (None: stop), waiting for one."""
        with self._arrived:
            while not self._tasks:
                self._arrived.wait()
            return self._tasks.popleft()

    def _read(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                message = None  # the coordinator is gone
            except Exception:  # noqa: BLE001 - a task this process cannot unpickle
                # Waiting for it would hang the run: die, so the pool reports its worker lost (exit 70).
                traceback.print_exc()
                os._exit(70)
            if message is not None and message[0] == "retract":
                with self._arrived:
                    waiting = next((t for t in self._tasks if t is not None and t[0] == message[1]), None)
                    if waiting is not None:
                        self._tasks.remove(waiting)
                try:
                    self.send(("kept" if waiting is None else "retracted", message[1]))
                except OSError:
                    return
                continue
            with self._arrived:
                self._tasks.append(message)
                self._arrived.notify()
            if message is None:
                return


def _watch(coordinator: int) -> None:
    """Exit when the coordinator is gone (killed with SIGKILL), even in the middle of an asset.

    Its result could never be recorded, and an orphaned worker would hold CPU, memory and
    locks for nothing. (An idle worker also notices through its pipe.)
    """
    while True:
        time.sleep(WATCH_EVERY)
        if _gone(coordinator):
            os._exit(1)


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has died, including dead but not yet reaped by its parent (a zombie).

    A caller that kills ``assetflow`` and then reads its output before reaping it
    (``subprocess.run(..., timeout=...)`` does) would otherwise wait for the asset to finish.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False  # no /proc (macOS): a zombie counts as alive until reaped
