"""The embedded state store: one SQLite file, WAL, a transaction per commit.

Only the coordinating process writes here. Every write that makes an asset current
happens in one transaction *after* its data has been committed by the backend, so a
crash can lose a record (and the next run redoes the work) but never point at
partial data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from assetflow.errors import StateError
from assetflow.state.folder import ensure_state_folder
from assetflow.secrets import redact
from assetflow.state.schema import LATEST_VERSION, MIGRATIONS

STATE_FILE = "state.db"
RECOVERY_COMMAND = "assetflow doctor --repair"


def state_error(path: Path | None, exc: BaseException, what: str | None = None) -> StateError:
    """What went wrong with the state store, and what to do, for any error reading or writing it."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    store = (f"The state store {path}" if path else "The state store") + (f", {what}," if what else "")
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM")):
        return StateError(
            f"{store} could not be read or written ({exc}). Check free disk space and "
            f"permissions, then run the command again; nothing was recorded partially."
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StateError(f"{store} stayed locked by another process ({exc}); run the command again.")
    by_hand = path or "<state folder>/state.db"
    return StateError(
        f"{store} is unreadable or corrupt ({exc}). Run `{RECOVERY_COMMAND}`: it moves the "
        f"file aside and rebuilds the state from every record it can salvage and verify against the stored "
        f"data; `assetflow materialize` then recomputes the rest. (By hand: mv {by_hand} {by_hand}.bad, and "
        f"`assetflow materialize` recomputes everything.)"
    )


def _is_disk_trouble(exc: BaseException) -> bool:
    """A full disk, an I/O or permission failure: the file system's fault, not a corrupt store."""
    if isinstance(exc, StateError):
        return exc.__cause__ is not None and _is_disk_trouble(exc.__cause__)
    if isinstance(exc, OSError):
        return True
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    return name.startswith(("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM"))


# The summary recorded for a run whose process died before it finished: a later run's start (or doctor) marks it
# failed so, under the project lock; ``history`` shows a dead run so before then.
ABANDONED_SUMMARY = {"abandoned": 1}


@dataclasses.dataclass(frozen=True)
class Materialization:
    """One stored version of an asset and everything it was made from."""

    asset: str
    run_id: str
    recipe_key: str
    data_hash: str
    code_fingerprint: str
    config: str
    upstream: dict[str, str]
    deps: tuple[str, ...]
    io: str
    location: str
    token: str
    rows: int | None
    schema: list[tuple[str, str]]
    bytes: int | None
    libraries: dict[str, str]
    started_at: float
    finished_at: float
    partition: str = ""  # "" = not partitioned
    id: int | None = None


_MAT_COLUMNS = (
    "id, asset, run_id, recipe_key, data_hash, code_fingerprint, config, upstream, deps, io, "
    "location, token, rows, schema, bytes, libraries, started_at, finished_at, partition"
)
# An unpartitioned pointer counts unless the asset has partition pointers too: ``point`` keeps one kind, but a
# store written before it did may hold both, and then the partitions are what the asset's view shows.
_UNPARTITIONED = ("c.partition = '' AND NOT EXISTS (SELECT 1 FROM pointers p "
                  "WHERE p.env = c.env AND p.asset = c.asset AND p.partition != '')")
PROD = "prod"  # the default environment: every pointer a run moves lives here unless told otherwise


def row_to_materialization(row: sqlite3.Row | tuple) -> Materialization:
    """A materializations row (``_MAT_COLUMNS``) as a ``Materialization``; public for ``doctor``,
    which reads rows of a damaged store the same way when it salvages them."""
    try:
        mat = _parse_materialization(row)
    except (ValueError, TypeError, AttributeError) as exc:
        raise StateError(
            f"The state store holds an unreadable materialization record ({exc}): it is corrupt. "
            f"Run `{RECOVERY_COMMAND}` to rebuild it from what can be salvaged and verified."
        ) from exc
    texts = (mat.asset, mat.run_id, mat.recipe_key, mat.data_hash, mat.code_fingerprint, mat.config, mat.io,
             mat.location, mat.token)
    if (not all(isinstance(t, str) for t in texts) or not _is_str_map(mat.upstream)
            or not all(isinstance(d, str) for d in mat.deps) or not _is_str_map(mat.libraries)):
        raise StateError(f"The state store holds a malformed materialization record of {mat.asset!r}: it is "
                         f"corrupt. Run `{RECOVERY_COMMAND}` to rebuild it from what can be salvaged and verified.")
    return mat


def _is_str_map(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _parse_materialization(row: sqlite3.Row | tuple) -> Materialization:
    (mid, asset, run_id, recipe, data_hash, code, config, upstream, deps, io, location, token,
     rows, schema, size, libraries, started, finished, partition) = row
    return Materialization(
        asset=asset, run_id=run_id, recipe_key=recipe, data_hash=data_hash, code_fingerprint=code,
        config=config, upstream=json.loads(upstream), deps=tuple(json.loads(deps)), io=io,
        location=location, token=token, rows=rows,
        schema=[tuple(f) for f in json.loads(schema)] if schema else [],  # type: ignore[misc]
        bytes=size, libraries=json.loads(libraries), started_at=started, finished_at=finished,
        partition=partition, id=mid,
    )


def _check_row(row: sqlite3.Row | tuple) -> dict[str, object]:
    (fingerprint, data_hash, asset, partition, name, severity, passed, summary, findings, metadata, run_id, at) = row
    return {"fingerprint": fingerprint, "data_hash": data_hash, "asset": asset, "partition": partition,
            "check": name, "severity": severity, "passed": bool(passed), "summary": summary,
            "findings": json.loads(findings) if findings else None,
            "metadata": json.loads(metadata) if metadata else {}, "run_id": run_id, "at": at}


class Connection(sqlite3.Connection):
    """A connection whose errors are always ``sqlite3.Error``s.

    SQLite's message about a damaged schema can quote bytes that are not UTF-8; Python
    then raises UnicodeDecodeError instead of the database error it could not decode.
    """

    def execute(self, *args: object, **kwargs: object) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().execute(*args, **kwargs)  # type: ignore[arg-type]
        except UnicodeDecodeError as exc:
            raise sqlite3.DatabaseError(f"database disk image is malformed (undecodable message: {exc})") from exc

    def executemany(self, *args: object, **kwargs: object) -> sqlite3.Cursor:  # type: ignore[override]
        try:
            return super().executemany(*args, **kwargs)  # type: ignore[arg-type]
        except UnicodeDecodeError as exc:
            raise sqlite3.DatabaseError(f"database disk image is malformed (undecodable message: {exc})") from exc


# The stores' read-write connections still open in this process (``close_open_stores``).
_OPEN_CONNECTIONS: weakref.WeakSet[sqlite3.Connection] = weakref.WeakSet()


def close_open_stores() -> bool:
    """Close every state store connection still open in this process, as a clean exit would; False if one could not be.

    Closing the last connection to a database checkpoints its write-ahead log and empties it: a process that ends
    without (``os._exit``) leaves the log for the next one to replay, and one that may not write (a full disk) can
    then read nothing (``StateStore._open_read_only``). A connection another thread opened cannot be closed here.
    """
    closed = True
    for db in list(_OPEN_CONNECTIONS):
        try:
            db.close()
        except sqlite3.Error:
            closed = False
    return closed


class StateStore:
    """Read and write the project's state database."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE
        self.read_only_because: StateError | None = None  # why writes are refused (a full disk), if they are
        # Parsed pointer reads, valid while no connection committed and this one changed nothing (_pointed).
        self._pointed_cache: dict[tuple[object, ...], tuple[tuple[int, int], dict[tuple[str, str], Materialization]]] = {}
        try:
            ensure_state_folder(folder)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=60.0, factory=Connection)
            _OPEN_CONNECTIONS.add(self._db)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.DatabaseError, UnicodeDecodeError, StateError) as exc:
            error = exc if isinstance(exc, StateError) else state_error(self.path, exc)
            if not _is_disk_trouble(exc) or not self._open_read_only(error):
                raise error from exc

    def _open_read_only(self, why: StateError) -> bool:
        """Read the state without writing anything (a full disk): reads answer, writes raise ``why``.

        Exact only if the write-ahead log is empty (a clean close checkpoints it), so only then;
        a project with no state yet reads as empty.
        """
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        wal = self.path.with_name(STATE_FILE + "-wal")
        try:
            empty = not self.path.exists() or self.path.stat().st_size == 0  # no state yet (or not even a page)
            if not empty and self.path.is_file() and (not wal.exists() or wal.stat().st_size == 0):
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?immutable=1", uri=True, isolation_level=None,
                                     factory=Connection)
                if db.execute("PRAGMA user_version").fetchone()[0] != LATEST_VERSION:
                    db.close()
                    return False
            elif empty:
                db = sqlite3.connect(":memory:", isolation_level=None, factory=Connection)
                for migration in MIGRATIONS:
                    db.executescript(migration)
                db.execute(f"PRAGMA user_version = {LATEST_VERSION}")
            else:
                return False
            db.execute("PRAGMA query_only=ON")
        except (OSError, sqlite3.Error):
            return False
        self._db = db
        self.read_only_because = why
        return True

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self, what: str | None = None) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE takes the write lock up front, avoiding upgrade deadlocks.

        ``what`` (e.g. "recording asset 'x'") names the write in the error should it fail.
        """
        if self.read_only_because is not None:
            raise self.read_only_because
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                    self._db.execute("ROLLBACK")
                raise
        except (sqlite3.InterfaceError, sqlite3.ProgrammingError):
            raise  # a value SQLite cannot bind, a closed connection: the caller's error, not a damaged store
        except sqlite3.Error as exc:
            raise state_error(self.path, exc, what) from exc

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > LATEST_VERSION:
            raise StateError(
                f"The state store {self.path} has schema version {version}, newer than this assetflow "
                f"understands ({LATEST_VERSION}). Upgrade assetflow."
            )
        if version == LATEST_VERSION:
            return
        with self.transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number in range(version, LATEST_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {LATEST_VERSION}")

    # -- materializations -------------------------------------------------------------------

    def current(self, env: str = PROD) -> dict[str, Materialization]:
        """The current materialization of every unpartitioned asset that has one."""
        return {asset: mat for (asset, _), mat in self._pointed(env, _UNPARTITIONED).items()}

    def current_of(self, assets: Iterable[str], env: str = PROD) -> dict[str, Materialization]:
        """``current`` for these assets only: what a caller interested in a few of 10,000 reads
        (parsing every record costs ~1 s at 10,000 assets; the daemon's conditions need ~a hundred)."""
        where = f"{_UNPARTITIONED} AND c.asset IN (SELECT value FROM json_each(?))"
        return {asset: mat for (asset, _), mat in self._pointed(env, where, (json.dumps(sorted(set(assets))),)).items()}

    def current_partitions(self, env: str = PROD, asset: str | None = None) -> dict[tuple[str, str], Materialization]:
        """(asset, partition) -> current materialization, for every partition of every (or one) asset."""
        if asset is None:
            return self._pointed(env, "c.partition != ''")
        return self._pointed(env, "c.partition != '' AND c.asset = ?", (asset,))

    def _pointed(self, env: str, where: str, args: tuple[object, ...] = ()) -> dict[tuple[str, str], Materialization]:
        """The current records the pointers select, parsed once while the database is unchanged.

        A run reads every current partition while assessing and again while scheduling (parsing
        6,000 records costs ~0.3 s); ``PRAGMA data_version`` moves when another connection
        commits and ``total_changes`` when this one writes, so an unchanged pair means the
        very rows would be read again.
        """
        stamp = (self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes)
        key = (env, where, args)
        cached = self._pointed_cache.get(key)
        if cached is not None and cached[0] == stamp:
            return dict(cached[1])
        found = self._read_pointed(env, where, args, cached[1] if cached is not None else {})
        if len(self._pointed_cache) >= 4:
            self._pointed_cache.clear()
        self._pointed_cache[key] = (stamp, found)
        return dict(found)

    def _read_pointed(self, env: str, where: str, args: tuple[object, ...],
                      known: Mapping[tuple[str, str], Materialization]) -> dict[tuple[str, str], Materialization]:
        """The pointed records, parsing only those not in ``known`` (the last read of the same rows).

        A record never changes but for its stat token (``update_token``), so one already parsed,
        with the same id, run and token, is the same record: after a run that moved a few
        pointers of 10,000, only those few are parsed again (parsing all costs ~0.2 s).
        """
        by_id = {mat.id: mat for mat in known.values()}
        pointed: list[tuple[tuple[str, str], int]] = []
        parsed: dict[int, Materialization] = {}
        for asset, partition, mid, run_id, token in self._db.execute(
            f"SELECT c.asset, c.partition, m.id, m.run_id, m.token "
            f"FROM pointers c JOIN materializations m ON m.id = c.materialization WHERE c.env = ? AND {where}",
            (env, *args),
        ):
            pointed.append(((asset, partition), mid))
            mat = by_id.get(mid)
            if mat is not None and mat.run_id == run_id and mat.token == token:
                parsed[mid] = mat
        unparsed = sorted({mid for _, mid in pointed if mid not in parsed})
        if unparsed:
            for row in self._db.execute(
                f"SELECT {_MAT_COLUMNS} FROM materializations WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(unparsed),),
            ):
                mat = row_to_materialization(tuple(row))
                parsed[mat.id] = mat  # type: ignore[index]
        found: dict[tuple[str, str], Materialization] = {}
        for (asset, partition), mid in pointed:
            mat = parsed.get(mid)
            # A pointer at another asset's (or partition's) record is damage: no version, not a wrong one.
            if mat is not None and mat.asset == asset and mat.partition == partition:
                found[(asset, partition)] = mat
        return found

    def has_versions(self) -> bool:
        """Whether any version of any asset was ever recorded (a first run has none to restore or keep)."""
        return self._db.execute("SELECT 1 FROM materializations LIMIT 1").fetchone() is not None

    def by_recipe(self, asset: str, recipe_key: str, partition: str = "") -> list[Materialization]:
        """Earlier materializations of this asset (and partition) made from exactly this recipe, newest first."""
        rows = self._db.execute(
            f"SELECT {_MAT_COLUMNS} FROM materializations WHERE asset = ? AND partition = ? AND recipe_key = ? "
            "ORDER BY id DESC",
            (asset, partition, recipe_key),
        )
        found = [row_to_materialization(r) for r in rows]
        # Re-checked: a damaged index could hand back another record, which must never be restored.
        return [m for m in found if m.asset == asset and m.partition == partition and m.recipe_key == recipe_key]

    def history(self, asset: str | None = None, limit: int = 50, partition: str | None = None) -> list[Materialization]:
        """The newest materializations (of ``asset``; of its ``partition`` too when given), newest first."""
        where, args = ("WHERE asset = ?", (asset,)) if asset else ("", ())
        if asset and partition is not None:
            where, args = "WHERE asset = ? AND partition = ?", (asset, partition)
        rows = self._db.execute(
            f"SELECT {_MAT_COLUMNS} FROM materializations {where} ORDER BY id DESC LIMIT ?", (*args, limit)
        )
        return [row_to_materialization(r) for r in rows]

    def current_summary(self, env: str = PROD) -> dict[str, tuple[str, int | None, float]]:
        """Each unpartitioned asset's current (data hash, rows, finished_at): cheap, for status."""
        rows = self._db.execute(
            "SELECT c.asset, m.data_hash, m.rows, m.finished_at FROM pointers c JOIN materializations m "
            f"ON m.id = c.materialization WHERE c.env = ? AND {_UNPARTITIONED}", (env,)
        )
        return {asset: (data_hash, count, finished) for asset, data_hash, count, finished in rows}

    def durations_of(self, assets: Iterable[str], env: str = PROD) -> dict[str, float]:
        """How long the current version of each of these unpartitioned assets took to compute: cheap (no
        record parsed), for sizing a run before its project loads (``fastpath.last_durations_downstream``)."""
        rows = self._db.execute(
            "SELECT c.asset, m.finished_at - m.started_at FROM pointers c JOIN materializations m "
            f"ON m.id = c.materialization WHERE c.env = ? AND {_UNPARTITIONED} "
            "AND c.asset IN (SELECT value FROM json_each(?))", (env, json.dumps(sorted(set(assets))))
        )
        return {asset: took for asset, took in rows}

    def materialization(self, materialization_id: int) -> Materialization | None:
        row = self._db.execute(f"SELECT {_MAT_COLUMNS} FROM materializations WHERE id = ?",
                               (materialization_id,)).fetchone()
        return row_to_materialization(row) if row else None

    def by_data_hash(self, asset: str, prefix: str) -> list[Materialization]:
        """Materializations of an asset whose data hash starts with ``prefix``, newest first."""
        rows = self._db.execute(
            f"SELECT {_MAT_COLUMNS} FROM materializations WHERE asset = ? AND substr(data_hash, 1, ?) = ? "
            "ORDER BY id DESC", (asset, len(prefix), prefix),
        )
        return [row_to_materialization(r) for r in rows]

    def all_materializations(self) -> list[Materialization]:
        return [row_to_materialization(r) for r in self._db.execute(f"SELECT {_MAT_COLUMNS} FROM materializations")]

    def record(self, db: sqlite3.Connection, mat: Materialization, point: bool = True) -> int:
        """Insert a materialization and make it current (inside a caller's transaction).

        ``point=False`` records it without publishing it: an asset with checks is stored, then
        checked, and only then pointed at (docs/checks.md); a rejected version stays loadable.
        """
        cursor = db.execute(
            f"INSERT INTO materializations ({_MAT_COLUMNS.split(', ', 1)[1]}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                mat.asset, mat.run_id, mat.recipe_key, mat.data_hash, mat.code_fingerprint, mat.config,
                json.dumps(mat.upstream, sort_keys=True), json.dumps(list(mat.deps)), mat.io, mat.location,
                mat.token, mat.rows, json.dumps(mat.schema), mat.bytes,
                json.dumps(mat.libraries, sort_keys=True), mat.started_at, mat.finished_at, mat.partition,
            ),
        )
        mat_id = int(cursor.lastrowid or 0)
        if point:
            self.point(db, mat.asset, mat_id, mat.partition)
        return mat_id

    @staticmethod
    def point(db: sqlite3.Connection, asset: str, materialization_id: int, partition: str = "",
              env: str = PROD) -> None:
        """Make a version current for (env, asset, partition): the one write that publishes data.

        An asset is partitioned or not: pointing at a partition forgets its unpartitioned version,
        and the reverse, so a definition that changes kind finds nothing current of the new kind
        and restores (or makes) it, and its storage view follows (docs/partitions.md).
        """
        db.execute("DELETE FROM pointers WHERE env = ? AND asset = ? AND (partition = '') != (? = '')",
                   (env, asset, partition))
        db.execute(
            "INSERT INTO pointers (env, asset, partition, materialization) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (env, asset, partition) DO UPDATE SET materialization = excluded.materialization",
            (env, asset, partition, materialization_id),
        )

    def unpoint(self, db: sqlite3.Connection, asset: str, partition: str | None = "", env: str = PROD) -> None:
        """Forget the current version of one partition (``""``: the unpartitioned asset; None: every partition)."""
        if partition is None:
            db.execute("DELETE FROM pointers WHERE env = ? AND asset = ?", (env, asset))
        else:
            db.execute("DELETE FROM pointers WHERE env = ? AND asset = ? AND partition = ?", (env, asset, partition))

    def pointed_ids(self, asset: str | None = None) -> set[int]:
        """Ids of every version some pointer reaches (any environment, any partition): what gc must keep."""
        where, args = ("WHERE asset = ?", (asset,)) if asset else ("", ())
        return {r[0] for r in self._db.execute(f"SELECT materialization FROM pointers {where}", args)}

    @staticmethod
    def drop_pointers_to(db: sqlite3.Connection, ids: Iterable[int]) -> None:
        """Forget every pointer (any environment) at these versions, e.g. before gc deletes them."""
        db.executemany("DELETE FROM pointers WHERE materialization = ?", [(i,) for i in ids])

    def update_token(self, materialization_id: int, token: str) -> None:
        """Refresh a cached stat token; skipped when the state cannot be written (it is only a cache)."""
        if self.read_only_because is not None:
            return
        try:
            self._db.execute("UPDATE materializations SET token = ? WHERE id = ?", (token, materialization_id))
        except sqlite3.Error as exc:
            if not _is_disk_trouble(exc):
                raise

    @contextmanager
    def cache_write(self) -> Iterator[None]:
        """A write of cached facts (stat cache, graph cache): dropped when the disk is full, since
        reading answers the same without it; so read-only commands (``status``) work on a full disk."""
        try:
            yield
        except StateError as exc:
            if not _is_disk_trouble(exc.__cause__ or exc) and exc is not self.read_only_because:
                raise

    def delete_materializations(self, db: sqlite3.Connection, ids: Iterable[int]) -> None:
        db.executemany("DELETE FROM materializations WHERE id = ?", [(i,) for i in ids])

    # -- check results: one per (check fingerprint, data hash) ----------------------------

    _CHECK_COLUMNS = ("check_fingerprint, data_hash, asset, partition, check_name, severity, passed, summary, "
                      "findings, metadata, run_id, at")

    def check_results(self, data_hash: str, fingerprints: Iterable[str]) -> dict[str, dict[str, object]]:
        """Cached verdicts on this data by these checks, by check fingerprint: what need not run again."""
        rows = self._db.execute(
            f"SELECT {self._CHECK_COLUMNS} FROM check_results WHERE data_hash = ? AND check_fingerprint IN "
            "(SELECT value FROM json_each(?))", (data_hash, json.dumps(list(fingerprints))))
        return {r[0]: _check_row(r) for r in rows}

    def checks_of(self, asset: str, data_hash: str) -> list[dict[str, object]]:
        """The latest verdict of each check (by name) on one version of an asset, in check name order."""
        rows = self._db.execute(
            f"SELECT {self._CHECK_COLUMNS} FROM check_results WHERE asset = ? AND data_hash = ? ORDER BY at, rowid",
            (asset, data_hash))
        latest = {r[4]: _check_row(r) for r in rows}
        return [latest[name] for name in sorted(latest)]

    def checks_by_run(self, asset: str, run_id: str) -> list[dict[str, object]]:
        """The verdicts one run last gave (or re-read) on an unpartitioned asset, in check name order."""
        rows = self._db.execute(
            f"SELECT {self._CHECK_COLUMNS} FROM check_results WHERE asset = ? AND partition = '' AND run_id = ? "
            "ORDER BY check_name", (asset, run_id))
        return [_check_row(r) for r in rows]

    def version_judged(self, asset: str, run_id: str, data_hash: str, besides: int | None) -> Materialization | None:
        """The version of ``asset`` a run judged: the one it made, else the newest with that data (one it found
        by its recipe); never ``besides`` (the current version, which may hold the same data)."""
        row = self._db.execute(
            f"SELECT {_MAT_COLUMNS} FROM materializations WHERE asset = ? AND partition = '' AND id IS NOT ? "
            "AND (run_id = ? OR data_hash = ?) ORDER BY run_id = ? DESC, id DESC LIMIT 1",
            (asset, besides, run_id, data_hash, run_id)).fetchone()
        return row_to_materialization(row) if row else None

    def save_check_results(self, db: sqlite3.Connection, results: Iterable[dict[str, object]]) -> None:
        """Record verdicts; a cached one seen again is re-stamped (its run and time), so it reads as the latest."""
        db.executemany(
            f"INSERT INTO check_results ({self._CHECK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (check_fingerprint, data_hash) DO UPDATE SET run_id = excluded.run_id, at = excluded.at, "
            "asset = excluded.asset, partition = excluded.partition",
            [(r["fingerprint"], r["data_hash"], r["asset"], r.get("partition", ""), r["check"], r["severity"],
              int(bool(r["passed"])), redact(str(r.get("summary") or "")) or None,
              json.dumps(r.get("findings"), sort_keys=True, default=str),
              json.dumps(r.get("metadata") or {}, sort_keys=True, default=str), r.get("run_id"), time.time())
             for r in results])

    # -- runs and events --------------------------------------------------------------------

    def begin_run(self, run_id: str, command: str, pid: int, host: str,
                  trigger: dict[str, object] | None = None, env: str = PROD) -> None:
        """Record a run as started, with what started it (default: a person at the command line)."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (run_id, started_at, status, pid, host, command, trigger, env) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (run_id, time.time(), pid, host, redact(command),
                 json.dumps(trigger or {"kind": "person"}, sort_keys=True), env),
            )

    def finish_run(self, run_id: str, status: str, summary: dict[str, int]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
                (time.time(), status, json.dumps(summary, sort_keys=True), run_id),
            )

    def mark_interrupted_now(self, run_id: str) -> None:
        """Best effort, from a signal handler: mark the run interrupted on a separate connection
        that gives up rather than wait (mid-transaction, the next run marks it abandoned instead)."""
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=0.2)) as db, db:
                db.execute("UPDATE runs SET status = 'interrupted', finished_at = ? WHERE run_id = ? "
                           "AND status = 'running'", (time.time(), run_id))
        except sqlite3.Error:
            pass

    def mark_abandoned_runs(self, alive: callable) -> list[str]:  # type: ignore[valid-type]
        """Mark runs left 'running' by processes that no longer exist as failed (summary ``{"abandoned": 1}``)."""
        rows = self._db.execute("SELECT run_id, pid, host FROM runs WHERE status = 'running'").fetchall()
        dead = [run_id for run_id, pid, host in rows if not alive(pid, host)]
        if dead:
            with self.transaction() as db:
                db.executemany(
                    "UPDATE runs SET status = 'failed', finished_at = ?, summary = ? WHERE run_id = ?",
                    [(time.time(), json.dumps(ABANDONED_SUMMARY), r) for r in dead],
                )
        return dead

    def runs(self, limit: int = 20) -> list[dict[str, object]]:
        rows = self._db.execute(
            "SELECT run_id, started_at, finished_at, status, command, summary, trigger FROM runs "
            "ORDER BY started_at DESC LIMIT ?",
            (limit,),
        )
        return [
            {"run_id": r[0], "started_at": r[1], "finished_at": r[2], "status": r[3], "command": r[4],
             "summary": json.loads(r[5]) if r[5] else None, "trigger": json.loads(r[6]) if r[6] else None}
            for r in rows
        ]

    def run_statuses(self, run_ids: Iterable[str]) -> dict[str, str]:
        """The status of each of these runs (a run never begun is left out)."""
        rows = self._db.execute("SELECT run_id, status FROM runs WHERE run_id IN (SELECT value FROM json_each(?))",
                                (json.dumps(list(run_ids)),))
        return dict(rows)

    def dead_runs(self, run_ids: Iterable[str]) -> set[str]:
        """Of these runs, those recorded running whose process died (SIGKILL, power loss): what a run's start
        will mark abandoned, found without taking the project lock or writing anything (``history``, ``ticks``).

        A run holds the lock from before it is recorded running until after it is recorded finished. So a run
        read as running, then found no longer holding the lock (``lock.gone_from_lock``), then read as running
        again, had died: had it ended in between, the second read would say how.
        """
        from assetflow.state.lock import gone_from_lock

        asked = list(run_ids)
        if not asked:
            return set()
        running = [run_id for run_id, status in self.run_statuses(asked).items() if status == "running"]
        gone = gone_from_lock(self.path.parent, running) if running else set()
        return {run_id for run_id, status in self.run_statuses(gone).items() if status == "running"} if gone else set()

    def add_events(self, db: sqlite3.Connection,
                   events: Iterable[tuple[str, str, str, float | None, str | None]
                                    | tuple[str, str, str, float | None, str | None, str]]) -> None:
        """Record (run_id, asset, outcome, duration, detail[, partition]) rows."""
        now = time.time()
        db.executemany(
            "INSERT INTO events (run_id, asset, outcome, at, duration, detail, partition) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e[0], e[1], e[2], now, e[3], redact(e[4]) if e[4] else e[4], e[5] if len(e) > 5 else "")
             for e in events],
        )

    def events(self, assets: Iterable[str] | None = None, runs: Iterable[str] | None = None,
               limit: int = 100_000) -> list[dict[str, object]]:
        """Events, newest first, optionally only of some assets and/or some runs."""
        clauses, args = [], []
        for column, values in (("asset", assets), ("run_id", runs)):
            if values is not None:
                clauses.append(f"{column} IN (SELECT value FROM json_each(?))")
                args.append(json.dumps(list(values)))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT id, run_id, asset, outcome, at, duration, detail, partition FROM events {where} "
            "ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [{"id": r[0], "run_id": r[1], "asset": r[2], "outcome": r[3], "at": r[4], "duration": r[5],
                 "detail": r[6], "partition": r[7]} for r in rows]

    def runs_of(self, assets: Iterable[str], limit: int = 20) -> list[str]:
        """The newest runs that did something to any of these assets."""
        rows = self._db.execute(
            "SELECT run_id FROM events WHERE asset IN (SELECT value FROM json_each(?)) "
            "GROUP BY run_id ORDER BY max(id) DESC LIMIT ?", (json.dumps(list(assets)), limit),
        )
        return [r[0] for r in rows]

    def last_events(self) -> dict[str, tuple[str, str | None, str]]:
        """Each asset's latest (outcome, detail, run id)."""
        rows = self._db.execute(
            "SELECT asset, outcome, detail, run_id FROM events WHERE id IN "
            "(SELECT max(id) FROM events WHERE partition = '' GROUP BY asset)"
        )
        return {asset: (outcome, detail, run_id) for asset, outcome, detail, run_id in rows}

    # -- facts ------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as db:
            if value is None:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                           "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # -- code, sources and the stat cache ---------------------------------------------------

    def save_code_sources(self, db: sqlite3.Connection, fingerprint: str, sources: dict[str, str]) -> None:
        db.execute(
            "INSERT OR IGNORE INTO code_sources (fingerprint, sources) VALUES (?, ?)",
            (fingerprint, json.dumps({k: redact(v) for k, v in sources.items()}, sort_keys=True)),  # a DSN in code
        )

    def code_sources(self, fingerprint: str) -> dict[str, str] | None:
        row = self._db.execute("SELECT sources FROM code_sources WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return json.loads(row[0]) if row else None

    def source_versions(self) -> dict[str, str]:
        """Each unpartitioned source's last observed data hash."""
        return dict(self._db.execute("SELECT name, data_hash FROM source_versions WHERE partition = ''"))

    def source_partition_versions(self, name: str) -> dict[str, str]:
        """A partitioned source's last observed data hash per partition key."""
        return dict(self._db.execute(
            "SELECT partition, data_hash FROM source_versions WHERE name = ? AND partition != ''", (name,)))

    def save_source_versions(self, db: sqlite3.Connection, versions: dict[str, str], partition: str = "") -> None:
        """Record observed data hashes of sources (``{name: hash}``), all for one partition key."""
        now = time.time()
        db.executemany(
            "INSERT INTO source_versions (name, partition, data_hash, observed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name, partition) DO UPDATE SET data_hash = excluded.data_hash, "
            "observed_at = excluded.observed_at",
            [(name, partition, h, now) for name, h in versions.items()],
        )

    def stat_cache(self) -> dict[str, tuple[str, str]]:
        """path -> (stat token, content hash) for every file hashed before."""
        return {path: (token, digest) for path, token, digest in self._db.execute("SELECT path, token, hash FROM stat_cache")}

    def forget_stat_cache(self, db: sqlite3.Connection, paths: Iterable[str]) -> None:
        """Drop the cached hashes of ``paths``: their stat no longer vouches for their bytes, so they are hashed again."""
        db.executemany("DELETE FROM stat_cache WHERE path = ?", [(p,) for p in paths])

    def save_stat_cache(self, db: sqlite3.Connection, entries: dict[str, tuple[str, str]]) -> None:
        db.executemany(
            "INSERT INTO stat_cache (path, token, hash) VALUES (?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET token = excluded.token, hash = excluded.hash",
            [(p, t, h) for p, (t, h) in entries.items()],
        )
