"""Running a SQL asset: its query in DuckDB, over the upstreams' stored data where it lies.

Each table the query names is rewritten to a scan of that upstream's current version,
without copying it into DuckDB first:

* Parquet (the default backend, and Parquet sources read without polars options):
  ``read_parquet('<the stored file>')``, scanned in place;
* the DuckDB backend: its version table, read in the backend's own connection to its
  file (the query runs there, read-only; one DuckDB file per query is read this way);
* anything else (another backend, a CSV or JSON source, polars read options): the value
  as Arrow, which DuckDB scans in memory.

``$parameters`` become literals of their ``[tool.assetflow.vars]`` values. The result is
fetched as an Arrow table and stored through the asset's backend like any other table. A
query DuckDB refuses fails that asset only, with DuckDB's message at the file, line and column
of the asset's own text: the replacements are made in that text (``Executable``), so a position
in the query DuckDB ran maps back to what the user wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from assetflow.errors import SqlExecutionError
from assetflow.sql.parse import DIALECT, parse_query
from assetflow.sql.spec import SqlAssetSpec

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from sqlglot import exp

    from assetflow.contracts import InputRef

_REGISTERED = "__assetflow_input_"
_T = TypeVar("_T")


def run_sql(workspace: Any, spec: SqlAssetSpec, inputs: Sequence[InputRef]) -> pa.Table:
    """Compute a SQL asset's value (an Arrow table) from its inputs."""
    plan = _Plan(workspace, spec, inputs)
    with plan.connection() as con:
        try:
            for name, table in plan.arrow.items():
                con.register(_REGISTERED + name, table)
            with _positioned_errors(con):
                described = plan.query.wrapped("DESCRIBE ", "\n")  # binds without running: names before ORDER BY ALL
                columns = [row[0] for row in _run(con, spec, described, lambda: con.execute(described.sql).fetchall())]
                _check_column_names(spec, columns)
                final = plan.query if plan.query.ordered else in_one_order(plan.query)
                return _run(con, spec, final, lambda: con.sql(final.sql).to_arrow_table())
        except _duckdb_error() as exc:
            raise _failure(spec, exc, None) from None
        finally:
            for name in plan.arrow:
                with contextlib.suppress(Exception):
                    con.unregister(_REGISTERED + name)


def _run(con: duckdb.DuckDBPyConnection, spec: SqlAssetSpec, query: Executable, call: Callable[[], _T]) -> _T:
    """``call()``, which runs ``query``; DuckDB's error pointing at the asset's own text."""
    try:
        return call()
    except _duckdb_error() as exc:
        raise _failure(spec, exc, query) from None


