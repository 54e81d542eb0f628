"""Code fingerprints: a hash of the code an asset's result depends on (docs/concepts.md, "The three hashes").

An asset is stale when its code changed, and only then: reformatting, comments and
docstrings must not count, while an edit to any project-local helper, class or constant
it reaches must. So the fingerprint hashes the asset function's AST (docstrings removed,
printed back with ``ast.unparse``) together with every project-local object it reads,
transitively: globals, ``module.attr`` on project modules, closure cells, default values
and decorators. Third-party and standard-library code is not walked; third-party
distributions are recorded with their versions so drift can be reported separately.

Each entry's text ends with one ``# <how> <name> -> <target>`` line per name it binds, so
rebinding a name (``import pandas as pl``) changes the digest, and ``sources`` shows a
user exactly what changed. Everything is rendered without ``hash()``, ``id()`` or set
order, so the digest is the same in every process and under every ``PYTHONHASHSEED``.

The digest is what the code computes, not where it lives: project-local objects are named
in it by their qualified name inside their module (``clean_name``, ``Cleaner.run``), never
by module, and a project module bound to a name is just "a project module" (what is read
through it is followed). So moving an asset or a helper between modules, or renaming a
module, changes no digest; ``sources`` keeps the full names, so ``why`` still says where.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import importlib.metadata
import inspect
import linecache
import os
import re
import sys
import types
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path, PurePath

from assetflow.fingerprint.imports import _is_local_path, is_project_file, resolved_root
from assetflow.hashing import Digest, hash_fields

__all__ = ["FINGERPRINT_SCHEME", "CodeFingerprint", "fingerprint_function", "is_project_file"]

FINGERPRINT_SCHEME = 3  # 2: location-independent (project objects named without their module); 3: SQL result names

# Types whose repr is a complete, address-free description of the value.
_FAITHFUL_REPR = (range, PurePath, datetime.date, datetime.time, datetime.timedelta,
                  decimal.Decimal, fractions.Fraction, uuid.UUID)
_PRIMITIVES = (bool, int, float, complex, str, bytes)
_CONTAINERS = (list, tuple, set, frozenset, dict)
_NOT_LIBRARIES = frozenset({"builtins", "__main__"})
_MISSING = object()
_Chain = tuple[str, ...]  # a dotted read rooted at a name: ("helpers", "clean")


@dataclasses.dataclass(frozen=True)
class CodeFingerprint:
    """What an asset's code is, as far as staleness is concerned."""

    digest: str
    """``blake3:<hex>`` over ``sources`` (not over ``libraries``), or over ``version=``."""
    sources: dict[str, str]
    """Qualified name -> normalised source (or value repr), so a change can be shown as a diff."""
    libraries: dict[str, str]
    """Third-party distribution -> installed version, for drift reports only."""


def fingerprint_function(
    func: Callable[..., object], *, project_root: Path, version: str | None = None
) -> CodeFingerprint:
    """Fingerprint an asset function and the project-local code it uses.

    With ``version`` the user has taken over: the digest is the version alone and
    dependencies are not walked (only the function's own source and the libraries it
    names directly are recorded).
    """
    if isinstance(func, types.MethodType):
        func = func.__func__
    while not isinstance(func, types.FunctionType) and hasattr(func, "__wrapped__"):
        func = func.__wrapped__  # a C-level wrapper such as functools.lru_cache: its function is the code
    if not isinstance(func, types.FunctionType):
        raise TypeError(f"Cannot fingerprint {func!r}: expected a Python function, got {type(func).__qualname__}")
    walker = _Walker(resolved_root(project_root), func.__globals__, walk=version is None)
    key = walker.run(func)
    if version is not None:
        return CodeFingerprint(hash_fields("code-version", version), {key: walker.sources()[key]}, walker.libraries)
    sources = walker.sources()
    digest = Digest("code").field(walker.local_name(key))
    for name, text in sorted((walker.local_name(k), v) for k, v in sources.items()):
        digest.field(name).field(text)
    return CodeFingerprint(digest.hexdigest(), sources, dict(sorted(walker.libraries.items())))


# -- source files: parsed once per file version, shared by every fingerprint -------------


