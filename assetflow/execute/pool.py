"""The default executor: a pool of warm worker processes on this machine.

Each worker is started once per run, or once for many runs by a caller that keeps the pool
(``end_run``: the daemon), from a ``forkserver`` (a clean, single-threaded
process, because forking a coordinator that has already started polars', Arrow's or
DuckDB's threads is unsafe), imports the project once (``task._workspace``), and then
runs task after task sent over its own pipe, holding the next one while it computes one
(``QUEUE_DEPTH``) so it never waits for the coordinator to hand it work. No process is
spawned per asset.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot stop one task. Killing
the worker of a timed-out asset breaks that pool and fails every other running task
with it, and when a worker dies (the out-of-memory killer) it cannot say which task
it was running. Here every worker has its own pipe, so the pool knows exactly which
task runs where and since when: a timed-out or lost task fails alone, and its worker
is replaced while the others keep running.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import selectors
import signal
import sys
import time
import types
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

from assetflow.errors import PluginError, RemoteError, TaskTimeout, WorkerLost
from assetflow.execute.worker import END_RUN, serve
from assetflow.project import ProjectConfig

T = TypeVar("T")

START_METHOD_ENV = "ASSETFLOW_START_METHOD"
MAX_STARTUP_DEATHS = 3  # consecutive workers dying before they are ready: give up on the queue
MADE_KEPT = 4096  # results remembered per worker (its kept tables are fewer: bounded by bytes)
# Tasks a worker holds at once: the one it computes and the next, sent ahead so that it starts that
# one the moment it finishes, whenever the coordinator gets the CPU to handle the result.
QUEUE_DEPTH = 2
# Imported once in the fork server, inherited by every worker: assetflow's own modules that a worker uses to load
# the project and store what it computes (~25 ms of CPU a worker when each imported them itself), and only those
# that import no polars, pyarrow, numpy or DuckDB: those start threads, and a fork copies their locks as they are.
_PRELOAD = ["assetflow.execute.worker", "assetflow.execute.task", "assetflow.storage.base", "assetflow.project",
            "assetflow.workspace", "assetflow.graph", "assetflow.plan", "assetflow.state.store",
            "assetflow.fingerprint.code", "assetflow.fingerprint.source", "assetflow.checks", "assetflow.conditions",
            "assetflow.plugins", "assetflow.storage.files", "assetflow.storage.formats", "assetflow.storage.table",
            "assetflow.storage.values", "assetflow.storage.parquet"]
# The BLAS library numpy loads (OpenBLAS, MKL, Accelerate; pyarrow imports numpy) starts a thread per core
# that spins at load: ~70 ms of CPU in each worker here, a tenth of a small run's, and in a pool that fills
# the cores already, threads that oversubscribe them. Each worker gets cores // workers of them (as joblib's
# and Dask's workers do), unless the user set any of these or OMP_NUM_THREADS, which OpenBLAS also reads.
BLAS_THREADS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_prepared = False  # the fork server was started ahead of a run (``ProcessExecutor.prepare``) and still runs
# The pools of this process whose workers may live: the fork server (one a process) is theirs too, and it
# stays up while any worker it forked does, so it is stopped only once none is left (``shutdown``).
_LIVE_POOLS: weakref.WeakSet[ProcessExecutor] = weakref.WeakSet()


class _Job:
    __slots__ = ("arg", "deadline", "fn", "future", "id", "retracting", "timeout")

    def __init__(self, job_id: int, fn: Callable[[Any], object], arg: object, timeout: float | None) -> None:
        self.id = job_id
        self.fn = fn
        self.arg = arg
        self.timeout = timeout
        self.deadline: float | None = None  # monotonic; set when the worker says it started
        self.retracting = False  # asked back from the worker it was sent ahead to (``_take_back_for_idle``)
        self.future: Future[object] = Future()


class _Worker:
    """One worker process and the coordinator's end of its pipe, and what its tasks made
    (a result's ``made``: the worker may still hold that value in memory, ``execute.handoff``)."""

    def __init__(self, context: Any, project: ProjectConfig | None, environ: dict[str, str]) -> None:
        self.made: dict[object, None] = {}  # insertion-ordered, the last MADE_KEPT results' ``made``
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=serve, args=(child, project, os.getpid(), environ), daemon=True,
                                       name="assetflow-worker")
        with main_module_hidden():
            self.process.start()
        child.close()
        self.jobs: deque[_Job] = deque()  # sent to it, in order: the first one it computes, the others wait

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """Start a worker without re-running the caller's ``__main__`` in it.

    ``spawn`` and ``forkserver`` re-import the main script in each child unless it is
    guarded by ``if __name__ == "__main__"``; a notebook or a script calling
    ``assetflow.materialize`` at top level would then run again in every worker. Workers
    need nothing from ``__main__``: tasks name ``assetflow`` functions, and the project is
    imported from its modules.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _hits(worker: _Worker, arg: object) -> int:
    return len(worker.made.keys() & getattr(arg, "reads", ()))


def worker_environ(workers: int) -> dict[str, str]:
    """What a worker adds to its environment before it imports anything: its share of BLAS threads
    (``BLAS_THREADS_ENV``), or nothing when the user chose."""
    if any(name in os.environ for name in (*BLAS_THREADS_ENV, "OMP_NUM_THREADS")):
        return {}
    return dict.fromkeys(BLAS_THREADS_ENV, str(max(1, (os.cpu_count() or 1) // max(1, workers))))


def _context() -> Any:
    """The multiprocessing context workers start from (``ASSETFLOW_START_METHOD``), a fork server's set to
    preload ``_PRELOAD``."""
    method = _start_method()
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(_PRELOAD)
    return context


def _start_method() -> str:
    method = os.environ.get(START_METHOD_ENV, "forkserver")
    if method not in multiprocessing.get_all_start_methods():
        raise PluginError(
            f"{START_METHOD_ENV}={method!r} is not a start method here; use one of "
            f"{', '.join(multiprocessing.get_all_start_methods())}."
        )
    return method


class ProcessExecutor:
    """Runs tasks in up to ``jobs`` warm worker processes (default: one per core).

    Workers start on demand: one when a task waits and no worker is free, up to
    ``jobs``. A starting worker takes tasks only once it has imported the project, so a
    small run is not held up by a worker that is still starting while another is free.
    """

    name: ClassVar[str] = "processes"
    shares_host: ClassVar[bool] = True  # workers are this host's processes: the runner syncs their files
    queue_depth: ClassVar[int] = QUEUE_DEPTH  # tasks in flight per worker (the runner keeps them supplied)

    def __init__(self, *, jobs: int | None = None, address: str | None = None) -> None:
        if address is not None:
            raise PluginError(
                "The processes executor runs on this machine; --address is for executors that "
                "connect to a cluster, e.g. --executor dask."
            )
        self.capacity = jobs or os.cpu_count() or 1
        self._context = _context()
        self._project: ProjectConfig | None = None
        self._environ = worker_environ(self.capacity)
        self._starting: list[_Worker] = []  # importing the project; not yet ready for tasks
        self._ready: list[_Worker] = []  # take tasks, up to ``queue_depth`` each
        self._queue: deque[_Job] = deque()  # submitted, waiting for a ready worker
        self._ids = itertools.count()
        self._startup_deaths = 0
        self.started_workers = 0
        # ``_free()`` as of the last call that could change it: the runner scores up to 32 waiting
        # tasks (``affinity``) between two calls, and each rebuilt the list (O(workers) each).
        self._free_now: list[_Worker] | None = None
        # The pipes and process sentinels ``_poll`` waits on, kept while the workers watched stay the same:
        # building a selector for each wait cost ~1 us a worker, and the coordinator waits once a result.
        self._watched: tuple[_Worker, ...] = ()
        self._selector: selectors.BaseSelector | None = None

    # -- the Executor interface -------------------------------------------------------------

    @classmethod
    def prepare(cls) -> Callable[[], None]:
        """Start the fork server now, before the run loads the project, so that its imports (the ``_PRELOAD``
        modules: no polars, no pyarrow) overlap that load instead of holding up the first worker's start
        (~90 ms here). The pool's ``shutdown`` stops it, workers started or not; the function returned stops
        it if no pool did (a run that failed before it built one)."""
        global _prepared
        if _context().get_start_method() == "forkserver":
            from multiprocessing import forkserver

            forkserver.ensure_running()
            _prepared = True
        return release_prepared

    def warm_up(self, project: ProjectConfig, tasks: int) -> None:
        """Start up to ``tasks`` workers now, so they import the project while the run plans."""
        self._project = project
        self._free_now = None
        while self._workers() < min(self.capacity, tasks):
            self._starting.append(self._spawn())

    def submit(self, fn: Callable[[T], object], arg: T, *, timeout: float | None = None) -> Future[object]:
        self._free_now = None
        job = _Job(next(self._ids), fn, arg, timeout)
        job.future.set_running_or_notify_cancel()
        self._queue.append(job)
        self._dispatch()
        return job.future

    def wait_any(self, futures: Iterable[Future[object]], timeout: float | None = None) -> set[Future[object]]:
        self._free_now = None
        wanted = list(futures)
        limit = None if timeout is None else time.monotonic() + timeout
        polled = False  # the pipes are read at least once: a timeout of 0 collects what has finished
        while True:
            done = {f for f in wanted if f.done()}
            if done:
                return done
            now = time.monotonic()
            if limit is not None and now >= limit and polled:
                return set()
            deadlines = [w.jobs[0].deadline for w in self._holding() if w.jobs[0].deadline]
            until = min([d for d in (limit, *deadlines) if d is not None], default=None)
            self._poll(None if until is None else max(0.0, until - now))
            polled = True

    def affinity(self, arg: object) -> int:
        """How many of the inputs ``arg`` reads the free worker holding most of them made.

        A task says what it reads (``reads``) and its result what it made (``made``): a
        ``ComputeTask`` and its ``ComputeResult`` do. The runner submits, of the tasks ready,
        the one scoring highest, and ``_dispatch`` sends it to that worker, so a task runs where
        its inputs were made and the worker hands them over from memory instead of reading
        files (``execute.handoff``).
        """
        if not getattr(arg, "reads", ()):  # reads no stored version (sources only): no worker holds any of it
            return 0
        if self._free_now is None:  # the workers change only in the calls that clear it
            self._free_now = self._free()
        return max([_hits(worker, arg) for worker in self._free_now], default=0)

    def _free(self) -> list[_Worker]:
        """The ready workers with room for a task, the least loaded only: a worker with nothing to
        compute gets a task before another is sent a second one to hold."""
        least = min((len(worker.jobs) for worker in self._ready), default=self.queue_depth)
        if least >= (1 if self._starting else self.queue_depth):  # a starting worker will take the next task
            return []
        return [w for w in self._ready if len(w.jobs) == least]

    def _best_free(self, arg: object, free: list[_Worker]) -> _Worker:
        """Of ``free``, the worker that made most of what ``arg`` reads (the last one on a tie)."""
        hits = [_hits(worker, arg) for worker in free]
        best = max(hits)
        return free[len(hits) - 1 - hits[::-1].index(best)]

    def end_run(self) -> None:
        """Keep the workers for another run, dropping what they kept for this one's inputs.

        For a caller that runs again soon in the same process (the daemon keeps its pool between
        ticks, docs/automation.md): its next run skips starting workers, importing polars and
        the project. Their kept tables (``execute.handoff``) are dropped as a run's end drops them
        in any process, so an idle worker holds no data; the pool forgets what each made.
        """
        self._free_now = None
        for worker in list(self._ready):
            worker.made.clear()
            try:
                worker.conn.send(END_RUN)
            except OSError:  # gone while idle: replaced when a task needs it
                self._retire(worker)

    def shutdown(self, cancel: bool = False) -> None:
        """Stop every worker; with ``cancel`` kill busy ones at once instead of letting them finish."""
        self._free_now = None
        for job in self._queue:
            job.future.cancel()
        self._queue.clear()
        for worker in self._starting:
            worker.process.kill()  # it has done nothing yet: no need to let it finish importing
        busy = self._holding()
        for worker in self._ready if not cancel else [w for w in self._ready if not w.jobs]:
            try:
                worker.conn.send(None)  # read after the tasks it holds
            except OSError:
                pass
        if cancel:
            for worker in busy:
                worker.process.kill()
        for worker in [*self._starting, *self._ready]:
            worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()
            for job in worker.jobs:
                if not job.future.done():
                    job.future.set_exception(WorkerLost("the run was stopped while this task ran"))
        self._starting.clear()
        self._ready.clear()
        self._close_selector()
        _LIVE_POOLS.discard(self)
        if _LIVE_POOLS:  # another pool's workers live: stopping the fork server would wait for them to end
            return
        if self.started_workers:
            _stop_helpers()
        release_prepared()

    def kill_now(self) -> None:
        """Kill every worker at once, without waiting (a second Ctrl-C)."""
        for worker in [*self._starting, *self._ready]:
            try:
                os.kill(worker.process.pid, signal.SIGKILL)
            except (ProcessLookupError, TypeError):
                pass

    # -- internals --------------------------------------------------------------------------

    def _holding(self) -> list[_Worker]:
        """The ready workers computing a task (and perhaps holding the next)."""
        return [worker for worker in self._ready if worker.jobs]

    def _workers(self) -> int:
        return len(self._starting) + len(self._ready)

    def _spawn(self) -> _Worker:
        self.started_workers += 1
        _LIVE_POOLS.add(self)
        return _Worker(self._context, self._project, self._environ)

    def _dispatch(self) -> None:
        """Hand queued jobs to ready workers with room; start workers for what is left, up to capacity."""
        while self._queue:
            free = self._free()
            if not free:
                break
            worker = self._best_free(self._queue[0].arg, free)
            if not worker.jobs and not worker.process.is_alive():  # died while idle (killed from outside)
                self._ready.remove(worker)
                worker.kill()
                continue
            job = self._queue.popleft()
            try:
                worker.conn.send((job.id, job.fn, job.arg, job.timeout is not None))
            except OSError:  # its pipe is closed: the worker is gone; the task goes to another
                self._queue.appendleft(job)
                self._lost(worker)
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. an argument that cannot be pickled
                job.future.set_exception(exc)
                continue
            worker.jobs.append(job)
        self._take_back_for_idle()
        while len(self._queue) > len(self._starting) and self._workers() < self.capacity:
            self._starting.append(self._spawn())

    def _take_back_for_idle(self) -> None:
        """With nothing queued and a worker idle, ask for a task sent ahead to a busy one back.

        A task sent ahead waits for the one its worker computes, which may take minutes while
        another worker has nothing to do. The worker's inbox gives it back if it has not started
        it (``("retracted", id)``); ``_receive`` then queues it for the idle worker.
        """
        if self._queue or self._starting:
            return
        idle = sum(1 for worker in self._ready if not worker.jobs)
        for worker in self._ready:
            if idle == 0:
                return
            if len(worker.jobs) > 1 and not worker.jobs[-1].retracting:
                worker.jobs[-1].retracting = True
                try:
                    worker.conn.send(("retract", worker.jobs[-1].id))
                except OSError:
                    continue  # gone: ``_poll`` sees it and queues the task again
                idle -= 1

    def _poll(self, timeout: float | None) -> None:
        """Wait for messages or worker deaths; handle them, then any expired deadline."""
        watched = (*self._starting, *self._holding())  # an idle worker sends nothing; its death shows at dispatch
        if not watched:
            if timeout:
                time.sleep(timeout)
            return
        for key, _ in self._selector_for(watched).select(timeout):
            worker, is_pipe = key.data
            if worker.conn.closed:
                continue  # already retired through its other handle
            if is_pipe or worker.conn.poll():
                self._receive(worker)
            else:
                self._lost(worker)
        now = time.monotonic()
        for worker in self._holding():
            job = worker.jobs[0]
            if job.deadline is not None and now >= job.deadline:
                self._requeue(self._retire(worker)[1:])
                job.future.set_exception(TaskTimeout(f"stopped after {job.timeout:g}s; "
                                                     f"its worker process was killed and replaced"))
        self._dispatch()

    def _selector_for(self, watched: tuple[_Worker, ...]) -> selectors.BaseSelector:
        """A selector on the pipe and the process sentinel of each of ``watched``: the last one if it
        watched the same workers (a busy pool's usual case), else a new one."""
        if self._selector is None or watched != self._watched:
            self._close_selector()
            self._selector = selectors.DefaultSelector()
            for worker in watched:
                self._selector.register(worker.conn, selectors.EVENT_READ, (worker, True))
                self._selector.register(worker.process.sentinel, selectors.EVENT_READ, (worker, False))
            self._watched = watched
        return self._selector

    def _close_selector(self) -> None:
        if self._selector is not None:
            self._selector.close()
        self._selector, self._watched = None, ()

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        kind = message[0]
        if kind == "ready":
            self._startup_deaths = 0
            self._starting.remove(worker)
            self._ready.append(worker)
            return
        if kind in ("retracted", "kept"):  # the answer to a retract: given back, or started already
            job = next((j for j in worker.jobs if j.id == message[1]), None)
            if job is None:  # "kept", and already done: the answer came after its result
                return
            job.retracting = False
            if kind == "retracted":
                worker.jobs.remove(job)
                self._requeue([job])
            return
        assert worker.jobs and worker.jobs[0].id == message[1]  # a worker takes its tasks in the order sent
        job = worker.jobs[0]
        if kind == "started":
            job.deadline = time.monotonic() + (job.timeout or 0.0)
            return
        _, _, ok, payload = message
        worker.jobs.popleft()
        if ok:
            made = getattr(payload, "made", None)
            if made is not None:
                worker.made[made] = None
                if len(worker.made) > MADE_KEPT:
                    del worker.made[next(iter(worker.made))]
            job.future.set_result(payload)
        else:
            job.future.set_exception(RemoteError(str(payload)))

    def _lost(self, worker: _Worker) -> None:
        """A worker died: fail the task it was computing with how it died (the ones it held next go
        back to the queue: they never started); it is replaced on demand."""
        starting = worker in self._starting
        jobs = self._retire(worker)
        if starting:
            self._startup_deaths += 1
            if self._startup_deaths >= MAX_STARTUP_DEATHS:
                for queued in self._queue:
                    queued.future.set_exception(WorkerLost(
                        f"{self._startup_deaths} worker processes died while starting (last exit code "
                        f"{worker.process.exitcode}); try --executor inprocess to see why"))
                self._queue.clear()
        if not jobs:
            return
        self._requeue(jobs[1:])
        code = worker.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {-code} ({signal.Signals(-code).name})"
            except ValueError:
                how = f"was killed by signal {-code}"
            if -code == signal.SIGKILL:
                how += ", e.g. by the out-of-memory killer"
        else:
            how = f"exited with code {code}"
        jobs[0].future.set_exception(WorkerLost(f"its worker process (pid {worker.process.pid}) {how}"))

    def _requeue(self, jobs: list[_Job]) -> None:
        """Put tasks a worker held but never started (it died, timed out or gave them back) at the head
        of the queue, in order."""
        for job in jobs:
            job.retracting = False
        self._queue.extendleft(reversed(jobs))

    def _retire(self, worker: _Worker) -> list[_Job]:
        """Kill a worker and forget it, returning the tasks it held (``_dispatch`` starts a replacement
        when work needs one)."""
        jobs = list(worker.jobs)
        worker.jobs.clear()
        for group in (self._starting, self._ready):
            if worker in group:
                group.remove(worker)
        worker.kill()
        return jobs


def release_prepared() -> None:
    """Stop the fork server ``ProcessExecutor.prepare`` started, if no pool has stopped it since (a run that
    computed nothing, or computed in process). It is killed: it has forked no worker, holds nothing, and would
    otherwise finish its imports before it noticed (a small run would wait for them)."""
    global _prepared
    if _prepared:
        _prepared = False
        _stop_helpers()


def _stop_helpers() -> None:
    """Stop the fork server and resource tracker multiprocessing started, so no process outlives the run.

    Both are private singletons of ``multiprocessing``; a later run simply starts them again. The fork server is
    killed first: every worker it forked has ended, it holds nothing, and waiting for it to exit on its own (its
    interpreter freeing the modules it preloaded) was ~20 ms at the end of every run with workers.
    """
    from multiprocessing import forkserver, resource_tracker

    server_pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)
    if server_pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server_pid, signal.SIGKILL)
    for helper in (getattr(forkserver, "_forkserver", None), getattr(resource_tracker, "_resource_tracker", None)):
        stop = getattr(helper, "_stop", None)
        if stop is not None:
            try:
                stop()
            except (OSError, ChildProcessError):  # already gone
                pass
