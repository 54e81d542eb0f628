"""The web page's view of one project: the documents it serves, kept current as files change.

A long-lived server cannot load the project once: the user edits code, runs
``assetflow materialize`` in another terminal, breaks a module and fixes it. So every
document is cached under a *change token* (the stats of the state store, the project's
code files and the sources' files), and a new token reloads what it must: the state
alone, or the whole project, re-imported. A project that fails to import becomes an
error document with its traceback; the view keeps watching the files and recovers
as soon as they import again.

Not thread-safe on purpose: the server calls it from one worker thread (SQLite
connections belong to the thread that opened them).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetflow import api
from assetflow.documents import document, status_payload
from assetflow.errors import AssetflowError, ParameterError, ProjectBroken, UnknownAssetError
from assetflow.secrets import redact

if TYPE_CHECKING:
    from assetflow.project import ProjectConfig
    from assetflow.workspace import Workspace

TOKEN_INTERVAL_S = 0.5  # stat the project at most this often, however many pages poll
_SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".assetflow"}
_MAX_WATCHED_FILES = 20_000


class ProjectView:
    """The project as the page sees it: documents by name, rebuilt when the project changes."""

    def __init__(self, project_dir: Path | None, modules: Iterable[str] = (), files: Iterable[str] = ()) -> None:
        self.where = (project_dir, tuple(modules), tuple(files))
        self.config: ProjectConfig = api.project_config(*self.where)  # no project at all: the CLI says so at start
        self.root = self.config.root
        self._workspace: Workspace | None = None
        self.error: dict[str, Any] | None = None
        self._code_token: tuple[Any, ...] | None = None
        self._token: str = ""
        self._token_at = 0.0
        self._cache: dict[tuple[str, ...], dict[str, Any]] = {}
        self.status_cost = 0.0  # seconds the last status build took
        self._state_seen: tuple[Any, ...] = ()
        self._sources_seen: tuple[Any, ...] = ()
        self._state_quiet_for: tuple[Any, ...] | None = None  # the code stats the quiet window holds for
        self._state_quiet_until = 0.0
        self._reload()

    # -- change detection ---------------------------------------------------------------------

    def token(self) -> str:
        """A string that changes whenever anything the page shows may have changed."""
        now = time.monotonic()
        if now - self._token_at < TOKEN_INTERVAL_S and self._token:
            return self._token
        self._token_at = now
        code = self._code_stats()
        if code != self._code_token:
            self._reload()
        state = _stats(self.config.state_path / name for name in ("state.db", "state.db-wal"))
        if code == self._state_quiet_for and now < self._state_quiet_until:
            state = self._state_seen  # a run is writing: see its progress once per status build, not per write
        sources = self._source_stats()
        if sources != self._sources_seen and self._workspace is not None:
            # New or changed data files: the workspace's observations of its sources are out of date.
            for spec in self._workspace.graph.sources():
                self._workspace.forget_source(spec.name or "")
        self._sources_seen = sources
        token = f"{hash((code, state, sources)) & 0xFFFFFFFFFFFF:012x}"
        if state != self._state_seen:
            self._state_seen = state
            # Rebuilding status costs what the last build cost (seconds for a large project whose
            # snapshot a run voided); further state writes wait that long, so polls stay answered.
            self._state_quiet_for = code  # a code change ends the quiet at once
            self._state_quiet_until = now + self.status_cost
        if token != self._token:
            self._cache.clear()
            self._token = token
        return token

    def _code_stats(self) -> tuple[Any, ...]:
        """Stats of the files that define the graph: the imported project files and their folders,
        or, while the project does not import, every Python file under the root."""
        files: list[Path] = [self.config.pyproject] if self.config.pyproject else []
        if self._workspace is not None:
            code = [Path(f) for f in self._workspace.code_files()]
            files += code + sorted({f.parent for f in code})
        else:
            files += _python_files(self.root)
        files += [self.root / f for f in self.config.files]
        return _stats(files)

    def _source_stats(self) -> tuple[Any, ...]:
        if self._workspace is None:
            return ()
        return _stats(self._workspace.source_paths())

    # -- loading ------------------------------------------------------------------------------

    def _reload(self) -> None:
        """(Re)import the project; on failure keep the error to show, with its traceback."""
        if self._workspace is not None:
            self._workspace.close()
        self._workspace = None
        self._cache.clear()
        try:
            self._workspace = api.workspace(*self.where)  # with its schedules and sensors, for their listings
            self._workspace.keep_observations = True  # ``token`` forgets the sources whose files changed
            self.error = None
        except Exception as exc:  # noqa: BLE001 - any failure of user code is shown on the page, not raised
            self.error = error_payload(exc)
        self._code_token = self._code_stats()

    # -- documents ----------------------------------------------------------------------------

    def get(self, command: str, *args: str) -> dict[str, Any]:
        """The document ``command`` (a CLI command's ``--json``), cached until the token changes.

        Raises ``ProjectBroken`` while the project does not load, and the assetflow errors
        of the command itself (e.g. an unknown asset) as they are.
        """
        self.token()
        key = (command, *args)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = document(command, self._build(command, *args))
        return found

    def _build(self, command: str, *args: str) -> dict[str, Any]:
        builders: dict[str, Callable[..., dict[str, Any]]] = {
            "status": self._status, "list": self._list, "show": self._show, "why": self._why,
            "lineage": self._lineage, "history": self._history, "logs": self._logs,
            "schedules": self._automation_listing, "sensors": self._automation_listing,
        }
        return builders[command](*args) if command not in ("schedules", "sensors") else builders[command](command)

    def workspace(self) -> Workspace:
        if self._workspace is None:
            raise ProjectBroken(self.error or {})
        return self._workspace

    def _status(self, select: str = "") -> dict[str, Any]:
        started = time.monotonic()
        project_dir, modules, files = self.where
        rows, fast = api.status_fast_or_full(select or None, project_dir=project_dir, modules=modules, files=files,
                                         workspace=self.workspace())
        self.status_cost = time.monotonic() - started
        return status_payload(rows, fast)

    def _list(self, select: str = "") -> dict[str, Any]:
        return {"assets": api.list_assets(select or None, project=self.workspace())}

    def _show(self, name: str) -> dict[str, Any]:
        return {"assets": [api.show(name, limit=10, project=self.workspace())]}

    def _why(self, name: str, partition: str = "") -> dict[str, Any]:
        """``why NAME [--partition K] --json``, through the same ``api.why``."""
        return api.why(name, project=self.workspace(), partition=partition or None).to_json()

    def _lineage(self, name: str, version: str = "current") -> dict[str, Any]:
        ws = self.workspace()
        spec = ws.graph.specs.get(name)
        if spec is None:
            raise UnknownAssetError(f"No asset named {name!r}; run `assetflow list` to see the assets.")
        if spec.kind == "source" or (version == "current" and name not in ws.store.current()):
            return {"version": None}  # no one current version to trace: a source, never made, or one per partition
        return {"version": api.version_tree(name, version, project=ws).to_json()}  # what `lineage --version` shows

    def _automation_listing(self, command: str) -> dict[str, Any]:
        """``schedules`` / ``sensors`` as the CLI's --json (docs/automation.md)."""
        return (api.schedules if command == "schedules" else api.sensors)(project=self.workspace())

    def _history(self, limit: str = "50") -> dict[str, Any]:
        return api.history(limit=positive_int("limit", limit), project=self.workspace())

    def _logs(self, name: str, run: str = "") -> dict[str, Any]:
        return api.logs(name, run or None, project=self.where[0], modules=self.where[1], files=self.where[2])

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()




def error_payload(exc: BaseException) -> dict[str, Any]:
    """An error as the page shows it: its type, its message and a traceback, secrets masked.

    assetflow's own errors carry what the user needs in the message (a failed import quotes
    the user's traceback), so only unexpected exceptions get the internal traceback.
    """
    text = None if isinstance(exc, AssetflowError) else redact("".join(traceback.format_exception(exc)))
    return {"error": {"type": type(exc).__name__, "message": redact(str(exc)), "traceback": text}}


def positive_int(parameter: str, text: str) -> int:
    """A query parameter that must be a whole number of at least 1; a ``ParameterError`` (400) otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ParameterError(f"The parameter {parameter}={text!r} must be a whole number of at least 1, "
                             f"e.g. ?{parameter}=20.", parameter)
    return value


def _stats(paths: Iterable[Path]) -> tuple[Any, ...]:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(path), None))
    return tuple(out)


def _python_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        found.append(Path(folder))
        found += [Path(folder, n) for n in sorted(names) if n.endswith(".py")]
        if len(found) > _MAX_WATCHED_FILES:
            break
    return found