@contextlib.contextmanager
def _positioned_errors(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's errors as JSON while the query runs: they then carry the byte offset of the mistake."""
    on = True
    try:
        con.execute("SET errors_as_json = true")
    except _duckdb_error():  # an older DuckDB: messages without a position
        on = False
    try:
        yield
    finally:
        if on:
            with contextlib.suppress(Exception):
                con.execute("RESET errors_as_json")  # the DuckDB backend's connection is shared


def _failure(spec: SqlAssetSpec, exc: Exception, query: Executable | None) -> SqlExecutionError:
    """DuckDB's refusal as the user's mistake: the file, line and column in their query, with a caret.

    DuckDB's own context quotes the query it ran (one line, internal scan names, absolute paths), which
    the user never wrote: it is dropped, and the position mapped back to their text.
    """
    from assetflow.sql.parse import caret

    message, position, width = _duckdb_message(exc)
    origin = query.origin(position) if query is not None and position is not None else None
    fix = f"Fix the query in {spec.file}; the assets that do not depend on it were not affected."
    if origin is None:
        return SqlExecutionError(f"SQL asset {spec.name!r} ({spec.file}) failed in DuckDB: {message}\n{fix}",
                                 spec.name, spec.file)
    assert query is not None and position is not None
    start, end = origin
    last = query.origin(position + max(1, width) - 1)  # the end of what DuckDB points at
    end = max(end, last[1]) if last is not None else end
    line, column = spec.sql.count("\n", 0, start) + 1, start - spec.sql.rfind("\n", 0, start)
    where = f"{spec.file}:{line + spec.line_offset}:{column}"
    return SqlExecutionError(f"{where}: SQL asset {spec.name!r} failed in DuckDB: {message}"
                             f"{caret(spec.sql, line, column, end - start)}\n{fix}", spec.name, spec.file)


def _duckdb_message(exc: Exception) -> tuple[str, int | None, int]:
    """(DuckDB's message without its quote of the query, the UTF-8 byte offset of the mistake, its width).

    With ``errors_as_json`` the message is ``Kind Error: {"exception_message": ..., "position": ...}``;
    without it (or for an error raised before a query), the text, whose ``LINE 1: ...`` context goes.
    """
    import json
    import re

    text = str(exc)
    kind, _, rest = text.partition(": ")
    try:
        fields = json.loads(rest)
    except ValueError:
        return re.sub(r"\n+LINE \d+:.*", "", text, flags=re.S).rstrip(), None, 0
    if not isinstance(fields, dict):
        return text, None, 0
    message = f"{kind}: {fields.get('exception_message', rest)}".rstrip()
    try:
        position = int(fields["position"])
    except (KeyError, ValueError):
        return message, None, 0
    width = re.fullmatch(r"\[(\d+),\s*(\d+)\]", str(fields.get("location", "")))
    return message, position, int(width.group(2)) if width else 1


def _check_column_names(spec: SqlAssetSpec, columns: Sequence[str]) -> None:
    """Refuse a result with two columns of one name (a ``*`` over a join): no table can hold it."""
    from assetflow.sql.parse import duplicate_column, star_position

    seen: set[str] = set()
    for name in columns:
        if name.lower() in seen:
            line, column = star_position(parse_query(spec.sql, file=spec.file, asset=spec.name).tree)
            where = f"{spec.file}:{line + spec.line_offset}:{column}" if line else spec.file
            raise SqlExecutionError(f"{where}: {duplicate_column(spec.name, name)} Nothing was stored.",
                                    spec.name, spec.file)
        seen.add(name.lower())


def in_one_order(query: Executable) -> Executable:
    """A query without ORDER BY with its rows in one order.

    Its rows come in any order (DuckDB aggregates in parallel): put them in one, so that equal
    results have equal data hashes (early cutoff, restores) run after run.
    """
    return query.wrapped("SELECT * FROM (", "\n) AS __assetflow_result ORDER BY ALL")


@dataclasses.dataclass(frozen=True)
class Executable:
    """The query as DuckDB runs it, and where each stretch of it comes from in the asset's own text.

    It is the user's text with table names replaced by scans and ``$parameters`` by literals, so
    that an error DuckDB places in it can be placed in what the user wrote (``origin``).
    """

    sql: str
    ordered: bool  # a top-level ORDER BY orders its rows (else see ``in_one_order``)
    pieces: tuple[tuple[int, int, int, int, bool], ...]  # (start, end) here, (start, end) in the user's text, copied

    def origin(self, offset: int) -> tuple[int, int] | None:
        """The character span of the user's text that ``offset``, a UTF-8 byte offset in ``sql``, comes from."""
        at = len(self.sql.encode("utf-8")[:offset].decode("utf-8", errors="ignore"))
        for start, end, source, source_end, copied in self.pieces:
            if start <= at < end:
                return (source + at - start, source + at - start + 1) if copied else (source, source_end)
        return None  # in the wrapper around the query

    def wrapped(self, before: str, after: str) -> Executable:
        shift = len(before)
        return Executable(before + self.sql + after, self.ordered,
                          tuple((s + shift, e + shift, *rest) for s, e, *rest in self.pieces))


def executable_sql(spec: SqlAssetSpec, scans: dict[str, exp.Expression],
                   variables: dict[str, Any]) -> Executable:
    """The query as DuckDB runs it: tables replaced by ``scans[name]``, ``$parameters`` by literals.

    The replacements are made in the text the user wrote, so DuckDB's error positions can be
    mapped back to it; its ``;`` goes (the query may be wrapped).
    """
    from sqlglot import exp

    from assetflow.sql.parse import table_nodes

    text = spec.sql
    parsed = parse_query(text, file=spec.file, asset=spec.name)
    edits: list[tuple[int, int, str]] = []
    grouped: set[tuple[str, str]] = set()  # (group, table) written without an alias: columns may say marts.t.x
    for table, ref in table_nodes(parsed.tree, parsed.refs):  # the tables resolution saw: CTE names are not
        parts = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p is not None]
        start, end = _span(parts[0])[0], _span(table.this)[1]
        replacement = scans[spec.tables[ref.written]].sql(dialect=DIALECT)
        if not table.alias:
            if table.args.get("db"):
                grouped.add((table.db.lower(), table.name.lower()))
            replacement += f" AS {text[_span(table.this)[0]:end]}"  # columns may say orders.amount
        edits.append((start, end, replacement))
    for column in parsed.tree.find_all(exp.Column):  # marts.t.x: the table is aliased t now
        if column.args.get("db") and (column.db.lower(), column.table.lower()) in grouped:
            first = column.args.get("catalog") or column.args["db"]
            edits.append((_span(first)[0], _span(column.args["table"])[0], ""))
    edits.extend(_parameter_edits(text, variables))
    ordered = not isinstance(parsed.tree, exp.Query) or bool(parsed.tree.args.get("order"))
    return _spliced(text, edits, ordered)


