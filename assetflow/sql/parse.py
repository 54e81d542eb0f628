"""Reading a SQL asset's text: one DuckDB query, the tables it reads, its ``$parameters``, its canonical form.

Everything here is pure text -> syntax tree work with sqlglot (no DuckDB, no project),
so it runs at declaration time and in the no-DuckDB paths (``status``, ``lineage``).

What is refused, each with the file, line and column: text sqlglot cannot parse, more
than one statement, a statement that is not a query (DDL, DML, ``ATTACH``, ``COPY``,
``SET``, ``PRAGMA``), a table function that reads files or other databases
(``read_parquet('x')``), a quoted file path used as a table (``FROM 'data/x.csv'``).
Whether the remaining table names are assets is decided later, when the whole project
is known (``assetflow.sql.resolve``).

Canonical form (the code fingerprint, see docs/sql.md): comments dropped, keywords, unquoted
identifiers and the names of tables, aliases and qualifiers (quoted too: DuckDB resolves them in
any case) in one case, formatting regenerated, and reorderings that cannot change a result put
in one order: the operands of ``AND``/``OR`` chains and of ``=``/``<>``,
``IN (...)`` lists of literals and ``GROUP BY`` keys. Aliases, the select list and ``ORDER
BY`` keep their order: they change the result's shape.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from assetflow.errors import SqlDefinitionError

if TYPE_CHECKING:
    from sqlglot import exp

DIALECT = "duckdb"
# Table functions that generate rows without reading anything outside the query.
_PURE_TABLE_FUNCTIONS = frozenset({"GenerateSeries", "Unnest", "ExplodingGenerateSeries"})
_PATH_HINTS = ("/", "\\", ".csv", ".parquet", ".json", ".ndjson", ".jsonl", ".tsv", ".txt", ".duckdb", ".db", "://")


@dataclasses.dataclass(frozen=True)
class TableRef:
    """One table name the query reads (not a CTE), as written, and where."""

    name: str
    qualifier: tuple[str, ...]  # ("marts",) for marts.orders; ("db", "main") for db.main.orders
    line: int
    column: int

    @property
    def written(self) -> str:
        return ".".join((*self.qualifier, self.name))


@dataclasses.dataclass(frozen=True)
class ParsedQuery:
    """A validated query: its tree, the tables it reads and the ``$parameters`` it uses."""

    tree: exp.Expression
    refs: tuple[TableRef, ...]
    params: tuple[str, ...]


def _error(message: str, file: str, line: int = 0, column: int = 0, line_offset: int = 0) -> SqlDefinitionError:
    shown_line = line + line_offset if line else 0
    where = f"{file}:{shown_line}:{column}" if shown_line else file
    return SqlDefinitionError(f"{where}: {message}", file, shown_line, column)


def parse_query(text: str, *, file: str, asset: str, line_offset: int = 0) -> ParsedQuery:
    """Parse and check one SQL asset's text; ``line_offset`` shifts line numbers (SQL inside a Python file)."""
    import sqlglot
    from sqlglot import exp

    try:
        parsed = sqlglot.parse(text, read=DIALECT)
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        line, column = int(first.get("line") or 0), int(first.get("col") or 0)
        raise _error(
            f"SQL asset {asset!r} is not valid SQL: {first.get('description') or exc}. "
            f"Fix the query near this position.{caret(text, line, column)}", file, line, column, line_offset) from None
    except sqlglot.errors.TokenError as exc:
        raise _error(f"SQL asset {asset!r} is not valid SQL: {exc} (an unclosed quote or comment?). Fix the query.",
                     file) from None
    # an empty statement (';;') is None; a comment after the last ';' is a comment-only Semicolon: neither counts
    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        raise _error(f"SQL asset {asset!r} holds no query. Write one SELECT, e.g. `select * from orders`.", file)
    if len(statements) > 1:
        line, column = _second_statement(text)
        raise _error(
            f"SQL asset {asset!r} holds {len(statements)} statements; a SQL asset is exactly one query. "
            f"Move each further query into its own .sql file (one asset each), and drop the extra ';'.",
            file, line, column, line_offset)
    tree = statements[0]
    if not isinstance(tree, exp.Query | exp.Pivot | exp.Values):
        kind = type(tree).__name__.upper()
        raise _error(
            f"SQL asset {asset!r} is a {kind} statement, not a query. A SQL asset is one SELECT (WITH, UNION, "
            f"VALUES and PIVOT too) whose result assetflow stores; tables are created, written and attached by "
            f"assetflow, never by the query. Rewrite it as a SELECT, or make it a Python @asset.",
            file, _first_line(tree), 0, line_offset)
    _check_column_names(tree, file, asset, line_offset)
    refs = _table_refs(tree, file, asset, line_offset)
    params = sorted({p.name for p in tree.find_all(exp.Placeholder, exp.Parameter) if p.name})
    return ParsedQuery(tree, tuple(refs), tuple(params))


