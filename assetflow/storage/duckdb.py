"""The built-in DuckDB backend: each stored version is a table, the current one a view.

In the DuckDB file (option ``path``, default ``<root>/warehouse.duckdb``) and schema
(option ``schema``, default ``main``), the asset ``orders`` is

* ``"orders__<first 16 hex digits of the data hash>"``: a table per stored version, named
  by its content (that name is the version's ``location``), so earlier versions stay
  addressable and a restore only moves the view;
* ``"orders"``: a view on the current version, moved by ``activate``, for SQL users.

Writes: DuckDB scans the Arrow table in place (no pandas) inside a transaction, so a
version table is complete or absent. The data hash is ``table_hash`` of the Arrow table,
equal to the Parquet backend's for equal content. A column DuckDB would give back with
another type (a duration, a timestamp in a zone other than UTC, two names differing only
in case) is refused before anything is written, so ``load`` always returns data with the
recorded hash. Identifiers are validated and always quoted.

Change token (``check``), two layers, each consulted only when the one before moved:

1. the stat (device, inode, size, mtime) of the DuckDB file and of its ``.wal``: unchanged
   means nothing in the file changed, answered without importing DuckDB. A stat recorded
   within two seconds of the file's mtime vouches for nothing ("racy clean", see
   ``hashing.is_racy``): a second write in the same timestamp tick could keep it;
2. the table's row count plus its storage metadata (``pragma_storage_info``: per row
   group and column segment its type, compression, row range, min/max/null statistics,
   pending-update flag and block address). Writing other tables leaves it unchanged.
   INSERT and DELETE move the count; UPDATE sets the update flag and, once checkpointed,
   rewrites the segment to a new block; ALTER and DROP/CREATE change the segments.

When both moved, the table is read back and rehashed, so a false alarm costs a read, never
a wrong verdict. Not detected: an edit whose file stat is set back to the recorded one
(``touch -d``, same size) *and* that lands in the same blocks with the same statistics;
bytes edited inside the file outside DuckDB. Both need deliberate effort, as with a
Parquet file whose stat is forged.

Connections: one per DuckDB file and process, opened on demand (read-only when only
reading), shared by the operations of a burst, and closed after ``keep_open`` idle
seconds (default 0.2), at exit, and before the process forks, so the file is never held
for longer. A file another process holds is retried for ``lock_timeout`` seconds (default
30), then reported with the holder DuckDB names.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from assetflow.contracts import CheckResult, StoredData, ValueKind
from assetflow.errors import DamagedStorageError, StorageError
from assetflow.hashing import hash_fields, is_racy
from assetflow.hookspecs import hookimpl
from assetflow.storage.base import refuse_unknown_options
from assetflow.storage.files import confined, stat_token
from assetflow.storage.table import TableBackend

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["DuckDBBackend", "quote_identifier", "version_table"]

DEFAULT_FILE = "warehouse.duckdb"
OPTIONS = ("path", "schema", "lock_timeout", "keep_open")
HASH_DIGITS = 16  # 64 bits of the data hash in a version table's name
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
_VERSION = re.compile(rf"([a-z_][a-z0-9_]*)__([0-9a-f]{{{HASH_DIGITS}}})\Z")
_INCOMING = "__assetflow_incoming"  # the name the Arrow table is registered under while it is written
_TYPE_HINT = (
    "Cast the column first (a duration to an integer count, a timestamp to UTC with "
    ".dt.convert_time_zone('UTC'), column names to distinct lower-case ones) or store the asset "
    'as Parquet (io="parquet").'
)


def quote_identifier(name: str, what: str = "identifier") -> str:
    """``name`` as a quoted SQL identifier, after checking it is a plain lower-case one."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise StorageError(
            f"DuckDB {what} {name!r} is not allowed: it must match [a-z_][a-z0-9_]* "
            f"(lower-case letters, digits and underscores)."
        )
    return '"' + name.replace('"', '""') + '"'


def version_table(asset: str, data_hash: str) -> str:
    """The name of the table holding the version of ``asset`` with this data hash."""
    digest = data_hash.split(":", 1)[-1]
    return f"{asset}__{digest[:HASH_DIGITS]}"


