"""The thread executor: tasks run in threads of the run's own process.

A pool worker is a process that imports polars, pyarrow and the project before its first
task (~0.35 s of CPU each here, and the fork server ~0.15 s): on a plan of a few seconds of
small assets that start-up is a quarter of the run's CPU. A thread starts for nothing, and
reads what another thread stored from memory (``execute.handoff``). What threads do not give
is assets in parallel: each asset's Python holds the GIL, so they pay where the cores are busy
anyway, and the process pool stays the default (docs/execution.md has the figures).

The task code is the same as a pool worker's (``execute.task``): it already serves several
threads of one process, as a Dask worker's do (output capture is per thread, backends that
hold a connection lock it). What threads cannot do is stop: a task past its ``timeout`` is
failed and its result discarded, while its thread runs on to its end, holding its slot.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, ClassVar, NamedTuple, TypeVar

from assetflow.errors import PluginError, TaskTimeout

T = TypeVar("T")

__all__ = ["ThreadExecutor"]


class ThreadExecutor:
    """Runs up to ``jobs`` tasks at once (default: the machine's cores) in threads of this process.

    Its own daemon threads rather than ``concurrent.futures.ThreadPoolExecutor``'s: Python waits for a thread
    that is not a daemon before it exits, so a task its timeout abandoned would hold the command open until the
    call it is stuck in returned, which is what the timeout was set to cut.
    """

    name: ClassVar[str] = "threads"
    shares_host: ClassVar[bool] = True  # this process's files: the runner syncs them in batches
    shares_process: ClassVar[bool] = True  # the runner walks new assets' code itself: threads would not overlap it

    def __init__(self, *, jobs: int | None = None, address: str | None = None) -> None:
        if address is not None:
            raise PluginError("The threads executor runs here; --address is for executors that connect to a cluster.")
        self.capacity = jobs or os.cpu_count() or 1
        self._queue: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[[T], object], arg: T, *, timeout: float | None = None) -> Future[object]:
        if len(self._threads) < self.capacity:
            thread = threading.Thread(target=_serve, args=(self._queue,), daemon=True,
                                      name=f"assetflow-task-{len(self._threads) + 1}")
            thread.start()
            self._threads.append(thread)
        inner: Future[object] = Future()
        self._queue.put(_Task(inner, fn, arg))
        if timeout is None:
            return inner
        outer: Future[object] = Future()
        timer = threading.Timer(timeout, _expire, args=(outer, timeout))
        timer.daemon = True
        timer.start()

        def settle(done: Future[object]) -> None:
            timer.cancel()
            _settle(outer, done)

        inner.add_done_callback(settle)
        return outer

    def wait_any(self, futures: Iterable[Future[object]], timeout: float | None = None) -> set[Future[object]]:
        done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done)

    def shutdown(self, cancel: bool = False) -> None:
        """Let the threads end without waiting for them: the runner has every result it waits for by now, so a
        thread still running is one a timeout abandoned (or, with ``cancel``, one Ctrl-C left). With ``cancel``
        the tasks not started are dropped."""
        if cancel:
            while True:
                try:
                    task = self._queue.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task.future.cancel()
        for _ in self._threads:
            self._queue.put(None)
        self._threads.clear()


class _Task(NamedTuple):
    future: Future[object]
    fn: Callable[[Any], object]
    arg: object


def _serve(tasks: queue.SimpleQueue[_Task | None]) -> None:
    """One thread: run tasks until told to stop (None)."""
    while (task := tasks.get()) is not None:
        if not task.future.set_running_or_notify_cancel():
            continue
        try:
            result = task.fn(task.arg)
        except BaseException as exc:  # noqa: BLE001 - the runner reads it from the future (sys.exit() in an asset too)
            task.future.set_exception(exc)
        else:
            task.future.set_result(result)


def _expire(future: Future[object], timeout: float) -> None:
    """Fail the attempt at its timeout; the thread cannot be stopped, so its result, when it comes, is dropped."""
    try:
        future.set_exception(TaskTimeout(f"a thread cannot be stopped: it runs on and what it returns is discarded "
                                         f"(--executor processes kills the asset at {timeout:g}s instead)"))
    except Exception:  # noqa: BLE001 - settled first by the task itself (InvalidStateError)
        pass


def _settle(outer: Future[object], inner: Future[object]) -> None:
    """Hand the task's outcome on, unless its timeout settled the attempt first."""
    try:
        error = inner.exception()
        if error is not None:
            outer.set_exception(error)
        else:
            outer.set_result(inner.result())
    except Exception:  # noqa: BLE001 - settled first by the timeout (InvalidStateError)
        pass
