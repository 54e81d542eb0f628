"""Column-level lineage: which upstream columns each column of an asset comes from.

* SQL assets: exact, from the query (sqlglot's ``qualify`` and ``lineage`` against the
  upstreams' columns): ``revenue`` <- ``orders.amount``; a column computed from no
  column (``count(*)``, a literal) has no origin, and its expression is shown.
* Python assets: from the stored schemas only. A column whose name an upstream also has
  is *kept* (its origin is that upstream's column, marked ``by name``); any other column
  is *added*; an upstream's column missing from the result is *dropped*.
* Sources: their columns, read from the files' schema; the end of every trail.

An asset's columns are its stored schema; a SQL asset never materialized gets them from
its query, when its upstreams' columns are known. Nothing here runs a query or reads
data, and everything is computed per call (no cache outlives it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from assetflow.errors import UnknownAssetError

if TYPE_CHECKING:
    from assetflow.workspace import Workspace

FORMATS = ("text", "mermaid", "dot", "json")


@dataclasses.dataclass(frozen=True)
class ColumnInfo:
    """One column of an asset and where it comes from."""

    name: str
    status: str  # "sql" (derived by the query) | "kept" | "added" (Python assets) | "source"
    origins: tuple[tuple[str, str], ...]  # (upstream asset, column)
    expression: str | None = None  # SQL assets: the select expression, e.g. SUM(orders.amount)


@dataclasses.dataclass(frozen=True)
class AssetColumns:
    """An asset's columns with their origins; ``dropped`` lists upstream columns a Python asset left out."""

    asset: str
    kind: str  # "sql" | "python" | "source"
    columns: tuple[ColumnInfo, ...] | None  # None: unknown (never materialized, schema not derivable)
    dropped: tuple[tuple[str, str], ...] = ()
    note: str | None = None  # why the columns are unknown

    def to_json(self) -> dict[str, Any]:
        return {"asset": self.asset, "kind": self.kind, "note": self.note,
                "columns": None if self.columns is None else [
                    {"name": c.name, "status": c.status, "expression": c.expression,
                     "origins": [{"asset": a, "column": col} for a, col in c.origins]} for c in self.columns],
                "dropped": [{"asset": a, "column": col} for a, col in self.dropped]}