def duplicate_column(asset: str, name: str) -> str:
    """Why two result columns of one name are refused, and what to do (parse time and run time say the same)."""
    return (f"SQL asset {asset!r} gives two result columns named {name!r} (DuckDB compares names "
            f"case-insensitively). A stored table needs distinct names: DuckDB would rename one ({name}_1) or "
            f"store both, which nothing can load. Alias one of them (`... AS {name}_2`), or select only one.")


def _check_column_names(tree: exp.Expression, file: str, asset: str, line_offset: int) -> None:
    """Refuse a select list that names one column twice (``o.id, c.id``); a ``*`` is checked when the query runs."""
    from sqlglot import exp

    if not isinstance(tree, exp.Query):
        return
    seen: set[str] = set()
    for projection in tree.selects:
        name = projection.args.get("alias") if isinstance(projection, exp.Alias) else projection.this
        if not isinstance(projection, exp.Alias | exp.Column) or not isinstance(name, exp.Identifier):
            continue  # a star, or an expression DuckDB names after its text
        if name.name.lower() in seen:
            line, column = identifier_position(name)
            raise _error(duplicate_column(asset, name.name), file, line, column, line_offset)
        seen.add(name.name.lower())


def star_position(tree: exp.Expression) -> tuple[int, int]:
    """(line, column) of the first ``*`` in the select list, which brings in columns by name; (0, 0) when none."""
    from sqlglot import exp

    for projection in tree.selects if isinstance(tree, exp.Query) else ():
        star = projection.this if isinstance(projection, exp.Column) else projection  # t.* or *
        if isinstance(star, exp.Star) and star.meta.get("line"):
            return int(star.meta["line"]), int(star.meta.get("col") or 0)
    return 0, 0


