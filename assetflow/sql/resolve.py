"""Joining SQL assets to the project: finding ``.sql`` files, resolving table names, binding ``$parameters``.

Runs once per project load, after the Python modules are imported, because a query may
read any asset or source of the project, wherever it is declared. A table name resolves
to the asset or source of that name; ``group.name`` is accepted when the asset is in that
group. Anything else is an error with a did-you-mean: a name that matches nothing, a
qualifier that names no group (another database or schema the project did not declare),
a ``$parameter`` missing from ``[tool.assetflow.vars]``. Cycles through SQL and Python
assets are found by the graph, like any other.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from assetflow.declare import AssetSpec, Spec
from assetflow.errors import DuplicateAssetError, ProjectLoadError, SqlDefinitionError, UnknownAssetError
from assetflow.sql.spec import SqlAssetSpec, SqlParams, spec_from_file

__all__ = ["add_sql_assets", "sql_files"]


def sql_files(root: Path, folders: Iterable[str]) -> tuple[list[Path], list[Path]]:
    """(every ``.sql`` file, every folder searched) under the configured folders, sorted.

    The folders are part of the answer so that adding a file anywhere below them is
    noticed by the no-op fast path (a folder's mtime moves when an entry is added).
    """
    files: list[Path] = []
    dirs: list[Path] = []
    for folder in folders:
        base = (root / folder).resolve()
        if not base.is_dir():
            raise ProjectLoadError(
                f"[tool.assetflow] sql lists {folder!r}, but {base} is not a folder. Create it or fix the list."
            )
        for current, subdirs, names in os.walk(base):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            dirs.append(Path(current))
            files.extend(Path(current) / n for n in sorted(names) if n.endswith(".sql") and not n.startswith("."))
    return files, dirs


def add_sql_assets(specs: Mapping[str, Spec], root: Path, folders: Iterable[str],
                   variables: Mapping[str, Any]) -> dict[str, Spec]:
    """The project's specs with its ``.sql`` files added, and every SQL asset resolved."""
    found: dict[str, Spec] = dict(specs)
    for folder in folders:
        base = (root / folder).resolve()
        for path in sql_files(root, [folder])[0]:
            spec = spec_from_file(path, root, base)
            previous = found.get(spec.name)
            if previous is not None:
                raise DuplicateAssetError(
                    f"Asset name {spec.name!r} is defined twice:\n  {previous.where} ({previous.kind})\n"
                    f"  {spec.where} (SQL file)\nRename one of them (a SQL asset is named after its file)."
                )
            found[spec.name] = spec
    for spec in found.values():
        if isinstance(spec, SqlAssetSpec):
            resolve(spec, found, variables)
    return found


def resolve(spec: SqlAssetSpec, specs: Mapping[str, Spec], variables: Mapping[str, Any]) -> None:
    """Fill in the spec's upstreams, table map, parameters (its config) and canonical query."""
    from assetflow.sql.parse import canonical_sql, parse_query

    tables: dict[str, str] = {}
    upstreams: list[str] = []
    for ref in spec.refs:
        name = _resolve_ref(spec, ref, specs)
        tables[ref.written] = name
        if name not in upstreams:
            upstreams.append(name)
    missing = [p for p in spec.params if p not in variables]
    if missing:
        close = difflib.get_close_matches(missing[0], list(variables), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join('$' + c for c in close)}?" if close else ""
        raise SqlDefinitionError(
            f"{spec.where}: SQL asset {spec.name!r} uses ${missing[0]}, but [tool.assetflow.vars] in "
            f"pyproject.toml has no {missing[0]!r}.{hint} Add it there, e.g. {missing[0]} = 10.",
            spec.file, spec.line, 0)
    spec.upstreams = tuple(upstreams)
    spec.tables = tables
    spec.config = SqlParams({p: variables[p] for p in spec.params}) if spec.params else None
    if spec.name in upstreams:
        raise SqlDefinitionError(
            f"{spec.where}: SQL asset {spec.name!r} reads itself. A query cannot read its own result; "
            f"read its upstream instead (a WITH name equal to the asset's is fine inside the query).",
            spec.file, spec.line, 0)
    tree, spec.tree = spec.tree, None  # parsed at declaration; canonical_sql consumes it
    if tree is None:
        tree = parse_query(spec.sql, file=spec.file, asset=spec.name, line_offset=spec.line_offset).tree
    spec.canonical = canonical_sql(rename_tables(tree, spec.refs, tables))


def rename_tables(tree: Any, refs: tuple[Any, ...], tables: Mapping[str, str]) -> Any:
    """Point every table reference at its asset's bare name (``marts.Orders`` -> ``orders``), in place."""
    from sqlglot import exp

    from assetflow.sql.parse import table_nodes

    for table, ref in table_nodes(tree, refs):
        target = tables[ref.written]
        table.set("catalog", None)
        table.set("db", None)
        table.set("this", exp.to_identifier(target))
    return tree


def _resolve_ref(spec: SqlAssetSpec, ref: Any, specs: Mapping[str, Spec]) -> str:
    where = f"{spec.file}:{ref.line + spec.line_offset}:{ref.column}" if ref.line else spec.where
    name = ref.name
    target = specs.get(name)
    if ref.qualifier:
        if len(ref.qualifier) == 1 and target is not None and target.group == ref.qualifier[0]:
            return name
        if target is not None:
            detail = (f"{name!r} is in group {target.group!r}" if target.group else f"{name!r} is in no group")
            fix = f"write `{target.group}.{name}` or just `{name}`" if target.group else f"write just `{name}`"
        else:
            detail, fix = f"no asset or source is named {name!r}", "declare it with source() in Python"
        raise SqlDefinitionError(
            f"{where}: SQL asset {spec.name!r} reads {ref.written!r}, a table of another database or schema "
            f"the project did not declare ({detail}). A SQL asset reads only the project's assets and "
            f"sources: {fix}.", spec.file, ref.line + spec.line_offset, ref.column)
    if target is None:
        close = difflib.get_close_matches(name, list(specs), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownAssetError(
            f"{where}: SQL asset {spec.name!r} reads the table {name!r}, but no asset or source is named "
            f"{name!r}.{hint} Declare it (a .sql file, @asset or source()), or fix the name."
        )
    if not isinstance(target, AssetSpec) and getattr(target, "format", None) == "path":
        raise SqlDefinitionError(
            f"{where}: SQL asset {spec.name!r} reads the source {name!r}, whose format is 'path' (a list of "
            f"files, not a table). Give the source a table format, e.g. source(..., format='csv').",
            spec.file, ref.line + spec.line_offset, ref.column)
    return name