@dataclasses.dataclass(frozen=True)
class _Definition:
    """The static part of one ``def``/``class``/``lambda``: what does not depend on runtime values."""

    body: str  # ast.unparse without decorators, docstrings removed
    decorators: tuple[ast.expr, ...]
    names: frozenset[str]  # every Name read in the body (locals included; filtered later)
    chains: tuple[_Chain, ...]  # dotted reads rooted at a Name: ("helpers", "clean")


# The fields of a statement (or an except/case clause) that hold further statements.
_BLOCK_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


class _SourceFile:
    """One parsed source file, docstrings stripped, with its definitions indexed by line."""

    def __init__(self, text: str | bytes, filename: str) -> None:
        self.tree = ast.parse(text, filename)
        self.by_line: dict[tuple[int, str], list[ast.AST]] = {}
        self.classes: list[ast.ClassDef] = []
        self._definitions: dict[int, _Definition] = {}  # keyed by id(node); the tree keeps nodes alive
        self._lambdas_indexed = False
        # Definitions are statements: walking statement blocks alone finds them all, at a fraction of
        # visiting every expression (the whole walk cost ~40% of fingerprinting a generated module).
        blocks = [self.tree]
        while blocks:
            node = blocks.pop()
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                _strip_docstring(node)
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                # co_firstlineno is the first decorator's line; index the def line too.
                for line in {node.lineno, *(d.lineno for d in node.decorator_list)}:
                    self.by_line.setdefault((line, node.name), []).append(node)
                if isinstance(node, ast.ClassDef):
                    self.classes.append(node)
            for field in _BLOCK_FIELDS:
                block = getattr(node, field, None)
                if isinstance(block, list):
                    blocks.extend(reversed(block))

    def _index_lambdas(self) -> None:
        """Lambdas live inside expressions: found with one walk of the whole tree, on the first asked for."""
        if not self._lambdas_indexed:
            self._lambdas_indexed = True
            for node in ast.walk(self.tree):
                if isinstance(node, ast.Lambda):
                    self.by_line.setdefault((node.lineno, "<lambda>"), []).append(node)

    def function(self, code: types.CodeType) -> _Definition | None:
        if code.co_name == "<lambda>":
            self._index_lambdas()
        nodes = self.by_line.get((code.co_firstlineno, code.co_name), [])
        if len(nodes) == 1:
            return self.definition(nodes[0])
        if nodes and code.co_name == "<lambda>":  # several lambdas on one line: take them all
            parts = [self.definition(node) for node in nodes]
            return _Definition("\n".join(p.body for p in parts), (), frozenset().union(*(p.names for p in parts)),
                               tuple(sorted({c for p in parts for c in p.chains})))
        return None

    def cls(self, qualname: str) -> _Definition | None:
        body: list[ast.stmt] = self.tree.body
        node: ast.AST | None = None
        for part in qualname.split("."):
            found = [n for n in body if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                     and n.name == part]
            if not found:
                node = None
                break
            node = found[-1]  # the last definition is the one the name is bound to
            body = node.body
        if not isinstance(node, ast.ClassDef):  # nested in a block or a function: unique name or nothing
            named = [c for c in self.classes if c.name == qualname.rpartition(".")[2]]
            node = named[0] if len(named) == 1 else None
        return None if node is None else self.definition(node)

    def definition(self, node: ast.AST) -> _Definition:
        known = self._definitions.get(id(node))
        if known is None:
            decorators: list[ast.expr] = getattr(node, "decorator_list", [])
            bare = copy.copy(node)
            if decorators:
                bare.decorator_list = []  # type: ignore[attr-defined]
            inner = node if isinstance(node, ast.ClassDef) else getattr(node, "body", [])
            names, chains = _reads(inner if isinstance(inner, list) else [inner])
            known = _Definition(ast.unparse(bare), tuple(decorators), names, chains)
            self._definitions[id(node)] = known
        return known


_FILES: dict[str, tuple[object, _SourceFile | None]] = {}