class ColumnIndex:
    """Columns and their origins for the assets of one workspace, worked out on demand."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._columns: dict[str, AssetColumns] = {}
        self._stored: dict[str, list[str]] | None = None
        self._visiting: set[str] = set()

    def names(self, asset: str) -> list[str] | None:
        found = self.of(asset)
        return None if found.columns is None else [c.name for c in found.columns]

    def of(self, asset: str) -> AssetColumns:
        found = self._columns.get(asset)
        if found is None:
            if asset not in self.ws.graph.specs:
                raise UnknownAssetError(f"No asset named {asset!r}; run `assetflow list` to see the assets.")
            if asset in self._visiting:
                return AssetColumns(asset, "sql", None, note="cycle")
            self._visiting.add(asset)
            try:
                found = self._compute(asset)
            finally:
                self._visiting.discard(asset)
            self._columns[asset] = found
        return found

    def _stored_schema(self, asset: str) -> list[str] | None:
        if self._stored is None:
            self._stored = {name: [c for c, _ in mat.schema] for name, mat in self.ws.store.current().items()
                            if mat.schema}
            newest: dict[str, Any] = {}  # a partitioned asset's columns: those of its newest current partition
            for (name, _), mat in self.ws.store.current_partitions().items():
                if mat.schema and (name not in newest or mat.finished_at > newest[name].finished_at):
                    newest[name] = mat
            self._stored.update({name: [c for c, _ in mat.schema] for name, mat in newest.items()})
        return self._stored.get(asset)

    def _compute(self, asset: str) -> AssetColumns:
        spec = self.ws.graph.specs[asset]
        if spec.kind == "source":
            names = _source_columns(self.ws, spec)
            return AssetColumns(asset, "source", None if names is None else
                                tuple(ColumnInfo(n, "source", ()) for n in names),
                                note=None if names is not None else "the source's columns cannot be read")
        if getattr(spec, "language", None) == "sql":
            return self._sql(spec)
        return self._python(spec)

    def _python(self, spec: Any) -> AssetColumns:
        names = self._stored_schema(spec.name)
        if names is None:
            return AssetColumns(spec.name, "python", None, note="never materialized: no stored schema")
        upstream = {u: self.names(u) or [] for u in spec.upstreams}
        columns = []
        for name in names:
            origins = tuple((u, name) for u, cols in upstream.items() if name in cols)
            columns.append(ColumnInfo(name, "kept" if origins else "added", origins))
        dropped = tuple((u, c) for u, cols in upstream.items() for c in cols if c not in names)
        return AssetColumns(spec.name, "python", tuple(columns), dropped)

    def _sql(self, spec: Any) -> AssetColumns:
        schema: dict[str, dict[str, str]] = {}
        for up in spec.upstreams:
            cols = self.names(up)
            if cols is None:
                return AssetColumns(spec.name, "sql", None,
                                    note=f"the columns of upstream `{up}` are unknown (materialize it first)")
            schema[up] = dict.fromkeys(cols, "VARCHAR")  # types do not matter to lineage
        try:
            derived = sql_column_origins(spec, schema)
        except Exception as exc:  # noqa: BLE001 - a query sqlglot cannot trace still runs; say why
            return AssetColumns(spec.name, "sql", None, note=f"lineage could not be traced: {exc}")
        stored = self._stored_schema(spec.name)
        if stored is not None and [c.name for c in derived] != stored:  # e.g. DuckDB named a column itself
            by_name = {c.name.lower(): c for c in derived}  # DuckDB's names are case-insensitive
            derived = [dataclasses.replace(by_name.get(n.lower(), ColumnInfo(n, "sql", ())), name=n) for n in stored]
        return AssetColumns(spec.name, "sql", tuple(derived))


def sql_column_origins(spec: Any, schema: dict[str, dict[str, str]]) -> list[ColumnInfo]:
    """Each output column of a resolved SQL asset with the upstream columns it is computed from.

    DuckDB matches names case-insensitively, quoted or not, and keeps their spelling; sqlglot's
    ``qualify`` lower-cases unquoted names only. So the query and the schema are traced in lower
    case, and names are shown as DuckDB spells them: upstream columns as stored, aliases as written.
    """
    from sqlglot import exp
    from sqlglot.lineage import lineage
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import build_scope

    from assetflow.sql.parse import DIALECT, parse_query
    from assetflow.sql.resolve import rename_tables

    parsed = parse_query(spec.sql, file=spec.file, asset=spec.name, line_offset=spec.line_offset)
    tree = rename_tables(parsed.tree, parsed.refs, spec.tables)
    for placeholder in list(tree.find_all(exp.Placeholder, exp.Parameter)):
        placeholder.replace(exp.Null())  # a parameter's value is never a column
    stored = {table: {c.lower(): c for c in cols} for table, cols in schema.items()}
    spelling = _spellings(tree, stored)
    aliases = {p.alias.lower(): p.alias for p in getattr(tree, "selects", []) if isinstance(p, exp.Alias)}
    for identifier in tree.find_all(exp.Identifier):
        identifier.set("this", identifier.this.lower())
    lowered = {table: dict.fromkeys(names, "VARCHAR") for table, names in stored.items()}
    qualified = qualify(tree, schema=lowered, dialect=DIALECT, validate_qualify_columns=False,
                        quote_identifiers=False)
    scope = build_scope(qualified)
    outputs = list(dict.fromkeys(qualified.named_selects))
    nodes = lineage(None, qualified, schema=lowered, dialect=DIALECT, scope=scope, copy=False)
    origins_of: dict[str, list[tuple[str, str]]] = {}
    for name in outputs:
        node = nodes.get(name) if isinstance(nodes, dict) else None
        origins: list[tuple[str, str]] = []
        for item in node.walk() if node is not None else ():
            table = item.expression.name if isinstance(item.expression, exp.Table) else None
            if table in stored:
                column = item.name.rsplit(".", 1)[-1].strip('"')
                origin = (table, stored[table].get(column, column))
                if origin not in origins:
                    origins.append(origin)
        origins_of[name] = origins
    for identifier in qualified.find_all(exp.Identifier):  # the expressions shown, in the user's spelling
        identifier.set("this", spelling.get(identifier.this, identifier.this))
    expressions = _select_expressions(qualified)
    return [ColumnInfo(aliases.get(name) or spelling.get(name, name), "sql", tuple(sorted(origins_of[name])),
                       expressions.get(spelling.get(name, name))) for name in outputs]


def _spellings(tree: Any, stored: dict[str, dict[str, str]]) -> dict[str, str]:
    """Lower-case name -> how DuckDB spells it: an upstream's column as stored, else as first written."""
    from sqlglot import exp

    spelling: dict[str, str] = {}
    for identifier in tree.find_all(exp.Identifier):
        spelling.setdefault(identifier.this.lower(), identifier.this)
    for columns in stored.values():
        spelling.update(columns)
    return spelling


