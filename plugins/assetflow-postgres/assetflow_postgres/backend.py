"""The PostgreSQL storage backend: one table per stored version, a view for the current one.

An asset ``orders`` stored with data hash ``blake3:9f2c41...`` lives in the table
``<schema>.orders__9f2c41...`` (16 hex digits of the hash; that string is the location),
and ``activate`` points the view ``<schema>.orders`` at the current version, so SQL users
query ``assetflow.orders`` and restoring an earlier version only moves the view.

Writes: the value is hashed (``table_hash``) and cast to types PostgreSQL holds exactly
(``types.py``); then one transaction bulk-loads it with ADBC (binary COPY) into a temporary
table, renames it to the version's name and records its Arrow schema in
``<schema>."assetflow$versions"``; nothing is visible until COMMIT. Reads: one ``SELECT *``
through ADBC straight into Arrow, cast back to the recorded schema.

Checks: the token is the table's oid, file node, size, its insert/update/delete counters
from ``pg_stat_user_tables`` and a digest of its column definitions, all from the catalog
in one cheap query (no scan). A token that moved triggers a rehash. See docs/storage.md
for what the counters can miss.

Two drivers, each where it is fast: ADBC for bulk data (its COPY is about twice as fast as
psycopg's text COPY here), psycopg for small queries (it connects in ~10 ms, ADBC in ~150 ms
since it loads the type catalog), so ``assetflow status`` never pays for ADBC.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from assetflow.ext import CheckResult, StorageError, StoredData, TableBackend, ValueKind
from assetflow_postgres.dsn import describe, mask, resolve_dsn
from assetflow_postgres.limits import MAX_IDENTIFIER_BYTES

if TYPE_CHECKING:  # pyarrow is imported where data moves: loading the plugin (every run) must not pay for it
    import pyarrow as pa

DEFAULT_SCHEMA = "assetflow"
VERSIONS_TABLE = "assetflow$versions"  # "$" cannot occur in an asset name: no clash with a view
HASH_DIGITS = 16
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
_LOCATION = re.compile(r"(?P<schema>[a-z_][a-z0-9_]{0,62})\.(?P<table>[a-z_][a-z0-9_]*__[0-9a-f]{16})\Z")
_T = TypeVar("_T")
_LOCK_SQL = "select pg_advisory_xact_lock(hashtextextended(%s, 0))"  # held until the transaction ends

_TOKEN_SQL = """
select c.oid::bigint, c.relfilenode::bigint, pg_relation_size(c.oid),
       coalesce(s.n_tup_ins, 0), coalesce(s.n_tup_upd, 0), coalesce(s.n_tup_del, 0),
       (select md5(string_agg(a.attname || ' ' || a.atttypid || ' ' || a.atttypmod, ',' order by a.attnum))
          from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped),
       pg_total_relation_size(c.oid)
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  left join pg_stat_user_tables s on s.relid = c.oid
 where n.nspname = %s and c.relname = %s and c.relkind = 'r'
"""


_COLUMNS_SQL = """
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory
  from pg_attribute a
  join pg_class c on c.oid = a.attrelid
  join pg_namespace n on n.oid = c.relnamespace
  join pg_type t on t.oid = a.atttypid
 where n.nspname = %s and c.relname = any(%s) and a.attnum > 0 and not a.attisdropped
 order by c.relname, a.attnum