def _load_source(filename: str) -> _SourceFile | None:
    """Parse a file once per version.

    A module the project loader imported is parsed from the very bytes it was compiled
    from (``imports.loaded_source``), never from the file as it is now: an edit landing after
    the import must not pair the new text with the old code's values and behaviour. Other
    files (imported before the project was loaded) are read once per (inode, size, mtime),
    stat first; IPython cells come from linecache.
    """
    from assetflow.fingerprint.imports import loaded_source

    loaded = loaded_source(filename)
    if loaded is not None:
        cached = _FILES.get(filename)
        if cached is None or cached[0] != loaded.digest:
            cached = _FILES[filename] = (loaded.digest, _parse(loaded.data, filename))
        return cached[1]
    try:
        st = os.stat(filename)
    except OSError:
        return _parse("".join(linecache.getlines(filename)), filename)
    signature = (st.st_ino, st.st_size, st.st_mtime_ns)
    cached = _FILES.get(filename)
    if cached is None or cached[0] != signature:
        try:
            with open(filename, "rb") as fh:
                cached = (signature, _parse(fh.read(), filename))
        except OSError:
            cached = (signature, None)
        _FILES[filename] = cached
    return cached[1]


def _parse(text: str | bytes, filename: str) -> _SourceFile | None:
    try:
        return _SourceFile(text, filename) if text else None
    except (SyntaxError, ValueError):
        return None


def _strip_docstring(node: ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:] or [ast.Pass()]


def _reads(roots: Iterable[ast.AST]) -> tuple[frozenset[str], tuple[_Chain, ...]]:
    """Names loaded, and dotted chains rooted at a name, anywhere under ``roots``."""
    names: set[str] = set()
    chains: set[_Chain] = set()
    for root in roots:
        for node in ast.walk(root):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                parts = [node.attr]
                value = node.value
                while isinstance(value, ast.Attribute):
                    parts.append(value.attr)
                    value = value.value
                if isinstance(value, ast.Name):
                    chains.add((value.id, *reversed(parts)))
    return frozenset(names), tuple(sorted(chains))


def _code_names(code: types.CodeType) -> set[str]:
    """co_names of a code object and of the functions, lambdas and comprehensions inside it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _bytecode_text(code: types.CodeType, describe: Callable[[object], str]) -> str:
    """A stand-in for source that is gone (REPL, exec): the bytecode and its constants."""
    lines = [f"# source unavailable for {code.co_qualname}: fingerprinted from bytecode"]
    pending = [code]
    while pending:
        c = pending.pop(0)
        lines += [f"code {c.co_qualname} {c.co_argcount} {c.co_posonlyargcount} {c.co_kwonlyargcount} "
                  f"{c.co_flags} {c.co_code.hex()}", "names " + " ".join(c.co_names),
                  "locals " + " ".join(c.co_varnames)]
        for const in c.co_consts:
            if isinstance(const, types.CodeType):
                pending.append(const)
            else:
                lines.append("const " + describe(const))
    return "\n".join(lines)


# -- where code lives ---------------------------------------------------------------------


@functools.cache
def _distributions_of(top: str) -> tuple[str, ...]:
    """The installed distributions that provide the top-level module ``top``, for ``libraries``.

    Almost always one distribution named like the module (polars, pyarrow, duckdb): it is asked
    for by name and its own files confirm it (~3 ms). Otherwise (``yaml`` from PyYAML, a namespace
    package) every installed distribution is scanned, once per process (~0.1 s, a tenth of a run
    that recomputes a few dozen small assets).
    """
    try:
        named = importlib.metadata.distribution(top)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        named = None
    if named is not None and top in _top_level_names(named):
        return (named.metadata["Name"],)
    return tuple(sorted(set(_distributions().get(top, []))))


def _top_level_names(distribution: importlib.metadata.Distribution) -> set[str]:
    """What ``distribution`` installs at the top level: as it declares, or as its files show."""
    declared = (distribution.read_text("top_level.txt") or "").split()
    if declared:
        return set(declared)
    names = set()
    for file in distribution.files or ():
        if len(file.parts) > 1:
            names.add(file.parts[0])
        else:
            names.add(inspect.getmodulename(str(file)) or str(file))
    return names


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())  # slow: scans every installed dist


def installed_versions(distributions: Iterable[str]) -> dict[str, str]:
    """Each distribution's installed version now ("unknown" when it is gone), as ``libraries`` records it."""
    return {name: _version(name) for name in sorted(distributions)}


