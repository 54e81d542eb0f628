"""SQL assets as declarations: ``sql_asset("name", "select ...")`` and the ``.sql`` files of a project.

A ``SqlAssetSpec`` is an ``AssetSpec`` (same options, same validation, same place in
the graph) whose code is one DuckDB query instead of a function. Its upstreams are not
known when it is declared: the table names it reads are resolved once the whole
project is loaded (``assetflow.sql.resolve``), so SQL and Python assets may read each
other in any order of declaration.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assetflow.declare import AssetSpec, _build_asset
from assetflow.errors import DefinitionError
from assetflow.sql.parse import TableRef, parse_query

__all__ = ["SqlAssetSpec", "SqlParams", "sql_asset", "spec_from_file"]


@dataclasses.dataclass(frozen=True)
class SqlParams:
    """The project values (``[tool.assetflow.vars]``) a query uses as ``$name``: its configuration.

    As the asset's ``config`` it enters the recipe key and ``why`` shows each change.
    """

    vars: dict[str, Any]


def _not_callable() -> object:
    raise TypeError("A SQL asset has no Python function to call; `assetflow materialize` runs its query in DuckDB.")


def _placeholder(file: str, line: int) -> Callable[[], object]:
    """A function that says where the query is, so ``@asset``'s validation names the user's file and line."""
    code = _not_callable.__code__.replace(co_filename=file, co_firstlineno=max(1, line))
    return types.FunctionType(code, {})


@dataclasses.dataclass(eq=False)
class SqlAssetSpec(AssetSpec):
    """An asset computed by one SQL query run in DuckDB over its upstreams' stored data."""

    sql: str = ""
    sql_file: str | None = None  # the .sql file, absolute; None when declared with sql_asset() in Python
    line_offset: int = 0  # added to the query's line numbers in messages (SQL inside a Python file)
    refs: tuple[TableRef, ...] = ()
    params: tuple[str, ...] = ()
    canonical: str = ""  # the normalised query (set when resolved): fingerprinted, stored, diffed by `why`
    tables: dict[str, str] = dataclasses.field(default_factory=dict)  # written name -> asset it resolved to
    tree: Any = dataclasses.field(default=None, repr=False)  # the parsed query until resolved (then None)

    language = "sql"

    @property
    def display_file(self) -> str:
        return self.sql_file or self.file


def _options_for_build(options: dict[str, Any], where: str, name: str) -> dict[str, Any]:
    if "config" in options:
        raise DefinitionError(
            f"SQL asset {name!r} at {where}: config= is for Python assets. A query reads project values as "
            f"$name from [tool.assetflow.vars] in pyproject.toml."
        )
    if options.get("partitions") is not None or options.get("mappings"):
        raise DefinitionError(
            f"SQL asset {name!r} at {where}: partitions are not supported on SQL assets yet (the query would run "
            f"unchanged for every key). Make it a Python @asset(partitions=...), or leave it unpartitioned: it "
            f"then reads every partition of a partitioned upstream, concatenated in key order."
        )
    known = set(inspect.signature(_build_asset).parameters) - {"fn", "name", "config"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise DefinitionError(
            f"SQL asset {name!r} at {where}: unknown option(s) {', '.join(map(repr, unknown))}; "
            f"it takes what @asset takes: {', '.join(sorted(known))}."
        )
    return options


def build_sql_spec(name: str, sql: str, *, file: str, line: int, sql_file: str | None, line_offset: int,
                   options: dict[str, Any]) -> SqlAssetSpec:
    """Validate the options as ``@asset`` does, parse the query, and return the (unresolved) spec."""
    where = f"{sql_file or file}:{line}"
    if not isinstance(sql, str):
        raise DefinitionError(f"sql_asset({name!r}) at {where} needs the query as a string; got {type(sql).__name__}.")
    base = _build_asset(_placeholder(sql_file or file, line), name=name, **_defaults(_options_for_build(dict(options), where, name)))
    parsed = parse_query(sql, file=sql_file or file, asset=base.name, line_offset=line_offset)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(AssetSpec)}
    fields.update(upstreams=(), file=sql_file or file, line=line)
    return SqlAssetSpec(**fields, sql=sql, sql_file=sql_file, line_offset=line_offset, refs=parsed.refs,
                        params=parsed.params, tree=parsed.tree)


