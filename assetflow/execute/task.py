"""Computing one asset: load its inputs, call its function, store the result.

A ``ComputeTask`` is plain, picklable data, so the same function runs in this
process, in a process pool or on a Dask worker. Workers touch only storage
backends; the coordinator alone writes the state store.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import traceback
from typing import Any

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.project import ProjectConfig
from assetflow.storage.base import StoredData, ValueKind

_WORKSPACES: dict[tuple[object, ...], Any] = {}


@dataclasses.dataclass(frozen=True)
class InputRef:
    """Where one input of an asset comes from."""

    name: str
    io: str | None  # None for a source
    location: str | None
    source_files: tuple[tuple[str, str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class ComputeTask:
    project: ProjectConfig
    asset: str
    inputs: tuple[InputRef, ...]
    io: str


@dataclasses.dataclass(frozen=True)
class ComputeResult:
    asset: str
    stored: StoredData | None
    started_at: float
    finished_at: float
    error: str | None = None  # formatted traceback when the asset failed


def _project_key(config: ProjectConfig) -> tuple[object, ...]:
    return (str(config.root), config.modules, config.files, str(config.state_path))


def register_workspace(workspace: Any) -> None:
    """Let tasks in this process reuse an already loaded workspace instead of re-importing."""
    _WORKSPACES[_project_key(workspace.config)] = workspace


def _workspace(config: ProjectConfig) -> Any:
    key = _project_key(config)
    if key not in _WORKSPACES:
        from assetflow.graph import AssetGraph
        from assetflow.project import collect_specs, import_modules
        from assetflow.workspace import Workspace

        _WORKSPACES[key] = Workspace(config, AssetGraph(collect_specs(import_modules(config))))
    return _WORKSPACES[key]


def value_kind(spec: AssetSpec, parameter: str) -> ValueKind:
    """Arrow if the parameter is annotated as a pyarrow Table, else polars."""
    annotation = inspect.signature(spec.fn).parameters[parameter].annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__module__", "") + "." + getattr(annotation, "__qualname__", "")
    return "arrow" if "pyarrow" in text or text.endswith("pa.Table") else "polars"


def _load_input(workspace: Any, spec: AssetSpec, ref: InputRef) -> object:
    if ref.io is None:
        from assetflow.fingerprint.source import SourceVersion, read_source

        source = workspace.graph.specs[ref.name]
        assert isinstance(source, SourceSpec)
        return read_source(source, SourceVersion(ref.name, "", ref.source_files), workspace.root)
    assert ref.location is not None
    return workspace.backends.get(ref.io).load(ref.name, ref.location, value_kind(spec, ref.name))


def compute(task: ComputeTask) -> ComputeResult:
    """Run one asset; never raises for the asset's own errors, returns them formatted."""
    started = time.time()
    workspace = _workspace(task.project)
    spec = workspace.graph.specs[task.asset]
    assert isinstance(spec, AssetSpec)
    try:
        kwargs: dict[str, object] = {ref.name: _load_input(workspace, spec, ref) for ref in task.inputs}
        if spec.config is not None:
            kwargs["config"] = spec.config
        value = spec.fn(**kwargs)
        stored = workspace.backends.get(task.io).store(task.asset, value)
    except Exception as exc:  # noqa: BLE001 - the asset's failure is data for the coordinator
        return ComputeResult(task.asset, None, started, time.time(), _asset_traceback(exc))
    return ComputeResult(task.asset, stored, started, time.time())


def _asset_traceback(exc: BaseException) -> str:
    """The traceback from the asset's own frames down, without the engine's frames above them."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))