@functools.cache
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _module_name(obj: object) -> str:
    name = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    return name if isinstance(name, str) else type(obj).__module__


def _is_asset(obj: object) -> bool:
    try:
        return not isinstance(obj, type) and getattr(obj, "__assetflow_asset__", False) is True
    except Exception:  # noqa: BLE001 - a hostile __getattr__ must not break fingerprinting
        return False


def _is_assetflow(obj: object) -> bool:
    """assetflow's own decorators (``@asset(...)``) carry metadata, not code: never hashed."""
    module = _module_name(obj)
    return _is_asset(obj) or module == "assetflow" or module.startswith("assetflow.")


# -- the walk -------------------------------------------------------------------------------


class _Walker:
    """Visits the asset function and every project-local object it reaches, once each."""

    def __init__(self, root: str, root_globals: dict[str, object], *, walk: bool) -> None:
        self._root = root
        self._root_globals = root_globals
        self._walk = walk
        self._entries: dict[str, set[str]] = {}
        self._seen: dict[int, object] = {}  # id -> object; holding the object keeps the id unique
        self._queue: list[object] = []
        self._files: dict[str, _SourceFile | None] = {}
        self._local_names: dict[str, str] = {}  # entry key (module.qualname) -> qualname, for the digest
        self.libraries: dict[str, str] = {}

    def local_name(self, key: str) -> str:
        """An entry's name without its module: what the digest counts, so code can move between modules."""
        return self._local_names.get(key, key)

    def run(self, func: types.FunctionType) -> str:
        self._seen[id(func)] = func
        key = self._function(func, is_root=True)
        while self._queue:
            obj = self._queue.pop()
            if isinstance(obj, types.FunctionType):
                self._function(obj, is_root=False)
            elif isinstance(obj, type):
                self._class(obj)
        return key

    def sources(self) -> dict[str, str]:
        # Two objects may share a name (lambdas, closures from one factory): keep both texts.
        return {key: "\n\n".join(sorted(texts)) for key, texts in sorted(self._entries.items())}

    def _source(self, filename: str) -> _SourceFile | None:
        if filename not in self._files:
            self._files[filename] = _load_source(filename)
        return self._files[filename]

    def _function(self, func: types.FunctionType, *, is_root: bool) -> str:
        code = func.__code__
        namespace = func.__globals__
        key = self._name(namespace.get("__name__", "__main__"), code.co_qualname)
        source = self._source(code.co_filename)
        found = source.function(code) if source is not None else None
        lines: set[str] = set()
        if found is None:
            names = {name for name in _code_names(code) if name in namespace}
            text = _bytecode_text(code, self._text)
            # Without an AST, any co_name could be an attribute of a project module.
            chains: Iterable[_Chain] = [(m, n) for m in names for n in names
                                       if isinstance(namespace.get(m), types.ModuleType)]
        else:
            names = _code_names(code) & found.names
            chains = [chain for chain in found.chains if chain[0] in names]
            text = self._decorated(found, namespace, lines, is_root)
        for name in sorted(names):
            self._bind_global(lines, name, namespace)
        for chain in chains:
            self._bind_chain(lines, chain, namespace)
        for name, cell in zip(code.co_freevars, func.__closure__ or (), strict=False):
            try:
                self._bind(lines, "closure", name, cell.cell_contents, None)
            except ValueError:  # an empty cell: the variable is not assigned yet
                lines.add(f"# closure {name} = <empty>")
        positional = code.co_varnames[: code.co_argcount]
        defaults = func.__defaults__ or ()
        for name, value in zip(positional[len(positional) - len(defaults):], defaults, strict=True):
            self._bind(lines, "default", name, value, None)
        for name, value in sorted((func.__kwdefaults__ or {}).items()):
            self._bind(lines, "default", name, value, None)
        self._add(key, "\n".join([text, *sorted(lines)]))
        return key

    def _class(self, cls: type) -> None:
        key = self._name(cls.__module__, cls.__qualname__)
        module = sys.modules.get(cls.__module__)
        namespace: dict[str, object] = vars(module) if module is not None else {}
        filename = getattr(module, "__file__", None)
        source = self._source(filename) if isinstance(filename, str) else None
        found = source.cls(cls.__qualname__) if source is not None else None
        lines: set[str] = set()
        if found is None:  # no source: its methods' bytecode stands in, and they are walked
            methods = [v for _, v in sorted(vars(cls).items()) if isinstance(v, types.FunctionType)]
            text = "\n".join([f"# source unavailable for class {key}", *(m.__code__.co_qualname for m in methods)])
            for method in methods:
                self._follow(method, "")
        else:
            text = self._decorated(found, namespace, lines, is_root=False)
            for name in sorted(found.names & namespace.keys()):  # method locals are in the AST too
                self._bind_global(lines, name, namespace)
            for chain in found.chains:
                self._bind_chain(lines, chain, namespace)
        self._add(key, "\n".join([text, *sorted(lines)]))

    def _decorated(self, found: _Definition, namespace: dict[str, object], lines: set[str], is_root: bool) -> str:
        """The definition's text with its decorators.

        The asset's own def (the root, or any def carrying assetflow's ``@asset``, reached
        through a wrapper's closure) keeps none: its decorator arguments are metadata, hashed
        by the caller if at all; project-local decorators still count through their bodies.
        """
        decorators = [(expr, _decorator_object(expr, namespace)) for expr in found.decorators]
        is_root = is_root or any(obj is not _MISSING and _is_assetflow(obj) for _, obj in decorators)
        kept = []
        for expr, obj in decorators:
            if obj is not _MISSING and _is_assetflow(obj):
                continue
            text = ast.unparse(expr)
            if not is_root:
                kept.append("@" + text)
            if obj is not _MISSING and (not is_root or self._is_local(obj)):
                self._bind(lines, "decorator", text, obj, None)
        return "\n".join([*kept, found.body])

    def _bind_global(self, lines: set[str], name: str, namespace: dict[str, object]) -> None:
        value = namespace.get(name, _MISSING)
        if value is _MISSING:
            if not hasattr(builtins, name):
                lines.add(f"# global {name} -> <undefined>")
            return
        self._bind(lines, "global", name, value, self._name(namespace.get("__name__", "__main__"), name))

    def _bind_chain(self, lines: set[str], chain: _Chain, namespace: dict[str, object]) -> None:
        """``helpers.clean``: follow only the attribute read, and only through project modules."""
        obj, owner, depth = namespace.get(chain[0], _MISSING), "", 1
        while depth < len(chain) and isinstance(obj, types.ModuleType) and self._is_local(obj):
            owner, obj = obj.__name__, getattr(obj, chain[depth], _MISSING)
            depth += 1
        if depth > 1 and obj is not _MISSING and not isinstance(obj, types.ModuleType):
            self._bind(lines, "attr", ".".join(chain[:depth]), obj, self._name(owner, chain[depth - 1]))

    def _bind(self, lines: set[str], how: str, name: str, value: object, value_key: str | None) -> None:
        """Record one binding; a global constant also becomes its own entry (``module.CONST``)."""
        is_value, text = self._describe(value, ())
        if is_value and value_key is not None:
            self._add(value_key, text)
            text = self.local_name(value_key)
        lines.add(f"# {how} {name} {'=' if is_value and value_key is None else '->'} {text}")

    def _name(self, module: object, qualname: str) -> str:
        """An entry's key, ``module.qualname``; the digest will know it as ``qualname`` alone."""
        key = f"{module}.{qualname}"
        self._local_names[key] = qualname
        return key

    def _add(self, key: str, text: str) -> None:
        self._entries.setdefault(key, set()).add(text)

    def _is_local(self, obj: object) -> bool:
        if isinstance(obj, types.FunctionType):
            filename = obj.__code__.co_filename
            if filename.startswith("<"):  # exec/REPL: local when it shares the asset's namespace
                return obj.__globals__ is self._root_globals
            return _is_local_path(filename, self._root)
        module = obj if isinstance(obj, types.ModuleType) else sys.modules.get(_module_name(obj))
        where = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", None) or []), None)
        return isinstance(where, str) and _is_local_path(where, self._root)

    def _follow(self, obj: object, key: str) -> str:
        if self._walk and id(obj) not in self._seen:
            self._seen[id(obj)] = obj
            self._queue.append(obj)
        return key

    def _reference(self, obj: object) -> str:
        """How a function, class or module is named in a binding; project-local ones are walked."""
        if isinstance(obj, types.ModuleType):
            if self._is_local(obj):
                return "project module"  # what is read through it is followed; its name is where, not what
        elif isinstance(obj, types.FunctionType) and self._is_local(obj):
            return self._follow(obj, obj.__code__.co_qualname)
        elif isinstance(obj, type) and self._is_local(obj):
            return self._follow(obj, obj.__qualname__)
        module = _module_name(obj)
        top = module.partition(".")[0]
        if top not in sys.stdlib_module_names and top not in _NOT_LIBRARIES:
            for distribution in _distributions_of(top):
                self.libraries[distribution] = _version(distribution)
        if isinstance(obj, types.ModuleType):
            return f"external {module}"
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        name = name if isinstance(name, str) else f"{type(obj).__qualname__} instance"
        return name if top == "builtins" else f"external {top}.{name}"

    def _describe(self, obj: object, stack: tuple[int, ...]) -> tuple[bool, str]:
        """(is a value, stable text). Values are hashed by content; code objects by reference."""
        if _is_asset(obj):
            return False, f"asset {getattr(obj, 'name', '?')}"
        if isinstance(obj, staticmethod | classmethod | types.MethodType):
            obj = obj.__func__
        if isinstance(obj, types.ModuleType | types.FunctionType | type | types.BuiltinFunctionType):
            return False, self._reference(obj)
        if obj is None or obj is Ellipsis:
            return True, repr(obj)
        if id(obj) in stack:
            return True, "<cycle>"
        inner = (*stack, id(obj))
        kind = type(obj)
        prefix = kind.__name__ if kind in _PRIMITIVES or kind in _CONTAINERS else self._reference(kind)
        if isinstance(obj, enum.Enum):
            return True, f"{prefix}.{obj.name}"
        for base in _PRIMITIVES:
            if isinstance(obj, base):
                text = base.__repr__(obj)
                return True, text if kind is base else f"{prefix}({text})"
        if isinstance(obj, _FAITHFUL_REPR):
            return True, repr(obj)
        if isinstance(obj, re.Pattern):  # its repr cuts long patterns at 200 characters
            return True, f"re.compile({obj.pattern!r}, {obj.flags})"
        if isinstance(obj, functools.partial):
            args = [self._text(a, inner) for a in obj.args]
            args += [f"{k}={self._text(v, inner)}" for k, v in sorted(obj.keywords.items())]
            return True, f"functools.partial({self._describe(obj.func, inner)[1]}, {', '.join(args)})"
        if isinstance(obj, dict):
            pairs = sorted((self._text(k, inner), self._text(v, inner)) for k, v in obj.items())
            return True, f"{prefix}{{{', '.join(f'{k}: {v}' for k, v in pairs)}}}"
        if isinstance(obj, set | frozenset):
            return True, f"{prefix}{{{', '.join(sorted(self._text(x, inner) for x in obj))}}}"
        if isinstance(obj, list | tuple):
            return True, f"{prefix}[{', '.join(self._text(x, inner) for x in obj)}]"
        if dataclasses.is_dataclass(obj):
            fields = [f"{f.name}={self._text(getattr(obj, f.name, None), inner)}" for f in dataclasses.fields(obj)]
            return True, f"{prefix}({', '.join(fields)})"
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict) and self._is_local(kind):
            return True, f"{prefix}({self._describe(state, inner)[1]})"
        return True, f"<{prefix} instance>"

    def _text(self, obj: object, stack: tuple[int, ...] = ()) -> str:
        return self._describe(obj, stack)[1]


def _decorator_object(expr: ast.expr, namespace: dict[str, object]) -> object:
    """The object a decorator expression is rooted at: ``helpers.deco(x=1)`` -> ``helpers.deco``."""
    if isinstance(expr, ast.Call):
        return _decorator_object(expr.func, namespace)
    if isinstance(expr, ast.Name):
        return namespace.get(expr.id, getattr(builtins, expr.id, _MISSING))
    if isinstance(expr, ast.Attribute):
        base = _decorator_object(expr.value, namespace)
        return getattr(base, expr.attr, _MISSING) if isinstance(base, types.ModuleType) else base
    return _MISSING
