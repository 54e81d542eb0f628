"""``assetflow doctor``: examine a project's state store and stored data; ``--repair`` fixes them.

Examining never changes anything and imports no user code. It checks:

* the state store: SQLite's ``PRAGMA integrity_check`` and every record's fields;
* runs left "running" by a process that died;
* temporary files an interrupted write left in the data folder;
* symbolic links in the data folder (a deduplication tool makes them): a stored version must
  be a file of its own, or writing one asset could overwrite or delete another's data;
* the fast path's snapshot (sealed with a hash: a corrupted one is never trusted);
* the stored data of every current version, rehashed in full (``--no-verify-data`` skips
  this), which also finds a change that kept a file's size and modification time.

Repairing takes the project lock (so no run is in flight) and then:

* a corrupt state store is moved aside (``state.db.corrupt-<time>``, with its WAL) and
  rebuilt from every record that can still be read *and* whose stored data rehashes to
  its recorded hash; the fast path's snapshot, the stat cache and observed source
  versions are never salvaged (they are recomputed);
* records whose data is missing or modified are deleted, so the next run recomputes them
  and no restore can pick them up;
* a damaged backend file (a truncated DuckDB file) is moved aside (``<file>.damaged-<time>``,
  with its WAL) and every version it held is forgotten, so the next run rebuilds them;
* dead runs are marked failed, temporary files deleted, a bad snapshot dropped;
* a symbolic link in the data folder is replaced by a copy of what it points at (a link to
  nothing, or out of the store, is removed: its version then reads missing and is rebuilt).

Nothing is ever treated as fresh on the word of an unverifiable record.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assetflow.errors import DamagedStorageError, StateError
from assetflow.project import ProjectConfig
from assetflow.state.folder import ensure_state_folder
from assetflow.state.lock import ProjectLock, lock_is_held
from assetflow.state.schema import LATEST_VERSION
from assetflow.state.snapshot import SNAPSHOT_KEY, is_sealed
from assetflow.state.store import (ABANDONED_SUMMARY, STATE_FILE, Connection, Materialization, StateStore,
                                   row_to_materialization)
from assetflow.storage.base import Backends
from assetflow.storage.files import TEMP_PREFIX, fsync_dir, links_under, replace_link_with_copy

# Tables salvaged from a corrupt store, with their columns; the others are recomputed.
_SALVAGED = {
    "materializations": ("id, asset, run_id, recipe_key, data_hash, code_fingerprint, config, upstream, deps, io, "
                         "location, token, rows, schema, bytes, libraries, started_at, finished_at, partition"),
    "pointers": "env, asset, partition, materialization",
    "runs": "run_id, started_at, finished_at, status, pid, host, command, summary, env, trigger",
    "events": "id, run_id, asset, outcome, at, duration, detail, partition",
    "code_sources": "fingerprint, sources",
}


@dataclasses.dataclass
class Finding:
    """One problem found, and whether ``--repair`` fixed it."""

    kind: str  # state_corrupt | state_newer | record_corrupt | data_missing | data_modified | abandoned_run
    #            | temp_files | bad_snapshot | locked | symlink | data_damaged
    detail: str
    asset: str | None = None
    repaired: bool = False
    path: str | None = None  # the file or folder concerned, where there is one (symlink, data_damaged)


@dataclasses.dataclass
class DoctorReport:
    state_file: str
    integrity: str  # "ok", "missing" (no state yet), or what SQLite reported
    findings: list[Finding] = dataclasses.field(default_factory=list)
    verified: int = 0  # stored versions rehashed and found intact
    salvaged: dict[str, int] | None = None  # table -> rows kept, when the store was rebuilt
    moved_to: str | None = None
    damaged: dict[str, str] = dataclasses.field(default_factory=dict)  # damaged backend file -> its io

    @property
    def healthy(self) -> bool:
        return all(f.repaired for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        return {"state_file": self.state_file, "integrity": self.integrity, "healthy": self.healthy,
                "verified": self.verified, "salvaged": self.salvaged, "moved_to": self.moved_to,
                "findings": [dataclasses.asdict(f) for f in self.findings]}


def _integrity(path: Path) -> str:
    if not path.exists():
        return "missing"
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60.0, factory=Connection)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            rows = [r[0] for r in db.execute("PRAGMA integrity_check(20)")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return f"unreadable: {exc}"
    if version > LATEST_VERSION:
        return f"newer: schema version {version}"
    return "ok" if rows == ["ok"] else "; ".join(rows)


def examine(config: ProjectConfig, verify_data: bool = True, holding_lock: bool = False) -> DoctorReport:
    """Everything wrong with the project's state and stored data; changes nothing.

    ``holding_lock``: the caller holds the project lock, so no run can be in flight.
    """
    path = config.state_path / STATE_FILE
    if config.state_path.exists() and not config.state_path.is_dir():
        ensure_state_folder(config.state_path)  # raises: the state folder is a file (say so, not "missing")
    report = DoctorReport(str(path), _integrity(path))
    if report.integrity.startswith("newer"):
        report.findings.append(Finding("state_newer", f"{path} was written by a newer assetflow "
                                       f"({report.integrity}); upgrade assetflow. Not repairable here."))
        return report
    if report.integrity not in ("ok", "missing"):
        report.findings.append(Finding("state_corrupt", f"{path} is corrupt: {report.integrity}"))
    temps = _temp_files(config)
    if temps:
        report.findings.append(Finding("temp_files", f"{len(temps)} temporary files left by interrupted writes "
                                       f"under {config.data_path}"))
    _examine_links(config, report)
    if report.integrity != "ok":
        return report
    try:
        store = StateStore(config.state_path)
    except StateError as exc:
        report.findings.append(Finding("state_corrupt", str(exc)))
        return report
    try:
        _examine_store(config, store, report, verify_data, holding_lock)
    except (sqlite3.DatabaseError, StateError) as exc:
        report.findings.append(Finding("state_corrupt", f"{path}: {exc}"))
    finally:
        store.close()
    return report


def _examine_links(config: ProjectConfig, report: DoctorReport) -> None:
    data = config.data_path
    for link, target in links_under(data):
        parts = link.relative_to(data).parts
        report.findings.append(Finding(
            "symlink", f"{link} is a symbolic link (to {target}): a stored version must be a file of its own. "
            f"assetflow reads through it, replaces a linked file on its next write and refuses to write through "
            f"a linked folder; `assetflow doctor --repair` replaces it with a copy.",
            asset=parts[1] if len(parts) > 1 else None, path=str(link)))


def _repair_links(config: ProjectConfig, report: DoctorReport) -> None:
    data = config.data_path
    links = {str(link) for link, _ in links_under(data)}
    for finding in report.findings:
        if finding.kind == "symlink" and finding.path is not None:
            # A link inside a linked folder went with its folder's copy: nothing left to do for it.
            finding.repaired = finding.path not in links or replace_link_with_copy(Path(finding.path), data)


def _examine_store(config: ProjectConfig, store: StateStore, report: DoctorReport, verify_data: bool,
                   holding_lock: bool) -> None:
    for run_id, pid, host in store._db.execute("SELECT run_id, pid, host FROM runs WHERE status = 'running'"):
        if holding_lock or not lock_is_held(config.state_path):
            report.findings.append(Finding("abandoned_run", f"run {run_id} (pid {pid} on {host}) is marked running, "
                                           f"but no process holds the project lock: it died"))
    snapshot = store.get_meta(SNAPSHOT_KEY)
    if snapshot is not None and not is_sealed(snapshot):
        report.findings.append(Finding("bad_snapshot", "the no-op fast path's snapshot fails its seal (corrupt)"))
    for row in store._db.execute(f"SELECT m.id, {', '.join('m.' + c for c in _SALVAGED['materializations'].split(', ')[1:])} "
                                 "FROM pointers c JOIN materializations m ON m.id = c.materialization"):
        try:
            mat = row_to_materialization(tuple(row))
        except StateError as exc:
            report.findings.append(Finding("record_corrupt", str(exc), asset=str(row[1])))
            continue
        if verify_data:
            problem = _verify(config, mat)
            if problem is None:
                report.verified += 1
            elif problem[0] == "data_damaged":
                first = problem[2] not in report.damaged
                report.damaged[problem[2]] = mat.io
                if first:  # one finding per damaged file, however many assets it holds
                    report.findings.append(Finding(problem[0], problem[1], asset=mat.asset, path=problem[2]))
            else:
                report.findings.append(Finding(problem[0], problem[1], asset=mat.asset))


def _verify(config: ProjectConfig, mat: Materialization, backends: Backends | None = None) -> tuple[str, ...] | None:
    """None if the stored data rehashes to the recorded hash, else (kind, detail[, damaged file])."""
    return _check(config, mat, backends)[0]


def _check(config: ProjectConfig, mat: Materialization,
           backends: Backends | None = None) -> tuple[tuple[str, ...] | None, str]:
    """(None or the problem, the fresh token) after rehashing the stored data in full."""
    backends = backends or Backends(config.data_path, config.io_options)
    try:
        result = backends.get(mat.io).check(mat.asset, mat.location, mat.data_hash, "")  # "" forces a rehash
    except DamagedStorageError as exc:
        if exc.path is not None:
            return ("data_damaged", f"{mat.asset}: {exc}", exc.path), ""
        return ("data_missing", f"{mat.asset}: cannot check {mat.io}:{mat.location}: {exc}"), ""
    except Exception as exc:  # noqa: BLE001 - a backend that cannot even look is a failed verification
        return ("data_missing", f"{mat.asset}: cannot check {mat.io}:{mat.location}: {exc}"), ""
    if result.status == "missing":
        return ("data_missing", f"{mat.asset}: stored data {mat.io}:{mat.location} is missing"), ""
    if result.status != "ok":
        return ("data_modified", f"{mat.asset}: stored data {mat.io}:{mat.location} does not hash to "
                f"{mat.data_hash}"), ""
    return None, result.token


def _temp_files(config: ProjectConfig) -> list[Path]:
    root = config.data_path
    return sorted(root.rglob(f"{TEMP_PREFIX}*")) if root.is_dir() else []


# -- repair ------------------------------------------------------------------------------------


def repair(config: ProjectConfig, wait: bool = False, verify_data: bool = True) -> DoctorReport:
    """Fix what ``examine`` finds, holding the project lock; returns the findings, marked repaired."""
    lock = ProjectLock(config.state_path)
    lock.acquire("doctor", wait=wait)
    try:
        report = examine(config, verify_data=verify_data, holding_lock=True)
        kinds = {f.kind for f in report.findings}
        if "state_newer" in kinds:
            return report
        if "state_corrupt" in kinds:
            _rebuild(config, report)
        elif report.integrity == "ok":
            _repair_damaged(config, report)
            _repair_records(config, report)
        for temp in _temp_files(config):
            temp.unlink(missing_ok=True)
        _repair_links(config, report)
        for finding in report.findings:
            if finding.kind in ("temp_files", "abandoned_run", "bad_snapshot", "state_corrupt", "record_corrupt",
                                "data_missing", "data_modified") or (
                    finding.kind == "data_damaged" and finding.path is not None and not Path(finding.path).exists()):
                finding.repaired = True
        return report
    finally:
        lock.release()


def _repair_damaged(config: ProjectConfig, report: DoctorReport) -> None:
    """Move each damaged backend file aside and forget every version that is then missing.

    The versions it held (current or not) are deleted with their pointers, so the next run
    rebuilds what is current and no restore reaches for data that is gone. The file is kept
    beside, for inspection or a manual rescue.
    """
    if not report.damaged:
        return
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for name in report.damaged:
        path = Path(name)
        for suffix in ("", ".wal"):
            damaged = Path(str(path) + suffix)
            if damaged.exists():
                os.replace(damaged, path.with_name(f"{path.name}.damaged-{stamp}{suffix}"))
        fsync_dir(path.parent)
    backends = Backends(config.data_path, config.io_options)
    ios = set(report.damaged.values())
    store = StateStore(config.state_path)
    try:
        gone = []
        for mat in store.all_materializations():
            if mat.io in ios and mat.id is not None:
                try:
                    missing = backends.get(mat.io).check(mat.asset, mat.location, mat.data_hash, "").status != "ok"
                except Exception:  # noqa: BLE001 - still unreadable: forget it all the same
                    missing = True
                if missing:
                    gone.append(mat.id)
        with store.transaction("forgetting the versions of a damaged file") as db:
            store.drop_pointers_to(db, gone)
            store.delete_materializations(db, gone)
            db.execute("DELETE FROM meta WHERE key = ?", (SNAPSHOT_KEY,))
    finally:
        store.close()


def _repair_records(config: ProjectConfig, report: DoctorReport) -> None:
    bad_assets = {f.asset for f in report.findings if f.kind in ("data_missing", "data_modified", "record_corrupt")}
    store = StateStore(config.state_path)
    try:
        with store.transaction() as db:
            db.execute("UPDATE runs SET status = 'failed', finished_at = ?, summary = ? WHERE status = 'running'",
                       (time.time(), json.dumps(ABANDONED_SUMMARY)))
            if any(f.kind == "bad_snapshot" for f in report.findings):
                db.execute("DELETE FROM meta WHERE key = ?", (SNAPSHOT_KEY,))
            for asset in bad_assets:
                # Forget the version entirely: the pointer (so it reads missing) and the record (so no
                # restore can bring it back on the strength of an unchanged stat token).
                ids = [r[0] for r in db.execute("SELECT materialization FROM pointers WHERE asset = ?", (asset,))]
                db.execute("DELETE FROM pointers WHERE asset = ?", (asset,))
                db.executemany("DELETE FROM materializations WHERE id = ?", [(i,) for i in ids])
            if bad_assets:
                db.execute("DELETE FROM meta WHERE key = ?", (SNAPSHOT_KEY,))
    finally:
        store.close()


def _rebuild(config: ProjectConfig, report: DoctorReport) -> None:
    """Salvage what can be read and verified into a new store; move the corrupt one aside."""
    path = config.state_path / STATE_FILE
    workdir = Path(tempfile.mkdtemp(prefix=".doctor-", dir=config.state_path))
    try:
        fresh = StateStore(workdir)
        try:
            report.salvaged = _salvage_into(config, path, fresh)
        finally:
            fresh.close()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = path.with_name(f"{STATE_FILE}.corrupt-{stamp}")
        # The old WAL must never meet the new file: move it (and the old file) aside first.
        for suffix in ("-wal", "-shm", ""):
            old = Path(str(path) + suffix)
            if old.exists():
                if suffix == "-shm":
                    old.unlink()
                else:
                    os.replace(old, Path(str(aside) + suffix))
        os.replace(workdir / STATE_FILE, path)
        fsync_dir(config.state_path)
        report.moved_to = str(aside)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _salvage_into(config: ProjectConfig, path: Path, fresh: StateStore) -> dict[str, int]:
    kept = dict.fromkeys(_SALVAGED, 0)
    if not path.exists():
        return kept
    try:
        old = sqlite3.connect(path, timeout=60.0, factory=Connection)
    except sqlite3.DatabaseError:
        return kept
    old.text_factory = lambda raw: raw.decode("utf-8", "replace")
    backends = Backends(config.data_path, config.io_options)
    try:
        mats: dict[int, Materialization] = {}
        for row in _rows(old, "materializations"):
            try:
                mat = row_to_materialization(row)
            except StateError:
                continue
            if mat.id is None:
                continue
            problem, token = _check(config, mat, backends)
            if problem is None:
                mats[mat.id] = dataclasses.replace(mat, token=token)
        with fresh.transaction() as db:
            for mat in mats.values():
                db.execute(
                    f"INSERT INTO materializations ({_SALVAGED['materializations']}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (mat.id, mat.asset, mat.run_id, mat.recipe_key, mat.data_hash, mat.code_fingerprint, mat.config,
                     json.dumps(mat.upstream, sort_keys=True), json.dumps(list(mat.deps)), mat.io, mat.location,
                     mat.token, mat.rows, json.dumps(mat.schema), mat.bytes,
                     json.dumps(mat.libraries, sort_keys=True), mat.started_at, mat.finished_at, mat.partition),
                )
            kept["materializations"] = len(mats)
            for env, asset, partition, mat_id in _rows(old, "pointers"):
                if (isinstance(mat_id, int) and mat_id in mats and mats[mat_id].asset == asset
                        and mats[mat_id].partition == partition and isinstance(env, str)):
                    db.execute("INSERT OR IGNORE INTO environments (name, base, created_at) VALUES (?, NULL, ?)",
                               (env, time.time()))
                    fresh.point(db, asset, mat_id, partition, env)
                    kept["pointers"] += 1
            for run_id, started, finished, status, pid, host, command, summary, env, trigger in _rows(old, "runs"):
                if not isinstance(run_id, str) or not isinstance(started, int | float):
                    continue
                if status == "running":
                    status, finished, summary = "failed", time.time(), json.dumps(ABANDONED_SUMMARY)
                try:
                    json.loads(summary) if summary else None
                except ValueError:
                    summary = None
                db.execute("INSERT OR IGNORE INTO runs (run_id, started_at, finished_at, status, pid, host, command, "
                           "summary, env, trigger) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (run_id, started, finished, str(status), pid, host, command, summary,
                            env if isinstance(env, str) else "prod", trigger if isinstance(trigger, str) else None))
                kept["runs"] += 1
            for event in _rows(old, "events"):
                if all(isinstance(v, str) for v in event[1:4]) and isinstance(event[4], int | float):
                    db.execute("INSERT OR IGNORE INTO events (id, run_id, asset, outcome, at, duration, detail, "
                               "partition) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", event)
                    kept["events"] += 1
            for fingerprint, sources in _rows(old, "code_sources"):
                try:
                    parsed = json.loads(sources)
                except (TypeError, ValueError):
                    continue
                if isinstance(fingerprint, str) and isinstance(parsed, dict) and all(
                        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()):
                    fresh.save_code_sources(db, fingerprint, parsed)
                    kept["code_sources"] += 1
    finally:
        old.close()
    return kept


# Columns a store made before migration 3 lacks, read as the value the migration gives them.
_ADDED_LATER = {"partition": "''", "env": "'prod'", "trigger": "NULL"}


def _columns_of(db: sqlite3.Connection, table: str) -> set[str]:
    try:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}  # noqa: S608 - fixed names
    except sqlite3.DatabaseError:
        return set()


def _readable(db: sqlite3.Connection, table: str) -> tuple[str, str] | None:
    """(table, columns) that answer ``_SALVAGED[table]`` in this store, which may be of an older schema.

    A corrupt store made before migration 3 is rebuilt as the latest schema: its runs lack
    ``env``, its versions ``partition``, and its pointers are the one-per-asset ``current`` table.
    """
    present = _columns_of(db, table)
    if table == "pointers" and not present and _columns_of(db, "current"):
        return "current", "'prod' AS env, asset, '' AS partition, materialization"
    if not present:
        return None
    wanted = _SALVAGED[table].split(", ")
    return table, ", ".join(c if c in present else f"{_ADDED_LATER.get(c, 'NULL')} AS {c}" for c in wanted)


def _rows(db: sqlite3.Connection, table: str) -> Iterator[tuple[Any, ...]]:
    """Every readable row of ``table`` in rowid order, stepping over unreadable pages and rows."""
    found = _readable(db, table)
    if found is None:
        return
    table, columns = found
    try:
        top = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]  # noqa: S608 - fixed names
    except sqlite3.DatabaseError:
        top = None
    after, step = -(2**63), 1
    while True:
        try:
            cursor = db.execute(f"SELECT rowid, {columns} FROM {table} WHERE rowid > ? ORDER BY rowid",  # noqa: S608
                                (after,))
            for row in cursor:
                after, step = row[0], 1
                yield tuple(row[1:])
            return
        except sqlite3.DatabaseError:
            if after == -(2**63):
                after = 0
            after += step
            step *= 2
            if (top is not None and after > top) or step > 2**24:
                return