"""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def union_by_name(schema: str, tables: list[str], columns: dict[str, list[tuple[str, str, str]]]) -> str:
    """``select ... union all select ...`` over ``tables`` in order, columns matched by name.

    ``columns`` holds each table's (name, type, type category) in table order. The result has every
    column in order of first appearance, as DuckDB's ``UNION ALL BY NAME`` and polars'
    ``diagonal_relaxed`` (what ``load`` uses) have them; a table without a column gives NULL there.
    Types of one category (integer and double, say) are left to PostgreSQL's UNION rules, which
    widen them; a column whose types differ in category (a number here, text there) is cast to text
    everywhere, as polars stacks it as a string.
    """
    kinds: dict[str, list[tuple[str, str]]] = {}
    for table in tables:
        for name, type_, category in columns.get(table, []):
            kinds.setdefault(name, []).append((type_, category))
    as_text = {name for name, found in kinds.items() if len({category for _, category in found}) > 1}

    def select(table: str) -> str:
        present = {name for name, _, _ in columns.get(table, [])}
        items = []
        for name, found in kinds.items():
            value = quote(name) if name in present else f"null::{found[0][0]}"
            items.append(f"{value}::text as {quote(name)}" if name in as_text else f"{value} as {quote(name)}")
        return f"select {', '.join(items)} from {quote(schema)}.{quote(table)}"

    return " union all ".join(select(table) for table in tables)


def version_table(asset: str, data_hash: str) -> str:
    """The table of one version: ``<asset>__<16 hex digits of the data hash>``, at most 63 bytes.

    A name too long for that keeps its first 36 characters plus 8 hex digits of its own hash.
    """
    digits = data_hash.split(":", 1)[-1][:HASH_DIGITS]
    name = f"{asset}__{digits}"
    if len(name) > MAX_IDENTIFIER_BYTES:
        name = f"{asset[:36]}_{hashlib.sha256(asset.encode()).hexdigest()[:8]}__{digits}"
    return name


class PostgresBackend(TableBackend):
    """Tables in a PostgreSQL schema; options ``schema``, ``dsn_env`` or ``dsn``."""

    name: ClassVar[str] = "postgres"
    format: ClassVar[str] = "postgres"

    def __init__(self, root: Path, options: dict[str, Any]) -> None:
        unknown = set(options) - {"schema", "dsn", "dsn_env"}
        if unknown:
            raise StorageError(
                f"Unknown option(s) {sorted(unknown)} under [tool.assetflow.io.postgres]; "
                f"known: schema, dsn_env, dsn."
            )
        self.schema = str(options.get("schema", DEFAULT_SCHEMA))
        if not _IDENTIFIER.match(self.schema):
            raise StorageError(
                f"[tool.assetflow.io.postgres] schema = {self.schema!r} is not allowed: it must match "
                f"[a-z_][a-z0-9_]* and be at most 63 characters."
            )
        self._options = dict(options)
        self._dsn: str | None = None
        self._lock = threading.RLock()
        self._conns = _Connections()
        self._schema_ready = False
        weakref.finalize(self, self._conns.close)

    # -- connections ------------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        if self._dsn is None:
            self._dsn = resolve_dsn(self._options)
        return self._dsn

    def _error(self, action: str, exc: BaseException) -> StorageError:
        """A driver error as a StorageError whose message carries no secret."""
        detail = mask(str(exc).strip() or type(exc).__name__, self._dsn)
        where = describe(self._dsn) if self._dsn else "the server"
        return StorageError(f"PostgreSQL ({where}) failed to {action}: {detail}")

    def _call(self, action: str, fn: Callable[[], _T]) -> _T:
        with self._lock:
            self._conns.forget_after_fork()
            try:
                return fn()
            except StorageError:
                self._recover()
                raise
            except Exception as exc:  # noqa: BLE001 - any driver error, re-raised without secrets
                self._recover()
                raise self._error(action, exc) from None

    def _recover(self) -> None:
        self._schema_ready = False
        self._conns.recover()

    def _sql(self) -> Any:
        """The psycopg connection (autocommit) for small queries."""
        if self._conns.sql is None:
            import psycopg

            self._conns.sql = psycopg.connect(self.dsn, autocommit=True, application_name="assetflow")
        return self._conns.sql

    def _bulk(self) -> Any:
        """The ADBC connection (transactional) for bulk reads and writes."""
        if self._conns.bulk is None:
            import adbc_driver_postgresql.dbapi as adbc

            self._conns.bulk = adbc.connect(self.dsn)
        return self._conns.bulk

    @contextmanager
    def _bulk_cursor(self) -> Iterator[Any]:
        cursor = self._bulk().cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    # -- locations --------------------------------------------------------------------------

    def _parse(self, asset: str, location: str) -> tuple[str, str]:
        match = _LOCATION.match(location)
        digits = location.rsplit("__", 1)[-1]
        if match is None or match["table"] != version_table(asset, digits):
            raise StorageError(
                f"Location {location!r} of asset {asset!r} is not a postgres version table of that "
                f"asset (schema.{asset}__<16 hex>); the state store may be corrupt."
            )
        return match["schema"], match["table"]

    def _ensure_schema(self, cur: Any) -> None:
        if self._schema_ready:
            return
        # Parallel workers may all find the schema missing: serialise its creation.
        cur.execute(_LOCK_SQL.replace("%s", "$1"), parameters=(f"assetflow schema {self.schema}",))
        cur.fetchall()
        cur.execute("select 1 from pg_namespace where nspname = $1", parameters=(self.schema,))
        if not cur.fetchall():
            cur.execute(f"create schema if not exists {quote(self.schema)}")
        cur.execute(
            f"create table if not exists {quote(self.schema)}.{quote(VERSIONS_TABLE)} ("
            "table_name text primary key, asset text not null, data_hash text not null, "
            "arrow_schema bytea not null, rows bigint not null, stored_at timestamptz not null default now())"
        )
        self._bulk().commit()
        self._schema_ready = True

    # -- the backend protocol ---------------------------------------------------------------

    def store_table(self, asset: str, table: pa.Table, data_hash: str) -> StoredData:
        from assetflow_postgres import types

        stored = types.to_storage(table)
        name = version_table(asset, data_hash)
        schema_bytes = table.schema.serialize().to_pybytes()

        def write() -> StoredData:
            conn = self._bulk()
            with self._bulk_cursor() as cur:
                self._ensure_schema(cur)
                temp = f"assetflow$new_{uuid.uuid4().hex[:16]}"
                old = f"assetflow$old_{uuid.uuid4().hex[:16]}"
                qs = quote(self.schema)
                cur.adbc_ingest(temp, stored, mode="create", db_schema_name=self.schema)
                # Another process writing the same version waits here, then finds it and replaces it.
                cur.execute(_LOCK_SQL.replace("%s", "$1"), parameters=(f"assetflow table {self.schema}.{name}",))
                cur.fetchall()
                cur.execute(
                    "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                    "where n.nspname = $1 and c.relname = $2",
                    parameters=(self.schema, name),
                )
                if cur.fetchall():  # this version existed (maybe tampered with): replace it
                    cur.execute(f"alter table {qs}.{quote(name)} rename to {quote(old)}")
                    cur.execute(f"alter table {qs}.{quote(temp)} rename to {quote(name)}")
                    if self._view_reads(cur, asset, old):
                        self._repoint_view(cur, asset, old, name)
                    cur.execute(f"drop table {qs}.{quote(old)}")
                else:
                    cur.execute(f"alter table {qs}.{quote(temp)} rename to {quote(name)}")
                cur.execute(f"delete from {qs}.{quote(VERSIONS_TABLE)} where table_name = $1", parameters=(name,))
                cur.execute(
                    f"insert into {qs}.{quote(VERSIONS_TABLE)} (table_name, asset, data_hash, arrow_schema, rows) "
                    "values ($1, $2, $3, $4, $5)",
                    parameters=(name, asset, data_hash, schema_bytes, table.num_rows),
                )
                cur.execute("select pg_stat_force_next_flush()")  # so the token below counts the COPY
                cur.fetchall()
                conn.commit()
            token, size = self._token(self.schema, name)
            for _ in range(100):  # a parallel writer of this same version may be swapping the table in
                if token is not None:
                    break
                time.sleep(0.05)
                token, size = self._token(self.schema, name)
            if token is None:
                raise StorageError(f"PostgreSQL: the table {self.schema}.{name} of asset {asset!r} vanished right "
                                   f"after it was written; another process is deleting it. Run again.")
            return StoredData(
                data_hash=data_hash,
                location=f"{self.schema}.{name}",
                rows=table.num_rows,
                schema=[(f.name, str(f.type)) for f in table.schema],
                bytes=size,
                token=token,
            )

        return self._call(f"store asset {asset!r}", write)

    def _view_reads(self, cur: Any, asset: str, table: str) -> bool:
        """Whether the asset's view selects from ``table`` (one version, or one partition of its union)."""
        cur.execute(
            "select 1 from information_schema.view_table_usage "
            "where view_schema = $1 and view_name = $2 and table_schema = $1 and table_name = $3",
            parameters=(self.schema, asset, table),
        )
        return bool(cur.fetchall())

    def _repoint_view(self, cur: Any, asset: str, old: str, new: str) -> None:
        """Re-create the asset's view as it is, reading table ``new`` where it read ``old``.

        The view follows a renamed table, so its own definition names ``old`` (a unique
        ``assetflow$old_...`` name): swapping that name keeps a partition view's whole union, in
        the writer's transaction, where pointing it at ``new`` alone showed one partition until
        the run's end (or for good after a kill).
        """
        view = f"{quote(self.schema)}.{quote(asset)}"
        cur.execute("select pg_get_viewdef($1::regclass)", parameters=(view,))
        definition = cur.fetchall()[0][0].strip().rstrip(";")
        cur.execute(f"create or replace view {view} as {definition.replace(quote(old), quote(new))}")

    def _token(self, schema: str, table: str) -> tuple[str | None, int | None]:
        """The cheap change detector of a version table and its size; (None, None) if it is gone."""
        row = self._sql().execute(_TOKEN_SQL, (schema, table)).fetchone()
        if row is None or row[7] is None:  # no such table, or dropped while it was being measured
            return None, None
        return ":".join(str(v) for v in row[:7]), int(row[7])

    def _read(self, schema: str, table: str) -> pa.Table:
        with self._bulk_cursor() as cur:
            cur.execute(
                f"select arrow_schema from {quote(schema)}.{quote(VERSIONS_TABLE)} where table_name = $1",
                parameters=(table,),
            )
            rows = cur.fetchall()
            cur.execute(f"select * from {quote(schema)}.{quote(table)}")
            data = cur.fetch_arrow_table()
            self._bulk().rollback()  # end the read-only transaction
        if not rows:
            return data  # no recorded schema: return what is there (a check will call it modified)
        import pyarrow as pa

        from assetflow_postgres import types

        return types.from_storage(data, pa.ipc.read_schema(pa.py_buffer(rows[0][0])))

    def load(self, asset: str, location: str, kind: ValueKind) -> object:
        schema, table = self._parse(asset, location)

        def read() -> pa.Table:
            if self._token(schema, table)[0] is None:
                raise StorageError(
                    f"Stored data of asset {asset!r} is missing: PostgreSQL table {location} does not "
                    f"exist. Run `assetflow materialize {asset}` to rebuild it."
                )
            return self._read(schema, table)

        data = self._call(f"load asset {asset!r} from {location}", read)
        if kind == "arrow":
            return data
        import polars as pl

        return pl.from_arrow(data)

    def check(self, asset: str, location: str, data_hash: str, token: str) -> CheckResult:
        schema, table = self._parse(asset, location)

        def run() -> CheckResult:
            current, _ = self._token(schema, table)
            if current is None:
                return CheckResult("missing")
            if current == token:
                return CheckResult("ok", token)
            from assetflow.ext import table_hash

            try:
                actual = table_hash(self._read(schema, table))
            except StorageError:  # columns changed under us: not the data that was stored
                return CheckResult("modified", current)
            return CheckResult("ok" if actual == data_hash else "modified", current)

        return self._call(f"check asset {asset!r} at {location}", run)

    def delete(self, asset: str, location: str) -> None:
        schema, table = self._parse(asset, location)
        qs = quote(schema)

        def drop() -> None:
            conn = self._sql()
            with conn.transaction():
                view = conn.execute(
                    "select 1 from information_schema.view_table_usage "
                    "where view_schema = %s and view_name = %s and table_schema = %s and table_name = %s",
                    (schema, asset, schema, table),
                ).fetchone()
                if view is not None:  # the asset's own view still shows this version: it goes too
                    conn.execute(f"drop view {qs}.{quote(asset)}")
                conn.execute(f"drop table if exists {qs}.{quote(table)}")
                if conn.execute("select to_regclass(%s)", (f"{qs}.{quote(VERSIONS_TABLE)}",)).fetchone()[0]:
                    conn.execute(f"delete from {qs}.{quote(VERSIONS_TABLE)} where table_name = %s", (table,))

        self._call(f"delete {location} of asset {asset!r}", drop)

    def activate(self, asset: str, location: str) -> None:
        """Point the view ``<schema>.<asset>`` at this version."""
        schema, table = self._parse(asset, location)
        qs = quote(schema)
        target = f"{qs}.{quote(table)}"

        def point() -> None:
            import psycopg

            conn = self._sql()
            with conn.transaction():
                conn.execute(_LOCK_SQL, (f"assetflow view {schema}.{asset}",))
                try:
                    with conn.transaction():  # a savepoint: replacing fails if the columns changed
                        conn.execute(f"create or replace view {qs}.{quote(asset)} as select * from {target}")
                except psycopg.errors.InvalidTableDefinition:
                    conn.execute(f"drop view if exists {qs}.{quote(asset)}")
                    conn.execute(f"create view {qs}.{quote(asset)} as select * from {target}")

        self._call(f"point view {schema}.{asset} at {table}", point)

    def activate_partitions(self, asset: str, locations: list[str]) -> None:
        """Point the view ``<schema>.<asset>`` at the union of its current partitions' tables, in key order.

        Columns are matched by name (``union_by_name``): a partition may order its columns otherwise,
        or lack or add one. Dropped and recreated in one transaction (PostgreSQL's DDL is
        transactional): a reader sees the old union or the new one, never a mix (docs/partitions.md).
        With no partition left the view is dropped, as DuckDB's is.
        """
        parsed = [self._parse(asset, location) for location in locations]
        schema = parsed[0][0] if parsed else self.schema
        qs = quote(schema)
        tables = [table for _, table in parsed]

        def point() -> None:
            conn = self._sql()
            with conn.transaction():
                conn.execute(_LOCK_SQL, (f"assetflow view {schema}.{asset}",))
                if not tables:  # no partition left: the view must not serve removed keys' rows
                    conn.execute(f"drop view if exists {qs}.{quote(asset)}")
                    return
                columns: dict[str, list[tuple[str, str, str]]] = {}
                for table, name, type_, category in conn.execute(_COLUMNS_SQL, (schema, sorted(set(tables)))):
                    columns.setdefault(table, []).append((name, type_, category))
                conn.execute(f"drop view if exists {qs}.{quote(asset)}")
                conn.execute(f"create view {qs}.{quote(asset)} as {union_by_name(schema, tables, columns)}")

        self._call(f"point view {schema}.{asset} at its {len(locations)} partitions", point)


_INHERITED: list[Any] = []  # connections a forked child keeps alive (unused) so they are never closed


class _Connections:
    """The two lazily opened connections of one backend, and what happens to them on fork and exit."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.bulk: Any = None  # ADBC
        self.sql: Any = None  # psycopg

    def all(self) -> list[Any]:
        return [c for c in (self.bulk, self.sql) if c is not None]

    def forget_after_fork(self) -> None:
        """A forked child must not use, nor close, its parent's sockets: it opens its own."""
        if os.getpid() != self.pid:
            _INHERITED.extend(self.all())
            self.bulk = self.sql = None
            self.pid = os.getpid()

    def recover(self) -> None:
        """After an error: roll back; a connection that cannot is closed and reopened next time."""
        for attribute in ("bulk", "sql"):
            conn = getattr(self, attribute)
            if conn is None:
                continue
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - a dead connection is replaced
                _close(conn)
                setattr(self, attribute, None)

    def close(self) -> None:
        if os.getpid() == self.pid:
            for conn in self.all():
                _close(conn)
        self.bulk = self.sql = None


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001, S110 - closing is best effort
        pass
