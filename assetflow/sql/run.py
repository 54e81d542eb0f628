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
query DuckDB refuses fails that asset only, with DuckDB's message and the asset's file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from assetflow.errors import SqlExecutionError
from assetflow.sql.parse import DIALECT, parse_query
from assetflow.sql.spec import SqlAssetSpec

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from sqlglot import exp

    from assetflow.contracts import InputRef

_REGISTERED = "__assetflow_input_"


def run_sql(workspace: Any, spec: SqlAssetSpec, inputs: Sequence[InputRef]) -> pa.Table:
    """Compute a SQL asset's value (an Arrow table) from its inputs."""
    plan = _Plan(workspace, spec, inputs)
    with plan.connection() as con:
        try:
            for name, table in plan.arrow.items():
                con.register(_REGISTERED + name, table)
            _check_column_names(spec, con.sql(plan.query).columns)  # before the ORDER BY ALL wrapper renames any
            return con.sql(plan.query if plan.ordered else in_one_order(plan.query)).to_arrow_table()
        except _duckdb_error() as exc:
            raise SqlExecutionError(
                f"SQL asset {spec.name!r} ({spec.file}) failed in DuckDB: {exc}\nFix the query in {spec.file}; "
                f"the assets that do not depend on it were not affected.", spec.name, spec.file) from None
        finally:
            for name in plan.arrow:
                with contextlib.suppress(Exception):
                    con.unregister(_REGISTERED + name)


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


def in_one_order(query: str) -> str:
    """A query without ORDER BY with its rows in one order.

    Its rows come in any order (DuckDB aggregates in parallel): put them in one, so that equal
    results have equal data hashes (early cutoff, restores) run after run.
    """
    return f"SELECT * FROM ({query}) AS __assetflow_result ORDER BY ALL"


def executable_sql(spec: SqlAssetSpec, scans: dict[str, exp.Expression],
                   variables: dict[str, Any]) -> tuple[str, bool]:
    """The query as DuckDB runs it: tables replaced by ``scans[name]``, ``$parameters`` by literals.

    With it, whether it orders its rows itself (a top-level ORDER BY; else see ``in_one_order``).
    """
    from sqlglot import exp

    from assetflow.sql.parse import table_nodes

    parsed = parse_query(spec.sql, file=spec.file, asset=spec.name)
    grouped: set[tuple[str, str]] = set()  # (group, table) written without an alias: columns may say marts.t.x
    for table, ref in table_nodes(parsed.tree, parsed.refs):  # the tables resolution saw: CTE names are not
        name = spec.tables[ref.written]
        if not table.alias:
            if table.args.get("db"):
                grouped.add((table.db.lower(), table.name.lower()))
            table.set("alias", exp.TableAlias(this=table.this.copy()))  # columns may say orders.amount
        scan = scans[name].copy()
        table.set("catalog", None)
        if isinstance(scan, exp.Table):  # a version table in the DuckDB file the query runs in
            table.set("this", scan.this)
            table.set("db", scan.args.get("db"))
        else:
            table.set("db", None)
            table.set("this", scan)
    for column in parsed.tree.find_all(exp.Column):  # marts.t.x: the table is aliased t now
        if column.args.get("db") and (column.db.lower(), column.table.lower()) in grouped:
            column.set("db", None)
            column.set("catalog", None)
    for placeholder in list(parsed.tree.find_all(exp.Placeholder, exp.Parameter)):
        if placeholder.name in variables:
            placeholder.replace(exp.convert(variables[placeholder.name]))
    ordered = not isinstance(parsed.tree, exp.Query) or bool(parsed.tree.args.get("order"))
    return parsed.tree.sql(dialect=DIALECT), ordered


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
        self.query, self.ordered = executable_sql(spec, scans, variables)

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
