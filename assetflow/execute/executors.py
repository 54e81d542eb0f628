"""Executors: where compute tasks run. The in-process one runs each task on submit.

The interface is deliberately small (submit, wait for any, shut down) so that a
process pool or a Dask cluster can stand behind it without the runner changing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Protocol, TypeVar

T = TypeVar("T")


class Executor(Protocol):
    def submit(self, fn: Callable[[T], object], arg: T) -> Future[object]: ...

    def wait_any(self, futures: Iterable[Future[object]]) -> set[Future[object]]: ...

    def shutdown(self) -> None: ...


class InProcessExecutor:
    """Runs each task immediately in the calling process: simple to debug, no pickling."""

    name = "inprocess"

    def submit(self, fn: Callable[[T], object], arg: T) -> Future[object]:
        future: Future[object] = Future()
        try:
            future.set_result(fn(arg))
        except BaseException as exc:  # noqa: BLE001 - handed to the runner through the future
            future.set_exception(exc)
        return future

    def wait_any(self, futures: Iterable[Future[object]]) -> set[Future[object]]:
        done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
        return set(done)

    def shutdown(self) -> None:
        return None