def caret(text: str, line: int, column: int, width: int = 1) -> str:
    """The offending line with ``width`` carets from ``column`` on (sqlglot's column is where the bad token ends)."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return ""
    shown = lines[line - 1].replace("\t", " ")
    at = max(0, min(column, len(shown)) - 1)
    return f"\n  {shown}\n  {' ' * at}{'^' * max(1, min(width, len(shown) - at))}"


def _second_statement(text: str) -> tuple[int, int]:
    """(line, column) where the second statement starts: the first token after a ``;``."""
    from sqlglot.dialects.dialect import Dialect

    after_semicolon = False
    for token in Dialect.get_or_raise(DIALECT).tokenize(text):
        if token.token_type.name == "SEMICOLON":
            after_semicolon = True
        elif after_semicolon:
            return token.line, max(1, token.col - len(token.text) + 1)
    return 0, 0


def _first_line(node: exp.Expression) -> int:
    from sqlglot import exp

    for ident in node.find_all(exp.Identifier):
        line = ident.meta.get("line")
        if line:
            return int(line)
    return 0


def identifier_position(node: exp.Expression) -> tuple[int, int]:
    """(line, first column), 1-based, of an identifier as the parser saw it; (0, 0) when unknown.

    The parser gives the column where the identifier ends, and its span in the text: a quoted
    one's span holds its quotes (``"Orders"`` starts at its opening quote).
    """
    meta = node.meta or {}
    line, end = int(meta.get("line") or 0), int(meta.get("col") or 0)
    if "start" in meta and "end" in meta:
        width = int(meta["end"]) - int(meta["start"]) + 1
    else:
        width = len(node.this) if isinstance(node.this, str) else 1
    return line, max(1, end - width + 1) if end else 0


def _table_refs(tree: exp.Expression, file: str, asset: str, line_offset: int) -> list[TableRef]:
    """Every table the query reads, in order of appearance; CTE names are not tables."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    scoped: set[int] = set()
    try:
        for scope in traverse_scope(tree):
            scoped.update(id(source) for source in scope.sources.values() if isinstance(source, exp.Table))
    except Exception:  # noqa: BLE001 - a shape the scope builder does not know: fall back to CTE names below
        scoped = set()
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    refs: list[TableRef] = []
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            _check_table_function(table, file, asset, line_offset)
            continue
        if id(table) not in scoped and not table.args.get("db") and table.name in ctes:
            continue
        line, column = identifier_position(table.this)
        name = table.name
        if table.this.quoted and any(hint in name.lower() for hint in _PATH_HINTS):
            raise _error(
                f"SQL asset {asset!r} reads the file path {name!r} directly. Declare the file as a source in "
                f"Python (`{_suggest(name)} = source({name!r})`) and read it by that name, so assetflow "
                f"hashes it and knows when it changes.", file, line, column, line_offset)
        qualifier = tuple(_folded(part) for part in (table.args.get("catalog"), table.args.get("db")) if part)
        refs.append(TableRef(_folded(table.this), qualifier, line, column))
    refs.sort(key=lambda r: (r.line, r.column))
    return refs


def _folded(identifier: exp.Expression) -> str:
    """A table name as DuckDB resolves it: in any case, quoted or not (``"Orders"`` is ``orders``)."""
    return identifier.name.lower()


def table_nodes(tree: exp.Expression, refs: tuple[TableRef, ...]) -> list[tuple[exp.Table, TableRef]]:
    """The Table nodes of ``tree`` that are the references ``refs`` (matched by position), with their ref."""
    from sqlglot import exp

    by_position = {(ref.line, ref.column): ref for ref in refs}
    found = []
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Identifier):
            ref = by_position.get(identifier_position(table.this))
            if ref is not None:
                found.append((table, ref))
    return found


def _check_table_function(table: exp.Table, file: str, asset: str, line_offset: int) -> None:
    from sqlglot import exp

    function = table.this
    kind = type(function).__name__
    if kind in _PURE_TABLE_FUNCTIONS:
        return
    # an unknown function (glob, read_json_auto) is sqlglot's Anonymous: its own name, and where it is, are its own
    name = function.name if isinstance(function, exp.Anonymous) else \
        function.sql_name() if hasattr(function, "sql_name") else kind
    line, column = int(function.meta.get("line") or _first_line(table)), int(function.meta.get("col") or 0)
    raise _error(
        f"SQL asset {asset!r} calls the table function {name.lower()}(...), which reads outside the project "
        f"(a file, a URL or another database). Declare what it reads as a source() in Python and select "
        f"from that name, so assetflow hashes it and knows when it changes.", file, line, column, line_offset)


def _suggest(path: str) -> str:
    import re

    stem = re.sub(r"\.[a-z0-9]+$", "", path.replace("\\", "/").rsplit("/", 1)[-1].lower())
    return re.sub(r"[^a-z0-9_]+", "_", stem).strip("_") or "raw"


# -- canonical form ---------------------------------------------------------------------------