def _span(node: exp.Expression) -> tuple[int, int]:
    """(start, end) character offsets of a node as written, end exclusive (quotes included)."""
    return int(node.meta["start"]), int(node.meta["end"]) + 1


def _parameter_edits(text: str, variables: dict[str, Any]) -> list[tuple[int, int, str]]:
    """``$name`` -> the literal of its value, and every ``;`` dropped (the query may be wrapped)."""
    from sqlglot import exp
    from sqlglot.dialects.dialect import Dialect

    tokens = Dialect.get_or_raise(DIALECT).tokenize(text)
    edits = []
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        if token.token_type.name == "SEMICOLON":
            edits.append((token.start, token.end + 1, ""))
        elif (token.token_type.name == "PARAMETER" and following is not None and following.start == token.end + 1
              and following.text in variables):
            edits.append((token.start, following.end + 1, exp.convert(variables[following.text]).sql(dialect=DIALECT)))
    return edits


def _spliced(text: str, edits: list[tuple[int, int, str]], ordered: bool) -> Executable:
    """``text`` with ``edits`` (start, end, replacement) made, remembering where each stretch came from."""
    out: list[str] = []
    pieces: list[tuple[int, int, int, int, bool]] = []
    at = length = 0
    for start, end, replacement in [*sorted(edits), (len(text), len(text), "")]:
        for piece, source, source_end, copied in ((text[at:start], at, start, True), (replacement, start, end, False)):
            pieces.append((length, length + len(piece), source, source_end, copied))
            out.append(piece)
            length += len(piece)
        at = end
    return Executable("".join(out), ordered, tuple(pieces))


