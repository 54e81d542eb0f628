"""Computing one asset: load its inputs, call its function, store the result.

A ``ComputeTask`` is plain, picklable data, so the same function runs in this
process, in a process pool or on a Dask worker. Workers touch only storage
backends; the coordinator alone writes the state store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetflow.contracts import InputRef, StoredData, ValueKind
from assetflow.declare import AssetSpec, SourceSpec, annotation_of
from assetflow.errors import (
    AssetflowError,
    DamagedStorageError,
    MaterializationError,
    ProjectLoadError,
    SourceReadError,
    SqlExecutionError,
)
from assetflow.execute import handoff
from assetflow.execute.capture import captured
from assetflow.fingerprint.source import SourceMoved
from assetflow.hashing import hash_fields
from assetflow.project import ProjectConfig
from assetflow.secrets import redact
from assetflow.storage.files import deferred_sync

if TYPE_CHECKING:
    from assetflow.fingerprint.code import CodeFingerprint

VALUE_FORMATS = ("json", "pickle")  # backends for which None is a value to store, not a forgotten `return`
_WORKSPACES: dict[tuple[object, ...], tuple[Any, str]] = {}  # project key -> (workspace, code token)
# A worker's last source reads, by (root, source, the files' observed tokens and hashes): with many
# assets reading one source, each parsed it again (5 ms of a 1,000-row CSV, per asset, issue 17).
SOURCE_READS_KEPT = 8
_SOURCE_READS: dict[tuple[object, ...], object] = {}
_SOURCE_READS_LOCK = threading.Lock()  # several tasks at once in one process: threads, a Dask worker's


@dataclasses.dataclass(frozen=True)
class ComputeTask:
    """One asset to compute: where the project is, where its inputs are, where to store.

    ``code_token`` identifies the version of the project's code the coordinator loaded
    (see ``code_token``); a worker that imported another version reloads the project,
    and refuses the task if the code changed on disk since the run started.
    """

    project: ProjectConfig
    asset: str
    inputs: tuple[InputRef, ...]
    io: str
    code_token: str = ""
    partition: str = ""  # the partition key computed ("" for an unpartitioned asset)
    # Runs on the coordinator's host: its files are stored unsynced and listed in the result, the coordinator
    # syncs them (``deferred_sync``); and the stat tokens of the source files it reads (device and inode
    # included) mean the same here, so they are checked against the decided ones (``load_input``).
    same_host: bool = False
    walk_code: bool = False  # walk the asset's code here, for its record (``ComputeResult.code``; docs/execution.md)

    @functools.cached_property
    def reads(self) -> tuple[str, ...]:
        """The stored versions it reads (locations), for an executor that runs a task where they were made
        (asked for each free slot while the task waits: computed once)."""
        return tuple(ref.location for ref in _stored_refs(self.inputs) if ref.location)


@dataclasses.dataclass(frozen=True)
class ComputeResult:
    asset: str
    stored: StoredData | None
    started_at: float
    finished_at: float
    error: str | None = None  # formatted traceback when the asset failed
    unreadable_source: str | None = None  # the source whose file could not be read, when that was the failure
    moved_source: str | None = None  # the source whose files moved while they were read, when that was the failure
    log: str = ""  # what the asset printed and logged while it ran (``assetflow.execute.capture``)
    unsynced: tuple[str, ...] = ()  # files stored without fsync (``ComputeTask.same_host``): sync before recording
    code: CodeFingerprint | None = None  # the asset's code, walked here if the task asked (``ComputeTask.walk_code``)

    @property
    def made(self) -> str | None:
        """The stored version it made (a location): the process may still hold it (``execute.handoff``)."""
        return self.stored.location if self.stored is not None else None


def changed_while_running(inputs: list[str], asset: str) -> str:
    """Rule 9's failure (docs/concepts.md): what the run says of an asset an input changed under."""
    return (f"input {', '.join(f'`{i}`' for i in inputs)} changed while `{asset}` ran; its result was not "
            f"recorded. Run `assetflow materialize` again.")


def _stored_refs(refs: tuple[InputRef, ...]) -> Iterator[InputRef]:
    for ref in refs:
        yield from _stored_refs(tuple(part for _, part in ref.parts)) if ref.parts else [ref]


def _project_key(config: ProjectConfig) -> tuple[object, ...]:
    return (str(config.root), config.modules, config.files, str(config.state_path))


def code_token(root: Path, sql_files: list[str] | None = None) -> str:
    """A digest of the code every project module imported in this process runs, and of its SQL files' stats.

    Equal tokens in the coordinator and a worker mean both run the same code: each module
    counts with the digest of the bytes it was compiled from (``fingerprint.imports``), not
    with its file's stat, which a same-size edit in the same instant leaves unchanged and
    which may be taken after the file changed. Paths are relative to the root and device
    and inode are left out, so a project on a shared file system reads the same from every
    machine.
    """
    from assetflow.fingerprint.imports import code_digests

    parts = [f"{path}:{digest}" for path, digest in code_digests(root).items()]
    for filename in sql_files or []:
        if filename.endswith(".sql"):
            try:
                st = os.stat(filename)
            except OSError:
                continue
            parts.append(f"{os.path.relpath(filename, root)}:{st.st_size}:{st.st_mtime_ns}")
    return hash_fields("code-token", *sorted(parts))


