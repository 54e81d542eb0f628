"""Finding a project and importing its asset definitions.

A project is a folder with a ``pyproject.toml`` holding ``[tool.assetflow]``, or
whatever ``-m MODULE`` / ``-f FILE`` / ``--project DIR`` point at. Loading imports
the user's modules and collects every ``@asset`` and ``source()`` they define.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
import threading
import time
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetflow.errors import AssetflowError, DuplicateAssetError, ProjectLoadError
from assetflow.hashing import code_bytes_digest, stat_token

if TYPE_CHECKING:  # the declarations load with the first project, not with the configuration (a no-op reads only that)
    from assetflow.declare import Spec

DEFAULT_STATE_DIR = ".assetflow"
DEFAULT_IO = "parquet"
DATA_FOLDER = "data"


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    """Where a project lives and how it is set up; read from ``[tool.assetflow]``."""

    root: Path
    modules: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    state_dir: Path = Path(DEFAULT_STATE_DIR)
    default_io: str = DEFAULT_IO
    io_options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    pyproject: Path | None = None
    pools: dict[str, int] = dataclasses.field(default_factory=dict)  # [tool.assetflow.pools]: limit per pool
    sql: tuple[str, ...] = ()  # folders of .sql assets, relative to the root (docs/sql.md)
    vars: dict[str, Any] = dataclasses.field(default_factory=dict)  # [tool.assetflow.vars]: $name in SQL assets
    # (stat token taken before the read, digest of the bytes parsed) of pyproject.toml: the no-op snapshot
    # vouches for the configuration as it was read, like every code file (assetflow/fastpath.py).
    pyproject_read: tuple[str, str] | None = dataclasses.field(default=None, compare=False)

    @property
    def state_path(self) -> Path:
        return self.state_dir if self.state_dir.is_absolute() else self.root / self.state_dir

    @property
    def data_path(self) -> Path:
        """Where the built-in backends keep stored data: ``<state>/data``."""
        return self.state_path / DATA_FOLDER


def find_pyproject(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` at or above ``start`` that has ``[tool.assetflow]``."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ProjectLoadError(f"Cannot read {candidate}: {exc}. Fix the TOML syntax.") from exc
            if "assetflow" in data.get("tool", {}):
                return candidate
    return None


def _as_str_list(value: object, key: str, pyproject: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ProjectLoadError(f"{pyproject}: [tool.assetflow] {key} must be a string or a list of strings.")


def load_config(
    project_dir: Path | None = None,
    modules: Sequence[str] = (),
    files: Sequence[str] = (),
) -> ProjectConfig:
    """Build the configuration from ``pyproject.toml`` and command-line overrides.

    ``-m``/``-f`` replace the modules of the pyproject; the project root is the folder
    of the pyproject if there is one, else ``project_dir`` (or the current folder).
    """
    start = (project_dir or Path.cwd()).resolve()
    if project_dir is not None and not start.is_dir():
        raise ProjectLoadError(f"--project {project_dir}: no such folder.")
    pyproject = find_pyproject(start)
    table: dict[str, Any] = {}
    root = start
    pyproject_read = None
    if pyproject is not None:
        root = pyproject.parent
        token = stat_token(pyproject)
        raw = pyproject.read_bytes()
        pyproject_read = (token, code_bytes_digest(raw))
        table = tomllib.loads(raw.decode("utf-8"))["tool"]["assetflow"]
    if modules or files:
        cfg_modules, cfg_files = tuple(modules), tuple(files)
    elif pyproject is not None:
        cfg_modules = _as_str_list(table.get("modules", []), "modules", pyproject)
        cfg_files = _as_str_list(table.get("files", []), "files", pyproject)
    else:
        raise ProjectLoadError(
            f"No assetflow project found in {start} or its parents: add a [tool.assetflow] table "
            f"with modules = [...] to pyproject.toml, or pass -m MODULE, -f FILE or --project DIR."
        )
    sql_folders = _as_str_list(table.get("sql", []), "sql", pyproject) if pyproject is not None else ()
    if not cfg_modules and not cfg_files and not sql_folders:
        raise ProjectLoadError(
            f"{pyproject}: [tool.assetflow] lists no modules; add modules = [\"my_pipeline\"]."
        )
    io_options = table.get("io", {})
    if not isinstance(io_options, dict):
        raise ProjectLoadError(f"{pyproject}: [tool.assetflow.io] must be a table of tables.")
    pools = table.get("pools", {})
    if not isinstance(pools, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pools.values()
    ):
        raise ProjectLoadError(
            f"{pyproject}: [tool.assetflow.pools] maps pool names to positive integer limits, "
            f"e.g. warehouse = 2; got {pools!r}."
        )
    variables = table.get("vars", {})
    if not isinstance(variables, dict):
        raise ProjectLoadError(f"{pyproject}: [tool.assetflow.vars] must be a table of values, e.g. min_amount = 10.")
    return ProjectConfig(
        root=root,
        modules=cfg_modules,
        files=tuple(str((start / f).resolve()) if not Path(f).is_absolute() else f for f in cfg_files),
        state_dir=Path(str(table.get("state", DEFAULT_STATE_DIR))),
        default_io=str(table.get("io_default", table.get("default_io", DEFAULT_IO))),
        io_options={k: dict(v) for k, v in io_options.items() if isinstance(v, dict)},
        pyproject=pyproject,
        pools=dict(pools),
        sql=sql_folders,
        vars=dict(variables),
        pyproject_read=pyproject_read,
    )


_PACKAGE_DIR = str(Path(__file__).resolve().parent) + os.sep


def _user_traceback(exc: BaseException) -> str:
    """The traceback of the user's code only: no import machinery, none of assetflow's own frames
    (a bad ``@asset`` option shows the user's decorator line, then assetflow's message)."""
    import traceback  # an import error's path only: not on every command's start-up

    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "importlib" not in f.filename and not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)]
    text = "".join(traceback.format_list(frames))
    if isinstance(exc, AssetflowError):  # its message says what to do; the class path adds nothing
        return text + f"{type(exc).__name__}: {exc}\n"
    return text + "".join(traceback.format_exception_only(type(exc), exc))


_IMPORTED: set[str] = set()  # project modules that loading a project put into sys.modules
_NEVER_FORGOTTEN = frozenset({"__main__", "__mp_main__"})  # the running script: never importable again


def _exit_hint(exc: BaseException) -> str:
    """Why a ``sys.exit()`` at import is an error: the project's definitions were cut short."""
    if not isinstance(exc, SystemExit):
        return ""
    return (f"The module called sys.exit({exc.code!r}) while being imported, so the project's definitions are "
            f"incomplete. Guard script code with `if __name__ == \"__main__\":`.\n")


