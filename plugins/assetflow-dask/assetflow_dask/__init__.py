"""assetflow on dask.distributed: ``assetflow materialize --executor dask [--address tcp://host:8786]``.

The coordinator (the ``assetflow`` process) plans, decides and writes the state store;
Dask workers only run ``assetflow.execute.task.compute``: they import the project
(once per worker process, from the project folder, which must be at the same path on
every worker: a shared file system), read inputs and write results through the
storage plugins, and send back the data hash and metadata. A result that arrives
late (after a timeout, or from a task Dask ran again) is never recorded.

Without ``--address`` a ``LocalCluster`` of ``--jobs`` single-threaded worker processes
(default: one per core) is started for the run and closed after it. Its scheduler has
``distributed.scheduler.allowed-failures`` set to 0, so a worker that dies mid-asset
fails that attempt at once and the asset's own ``retries=`` decide what happens next.
Each task is pinned to a worker thread that is free, so a worker never holds a task
queued behind another: a worker that dies, or is killed after a timeout, stops only the
asset it was running. (A timed-out asset on your own cluster is abandoned, not killed:
its result is discarded while the worker thread runs on.)
On your own cluster, the scheduler's setting applies first (Dask's default reruns a
task up to 3 times after worker deaths); set it to 0 there for the same behaviour.

Imports of dask happen only when the executor is built, so merely having this plugin
installed costs assetflow nothing.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, ClassVar, TypeVar

from assetflow.ext import PluginError, ProjectConfig, TaskTimeout, WorkerLost, hookimpl

__all__ = ["DaskExecutor"]
__version__ = "0.1.0"

T = TypeVar("T")
REFRESH_EVERY = 1.0  # seconds between looks at the cluster's workers while tasks are in flight


class _Task:
    __slots__ = ("arg", "fn", "future", "remote", "submitted", "timeout", "worker")

    def __init__(self, fn: Callable[[Any], object], arg: object, timeout: float | None) -> None:
        self.fn = fn
        self.arg = arg
        self.timeout = timeout
        self.future: Future[object] = Future()
        self.remote: Any = None  # the Dask future, once handed to a worker
        self.worker: str | None = None
        self.submitted = 0.0


class DaskExecutor:
    """Runs compute tasks on a dask.distributed cluster (a LocalCluster when no address is given).

    Every task is pinned to a worker with a free thread, counted here, so Dask never
    queues a second task behind a running one: a worker that dies (or is killed after a
    timeout) takes down only the asset it was running, as in the process pool.
    """

    name: ClassVar[str] = "dask"

    def __init__(self, *, jobs: int | None = None, address: str | None = None) -> None:
        try:
            import distributed  # noqa: F401 - checked now: a missing install is a clear error, not a hang
        except ImportError as exc:  # pragma: no cover - the package depends on it
            raise PluginError(f"The dask executor needs dask.distributed: pip install distributed ({exc}).") from exc
        self._jobs = jobs
        self._address = address
        self._client: Any = None
        self._cluster: Any = None
        self._capacity: int | None = None
        self._threads: dict[str, int] = {}  # alive worker address -> threads
        self._pids: dict[str, int] = {}  # our LocalCluster's worker address -> process id
        self._refreshed = 0.0
        self._queue: deque[_Task] = deque()  # waiting for a free worker thread
        self._running: dict[Future[object], _Task] = {}

    # -- connecting -------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        import dask
        from distributed import Client, LocalCluster

        if self._address is None:
            from assetflow.ext import main_module_hidden

            workers = self._jobs or os.cpu_count() or 1
            settings = {"distributed.scheduler.allowed-failures": 0}  # a death fails the attempt: retries= decide
            with dask.config.set(settings), main_module_hidden():
                self._cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                    silence_logs=logging.CRITICAL,  # assetflow reports failures itself
                )
            self._client = Client(self._cluster)
            self._capacity = workers
        else:
            try:
                self._client = Client(self._address, timeout="30s")
            except OSError as exc:
                raise PluginError(
                    f"Cannot reach the Dask scheduler at {self._address}: {exc}. Check --address "
                    f"(e.g. tcp://scheduler:8786) and that the scheduler is running."
                ) from exc
            self._capacity = self._jobs or max(1, sum(self._client.nthreads().values()))
        self._refresh()
        return self._client

    def _refresh(self) -> None:
        """Re-read the alive workers; requeue tasks pinned to a worker that is gone before it ran them."""
        self._threads = dict(self._client.nthreads())
        self._refreshed = time.monotonic()
        if self._cluster is not None:  # our nannies know their worker's process (no call to a busy worker)
            self._pids = {n.worker_address: n.pid for n in list(self._cluster.workers.values())
                          if getattr(n, "worker_address", None) and getattr(n, "pid", None)}
        for task in list(self._running.values()):
            if task.worker not in self._threads and task.remote is not None and task.remote.status == "pending":
                task.remote.cancel()
                task.remote, task.worker = None, None
                self._queue.appendleft(task)
                del self._running[task.future]

    @property
    def capacity(self) -> int:
        """``--jobs``, else the cluster's worker threads (a LocalCluster: one per core)."""
        if self._capacity is None:
            if self._address is None:
                return self._jobs or os.cpu_count() or 1
            self._connect()
        assert self._capacity is not None
        return self._capacity

    # -- the Executor interface -------------------------------------------------------------

    def warm_up(self, project: ProjectConfig, tasks: int) -> None:
        """Start the cluster (if ours) and import the project in every worker, all at once."""
        from assetflow.ext import warm_up

        self._connect().run(warm_up, project)

    def submit(self, fn: Callable[[T], object], arg: T, *, timeout: float | None = None) -> Future[object]:
        self._connect()
        task = _Task(fn, arg, timeout)
        task.future.set_running_or_notify_cancel()
        self._queue.append(task)
        self._dispatch()
        return task.future

    def wait_any(self, futures: Iterable[Future[object]], timeout: float | None = None) -> set[Future[object]]:
        from distributed import wait

        wanted = list(futures)
        limit = None if timeout is None else time.monotonic() + timeout
        looked = False  # remote results are looked at least once: a timeout of 0 collects what has finished
        while True:
            done = {f for f in wanted if f.done()}
            if done:
                return done
            now = time.monotonic()
            if limit is not None and now >= limit and looked:
                return set()
            deadlines = [t.submitted + t.timeout for t in self._running.values() if t.timeout is not None]
            if self._queue or self._running:
                deadlines.append(now + REFRESH_EVERY)  # look for dead, restarted or new workers
            until = min([d for d in (limit, *deadlines) if d is not None], default=None)
            remotes = {t.remote: t for t in self._running.values() if t.remote is not None}
            if remotes and (limit is None or now < limit):  # past the limit: only look at what finished
                try:
                    wait(list(remotes), timeout=None if until is None else max(0.01, until - now),
                         return_when="FIRST_COMPLETED")
                except TimeoutError:
                    pass
            elif until is not None:
                time.sleep(max(0.0, until - now))
            for remote, task in remotes.items():
                if remote.done() and task.future in self._running:
                    self._settle(task)
            now = time.monotonic()
            for task in list(self._running.values()):
                if task.timeout is not None and task.remote is not None and now >= task.submitted + task.timeout:
                    self._expire(task)
            if now - self._refreshed >= REFRESH_EVERY:
                self._refresh()
            self._dispatch()
            looked = True

    def shutdown(self, cancel: bool = False) -> None:
        """Forget running tasks (their results are never recorded) and close what this executor started."""
        remotes = [t.remote for t in self._running.values() if t.remote is not None]
        if self._client is not None and remotes:
            self._client.cancel(remotes, force=True)
        for task in [*self._queue, *self._running.values()]:
            if not task.future.done():
                task.future.set_exception(WorkerLost("the run was stopped while this task ran"))
        self._queue.clear()
        self._running.clear()
        if self._client is not None and self._cluster is None:
            self._release_workers()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _release_workers(self) -> None:
        """Tell your own cluster's workers the run ended, so they drop the tables kept for its inputs
        (up to 256 MB a worker, ``assetflow.ext.run_ended``); a LocalCluster of ours just closes."""
        from assetflow.ext import run_ended

        try:
            self._client.run(run_ended)
        except Exception as exc:  # noqa: BLE001 - a worker gone or unreachable has nothing to drop
            logging.getLogger(__name__).debug("could not tell the workers the run ended: %s", exc)

    def kill_now(self) -> None:
        """A second Ctrl-C: kill the LocalCluster's worker processes without ceremony."""
        if self._cluster is not None:
            for child in multiprocessing.active_children():
                child.kill()

    # -- internals --------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Pin queued tasks to workers with a free thread."""
        busy: dict[str, int] = {}
        for task in self._running.values():
            if task.worker is not None:
                busy[task.worker] = busy.get(task.worker, 0) + 1
        free = [a for a, n in self._threads.items() for _ in range(n - busy.get(a, 0))]
        while self._queue and free:
            task = self._queue.popleft()
            task.worker = free.pop()
            asset = getattr(task.arg, "asset", "task")
            task.remote = self._client.submit(
                task.fn, task.arg, key=f"assetflow-{asset}-{uuid.uuid4().hex[:12]}", pure=False,
                workers=[task.worker], allow_other_workers=False,
            )
            task.submitted = time.monotonic()
            self._running[task.future] = task

    def _settle(self, task: _Task) -> None:
        del self._running[task.future]
        remote = task.remote
        if remote.status == "finished":
            task.future.set_result(remote.result())
            return
        if remote.status == "cancelled":
            task.future.set_exception(WorkerLost("Dask cancelled it"))
            return
        exc = remote.exception()
        if type(exc).__name__ == "KilledWorker":
            task.future.set_exception(WorkerLost(f"its Dask worker died while running it ({exc})"))
        else:
            task.future.set_exception(exc)

    def _expire(self, task: _Task) -> None:
        """Past its deadline: on our own LocalCluster kill its worker (Dask's nanny starts a new one)."""
        del self._running[task.future]
        pid = self._pids.get(task.worker or "")
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._threads.pop(task.worker or "", None)  # not free until Dask reports its replacement
            note = "its Dask worker process was killed and replaced"
        else:
            task.remote.cancel(force=True)
            note = "its Dask worker thread runs on until the function returns; the result is discarded"
        task.future.set_exception(TaskTimeout(f"stopped after {task.timeout:g}s; {note}"))


@hookimpl
def assetflow_executors() -> list[type[DaskExecutor]]:
    return [DaskExecutor]