def canonical_sql(tree: exp.Expression) -> str:
    """The query's canonical text: what its code fingerprint hashes and what ``why`` diffs.

    Rewrites ``tree`` in place (copying costs as much as parsing; callers parse afresh).
    """
    from sqlglot import exp

    key = _sort_key()
    nodes = list(tree.walk(bfs=False))
    named_by_text = _named_by_their_text(tree)
    for node in reversed(nodes):  # children before parents: a parent sorts canonical operands
        node.comments = None
        if named_by_text and any(id(up) in named_by_text for up in _lineage(node)):
            continue  # its written order is its result column's name: reordered, the stored table changes
        if isinstance(node, exp.Identifier) and _names_a_table(node):
            node.replace(exp.to_identifier(node.name.lower()))  # DuckDB resolves it in any case, quoted or not
        elif isinstance(node, exp.And | exp.Or):
            if isinstance(node.parent, type(node)) or _paren_of(node, type(node)):
                continue  # sorted as part of the enclosing chain
            node.replace(_sorted_chain(node, key))
        elif isinstance(node, exp.EQ | exp.NEQ):
            left, right = node.this, node.expression
            if key(right) < key(left):
                node.set("this", right)
                node.set("expression", left)
        elif isinstance(node, exp.In) and node.expressions and all(isinstance(e, exp.Literal) for e in node.expressions):
            node.set("expressions", sorted(node.expressions, key=lambda e: (e.is_string, key(e))))
        elif isinstance(node, exp.Group) and node.expressions:
            node.set("expressions", sorted(node.expressions, key=key))
    return tree.sql(dialect=DIALECT, pretty=True, comments=False)


def _named_by_their_text(tree: exp.Expression) -> set[int]:
    """The result columns without an alias that are no plain column: DuckDB names them after their text
    (``((amount > 10) AND (status = 'paid'))``), so the order of their operands is part of the result."""
    from sqlglot import exp

    if not isinstance(tree, exp.Query):
        return set()
    return {id(p) for p in tree.selects if not isinstance(p, exp.Alias | exp.Column | exp.Star)}


def _names_a_table(identifier: exp.Expression) -> bool:
    """A table's name, alias, group or CTE name, or a column's qualifier (not a column's own name)."""
    from sqlglot import exp

    parent, key = identifier.parent, identifier.arg_key
    return (isinstance(parent, exp.Table) and key in ("this", "db", "catalog")
            or isinstance(parent, exp.TableAlias) and key == "this"
            or isinstance(parent, exp.Column) and key in ("table", "db", "catalog"))


def _lineage(node: exp.Expression) -> Iterator[exp.Expression]:
    """``node`` and every node above it."""
    while node is not None:
        yield node
        node = node.parent  # type: ignore[assignment]


def _sort_key() -> Callable[[exp.Expression], str]:
    """One-line SQL of a subtree, from one reused generator (a fresh one per call costs twice as much)."""
    from sqlglot.dialects.dialect import Dialect

    generator = Dialect.get_or_raise(DIALECT).generator(comments=False)
    return generator.generate


def _paren_of(node: exp.Expression, kind: type) -> bool:
    """``node`` sits in parentheses directly inside a chain of the same connector."""
    from sqlglot import exp

    return isinstance(node.parent, exp.Paren) and isinstance(node.parent.parent, kind)


def _operands(node: exp.Expression, kind: type) -> list[exp.Expression]:
    from sqlglot import exp

    if isinstance(node, kind):
        return [*_operands(node.this, kind), *_operands(node.expression, kind)]
    if isinstance(node, exp.Paren) and isinstance(node.this, kind):
        return _operands(node.this, kind)
    return [node]


def _sorted_chain(node: exp.Expression, key: Callable[[exp.Expression], str]) -> exp.Expression:
    from sqlglot import exp

    kind = type(node)
    operands = []
    for operand in _operands(node, kind):
        inner = operand.this if isinstance(operand, exp.Paren) else operand
        operands.append(exp.Paren(this=inner.pop()) if isinstance(inner, exp.Connector) else inner.pop())
    operands.sort(key=key)
    result = operands[0]
    for operand in operands[1:]:
        result = kind(this=result, expression=operand)
    return result