def register_workspace(workspace: Any) -> str:
    """Let tasks in this process reuse an already loaded workspace; return its code token."""
    token = code_token(workspace.root, workspace.sql_files())
    _WORKSPACES[_project_key(workspace.config)] = (workspace, token)
    return token


def _load(config: ProjectConfig) -> tuple[Any, str]:
    from assetflow.graph import AssetGraph
    from assetflow.project import load_specs
    from assetflow.workspace import Workspace

    workspace = Workspace(config, AssetGraph(load_specs(config)))
    return workspace, code_token(config.root, workspace.sql_files())


def _workspace(config: ProjectConfig, token: str = "") -> Any:
    """The project as loaded in this process (imported once), reloaded if its code changed."""
    key = _project_key(config)
    cached = _WORKSPACES.get(key)
    if cached is None:
        cached = _WORKSPACES[key] = _load(config)
    if token and cached[1] != token:
        # A long-lived worker (e.g. on a Dask cluster) imported an older version: loading imports it again.
        cached = _WORKSPACES[key] = _load(config)
        if cached[1] != token:
            raise ProjectLoadError(
                f"The project's code at {config.root} changed on disk after this run started, so this "
                f"worker cannot run the code the run planned with. Nothing was recorded for it; run "
                f"`assetflow materialize` again."
            )
    return cached[0]


def warm_up(config: ProjectConfig) -> None:
    """Import the project ahead of the first task (a worker's start); errors surface with that task."""
    try:
        _workspace(config)
    except Exception:  # noqa: BLE001 - reported, with its traceback, by the first task that needs it
        _WORKSPACES.pop(_project_key(config), None)


def run_ended() -> None:
    """What a long-lived worker drops when a run ends: the tables it kept for that run's inputs
    (``execute.handoff``). Process-pool workers end with their run; a Dask cluster's stay up."""
    handoff.clear()


def value_kind(spec: AssetSpec, parameter: str) -> ValueKind:
    """What a parameter receives: a LazyFrame (annotated ``pl.LazyFrame``), an Arrow table
    (annotated ``pa.Table``), else a polars DataFrame."""
    annotation = annotation_of(spec.fn, parameter)
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__module__", "") + "." + getattr(annotation, "__qualname__", "")
    if text.endswith("LazyFrame"):
        return "lazy"
    return "arrow" if "pyarrow" in text or text.endswith("pa.Table") else "polars"


def _lazy(value: object) -> object:
    """A LazyFrame over a loaded value, for a backend or a source that cannot scan lazily."""
    import polars as pl

    if isinstance(value, pl.LazyFrame):
        return value
    if isinstance(value, pl.DataFrame):
        return value.lazy()
    import pyarrow as pa

    if isinstance(value, pa.Table):
        return pl.from_arrow(value).lazy()  # type: ignore[union-attr]  # a Table gives a DataFrame
    return value  # not a table (io="json", io="pickle"): passed as it is


def load_input(workspace: Any, spec: AssetSpec, ref: InputRef, same_host: bool = False,
               kind: ValueKind | None = None) -> object:
    """The value ``spec`` receives for one input (``kind``: as what, instead of the parameter's annotation)."""
    if ref.parts:
        from assetflow.partitions.values import combine

        values = {key: load_input(workspace, spec, part, same_host, kind) for key, part in ref.parts}
        return combine(spec, ref.name, values)
    kind = kind or value_kind(spec, ref.name)
    if ref.io is None:
        from assetflow.fingerprint.source import SourceVersion, read_source, unchanged_since

        source = workspace.graph.specs[ref.name]
        assert isinstance(source, SourceSpec)
        key = (str(workspace.root), ref.name, ref.source_files)
        value = _SOURCE_READS.get(key)
        if value is None:
            decided = SourceVersion(ref.name, "", ref.source_files)
            value = read_source(source, decided, workspace.root)  # parsed from bytes of the decided hash
            # And by stat, what alone vouches for a path source or a file too large to hold twice (one stat a file).
            if same_host and not unchanged_since(decided, workspace.root):
                raise SourceMoved(ref.name)
            if source.format != "path":
                with _SOURCE_READS_LOCK:
                    _SOURCE_READS[key] = value
                    while len(_SOURCE_READS) > SOURCE_READS_KEPT:
                        del _SOURCE_READS[next(iter(_SOURCE_READS))]
        if source.format == "path":
            return value
        value = value.clone()  # type: ignore[attr-defined]  # cheap (shared buffers); the asset may change it in place
        return _lazy(value) if kind == "lazy" else value
    assert ref.location is not None
    kept = handoff.take(ref, kind)
    if kept is not None:
        return kept
    value = workspace.backends.get(ref.io).load(ref.name, ref.location, kind)
    return _lazy(value) if kind == "lazy" else value