def _select_expressions(tree: Any) -> dict[str, str]:
    from sqlglot import exp

    from assetflow.sql.parse import DIALECT

    select = tree
    while isinstance(select, exp.SetOperation):
        select = select.this
    found: dict[str, str] = {}
    for projection in getattr(select, "expressions", []):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        text = inner.sql(dialect=DIALECT)
        same = text.split(".")[-1].strip('"').lower() == projection.alias_or_name.lower()  # orders."Amount"
        if projection.alias_or_name not in found and not same:
            found[projection.alias_or_name] = text
    return found


def _source_columns(ws: Workspace, spec: Any) -> list[str] | None:
    """The columns a table source reads, from its files' schema (no rows are read)."""
    if spec.format not in ("csv", "parquet", "json", "ndjson"):
        return None
    try:
        from assetflow.fingerprint.source import source_files

        files = source_files(spec, ws.root)
        if not files:
            return None
        import polars as pl

        scan = {"csv": pl.scan_csv, "parquet": pl.scan_parquet, "ndjson": pl.scan_ndjson}.get(spec.format)
        if scan is None:
            return list(pl.read_json(files[0]).columns)
        return list(scan(files[0]).collect_schema().names())
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the run, not by lineage
        return None


# -- a column's trail ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ColumnEdge:
    upstream: tuple[str, str]
    downstream: tuple[str, str]
    how: str  # "sql" (exact, from the query) | "name" (a Python asset kept a column of that name)


@dataclasses.dataclass(frozen=True)
class ColumnLineage:
    """The columns a column comes from (upstream) and/or flows into (downstream)."""

    root: tuple[str, str]
    nodes: dict[tuple[str, str], str | None]  # (asset, column) -> expression (SQL assets) or None
    kinds: dict[str, str]  # asset -> "sql" | "python" | "source"
    edges: tuple[ColumnEdge, ...]
    notes: dict[str, str]  # asset -> why its columns are unknown
    added: frozenset[tuple[str, str]] = frozenset()  # Python assets' columns no upstream has (made by the code)

    def render(self, fmt: str) -> str:
        return {"text": self.to_text, "mermaid": self.to_mermaid, "dot": self.to_dot,
                "json": lambda: json.dumps(self.to_json(), indent=2) + "\n"}[fmt]()

    def to_json(self) -> dict[str, Any]:
        return {"column": _label(self.root),
                "nodes": [{"asset": a, "column": c, "kind": self.kinds.get(a), "expression": e}
                          for (a, c), e in self.nodes.items()],
                "edges": [{"upstream": _label(e.upstream), "downstream": _label(e.downstream), "how": e.how}
                          for e in self.edges],
                "notes": self.notes}

    def _describe(self, node: tuple[str, str]) -> str:
        kind = self.kinds.get(node[0], "")
        expression = self.nodes.get(node)
        text = f"{_label(node)} ({kind})"
        if node in self.added:
            text += ": made by the Python code (no column of that name upstream)"
        return f"{text} = {expression}" if expression else text

    def to_text(self) -> str:
        out = [self._describe(self.root)]
        for title, children in (("from", self._ups), ("into", self._downs)):
            if not children(self.root):
                continue
            out.append(f"  {title}:")
            seen: set[tuple[str, str]] = set()
            stack = [(c, "  ", i == len(children(self.root)) - 1, how) for i, (c, how) in
                     enumerate(children(self.root))][::-1]
            while stack:
                node, prefix, last, how = stack.pop()
                mark = " (by name)" if how == "name" else ""
                repeat = node in seen
                out.append(f"{prefix}{'└── ' if last else '├── '}{self._describe(node)}{mark}"
                           f"{' (see above)' if repeat else ''}")
                if repeat:
                    continue
                seen.add(node)
                below = children(node)
                inner = prefix + ("    " if last else "│   ")
                stack.extend([(c, inner, i == len(below) - 1, h) for i, (c, h) in enumerate(below)][::-1])
        for asset, note in sorted(self.notes.items()):
            out.append(f"  note: columns of `{asset}` unknown: {note}")
        return "\n".join(out) + "\n"

    def _ups(self, node: tuple[str, str]) -> list[tuple[tuple[str, str], str]]:
        return [(e.upstream, e.how) for e in self.edges if e.downstream == node]

    def _downs(self, node: tuple[str, str]) -> list[tuple[tuple[str, str], str]]:
        return [(e.downstream, e.how) for e in self.edges if e.upstream == node]

    def to_mermaid(self) -> str:
        ids = {node: f"c{i}" for i, node in enumerate(self.nodes)}
        lines = ["flowchart LR"]
        for node, index in ids.items():
            shape = f'[("{_label(node)}")]' if self.kinds.get(node[0]) == "source" else f'["{_label(node)}"]'
            lines.append(f"    {index}{shape}")
        for edge in self.edges:
            arrow = "-. by name .->" if edge.how == "name" else "-->"
            lines.append(f"    {ids[edge.upstream]} {arrow} {ids[edge.downstream]}")
        return "\n".join(lines) + "\n"

    def to_dot(self) -> str:
        lines = ["digraph column_lineage {", "    rankdir=LR;", '    node [shape=box, fontname="Helvetica"];']
        for node in self.nodes:
            attrs = [f'label="{_label(node)}"']
            if self.kinds.get(node[0]) == "source":
                attrs.append("shape=cylinder")
            if node == self.root:
                attrs.append("penwidth=2")
            lines.append(f'    "{_label(node)}" [{", ".join(attrs)}];')
        for edge in self.edges:
            style = ' [style=dashed, label="by name"]' if edge.how == "name" else ""
            lines.append(f'    "{_label(edge.upstream)}" -> "{_label(edge.downstream)}"{style};')
        lines.append("}")
        return "\n".join(lines) + "\n"


