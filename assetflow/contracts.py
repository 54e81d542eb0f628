"""The contracts between assetflow's layers and its plugins: what a backend stores, what an executor runs.

A leaf module: it imports nothing of assetflow, so the storage layer, the executors, the
hook specifications and the plugins can all depend on it without depending on each other.
The registries that find implementations by name live in ``assetflow.plugins``; the
errors an executor raises (``TaskTimeout``, ``WorkerLost``) in ``assetflow.errors``.
Plugins import these names from ``assetflow.ext`` (see docs/plugins.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypeVar

__all__ = ["CheckResult", "CheckStatus", "Executor", "IOBackend", "InputRef", "StoredData", "ValueKind"]

T = TypeVar("T")

ValueKind = Literal["polars", "arrow", "lazy"]  # "lazy": a polars LazyFrame (see IOBackend.load)
CheckStatus = Literal["ok", "missing", "modified"]


@dataclasses.dataclass(frozen=True)
class StoredData:
    """What a backend reports after committing a value."""

    data_hash: str
    location: str
    rows: int | None
    schema: list[tuple[str, str]]
    bytes: int | None
    token: str = ""  # a cheap change detector (e.g. inode/size/mtime) for later checks


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """Whether stored data is still what was recorded; ``token`` refreshes the recorded one."""

    status: CheckStatus
    token: str = ""
    detail: str = ""  # why, when the data cannot be read at all (e.g. a damaged backend file)


class IOBackend(Protocol):
    """A storage backend. Instances are built per project with its root and options.

    ``format`` enters every recipe key: moving an asset to another format reruns it.
    ``store`` must be atomic: the value becomes visible at ``location`` only once
    fully written (write to a temporary place, flush, then rename or commit).
    """

    name: ClassVar[str]
    format: ClassVar[str]

    def __init__(self, root: Path, options: dict[str, Any]) -> None: ...

    def store(self, asset: str, value: object) -> StoredData:
        """Write ``value`` durably and report its content hash and metadata."""
        ...

    def load(self, asset: str, location: str, kind: ValueKind) -> object:
        """Read the data at ``location`` as a polars DataFrame, an Arrow table or a LazyFrame.

        For ``"lazy"`` a backend that can scan its data returns a polars LazyFrame over it;
        one that cannot may return a DataFrame or an Arrow table, which the caller makes lazy.
        """
        ...

    def check(self, asset: str, location: str, data_hash: str, token: str) -> CheckResult:
        """Cheaply confirm the data is present and unchanged; rehash only if the token moved."""
        ...

    def delete(self, asset: str, location: str) -> None:
        """Remove stored data (garbage collection); missing data is not an error."""
        ...

    # Optional: ``activate(asset, location) -> None`` is called whenever a version becomes
    # the asset's current one (after a run or a restore), before the state records it, e.g.
    # to point a SQL view at it; an exception fails that asset and records nothing.
    # Optional: ``activate_partitions(asset, locations) -> None`` is called after a run with the
    # current versions of a partitioned asset's partitions, in key order, e.g. to switch a SQL
    # view over their union in one statement (docs/partitions.md); a failure fails the asset.
    # Optional: ``local_file(location) -> str`` for backends whose token is exactly the
    # stat token of one local file (see files.stat_token), so the no-op fast path can
    # check it with a stat and no backend import.


class Executor(Protocol):
    """Runs compute tasks somewhere. The runner never has more than ``capacity`` in flight.

    - ``submit`` starts ``fn(arg)`` and returns a future of its result. ``fn`` is a
      module-level function and ``arg`` plain picklable data, so both travel to other
      processes or machines by reference and by value. With ``timeout`` (seconds) the
      executor stops the task once it has *run* that long; its future then raises
      ``TaskTimeout``. A task whose worker dies raises ``WorkerLost``.
    - ``wait_any`` blocks until at least one of ``futures`` is done or ``timeout``
      seconds pass, and returns the done ones (possibly none, on timeout). With a
      ``timeout`` of 0 it looks for finished tasks once without blocking: the runner does so
      between decisions, to keep workers supplied.
    - ``shutdown`` releases workers; with ``cancel`` it stops running tasks at once
      (Ctrl-C): their results are never delivered.

    Optional: ``warm_up(project, tasks)`` is called before the first submit of a run
    that will compute ``tasks`` assets, to start workers and import the project early.
    Optional: a classmethod ``prepare() -> release`` is called before a first run (no state yet:
    every asset will be computed) loads the project, to start what needs no project (the process
    pool: its fork server); ``release()`` stops it if the executor's ``shutdown`` has not.
    Optional: ``affinity(arg) -> int`` scores how much of what ``arg`` reads the worker that
    would run it next already holds; of the tasks ready, the runner submits the first one
    scoring highest (the process pool: tables its workers stored, ``execute.handoff``).
    Optional: ``shares_host = True`` says every task runs on this machine (this kernel's page
    cache): workers then store files without fsyncs and the runner makes them durable with one
    ``syncfs`` per batch of results, before recording them (``storage.files.deferred_sync``).
    Leave it unset for workers on other hosts.
    Optional: ``computes_in_submit = True`` says ``submit`` runs the task before it returns (in
    process): the runner then records each result before submitting the next. Otherwise a
    worker freed by a result is given its next ready task before that result is recorded.
    Optional: ``shares_process = True`` says tasks run in threads of the runner's own process
    (``execute.threads``): the runner then walks new assets' code itself, as nothing runs it in parallel.
    Optional: ``queue_depth = N`` lets the runner keep ``capacity * N`` tasks in flight: the
    executor holds the extra ones for workers that will be free next (the process pool sends
    each worker its next task ahead, ``execute.pool``). It must start no more than ``capacity``
    at once and start each task exactly once.
    """

    name: ClassVar[str]
    capacity: int

    def submit(self, fn: Callable[[T], object], arg: T, *, timeout: float | None = None) -> Future[object]: ...

    def wait_any(self, futures: Iterable[Future[object]], timeout: float | None = None) -> set[Future[object]]: ...

    def shutdown(self, cancel: bool = False) -> None: ...


@dataclasses.dataclass(frozen=True)
class InputRef:
    """Where one input of an asset comes from: a stored version, or a source's files."""

    name: str
    io: str | None  # None for a source
    location: str | None
    source_files: tuple[tuple[str, str, str], ...] = ()
    parts: tuple[tuple[str, InputRef], ...] = ()  # several upstream partitions: (key, where), in key order
    data_hash: str = ""  # the stored version's content (``execute.handoff`` hands it over from memory)
