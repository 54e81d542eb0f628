"""The exceptions assetflow raises, and the exit codes the CLI maps them to.

Hierarchy::

    AssetflowError                  base: catch this to catch everything assetflow raises
    ├── ProjectLoadError            no project found, bad config, user module failed to import
    │   └── ProjectBroken           the page's project does not load right now (``exc.payload``)
    ├── DefinitionError             a bad @asset / source() declaration (unsafe name, bad option)
    │   ├── SqlDefinitionError      a SQL asset that is not one valid query of project tables
    │   │                           (``exc.file``, ``exc.line``, ``exc.column``)
    │   ├── CronError               a cron expression (of a freshness policy) cannot be read
    │   └── CheckDefinitionError    a check that cannot run: an unknown asset, a relationship to an
    │                               asset that is not upstream, a missing column, a bad return value
    │                               (``exc.check``, ``exc.asset``, ``exc.file``, ``exc.line``)
    ├── ParameterError              a command option or a web API parameter has a bad value
    │   └── PartitionKeyError       a partition key or range is malformed, unknown or outside the
    │                               definition (``exc.asset``, ``exc.key``; a caret under a bad range)
    ├── GraphError                  the declared assets do not form a valid graph
    │   ├── CycleError              a dependency cycle (``exc.cycle`` lists it)
    │   ├── UnknownAssetError       an upstream or a selected name does not exist
    │   │   └── SelectionError      a selection expression is malformed or names nothing known
    │   │                           (``exc.expression``, ``exc.position`` of the offending character)
    │   └── DuplicateAssetError     two definitions share a name
    ├── MaterializationError        an asset failed while running (``exc.asset``, "" where the raiser
    │   │                           does not know it: an executor sees tasks, not assets)
    │   ├── SqlExecutionError       DuckDB refused or failed a SQL asset's query (``exc.file``)
    │   ├── TaskTimeout             a task ran longer than its timeout and was stopped (also a TimeoutError)
    │   ├── WorkerLost              the worker running a task died before answering
    │   └── RemoteError             a task raised in a worker; the message is its formatted traceback
    ├── SourceReadError             a source's file cannot be read as its format
    │                               (``exc.source``, ``exc.file``, ``exc.line`` where the reader says it)
    ├── StorageError                a storage backend could not store, load or find data
    │   └── DamagedStorageError     a backend's file is damaged (truncated, garbled): ``exc.path``
    ├── StateError                  the state store is unreadable, corrupt or from the future
    ├── ProjectLockedError          another run holds the project lock (exit code 3)
    ├── DaemonRunningError          another ``assetflow daemon`` serves the project (``exc.holder``)
    └── PluginError                 a plugin is missing or broken

    RunInterrupted                  Ctrl-C stopped a run (a KeyboardInterrupt, not an AssetflowError,
                                    so code that stops on Ctrl-C still does; exit code 130)

The execution errors (``TaskTimeout``, ``WorkerLost``, ``RemoteError``) are what an executor
sets on a task's future; the runner records them as the asset's failure. The Python API
returns failures in its ``RunResult`` rather than raising them, like the CLI's exit code 1.

Every message names the asset, the file and what to do next.
"""

from __future__ import annotations

import enum
from typing import Any


class ExitCode(enum.IntEnum):
    """Process exit status of every ``assetflow`` command."""

    OK = 0
    ASSET_FAILED = 1
    USAGE_ERROR = 2
    LOCKED = 3  # another run holds the project lock and --wait was not given
    INTERRUPTED = 130  # Ctrl-C: running assets cancelled, the run marked interrupted (128 + SIGINT)


class AssetflowError(Exception):
    """Base class of every error assetflow raises on purpose."""

    exit_code: ExitCode = ExitCode.USAGE_ERROR


class ProjectLoadError(AssetflowError):
    """The project could not be found, configured or imported."""


class ProjectBroken(ProjectLoadError):
    """The project does not load right now (the page keeps serving); ``payload`` is the error to show."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("message", "the project does not load"))
        self.payload = payload


class DefinitionError(AssetflowError):
    """An asset or source declaration is invalid."""


class CronError(DefinitionError, ValueError):
    """A cron expression that cannot be read; the message says which field and why."""


class CheckDefinitionError(DefinitionError):
    """A check is declared or written so that it cannot judge its asset (docs/checks.md).

    Raised at load for an unknown asset or a relationship to an asset that is not upstream; at
    run time (a column the data lacks, a return value that is neither a bool nor a
    ``CheckOutcome``) it becomes that check's failed result instead, with the same message.
    """

    def __init__(self, message: str, check: str = "", asset: str = "", file: str = "", line: int = 0) -> None:
        super().__init__(message)
        self.check = check
        self.asset = asset
        self.file = file
        self.line = line

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.check, self.asset, self.file, self.line))


class ParameterError(AssetflowError):
    """A command option or a query parameter of the page's API has a bad value (``exc.parameter``)."""

    def __init__(self, message: str, parameter: str = "") -> None:
        super().__init__(message)
        self.parameter = parameter