def forget_project_modules(config: ProjectConfig) -> None:
    """Drop the project's modules that loading imported, so that importing again reads the files as they are now.

    A long-lived process (a notebook, ``assetflow ui``, a service calling ``materialize``) would
    otherwise run the code it imported first while the fingerprint reads the edited files, and
    record an old result under the new code's recipe. Dropped: the project modules an earlier
    load imported, and the configured modules' packages (imported again right away). Never
    dropped: a module loading did not import, above all ``__main__`` (a script or ``python -``
    in the project folder: without it, ``import duckdb`` and pickling the script's own classes
    fail) and the helpers that script imported itself.
    """
    packages = {name.split(".")[0] for name in config.modules}
    main = sys.modules.get("__main__")
    for name, module in list(sys.modules.items()):
        if name in _NEVER_FORGOTTEN or module is main or name == "assetflow" or name.startswith("assetflow."):
            continue
        if name in _IMPORTED or name.split(".")[0] in packages:
            del sys.modules[name]
            _IMPORTED.discard(name)


def _note_imported(config: ProjectConfig, before: set[str]) -> None:
    """Remember which project modules this load added to ``sys.modules`` (only those are dropped later)."""
    from assetflow.fingerprint.code import is_project_file

    for name in set(sys.modules) - before:
        filename = getattr(sys.modules.get(name), "__file__", None)
        if filename and is_project_file(filename, config.root):
            _IMPORTED.add(name)


# One project import at a time in a process: an import first forgets the project's modules (sys.modules), so two at
# once, the page's and the daemon's in `assetflow serve`, could pull a module from under each other (KeyError).
_IMPORTING = threading.RLock()
SAVE_RETRIES = 5  # loads tried again after a failure while a module file was being saved in place
SAVE_PAUSE_S = 0.05  # how long a save is given to complete before the files are compared


def load_specs(config: ProjectConfig, pause: Callable[[float], None] = time.sleep) -> dict[str, Spec]:
    """Import the project afresh and collect its assets and sources (duplicates are an error).

    An editor that saves in place (truncate, then write) can be caught half-way: the module
    then fails to import, and its file moves as the save completes. Such a failure is retried
    (up to ``SAVE_RETRIES`` times, after ``pause(SAVE_PAUSE_S)``); a failure whose files did not
    move is the user's error, reported at once.
    """
    from assetflow.fingerprint.imports import moved_since_read

    for _ in range(SAVE_RETRIES):
        started = time.time_ns()
        try:
            return _load_specs(config)
        except ProjectLoadError:
            pause(SAVE_PAUSE_S)
            if not moved_since_read(started):
                raise
    return _load_specs(config)  # the last try: its error, if any, is the one reported


def _load_specs(config: ProjectConfig) -> dict[str, Spec]:
    from assetflow.checks.definitions import attach_checks, recording_checks
    from assetflow.declare import recording_declarations

    with _IMPORTING, recording_declarations() as declared, recording_checks() as checks:
        modules = import_modules(config)
    specs = collect_specs(modules, declared)
    if config.sql or any(getattr(s, "language", None) == "sql" for s in specs.values()):
        from assetflow.sql.resolve import add_sql_assets  # .sql files, and every SQL asset's table names

        specs = add_sql_assets(specs, config.root, config.sql, config.vars)
    attach_checks(specs, checks)  # @check functions onto their assets; unknown assets are an error here
    _places_from_root(specs, config.root)
    return specs


