"""Capturing what an asset prints and logs while it runs, wherever it runs.

``captured()`` wraps one asset's computation: ``print()``, writes to ``sys.stdout`` /
``sys.stderr`` and ``logging`` records (INFO and up, from any logger that propagates to
the root) made *by the computing thread* go into that asset's log instead of the
process's streams. The text travels back with the compute result and the coordinator
keeps it in the state folder (``assetflow.state.logs``), so a ``print()`` in an asset never
mixes into ``materialize --json``.

Routing is per thread because several assets may run at once in one process (a Dask
worker's threads) and the coordinator's own threads (the progress display) keep writing
to the real streams meanwhile. Output written by threads the asset starts, or straight to
file descriptor 1 by C code or subprocesses, is not captured here; the CLI points file
descriptor 1 at stderr while it prints JSON (``assetflow.cli``), so it cannot reach stdout.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

MAX_LOG_CHARS = 1_000_000  # per attempt: the first and the last half are kept, the middle is cut
_local = threading.local()
_install_lock = threading.Lock()
_active = 0  # captures running in this process
_saved: dict[str, Any] = {}


class LogSink:
    """The text one asset wrote: bounded, keeping its beginning and its end."""

    def __init__(self, limit: int = MAX_LOG_CHARS) -> None:
        self._half = limit // 2
        self._head: list[str] = []
        self._head_len = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_len = 0
        self._cut = 0

    def write(self, text: str) -> None:
        if self._head_len < self._half:
            room = self._half - self._head_len
            self._head.append(text[:room])
            self._head_len += min(room, len(text))
            text = text[room:]
        if not text:
            return
        self._tail.append(text)
        self._tail_len += len(text)
        while self._tail_len - len(self._tail[0]) >= self._half:
            dropped = self._tail.popleft()
            self._tail_len -= len(dropped)
            self._cut += len(dropped)

    def text(self) -> str:
        middle = f"\n[... {self._cut:,} characters of output left out ...]\n" if self._cut else ""
        return "".join(self._head) + middle + "".join(self._tail)


class _Router(io.TextIOBase):
    """Stands in for ``sys.stdout`` / ``sys.stderr``: a capturing thread's writes go to its sink."""

    def __init__(self, original: TextIO) -> None:
        self.original = original

    def write(self, text: str) -> int:
        sink: LogSink | None = getattr(_local, "sink", None)
        if sink is None:
            return self.original.write(text)
        sink.write(text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, "sink", None) is None:
            self.original.flush()

    def isatty(self) -> bool:
        return getattr(_local, "sink", None) is None and self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


class _Handler(logging.Handler):
    """A root handler that writes the records of capturing threads to their sinks."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(_local, "sink", None) is not None

    def emit(self, record: logging.LogRecord) -> None:
        sink: LogSink | None = getattr(_local, "sink", None)
        if sink is not None:
            try:
                sink.write(self.format(record) + "\n")
            except Exception:  # noqa: BLE001 - logging must never fail the asset
                self.handleError(record)


_HANDLERS: list[_Handler] = []


def _handler() -> _Handler:
    """One handler per process, made once (a run captures once per asset)."""
    if not _HANDLERS:
        _HANDLERS.append(_Handler())
    return _HANDLERS[0]


def _install() -> None:
    global _active
    with _install_lock:
        _active += 1
        if _active > 1:
            return
        root = logging.getLogger()
        handler = _handler()
        _saved.update(stdout=sys.stdout, stderr=sys.stderr, level=root.level, handler=handler)
        sys.stdout = _Router(sys.stdout)  # type: ignore[assignment]
        sys.stderr = _Router(sys.stderr)  # type: ignore[assignment]
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)


def _uninstall() -> None:
    global _active
    with _install_lock:
        _active -= 1
        if _active > 0:
            return
        root = logging.getLogger()
        root.removeHandler(_saved["handler"])
        if root.level == logging.INFO:
            root.setLevel(_saved["level"])
        # Put back the streams we replaced; a stream someone else set meanwhile stays theirs.
        if isinstance(sys.stdout, _Router):
            sys.stdout = _saved["stdout"]
        if isinstance(sys.stderr, _Router):
            sys.stderr = _saved["stderr"]
        _saved.clear()


@contextlib.contextmanager
def captured() -> Iterator[LogSink]:
    """Capture this thread's prints and log records into the returned sink until the block ends."""
    sink = LogSink()
    _install()
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = previous
        with contextlib.suppress(Exception):
            _flush_handlers()
        _uninstall()


def _flush_handlers() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