def _defaults(options: dict[str, Any]) -> dict[str, Any]:
    """``_build_asset``'s keyword arguments: the ones given, the decorator's defaults for the rest."""
    signature = inspect.signature(_build_asset)
    result = {}
    for parameter in signature.parameters.values():
        if parameter.name in ("fn", "name", "config"):
            continue
        if parameter.name in options:
            result[parameter.name] = options[parameter.name]
        elif parameter.default is not inspect.Parameter.empty:
            result[parameter.name] = parameter.default
        else:
            result[parameter.name] = _REQUIRED_DEFAULTS.get(parameter.name)
    result["config"] = None
    return result


# _build_asset takes every option as a required keyword; these are @asset's own defaults.
_REQUIRED_DEFAULTS: dict[str, Any] = {"deps": (), "io": None, "group": None, "tags": None, "version": None,
                                      "description": None, "owners": (), "metadata": None, "retries": 0}


def sql_asset(name: str, sql: str, **options: Any) -> SqlAssetSpec:
    """Declare a SQL asset in Python: ``daily = sql_asset("daily", "select day, sum(amount) ... from orders")``.

    The query is one DuckDB SELECT; the tables it names are its upstreams (assets or
    sources of the project, declared anywhere). ``options`` are ``@asset``'s (io, group,
    tags, description, owners, freshness, retries, timeout, pool, deps, version). Assign
    the result to a module variable, as with ``source()``, so the project finds it.
    See docs/sql.md.
    """
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    file, line = (caller.f_code.co_filename, caller.f_lineno) if caller is not None else ("<unknown>", 0)
    del frame, caller
    starts = _literal_line(file, line, sql)  # its errors name the lines of the file the query is written on
    return build_sql_spec(name, sql, file=file, line=line, sql_file=None, line_offset=max(0, starts - 1),
                          options=options)


def _literal_line(file: str, call_line: int, sql: object) -> int:
    """The line of ``file`` where the string literal holding ``sql`` starts, in the call at ``call_line`` (the
    call's own line when the query is not written there as a literal: built in code, or the file unreadable)."""
    import ast

    try:
        tree = _parsed(file, os.stat(file).st_mtime_ns)
    except (OSError, SyntaxError, ValueError):
        return call_line
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.lineno <= call_line <= (node.end_lineno or node.lineno):
            for arg in [*node.args, *(keyword.value for keyword in node.keywords)]:
                if isinstance(arg, ast.Constant) and arg.value == sql:
                    return arg.lineno
    return call_line


@functools.lru_cache(maxsize=16)
def _parsed(file: str, mtime_ns: int) -> Any:
    """A module's syntax tree, once per version of the file (``mtime_ns``) however many SQL assets it declares."""
    import ast

    with open(file, "rb") as handle:
        return ast.parse(handle.read(), file)


def spec_from_file(path: Path, root: Path, folder: Path) -> SqlAssetSpec:
    """The asset a ``.sql`` file declares: named after the file, grouped by its folder, options from its header."""
    from assetflow.declare import validate_name
    from assetflow.sql.header import parse_header

    shown = _shown(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{shown}: cannot read this SQL file ({exc}). Fix or remove it.") from None
    name = validate_name(path.stem, what="SQL asset", where=shown)
    header = parse_header(text, shown)
    options = dict(header.options)
    if "group" not in options and path.parent != folder:
        options["group"] = validate_name(path.parent.name, what="Group (the SQL file's folder)", where=shown)
    spec = build_sql_spec(name, text, file=shown, line=1, sql_file=shown, line_offset=0, options=options)
    spec.sql_file = str(path)
    return spec


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
