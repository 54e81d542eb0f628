"""Executors: where compute tasks run, and how they are found by name.

The interface is deliberately small (submit, wait for any, shut down) so that a
process pool or a Dask cluster can stand behind it without the runner changing.
Executors register through the ``assetflow_executors`` hook, the built-ins too:

- ``processes`` (the default): a pool of warm worker processes on this machine
  (``assetflow.execute.pool``);
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
from typing import ClassVar, Protocol, TypeVar

from assetflow.errors import PluginError
from assetflow.hookspecs import hookimpl

T = TypeVar("T")

DEFAULT_EXECUTOR = "processes"
EXECUTOR_ENV = "ASSETFLOW_EXECUTOR"

__all__ = [
    "DEFAULT_EXECUTOR",
    "Executor",
    "InProcessExecutor",
    "TaskTimeout",
    "WorkerLost",
    "executor_classes",
    "make_executor",
]


class TaskTimeout(TimeoutError):
    """A task ran longer than its timeout and was stopped (its future's exception)."""


class WorkerLost(RuntimeError):
    """The worker running a task died (killed, out of memory, crashed) before answering."""


class Executor(Protocol):
    """Runs compute tasks somewhere. The runner never has more than ``capacity`` in flight.

    - ``submit`` starts ``fn(arg)`` and returns a future of its result. ``fn`` is a
      module-level function and ``arg`` plain picklable data, so both travel to other
      processes or machines by reference and by value. With ``timeout`` (seconds) the
      executor stops the task once it has *run* that long; its future then raises
      ``TaskTimeout``. A task whose worker dies raises ``WorkerLost``.
    - ``wait_any`` blocks until at least one of ``futures`` is done or ``timeout``
      seconds pass, and returns the done ones (possibly none, on timeout).
    - ``shutdown`` releases workers; with ``cancel`` it stops running tasks at once
      (Ctrl-C): their results are never delivered.

    Optional: ``warm_up(project, tasks)`` is called before the first submit of a run
    that will compute ``tasks`` assets, to start workers and import the project early.
    """

    name: ClassVar[str]
    capacity: int

    def submit(self, fn: Callable[[T], object], arg: T, *, timeout: float | None = None) -> Future[object]: ...

    def wait_any(self, futures: Iterable[Future[object]], timeout: float | None = None) -> set[Future[object]]: ...

    def shutdown(self, cancel: bool = False) -> None: ...


class InProcessExecutor:
    """Runs each task immediately in the calling process: simple to debug, no pickling.

    A timeout is enforced with ``SIGALRM`` when running in the main thread (the asset's
    Python code is interrupted; a long call into C returns first); elsewhere it is not.
    """

    name: ClassVar[str] = "inprocess"
    capacity = 1

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


def executor_classes() -> dict[str, type[Executor]]:
    """Every executor the built-ins and installed plugins provide, by name."""
    from assetflow.plugins import plugin_manager

    found: dict[str, type[Executor]] = {}
    for batch in plugin_manager().hook.assetflow_executors():
        for cls in batch:
            if cls.name in found and found[cls.name] is not cls:
                raise PluginError(
                    f"Two plugins provide an executor named {cls.name!r}: "
                    f"{found[cls.name].__module__} and {cls.__module__}. Uninstall one."
                )
            found[cls.name] = cls
    return found


def make_executor(name: str | None = None, *, jobs: int | None = None, address: str | None = None) -> Executor:
    """Build the executor called ``name`` (default: ``$ASSETFLOW_EXECUTOR`` or ``processes``)."""
    chosen = name or os.environ.get(EXECUTOR_ENV) or DEFAULT_EXECUTOR
    if jobs is not None and jobs < 1:
        raise PluginError(f"--jobs must be at least 1; got {jobs}.")
    classes = executor_classes()
    if chosen not in classes:
        hint = " (pip install assetflow-dask)" if chosen == "dask" else ""
        raise PluginError(
            f"No executor named {chosen!r}{hint}; installed: {', '.join(sorted(classes))}. "
            f"Install the plugin that provides it, or fix --executor / ${EXECUTOR_ENV}."
        )
    return classes[chosen](jobs=jobs, address=address)  # type: ignore[call-arg]


@hookimpl
def assetflow_executors() -> list[type[Executor]]:
    from assetflow.execute.pool import ProcessExecutor

    return [InProcessExecutor, ProcessExecutor]
