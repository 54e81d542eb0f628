"""Project modules run from the bytes they are fingerprinted from (docs/RELIABILITY.md, "Code edits during a run").

CPython's own loader reuses ``__pycache__/*.pyc`` whenever the source's size and
*whole-second* mtime are unchanged, so an edit of equal size within the same second
(``FACTOR = 3`` -> ``FACTOR = 4``) runs the old code for as long as that ``.pyc`` lives,
while anything reading the file sees the new code. And a fingerprint that reads the
files again after the import may read other bytes than the import did. Either way the
recorded fingerprint and the code that computed the data could differ.

So the project's own modules are imported by ``ProjectLoader``: it stats each source
file, then reads its bytes once, compiles exactly those bytes (reusing a ``.pyc`` only
when it is hash-checked against those bytes) and keeps them as a ``LoadedSource``. The
code fingerprint parses these same bytes (``loaded_source``), the no-op snapshot and the
graph cache vouch for the stat token taken before the read, and ``code_digests`` lets a
worker process prove it runs what its coordinator fingerprinted.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.machinery
import os
import sys
import time
import types
from collections.abc import Sequence
from pathlib import Path

from assetflow.fingerprint.listing import importable_names
from assetflow.hashing import code_bytes_digest, token_of

__all__ = ["LoadedSource", "ProjectLoader", "code_digests", "folder_listing", "importable_names", "install",
           "is_project_file", "loaded_source", "module_source", "moved_since_read"]

_VENDOR_DIRS = frozenset({"site-packages", "dist-packages", ".venv"})
_HASH_PYC_FLAGS = 0b11  # PEP 552: hash-based, checked against the source
_LOADED: dict[str, LoadedSource] = {}  # the path a module was compiled under -> what was read
_ROOTS: list[str] = []  # project roots whose modules ProjectFinder hands to ProjectLoader
_LISTINGS: dict[str, list[str] | None] = {}  # real folder path -> its importable names, before the load's first search


@dataclasses.dataclass(frozen=True)
class LoadedSource:
    """What one import read: the bytes that were compiled, and the file's stat token before the read."""

    path: str
    data: bytes
    digest: str  # blake3 of ``data``
    token: str  # stat token taken before reading ``data``
    read_at_ns: int  # the clock before the stat: a token at least this recent cannot vouch for ``data``


def loaded_source(path: str) -> LoadedSource | None:
    """What the module compiled from ``path`` was read from (its latest import here), if ProjectLoader loaded it."""
    return _LOADED.get(path)


def module_source(module: types.ModuleType) -> LoadedSource | None:
    """What ``module`` was compiled from, if ``ProjectLoader`` imported it (else None: it was read elsewhere)."""
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str) or not isinstance(getattr(module, "__loader__", None), ProjectLoader):
        return None
    return _LOADED.get(filename)


def moved_since_read(since_ns: int) -> list[str]:
    """Project files read by imports that began at or after ``since_ns`` whose stat moved since (or that are gone).

    A module caught half-written by an in-place save (truncated, then written) fails to import;
    its file then moves once the save completes, which tells that failure from a real error.
    """
    moved = []
    for path, loaded in list(_LOADED.items()):
        if loaded.read_at_ns < since_ns:
            continue
        try:
            now = token_of(os.stat(path))
        except OSError:
            now = None
        if now != loaded.token:
            moved.append(path)
    return sorted(moved)


class ProjectLoader(importlib.machinery.SourceFileLoader):
    """Imports a project module from one read of its file (see the module docstring)."""

    def get_code(self, fullname: str) -> types.CodeType:
        path = self.get_filename(fullname)
        read_at = time.time_ns()
        token = token_of(os.stat(path))
        data = self.get_data(path)
        _LOADED[path] = LoadedSource(path, data, code_bytes_digest(data), token, read_at)
        return _code_for(path, data)