def _places_from_root(specs: Mapping[str, Spec], root: Path) -> None:
    """Every declaration's file relative to the project, as a ``.sql`` file's is (``shop/staging.py:35``), so
    messages, ``show`` and ``--json`` place Python and SQL declarations alike; a file outside it stays absolute."""
    base = root.resolve()
    placed: dict[str, str] = {}  # by file: a module declares many assets (resolving each cost 50 ms at 1,000)

    def shown(file: str) -> str:
        if file in placed:
            return placed[file]
        path = Path(file)
        real = path.resolve() if path.is_absolute() else None
        placed[file] = real.relative_to(base).as_posix() if real is not None and real.is_relative_to(base) else file
        return placed[file]

    for spec in specs.values():
        spec.file = shown(spec.file)
        checks = getattr(spec, "checks", ())
        if checks:
            spec.checks = tuple(dataclasses.replace(c, file=shown(c.file)) for c in checks)  # type: ignore[union-attr]


def import_modules(config: ProjectConfig) -> list[types.ModuleType]:
    """Import the project's modules afresh, reporting an import error with its module and traceback."""
    forget_project_modules(config)
    before = set(sys.modules)
    try:
        return _import_modules(config)
    finally:
        _note_imported(config, before)


SKIPPED_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".assetflow"}
MAX_WATCHED_FILES = 20_000
FIX_AND_RUN_AGAIN = "Fix the error above, then run the command again."


def python_files(root: Path) -> list[Path]:
    """Every Python file under ``root``, outside venvs and hidden folders: what the daemon watches while the project
    does not import, since which modules the failed import reached is not known (the page's ``ProjectView`` watches
    the same files and their folders the same way; it may not import this layer)."""
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        found += [Path(folder, n) for n in sorted(names) if n.endswith(".py")]
        if len(found) > MAX_WATCHED_FILES:
            break
    return found


def _import_modules(config: ProjectConfig) -> list[types.ModuleType]:
    from assetflow.fingerprint.imports import ProjectLoader, install

    install(config.root)  # the project's modules run from the bytes their fingerprint reads
    root = str(config.root)
    if root not in sys.path:
        sys.path.insert(0, root)
    loaded: list[types.ModuleType] = []
    for name in config.modules:
        try:
            loaded.append(importlib.import_module(name))
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any error in user code is reported, not raised raw
            raise ProjectLoadError(
                f"Importing module {name!r} of the project at {config.root} failed:\n"
                f"{_user_traceback(exc)}{_exit_hint(exc)}{FIX_AND_RUN_AGAIN}"
            ) from exc
    for file in config.files:
        path = Path(file)
        module_name = path.stem
        spec = importlib.util.spec_from_file_location(module_name, path, loader=ProjectLoader(module_name, str(path)))
        if spec is None or spec.loader is None or not path.is_file():
            raise ProjectLoadError(f"-f {file}: no such Python file.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:  # noqa: BLE001
            raise ProjectLoadError(
                f"Importing {file} failed:\n{_user_traceback(exc)}{_exit_hint(exc)}{FIX_AND_RUN_AGAIN}"
            ) from exc
        loaded.append(module)
    return loaded


def _duplicate(name: str, first: Spec, second: Spec) -> DuplicateAssetError:
    return DuplicateAssetError(
        f"Asset name {name!r} is defined twice:\n  {first.where} ({first.kind})\n"
        f"  {second.where} ({second.kind})\nRename one of them (e.g. @asset(name=...)) or delete it."
    )


def collect_specs(modules: Iterable[types.ModuleType], declared: Iterable[Spec] = ()) -> dict[str, Spec]:
    """Every asset and source the modules define, by name; duplicates are an error.

    ``declared`` is every declaration made while the modules were imported
    (``declare.recording_declarations``): one whose name a later definition in the
    same module took over is a duplicate too, not silently replaced.
    """
    from assetflow.declare import AssetSpec, SourceSpec, validate_name

    found: dict[str, Spec] = {}
    seen: set[int] = set()
    for module in modules:
        for variable, value in list(vars(module).items()):
            if not isinstance(value, AssetSpec | SourceSpec) or id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, SourceSpec) and value.name is None:
                value.name = validate_name(variable, what="Source", where=value.where)
            name = value.name
            assert name is not None
            previous = found.get(name)
            if previous is not None:
                raise _duplicate(name, previous, value)
            found[name] = value
    for spec in declared:
        kept = found.get(spec.name) if spec.name is not None else None
        if kept is not None and id(spec) not in seen and spec.where != kept.where:
            first, second = sorted((spec, kept), key=lambda s: (s.file, s.line))
            raise _duplicate(kept.name or "", first, second)
    return found