class DuckDBBackend(TableBackend):
    """Tables in a DuckDB file: a table per version, a view per asset on its current one."""

    name: ClassVar[str] = "duckdb"
    format: ClassVar[str] = "duckdb"

    def __init__(self, root: Path, options: dict[str, Any]) -> None:
        refuse_unknown_options("duckdb", options, OPTIONS)
        path = Path(str(options.get("path", DEFAULT_FILE))).expanduser()
        # A relative path stays inside the storage root, even through a symlink.
        self.path = path if path.is_absolute() else confined(root, str(path))
        self.schema = str(options.get("schema", "main"))
        self._schema = quote_identifier(self.schema, "schema")
        self.lock_timeout = _seconds(options, "lock_timeout", 30.0)
        self.keep_open = _seconds(options, "keep_open", 0.2)
        self._db = _shared_connection(self.path)

    # -- names ------------------------------------------------------------------------------

    def _table(self, asset: str, location: str) -> str:
        """The quoted, schema-qualified version table, after checking ``location`` is one of ``asset``."""
        match = _VERSION.match(location) if isinstance(location, str) else None
        if match is None or match.group(1) != asset:
            raise StorageError(
                f"{location!r} is not a DuckDB version table of asset {asset!r} (expected "
                f"'{asset}__<{HASH_DIGITS} hex digits>'); the state store may have been edited by hand."
            )
        return f"{self._schema}.{quote_identifier(location)}"

    def _view(self, asset: str) -> str:
        if _VERSION.match(asset):
            raise StorageError(
                f"Asset {asset!r} cannot be stored in DuckDB: its name has the shape of a version "
                f"table ('<asset>__<{HASH_DIGITS} hex digits>'). Rename the asset."
            )
        return f"{self._schema}.{quote_identifier(asset, 'asset name')}"

    # -- the IOBackend contract -------------------------------------------------------------

    def store_table(self, asset: str, table: pa.Table, data_hash: str) -> StoredData:
        self._view(asset)
        location = version_table(asset, data_hash)
        target = self._table(asset, location)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect(write=True) as con:
            # On any failure the connection is closed, which rolls back and unregisters.
            con.register(_INCOMING, table)
            try:
                self._refuse_lossy_types(con, asset, table)
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {self._schema}")
                con.execute("BEGIN TRANSACTION")
                con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {_INCOMING}")
                con.execute("COMMIT")
            except _duckdb().Error as exc:
                if _is_damage(exc):
                    raise _damaged(self.path, exc) from None
                raise StorageError(f"DuckDB could not store asset {asset!r} in {self.path}: {exc}") from None
            con.unregister(_INCOMING)
            con.execute("CHECKPOINT")  # settle the blocks now, so the token below stays valid
            token = f"{self._file_token()}|{self._storage_token(con, location)}"
        return StoredData(
            data_hash=data_hash,
            location=location,
            rows=table.num_rows,
            schema=[(f.name, str(f.type)) for f in table.schema],
            bytes=None,  # a table shares blocks with others in the file: no honest size
            token=token,
        )

    def load(self, asset: str, location: str, kind: ValueKind) -> object:
        target = self._table(asset, location)
        missing = StorageError(
            f"Stored data of asset {asset!r} is missing: table {self.schema}.{location} in {self.path}. "
            f"Run `assetflow materialize {asset}` to rebuild it."
        )
        if not self.path.exists():
            raise missing
        with self._connect(write=False) as con:
            if not self._exists(con, location):
                raise missing
            table = con.sql(f"SELECT * FROM {target}").to_arrow_table()
        if kind == "arrow":
            return table
        import polars as pl

        return pl.from_arrow(table, rechunk=False)

    def check(self, asset: str, location: str, data_hash: str, token: str) -> CheckResult:
        target = self._table(asset, location)
        if not self.path.exists():
            return CheckResult("missing")
        file_token = self._file_token()  # taken before reading: a write after it moves it again
        if self._file_vouches(token, file_token):
            return CheckResult("ok", token)
        with self._connect(write=False) as con:
            if not self._exists(con, location):
                return CheckResult("missing")
            storage = self._storage_token(con, location)
            current = f"{file_token}|{storage}"
            if storage == token.rpartition("|")[2]:
                return CheckResult("ok", current)
            from assetflow.fingerprint.data import table_hash

            try:
                actual = table_hash(con.sql(f"SELECT * FROM {target}").to_arrow_table())
            except (_duckdb().Error, TypeError) as exc:  # e.g. a column altered to a type the hash refuses
                if _is_damage(exc):
                    raise _damaged(self.path, exc) from None
                return CheckResult("modified", current)
        return CheckResult("ok" if actual == data_hash else "modified", current)

    def activate(self, asset: str, location: str) -> None:
        """Point the view ``"<asset>"`` at this version (its comment names the version)."""
        target, view = self._table(asset, location), self._view(asset)
        with self._connect(write=True) as con:
            try:
                con.execute("BEGIN TRANSACTION")
                con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {target}")
                con.execute(f"COMMENT ON VIEW {view} IS '{location}'")  # location is validated
                con.execute("COMMIT")
            except _duckdb().Error as exc:
                raise StorageError(
                    f"DuckDB could not point the view {self.schema}.{asset} at {location} in {self.path}: {exc}. "
                    f"If a table of that name was created by hand, rename or drop it."
                ) from None

    def activate_partitions(self, asset: str, locations: list[str]) -> None:
        """Point the view ``"<asset>"`` at the union of its current partitions' tables, in key order.

        One statement switches it, so a reader sees the old union or the new one, never a mix.
        """
        from assetflow.hashing import hash_fields

        view = self._view(asset)
        tables = [self._table(asset, location) for location in locations]
        comment = f"partitions:{len(tables)}:{hash_fields('partition-view', *locations).split(':', 1)[1][:16]}"
        with self._connect(write=True) as con:
            try:
                now = con.execute(
                    "SELECT comment FROM duckdb_views() WHERE database_name = current_database() "
                    "AND schema_name = ? AND view_name = ?", [self.schema, asset]).fetchall()
                if now and now[0][0] == comment:
                    return  # already the union of exactly these versions
                con.execute("BEGIN TRANSACTION")
                if tables:
                    union = " UNION ALL BY NAME ".join(f"SELECT * FROM {t}" for t in tables)
                    con.execute(f"CREATE OR REPLACE VIEW {view} AS {union}")
                    con.execute(f"COMMENT ON VIEW {view} IS '{comment}'")
                else:
                    con.execute(f"DROP VIEW IF EXISTS {view}")
                con.execute("COMMIT")
            except _duckdb().Error as exc:
                raise StorageError(
                    f"DuckDB could not point the view {self.schema}.{asset} at its {len(tables)} current partitions "
                    f"in {self.path}: {exc}. If a table of that name was created by hand, rename or drop it."
                ) from None

    def delete(self, asset: str, location: str) -> None:
        """Drop the version table, and the view too if it pointed at that version."""
        target = self._table(asset, location)
        if not self.path.exists():
            return
        with self._connect(write=True) as con:
            con.execute("BEGIN TRANSACTION")
            con.execute(f"DROP TABLE IF EXISTS {target}")
            pointer = con.execute(
                "SELECT comment FROM duckdb_views() WHERE database_name = current_database() "
                "AND schema_name = ? AND view_name = ?",
                [self.schema, asset],
            ).fetchall()
            if pointer and pointer[0][0] == location:
                con.execute(f"DROP VIEW IF EXISTS {self._view(asset)}")
            con.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This file's shared connection, held for a read (a SQL asset's query runs in it; see docs/sql.md)."""
        with self._connect(write=False) as con:
            yield con

    # -- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _connect(self, write: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._db.use(write, self.lock_timeout, self.keep_open) as con:
            yield con

    def _exists(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        row = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [self.schema, table],
        ).fetchall()  # fetch everything: DuckDB refuses the next query while a result is unread
        return bool(row[0][0])

    def _file_token(self) -> str:
        """The stats of the DuckDB file and its WAL, and when they were taken (``stats@ns``)."""
        taken_at = time.time_ns()
        stats = []
        for path in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                stats.append(stat_token(path))
            except FileNotFoundError:
                stats.append("-")
        return f"{','.join(stats)}@{taken_at}"

    @staticmethod
    def _file_vouches(token: str, file_token: str) -> bool:
        """Whether the file stats recorded in ``token`` still hold and may vouch for its table.

        A file modified within the file system's timestamp granularity of the moment its
        stat was recorded could change again with the same stat (git's "racy clean"), so
        such a stat vouches for nothing and the storage metadata is compared instead.
        """
        recorded, separator, _ = token.partition("|")
        stats, _, taken_at = recorded.partition("@")
        if not separator or not taken_at.isdigit() or stats != file_token.partition("@")[0]:
            return False
        return not any(is_racy(stat, int(taken_at)) for stat in stats.split(",") if stat != "-")

    def _storage_token(self, con: duckdb.DuckDBPyConnection, table: str) -> str:
        """Row count and storage metadata of a table (see the module docstring)."""
        qualified = f"{self.schema}.{table}"  # both validated: safe inside the string literal
        segments = con.execute(f"SELECT COLUMNS(*)::VARCHAR FROM pragma_storage_info('{qualified}')").fetchall()
        rows = con.execute(f"SELECT count(*) FROM {self._schema}.{quote_identifier(table)}").fetchall()
        text = repr((rows[0][0], sorted(map(repr, segments))))
        return hash_fields("duckdb-storage/1", text).split(":", 1)[1][:32]

    def _refuse_lossy_types(self, con: duckdb.DuckDBPyConnection, asset: str, table: pa.Table) -> None:
        """Refuse a table whose column names or types DuckDB would not give back unchanged."""
        from assetflow.fingerprint.data import table_hash

        back = con.sql(f"SELECT * FROM {_INCOMING} LIMIT 0").to_arrow_table().schema
        if table_hash(table.schema.empty_table()) == table_hash(back.empty_table()):
            return
        changes = []
        for index, field in enumerate(table.schema):
            other = back.field(index) if index < len(back) else None
            if other is None or other.name != field.name:
                changes.append(f"column {field.name!r} would come back named {other.name if other else None!r}")
            elif table_hash(_empty(field)) != table_hash(_empty(other)):
                changes.append(f"column {field.name!r} of type {field.type} would come back as {other.type}")
        raise StorageError(
            f"Asset {asset!r} cannot be stored in DuckDB unchanged: {'; '.join(changes) or 'its schema changes'}. "
            f"Its data hash would not describe what is loaded back. {_TYPE_HINT}"
        )


def _seconds(options: dict[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise StorageError(f"[tool.assetflow.io.duckdb] {key} must be a number of seconds (>= 0); got {value!r}.")
    return float(value)


def _empty(field: pa.Field) -> pa.Table:
    import pyarrow as pa

    return pa.schema([field]).empty_table()


_DAMAGE = ("Could not read enough bytes", "not a valid DuckDB database file", "Corrupt database file",
           "does not match stored checksum")


def _is_damage(exc: BaseException) -> bool:
    """Whether DuckDB's error says the file itself is damaged (truncated, garbled), not busy or misused."""
    return type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb") and any(s in str(exc) for s in _DAMAGE)


def _damaged(path: Path, exc: BaseException) -> DamagedStorageError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DamagedStorageError(
        f"The DuckDB file {path} is damaged ({reason}): the versions stored in it can be neither read nor "
        f"written. Run `assetflow doctor --repair`: it moves the file aside (kept as {path.name}.damaged-<time>) "
        f"and forgets the versions it held, so the next `assetflow materialize` rebuilds them.", str(path))


def _duckdb() -> Any:
    import duckdb

    return duckdb


# -- connections ------------------------------------------------------------------------------


class _Connection:
    """The process's connection to one DuckDB file, shared by every backend instance.

    DuckDB lets one process write a file, or several read it. The connection is opened
    read-only until a write needs it, reused by the operations of a burst, and closed
    ``keep_open`` seconds after the last one, so other processes get the file back soon.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._writable = False
        self._generation = 0  # bumped by every use; an idle timer closes only its own generation
        self._timer: threading.Timer | None = None

    @contextmanager
    def use(self, write: bool, lock_timeout: float, keep_open: float) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            self._generation += 1
            if self._con is not None and write and not self._writable:
                self.close()
            if self._con is None:
                self._con, self._writable = self._open(write, lock_timeout)
            try:
                yield self._con
            except BaseException as exc:
                self.close()  # also rolls back a transaction the failure left open
                if _is_damage(exc):
                    raise _damaged(self.path, exc) from None
                raise
            if self._timer is not None:
                self._timer.cancel()
            if keep_open > 0:
                self._timer = threading.Timer(keep_open, self._close_if_idle, args=(self._generation,))
                self._timer.daemon = True
                self._timer.start()
            else:
                self.close()

    def _open(self, write: bool, lock_timeout: float) -> tuple[duckdb.DuckDBPyConnection, bool]:
        import duckdb

        deadline = time.monotonic() + lock_timeout
        delay = 0.01
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=not write)
                break
            except duckdb.ConnectionException as exc:
                if write or "different configuration" not in str(exc):
                    raise StorageError(f"Cannot open the DuckDB file {self.path}: {exc}") from None
                write = True  # this process has it open read-write already (e.g. the asset's own code)
            except duckdb.IOException as exc:
                if _is_damage(exc):
                    raise _damaged(self.path, exc) from None
                if "lock" not in str(exc).lower():
                    raise StorageError(f"Cannot open the DuckDB file {self.path}: {exc}") from None
                if time.monotonic() >= deadline:
                    raise StorageError(
                        f"The DuckDB file {self.path} is held by another process and stayed so for "
                        f"{lock_timeout:g} s: {exc}. Close the program that has it open (e.g. a DuckDB "
                        f"shell), or raise [tool.assetflow.io.duckdb] lock_timeout."
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
            except duckdb.Error as exc:  # e.g. a block whose checksum fails, found while opening
                if _is_damage(exc):
                    raise _damaged(self.path, exc) from None
                raise StorageError(f"Cannot open the DuckDB file {self.path}: {exc}") from None
        try:
            con.execute("SET TimeZone = 'UTC'")  # time-zone-aware columns come back in UTC everywhere
        except BaseException:
            con.close()
            raise
        return con, write

    def _close_if_idle(self, generation: int) -> None:
        if self._lock.acquire(blocking=False):
            try:
                if generation == self._generation:
                    self.close()
            finally:
                self._lock.release()

    def close(self) -> None:
        with self._lock:
            con, self._con = self._con, None
            if con is not None:
                con.close()

    def forget(self) -> None:
        """In a forked child: drop the parent's connection without touching the file."""
        if self._con is not None:
            _ABANDONED.append(self._con)  # never closed here: closing would write the parent's file
        self._con = None
        self._lock = threading.RLock()


_CONNECTIONS: weakref.WeakValueDictionary[Path, _Connection] = weakref.WeakValueDictionary()
_REGISTRY_LOCK = threading.Lock()
_ABANDONED: list[object] = []


def _shared_connection(path: Path) -> _Connection:
    key = path.resolve()
    with _REGISTRY_LOCK:
        connection = _CONNECTIONS.get(key)
        if connection is None:
            connection = _CONNECTIONS[key] = _Connection(key)
        return connection


def _close_all(wait: float = 0.0) -> None:
    """Close every connection: before a fork (``wait`` 0: one busy in another thread is left to it),
    and at exit (``wait`` > 0), before the interpreter stops its daemon threads.

    An idle timer's thread must not be inside DuckDB when that happens: Python ends such a
    thread by unwinding it, DuckDB's C++ swallows the unwind, and the process aborts
    ("FATAL: exception not rethrown") after a successful command. So the timers are
    cancelled, and a close in progress is waited for.
    """
    for connection in list(_CONNECTIONS.values()):
        if connection._lock.acquire(timeout=wait):
            try:
                if connection._timer is not None:
                    connection._timer.cancel()
                connection.close()
            finally:
                connection._lock.release()


def _forget_all() -> None:
    for connection in list(_CONNECTIONS.values()):
        connection.forget()


atexit.register(_close_all, 30.0)
os.register_at_fork(before=_close_all, after_in_child=_forget_all)


@hookimpl
def assetflow_io_backends() -> list[type[DuckDBBackend]]:
    return [DuckDBBackend]