class _Plan:
    """How each input is scanned, and which connection runs the query."""

    def __init__(self, workspace: Any, spec: SqlAssetSpec, inputs: Sequence[InputRef]) -> None:
        from sqlglot import exp

        self.spec = spec
        self.duckdb_backend: Any = None
        self.arrow: dict[str, pa.Table] = {}
        scans: dict[str, exp.Expression] = {}
        for ref in inputs:
            scans[ref.name] = self._scan(workspace, ref)
        variables = spec.config.vars if spec.config is not None else {}  # type: ignore[attr-defined]
        self.query = executable_sql(spec, scans, variables)

    def _scan(self, workspace: Any, ref: InputRef) -> exp.Expression:
        from sqlglot import exp

        if ref.parts:
            return self._parts_scan(workspace, ref)
        if ref.io is None:
            return self._source_scan(workspace, ref)
        assert ref.location is not None
        backend = workspace.backends.get(ref.io)
        if getattr(backend, "format", None) == "parquet" and hasattr(backend, "local_file"):
            return _read_parquet([str(backend.local_file(ref.location))])
        if getattr(backend, "format", None) == "duckdb" and hasattr(backend, "reading"):
            if self.duckdb_backend is None or self.duckdb_backend.path == backend.path:
                self.duckdb_backend = backend
                return exp.Table(this=exp.to_identifier(ref.location, quoted=True),
                                 db=exp.to_identifier(backend.schema, quoted=True))
        self.arrow[ref.name] = self._table(ref.name, ref.io, backend.load(ref.name, ref.location, "arrow"))
        return exp.Table(this=exp.to_identifier(_REGISTERED + ref.name, quoted=True))

    def _parts_scan(self, workspace: Any, ref: InputRef) -> exp.Expression:
        """Several partitions of a partitioned upstream, concatenated in key order (as a Python asset gets them)."""
        import pyarrow as pa
        from sqlglot import exp

        parts = [part for _, part in ref.parts]
        backends = [workspace.backends.get(p.io) if p.io is not None else None for p in parts]
        if parts and all(b is not None and getattr(b, "format", None) == "parquet" and hasattr(b, "local_file")
                         for b in backends):
            return _read_parquet([str(b.local_file(p.location)) for b, p in zip(backends, parts, strict=True)])
        tables = []
        for part in parts:
            if part.io is None:
                from assetflow.fingerprint.source import SourceVersion, read_source

                value = read_source(workspace.graph.specs[ref.name], SourceVersion(ref.name, "", part.source_files),
                                    workspace.root)
                tables.append(value.to_arrow() if hasattr(value, "to_arrow") else value)
            else:
                value = workspace.backends.get(part.io).load(ref.name, part.location, "arrow")
                tables.append(self._table(ref.name, part.io, value))
        self.arrow[ref.name] = pa.concat_tables(tables, promote_options="default")
        return exp.Table(this=exp.to_identifier(_REGISTERED + ref.name, quoted=True))

    def _source_scan(self, workspace: Any, ref: InputRef) -> exp.Expression:
        from sqlglot import exp

        from assetflow.fingerprint.source import SourceVersion, read_source

        source = workspace.graph.specs[ref.name]
        paths = [str(workspace.root / rel) for rel, _, _ in ref.source_files]
        if source.format == "parquet" and not source.read_options and paths:
            return _read_parquet(paths)
        value = read_source(source, SourceVersion(ref.name, "", ref.source_files), workspace.root)
        self.arrow[ref.name] = value.to_arrow() if hasattr(value, "to_arrow") else value
        return exp.Table(this=exp.to_identifier(_REGISTERED + ref.name, quoted=True))

    def _table(self, upstream: str, io: str, value: object) -> pa.Table:
        """An upstream's stored value as Arrow; one that is no table (``io="json"``: a dict) is refused."""
        from assetflow.storage.values import as_table

        table = as_table(value)
        if table is None:
            name = self.spec.name
            raise SqlExecutionError(
                f"SQL asset {name!r} ({self.spec.file}) reads {upstream!r}, which is stored with io={io!r} as "
                f"a {type(value).__name__}, not a table: a SQL asset reads tables. Store {upstream!r} as a table "
                f"(return a DataFrame and use a table backend, e.g. io='parquet' or io='duckdb'), or compute "
                f"{name!r} in a Python @asset, which receives the value as it is.", name, self.spec.file)
        return table

    @contextlib.contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.duckdb_backend is not None:
            with self.duckdb_backend.reading() as con:
                yield con
            return
        import duckdb

        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()


def _read_parquet(paths: list[str]) -> exp.Expression:
    from sqlglot import exp

    files = exp.Array(expressions=[exp.Literal.string(p) for p in paths])
    return exp.Anonymous(this="read_parquet", expressions=[files])


def _duckdb_error() -> type[Exception]:
    import duckdb

    return duckdb.Error