def _code_for(path: str, data: bytes) -> types.CodeType:
    """Compile ``data``, through a hash-checked ``.pyc`` (never one validated by mtime and size alone)."""
    import importlib.util  # here, not above: the no-op fast path imports this module and compiles nothing
    import marshal

    source_hash = importlib.util.source_hash(data)
    try:
        cache = importlib.util.cache_from_source(path)
    except NotImplementedError:  # no cache tag: this interpreter keeps no .pyc files
        cache = None
    if cache is not None:
        try:
            with open(cache, "rb") as handle:
                pyc = handle.read()
        except OSError:
            pyc = b""
        if (pyc[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(pyc[4:8], "little") & 1
                and pyc[8:16] == source_hash):
            try:
                code = marshal.loads(memoryview(pyc)[16:])
            except (EOFError, ValueError, TypeError):
                code = None
            if isinstance(code, types.CodeType):
                return code
    code = compile(data, path, "exec", dont_inherit=True)
    if cache is not None and not sys.dont_write_bytecode:
        _write_pyc(cache, source_hash, code)
    return code


def _write_pyc(cache: str, source_hash: bytes, code: types.CodeType) -> None:
    """Write a checked-hash ``.pyc`` atomically; any failure only costs a compile next time."""
    import importlib.util
    import marshal

    body = importlib.util.MAGIC_NUMBER + _HASH_PYC_FLAGS.to_bytes(4, "little") + source_hash + marshal.dumps(code)
    temporary = f"{cache}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(body)
        os.replace(temporary, cache)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass


class ProjectFinder:
    """A meta path finder that gives the project's own ``.py`` modules a ``ProjectLoader``.

    It searches as the standard path finder does (a submodule of a package outside every
    project is not searched at all) and answers only for a source module whose file is a
    project's code (under a root, outside any venv); for anything else it answers None, so the
    usual finders (and any other hook, pytest's or an editable install's) decide as if it were
    not there.
    """

    @classmethod
    def find_spec(cls, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if path is not None and not any(str(p).startswith(root) for p in path for root in _ROOTS):
            return None  # a submodule of a package outside every project: not ours, skip the search
        for folder in (_ROOTS if path is None else path):
            folder = os.path.realpath(folder)
            if folder not in _LISTINGS:  # listed before the search, so the search saw this listing or a newer one
                _LISTINGS[folder] = importable_names(folder)
        # A top-level module is searched along the whole sys.path, so precedence is Python's own (a module
        # of another project loaded earlier in this process never shadows this one's).
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not importlib.machinery.SourceFileLoader or not spec.origin \
                or not any(_is_local_path(spec.origin, root) for root in _ROOTS):
            return None
        spec.loader = ProjectLoader(fullname, spec.origin)
        return spec

    @classmethod
    def invalidate_caches(cls) -> None:
        return None


def folder_listing(folder: str) -> list[str] | None:
    """``folder``'s importable names as this load's imports saw them (listed now if no import searched it)."""
    key = os.path.realpath(folder)
    return _LISTINGS[key] if key in _LISTINGS else importable_names(key)


def install(root: Path) -> None:
    """Import ``root``'s modules through ``ProjectLoader`` from now on in this process (a new load begins)."""
    _LISTINGS.clear()
    resolved = str(root.resolve())
    if resolved not in _ROOTS:
        _ROOTS.append(resolved)
    if ProjectFinder not in sys.meta_path:
        sys.meta_path.insert(0, ProjectFinder)


def code_digests(root: Path, *, excluded: frozenset[str] = frozenset({"__main__", "__mp_main__"})) -> dict[str, str]:
    """Project-relative path -> digest of the code every imported project module runs.

    A module ``ProjectLoader`` imported counts with the digest of the bytes it compiled;
    another project module (imported before the project was loaded, e.g. by a script) with
    the digest of its file as it is now. Paths are relative to the root, so the same code
    gives the same digests wherever the project is mounted.
    """
    base = str(root.resolve())
    found: dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if name in excluded or not isinstance(filename, str) or not filename.endswith(".py") \
                or not is_project_file(filename, root):
            continue
        loaded = module_source(module)
        if loaded is not None:
            digest = loaded.digest
        else:
            try:
                with open(filename, "rb") as handle:
                    digest = code_bytes_digest(handle.read())
            except OSError:
                continue
        found[os.path.relpath(os.path.realpath(filename), base)] = digest
    return found


# -- where code lives ---------------------------------------------------------------------


def is_project_file(filename: str, root: Path) -> bool:
    """Whether a file is the project's own code (under its root, outside any venv)."""
    return _is_local_path(filename, resolved_root(root))


@functools.lru_cache(maxsize=64)
def resolved_root(root: Path) -> str:
    """``root`` resolved, once per process: callers ask for each of the ~1,000 modules a run has
    imported, and the code fingerprint for each asset."""
    return str(root.resolve())


@functools.cache
def _is_local_path(filename: str, root: str) -> bool:
    """Under the project root, and not in a venv or site-packages inside it."""
    try:
        relative = Path(_real_path(filename)).relative_to(root)
    except (OSError, ValueError):
        return False
    folder = Path(root)
    for part in relative.parts[:-1]:
        folder = folder / part
        if part in _VENDOR_DIRS or _is_venv(folder):
            return False
    return True


def _real_path(filename: str) -> str:
    """``os.path.realpath`` of a module's file, its folder resolved once per process (``_real_folder``):
    a run asks for each of the ~500 modules it imported, which share a few dozen folders, and a full
    resolve costs a ``lstat`` per component (~30 ms a process here, in each worker's start)."""
    folder, name = os.path.split(filename)
    if not os.path.isabs(filename) or name in ("", ".", ".."):
        return os.path.realpath(filename)
    path = os.path.join(_real_folder(folder), name)
    return os.path.realpath(path) if os.path.islink(path) else path


@functools.lru_cache(maxsize=1024)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


@functools.cache
def _is_venv(folder: Path) -> bool:
    return (folder / "pyvenv.cfg").is_file()
