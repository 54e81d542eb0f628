"""Executors: where compute tasks run, and how they are found by name.

The interface is deliberately small (submit, wait for any, shut down) so that a
process pool or a Dask cluster can stand behind it without the runner changing.
Executors register through the ``assetflow_executors`` hook, the built-ins too, and are
found by name in ``assetflow.plugins``; the contract is ``assetflow.contracts.Executor``:

- ``processes`` (the default): a pool of warm worker processes on this machine
  (``assetflow.execute.pool``);
- ``threads``: tasks run in threads of the calling process (``assetflow.execute.threads``);
- ``inprocess``: each task runs in the calling process, one at a time (for debugging).

``ASSETFLOW_EXECUTOR`` sets the default by name; ``--executor`` overrides it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from typing import ClassVar, TypeVar

from assetflow.contracts import Executor
from assetflow.errors import PluginError, TaskTimeout
from assetflow.hookspecs import hookimpl

T = TypeVar("T")

DEFAULT_EXECUTOR = "processes"
EXECUTOR_ENV = "ASSETFLOW_EXECUTOR"
SMALL_PLAN = 2  # at most this many assets to compute: in this process, not in a worker it would start
# ... or assets whose last runs took at most this long together: about what starting two workers costs
# (a worker's first task also records its warm-up, ~0.2 s, so recorded times run high).
SMALL_WORK_S = 1.0

__all__ = ["DEFAULT_EXECUTOR", "EXECUTOR_ENV", "SMALL_PLAN", "SMALL_WORK_S", "InProcessExecutor", "make_executor",
           "small_work"]


def small_work(durations: Iterable[float | None]) -> bool:
    """Whether computing assets whose last runs took ``durations`` (None: never run) costs less in this
    process than starting workers for them: at most ``SMALL_PLAN`` of them, or all run before and at most
    ``SMALL_WORK_S`` together.

    One changed source in a 100-asset project reruns ~40 assets of a few milliseconds each; two
    workers importing the project and polars cost more than that (1.10 s against 0.84 s in
    process, docs/execution.md). An asset never run before may take any time: workers then.
    """
    durations = list(durations)
    if len(durations) <= SMALL_PLAN:
        return True
    work = 0.0
    for took in durations:
        if took is None:
            return False
        work += max(0.0, took)
        if work > SMALL_WORK_S:
            return False
    return True


class InProcessExecutor:
    """Runs each task immediately in the calling process: simple to debug, no pickling.

    A timeout is enforced with ``SIGALRM`` when running in the main thread (the asset's
    Python code is interrupted; a long call into C returns first); elsewhere it is not.
    """

    name: ClassVar[str] = "inprocess"
    capacity = 1
    shares_host: ClassVar[bool] = True  # its files are on this kernel: the runner syncs them (``deferred_sync``)
    computes_in_submit: ClassVar[bool] = True  # the runner records each result before it submits the next

    def __init__(self, *, jobs: int | None = None, address: str | None = None) -> None:
        if jobs not in (None, 1):
            raise PluginError(
                f"The inprocess executor runs one asset at a time, so --jobs {jobs} cannot apply; "
                f"drop --jobs, or use --executor processes to run {jobs} at once."
            )
        if address is not None:
            raise PluginError("The inprocess executor runs here; --address is for executors that connect to a cluster.")

    def submit(self, fn: Callable[[T], object], arg: T, *, timeout: float | None = None) -> Future[object]:
        future: Future[object] = Future()
        try:
            with _alarm(timeout):
                future.set_result(fn(arg))
        except Exception as exc:  # noqa: BLE001 - handed to the runner through the future
            future.set_exception(exc)  # KeyboardInterrupt and SystemExit propagate: the run stops
        return future

    def wait_any(self, futures: Iterable[Future[object]], timeout: float | None = None) -> set[Future[object]]:
        done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
        return set(done)

    def shutdown(self, cancel: bool = False) -> None:
        return None


@contextmanager
def _alarm(timeout: float | None) -> Iterator[None]:
    if timeout is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise TaskTimeout(f"stopped after its timeout of {timeout:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def make_executor(name: str | None = None, *, jobs: int | None = None, address: str | None = None) -> Executor:
    """Build the executor called ``name`` (default: ``$ASSETFLOW_EXECUTOR`` or ``processes``)."""
    if jobs is not None and jobs < 1:
        raise PluginError(f"--jobs must be at least 1; got {jobs}.")
    return executor_class(name)(jobs=jobs, address=address)  # type: ignore[call-arg]


def executor_class(name: str | None = None) -> type[Executor]:
    """The executor class called ``name`` (default: ``$ASSETFLOW_EXECUTOR`` or ``processes``)."""
    from assetflow.plugins import find

    return find("executor", name or os.environ.get(EXECUTOR_ENV) or DEFAULT_EXECUTOR)  # type: ignore[no-any-return]


def prepare_executor(name: str | None = None) -> Callable[[], None]:
    """Let the executor a run will build start what it can before the run loads the project (an optional
    ``prepare`` classmethod: the process pool starts its fork server), and return what stops it should
    the run end without the executor's own ``shutdown``. An unknown name is left for ``make_executor``."""
    try:
        prepare = getattr(executor_class(name), "prepare", None)
    except PluginError:
        prepare = None
    return prepare() if prepare is not None else _nothing


def _nothing() -> None:
    return None


@hookimpl
def assetflow_executors() -> list[type[Executor]]:
    from assetflow.execute.pool import ProcessExecutor
    from assetflow.execute.threads import ThreadExecutor

    return [InProcessExecutor, ProcessExecutor, ThreadExecutor]