def _label(node: tuple[str, str]) -> str:
    return f"{node[0]}.{node[1]}"


def _did_you_mean(name: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def column_lineage(ws: Workspace, asset: str, column: str, *, upstream: bool = True, downstream: bool = False,
                   depth: int | None = None) -> ColumnLineage:
    """The trail of ``asset.column``: the upstream columns it is computed from, and/or where it goes."""
    if asset not in ws.graph.specs:
        raise UnknownAssetError(f"No asset named {asset!r} (in {asset}.{column}, read as ASSET.COLUMN)."
                                f"{_did_you_mean(asset, list(ws.graph.specs))} Run `assetflow list` to see the assets.")
    index = ColumnIndex(ws)
    found = index.of(asset)
    if found.columns is None:
        raise UnknownAssetError(f"The columns of {asset!r} are unknown: {found.note}.")
    names = [c.name for c in found.columns]
    same = [n for n in names if n.lower() == column.lower()]
    if column not in names and len(same) == 1:
        column = same[0]  # q.stat is q.Stat, as in DuckDB
    if column not in names:
        raise UnknownAssetError(f"Asset {asset!r} has no column {column!r}.{_did_you_mean(column, names)} "
                                f"Its columns: {', '.join(names)}.")
    root = (asset, column)
    nodes: dict[tuple[str, str], str | None] = {root: _expression(index, root)}
    edges: list[ColumnEdge] = []
    notes: dict[str, str] = {}
    if upstream:
        _walk_up(index, [root], nodes, edges, notes, depth)
    if downstream:
        _walk_down(index, ws, [root], nodes, edges, notes, depth)
    kinds = {a: index.of(a).kind for a, _ in nodes}
    added = frozenset(n for n in nodes if _status(index, n) == "added")
    return ColumnLineage(root, nodes, kinds, tuple(edges), notes, added)


def _status(index: ColumnIndex, node: tuple[str, str]) -> str | None:
    return next((c.status for c in index.of(node[0]).columns or () if c.name == node[1]), None)


def _expression(index: ColumnIndex, node: tuple[str, str]) -> str | None:
    info = index.of(node[0])
    for column in info.columns or ():
        if column.name == node[1]:
            return column.expression
    return None


def _walk_up(index: ColumnIndex, frontier: Iterable[tuple[str, str]], nodes: dict, edges: list, notes: dict,
             depth: int | None) -> None:
    level, frontier = 0, list(frontier)
    while frontier and (depth is None or level < depth):
        following = []
        for node in frontier:
            info = index.of(node[0])
            column = next((c for c in info.columns or () if c.name == node[1]), None)
            if column is None:
                continue
            for origin in column.origins:
                if index.of(origin[0]).columns is None:
                    notes[origin[0]] = index.of(origin[0]).note or "unknown"
                edges.append(ColumnEdge(origin, node, "name" if column.status == "kept" else "sql"))
                if origin not in nodes:
                    nodes[origin] = _expression(index, origin)
                    following.append(origin)
        frontier, level = following, level + 1


def _walk_down(index: ColumnIndex, ws: Workspace, frontier: Iterable[tuple[str, str]], nodes: dict, edges: list,
               notes: dict, depth: int | None) -> None:
    level, frontier = 0, list(frontier)
    while frontier and (depth is None or level < depth):
        following = []
        for node in frontier:
            for down in ws.graph.downstream.get(node[0], ()):
                info = index.of(down)
                if info.columns is None:
                    notes[down] = info.note or "unknown"
                    continue
                for column in info.columns:
                    if node in column.origins:
                        target = (down, column.name)
                        edges.append(ColumnEdge(node, target, "name" if column.status == "kept" else "sql"))
                        if target not in nodes:
                            nodes[target] = column.expression
                            following.append(target)
        frontier, level = following, level + 1