def compute(task: ComputeTask) -> ComputeResult:
    """Run one asset; never raises for the asset's own errors, returns them formatted.

    What the asset prints or logs comes back in ``ComputeResult.log``, never on this
    process's stdout. ``SystemExit`` from the asset (``sys.exit(0)`` included) is such an error: the asset
    built nothing, so it fails, whatever executor runs it. A process the asset forked that
    returns here instead of exiting is ended at once (see ``_end_forked_child``).
    """
    started = time.time()
    pid = os.getpid()
    try:
        with captured() as log:
            result = _compute(task, started)
        return dataclasses.replace(result, log=redact(log.text()))
    finally:
        if os.getpid() != pid:
            _end_forked_child(task.asset, pid)


def _compute(task: ComputeTask, started: float) -> ComputeResult:
    try:
        workspace = _workspace(task.project, task.code_token)
    except AssetflowError as exc:
        return ComputeResult(task.asset, None, started, time.time(), f"{type(exc).__name__}: {exc}")
    spec = workspace.graph.specs[task.asset]
    assert isinstance(spec, AssetSpec)
    try:
        if getattr(spec, "language", None) == "sql":
            from assetflow.sql.run import run_sql

            value: object = run_sql(workspace, spec, task.inputs)  # type: ignore[arg-type]
        else:
            kwargs: dict[str, object] = {ref.name: load_input(workspace, spec, ref, task.same_host)
                                         for ref in task.inputs}
            if spec.config is not None:
                kwargs["config"] = spec.config
            if spec.wants_partition:
                from assetflow.partitions.run import partition_of

                kwargs["partition"] = partition_of(spec, task.partition)
            value = spec.fn(**kwargs)
            if spec.partition_column is not None:
                from assetflow.partitions.values import check_partition_column

                try:
                    check_partition_column(spec, task.partition, value)
                except MaterializationError as exc:  # the rows are at fault, not the code: no traceback
                    return ComputeResult(task.asset, None, started, time.time(), redact(f"{type(exc).__name__}: {exc}"))
        if value is None and task.io not in VALUE_FORMATS:
            return ComputeResult(task.asset, None, started, time.time(), (
                f"Asset `{task.asset}` ({spec.where}) returned None: did you forget `return`? Return the "
                f"table it makes (e.g. `return df`); it was not stored."))
        try:
            with deferred_sync(task.same_host) as unsynced:
                stored = handoff.store(workspace.backends.get(task.io), task.io, task.asset, value)
        except AssetflowError as exc:  # the backend's own refusal says what to do; its frames are noise
            return ComputeResult(task.asset, None, started, time.time(),
                                 f"{type(exc).__name__}: {redact(str(exc))}\n(`{task.asset}` is declared at {spec.where})")
        finished = time.time()
        code = workspace.code(spec) if task.walk_code else None
    except SystemExit as exc:
        return ComputeResult(task.asset, None, started, time.time(), _asset_traceback(exc) + (
            f"Asset `{task.asset}` called sys.exit({exc.code!r}) (SystemExit): an asset cannot end the run, "
            f"so it failed and built nothing. Return the asset's value, or raise an exception to fail it.\n"))
    except SourceMoved as exc:  # rule 9, found as the input was read: the files changed after the decision
        return ComputeResult(task.asset, None, started, time.time(), changed_while_running([exc.source], task.asset),
                             moved_source=exc.source)
    except SourceReadError as exc:  # the source's file is at fault, not this asset's code: no traceback
        return ComputeResult(task.asset, None, started, time.time(), redact(f"{type(exc).__name__}: {exc}"),
                             unreadable_source=exc.source)
    except (SqlExecutionError, DamagedStorageError) as exc:  # the message says it all; no engine traceback
        return ComputeResult(task.asset, None, started, time.time(), redact(f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # noqa: BLE001 - the asset's failure is data for the coordinator
        return ComputeResult(task.asset, None, started, time.time(), _asset_traceback(exc))
    return ComputeResult(task.asset, stored, started, finished, unsynced=tuple(unsynced), code=code)


def _end_forked_child(asset: str, parent: int) -> None:
    """Exit a process forked by asset code (``os.fork()``) that returned into assetflow.

    It is a copy of the coordinator or worker: left to go on, it would run the rest of the
    run a second time and write the state beside its parent. Only the parent carries on.
    """
    message = (f"assetflow: process {os.getpid()}, forked by asset `{asset}` from process {parent}, returned "
               f"into assetflow and is stopped here; a forked child must end with os._exit().\n")
    with contextlib.suppress(OSError):
        os.write(2, message.encode())
    os._exit(0)


def _asset_traceback(exc: BaseException) -> str:
    """The traceback from the asset's own frames down, without the engine's frames above them."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return redact("".join(traceback.format_exception(type(exc), exc, tb)))  # no secret value in any output