class SqlDefinitionError(DefinitionError):
    """A SQL asset's text is not one valid query reading only the project's assets and sources.

    ``file`` is the ``.sql`` file (or the Python file declaring ``sql_asset``), ``line`` and
    ``column`` (1-based, 0 when unknown) point at the offending text.
    """

    def __init__(self, message: str, file: str = "", line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column


class PartitionKeyError(ParameterError):
    """A partition key or range names no partition of the asset, or cannot be parsed.

    ``asset`` and ``key`` say which; for a malformed range ``expression`` and ``position``
    point at the offending character, shown with a caret line as for selections.
    """

    def __init__(self, message: str, asset: str = "", key: str = "", expression: str = "",
                 position: int = 0, length: int = 1) -> None:
        self.reason = message
        self.asset = asset
        self.key = key
        self.expression = expression
        self.position = position
        if expression:
            message = f"{message}\n  {expression}\n  {' ' * position}{'^' * max(1, length)}"
        super().__init__(message, "partition")


class GraphError(AssetflowError):
    """The declared assets do not form a valid graph."""


class CycleError(GraphError):
    """Assets depend on each other in a cycle."""

    def __init__(self, message: str, cycle: list[str]) -> None:
        super().__init__(message)
        self.cycle = cycle


class UnknownAssetError(GraphError):
    """A name refers to no declared asset."""


class SelectionError(UnknownAssetError):
    """A selection expression cannot be parsed, or names an asset, selector or state that does not exist.

    ``expression`` is the text, ``position`` the index of the offending character and
    ``length`` how many characters are wrong; the message shows them with a caret line.
    """

    def __init__(self, message: str, expression: str = "", position: int = 0, length: int = 1) -> None:
        self.reason = message
        self.expression = expression
        self.position = position
        self.length = max(1, length)
        if expression:
            shown = "".join(" " if ch.isspace() else ch for ch in expression)
            message = f"{message}\n  {shown}\n  {' ' * position}{'^' * self.length}"
        super().__init__(message)


class DuplicateAssetError(GraphError):
    """Two declarations claim the same asset name."""


class MaterializationError(AssetflowError):
    """An asset raised, timed out, or returned something that cannot be stored."""

    exit_code = ExitCode.ASSET_FAILED

    def __init__(self, message: str, asset: str = "") -> None:
        super().__init__(message)
        self.asset = asset


class SqlExecutionError(MaterializationError):
    """DuckDB failed a SQL asset's query; the message is DuckDB's, with the asset's file."""

    def __init__(self, message: str, asset: str, file: str = "") -> None:
        super().__init__(message, asset)
        self.file = file


class TaskTimeout(MaterializationError, TimeoutError):
    """A task ran longer than its timeout and was stopped (its future's exception)."""


class WorkerLost(MaterializationError, RuntimeError):
    """The worker running a task died (killed, out of memory, crashed) before answering."""


class RemoteError(MaterializationError):
    """A task raised in a worker; the message is its formatted traceback."""


class StorageError(AssetflowError):
    """A storage backend failed to store, load or find an asset's data."""

    exit_code = ExitCode.ASSET_FAILED


class DamagedStorageError(StorageError):
    """A storage backend's file is damaged, so nothing stored in it can be read or written.

    ``path`` is the file; ``assetflow doctor --repair`` moves it aside and forgets the
    versions it held, so the next run rebuilds them.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:  # keep ``path`` across processes
        return (type(self), (str(self), self.path))


class SourceReadError(AssetflowError):
    """A source's file cannot be read as its format (a malformed CSV, a truncated Parquet file).

    It names the source, the file and, where the reader says it, the line; the assets it
    feeds fail with this message, not with the reader's traceback.
    """

    exit_code = ExitCode.ASSET_FAILED

    def __init__(self, message: str, source: str = "", file: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.file = file
        self.line = line

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.source, self.file, self.line))


class StateError(AssetflowError):
    """The state store cannot be read or written safely."""


class ProjectLockedError(AssetflowError):
    """Another run holds the project lock (exit code 3)."""

    exit_code = ExitCode.LOCKED

class DaemonRunningError(AssetflowError):
    """Another ``assetflow daemon`` (or ``serve``) already automates this project (exit code 3).

    ``holder`` names it (pid, host, since when); ``--wait`` queues behind it instead.
    """

    exit_code = ExitCode.LOCKED

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder


class PluginError(AssetflowError):
    """A plugin is unknown, fails to load, or breaks its contract."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run: running assets were cancelled and nothing partial was recorded.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C still does; ``run_id``,
    ``results`` (what settled before, by asset name) and ``cancelled`` (what was running) say more.
    """

    exit_code = ExitCode.INTERRUPTED

    def __init__(self, run_id: str, results: dict[str, Any], cancelled: list[str]) -> None:
        super().__init__(f"run {run_id} interrupted")
        self.run_id = run_id
        self.results = results
        self.cancelled = cancelled
