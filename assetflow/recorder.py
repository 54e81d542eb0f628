"""What user code declares while a project is imported, collected in declaration order.

Assets, checks, schedules and sensors are declared by decorators and calls at module level.
A module's variables keep only the last object bound to a name, so the loader cannot find
everything by scanning modules (a second ``def orders`` replaces the first); each kind of
declaration notes itself in a ``Recorder`` instead, which the loader opens around the import.
A context variable, not a global list, so projects imported in two threads do not mix.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Recorder(Generic[T]):
    """A list of declarations that is open while ``recording()`` is, and None (ignored) outside it."""

    def __init__(self, name: str) -> None:
        self._current: contextvars.ContextVar[list[T] | None] = contextvars.ContextVar(name, default=None)

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[T]]:
        declared: list[T] = []
        token = self._current.set(declared)
        try:
            yield declared
        finally:
            self._current.reset(token)

    def note(self, item: T) -> T:
        """Record ``item`` when a recording is open (a declaration outside a project load is not collected)."""
        record = self._current.get()
        if record is not None:
            record.append(item)
        return item
