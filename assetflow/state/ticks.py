"""Ticks and cursors: the daemon's memory, so that every due tick runs exactly once.

A tick is (origin, tick_at): ``schedule:NAME`` / ``sensor:NAME`` / ``condition:ASSET`` and the
instant it fell due, in UTC seconds (never the cron text, so editing a cron never replays a tick).
It is *claimed* by inserting it, in a transaction, before its run starts: the primary key makes a
second claim impossible, whatever crashes or second daemons. Its life::

    claimed -> started (run_id set) -> succeeded | failed
            -> skipped (nothing to do, with the reason)

A tick left ``claimed`` or ``started`` by a killed daemon is finished by the next one (see
``automation.daemon``). A cursor is a sensor's own cursor, a schedule's last evaluated instant,
or a condition's memory (JSON), updated in the same transaction as the claims it explains.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable

from assetflow.state.store import ABANDONED_SUMMARY, StateStore

UNFINISHED = ("claimed", "started")


@dataclasses.dataclass(frozen=True)
class Tick:
    origin: str
    tick_at: float
    status: str
    reason: str | None
    run_id: str | None
    definition: dict[str, object]
    claimed_at: float
    finished_at: float | None

    @property
    def kind(self) -> str:
        return self.origin.split(":", 1)[0]

    @property
    def name(self) -> str:
        return self.origin.split(":", 1)[1]

    def to_json(self) -> dict[str, object]:
        return {"origin": self.origin, "kind": self.kind, "name": self.name, "tick_at": self.tick_at,
                "status": self.status, "reason": self.reason, "run_id": self.run_id,
                "definition": self.definition, "claimed_at": self.claimed_at, "finished_at": self.finished_at}


_COLUMNS = "origin, tick_at, status, reason, run_id, definition, claimed_at, finished_at"


def _tick(row: tuple) -> Tick:
    origin, tick_at, status, reason, run_id, definition, claimed_at, finished_at = row
    try:
        parsed = json.loads(definition) if definition else {}
    except ValueError:
        parsed = {"text": definition}
    return Tick(origin, tick_at, status, reason, run_id, parsed if isinstance(parsed, dict) else {},
                claimed_at, finished_at)


class TickStore:
    """Tick and cursor reads and writes over a ``StateStore`` (its connection and transactions)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    @property
    def _db(self) -> sqlite3.Connection:
        return self.store._db  # noqa: SLF001 - the same layer: all SQL lives in state/

    # -- claiming ---------------------------------------------------------------------------

    @staticmethod
    def claim(db: sqlite3.Connection, origin: str, tick_at: float, now: float, definition: dict[str, object],
              status: str = "claimed", reason: str | None = None) -> bool:
        """Insert a tick inside the caller's transaction; False when it was claimed before (never twice)."""
        finished = None if status in UNFINISHED else now
        cursor = db.execute(
            f"INSERT INTO ticks ({_COLUMNS}) VALUES (?, ?, ?, ?, NULL, ?, ?, ?) "
            "ON CONFLICT (origin, tick_at) DO NOTHING",
            (origin, tick_at, status, reason, json.dumps(definition, sort_keys=True), now, finished),
        )
        return cursor.rowcount == 1

    def start(self, origin: str, tick_at: float, run_id: str, reason: str | None = None) -> None:
        """Record the run a claimed tick is about to start (before the run's first write)."""
        with self.store.transaction("starting a tick's run") as db:
            db.execute("UPDATE ticks SET status = 'started', run_id = ?, reason = coalesce(?, reason) "
                       "WHERE origin = ? AND tick_at = ?", (run_id, reason, origin, tick_at))

    def start_many(self, ticks: Iterable[tuple[str, float]], run_id: str, resumes: Iterable[str] = ()) -> None:
        """Record the run ticks are about to start, with the earlier runs it resumes.

        The chain of resumed runs is kept on the tick itself (``definition.resumes``), not only in the
        new run's trigger: a daemon killed after this write but before its run began leaves a run id
        the runs table never heard of, and the next start must still know which runs settled what.
        """
        chain = json.dumps(list(resumes))
        with self.store.transaction("starting a tick's run") as db:
            db.executemany("UPDATE ticks SET status = 'started', run_id = ?, "
                           "definition = json_set(definition, '$.resumes', json(?)) WHERE origin = ? AND tick_at = ?",
                           [(run_id, chain, o, t) for o, t in ticks])

    def finish(self, origin: str, tick_at: float, status: str, reason: str | None, now: float) -> None:
        with self.store.transaction("finishing a tick") as db:
            db.execute("UPDATE ticks SET status = ?, reason = ?, finished_at = ? WHERE origin = ? AND tick_at = ?",
                       (status, reason, now, origin, tick_at))

    def requeue(self, origin: str, tick_at: float, reason: str) -> None:
        """Put a started tick back in the queue (its run was interrupted; the next start resumes it), keeping the
        reason it was claimed for after ``reason`` (``claimed_for`` reads it back when it finishes)."""
        with self.store.transaction("requeueing a tick") as db:
            row = db.execute("SELECT reason FROM ticks WHERE origin = ? AND tick_at = ?", (origin, tick_at)).fetchone()
            first = claimed_for(row[0] if row else None)
            db.execute("UPDATE ticks SET status = 'claimed', reason = ? WHERE origin = ? AND tick_at = ?",
                       (f"{reason}{CLAIMED_FOR}{first}" if first else reason, origin, tick_at))

    # -- reading ----------------------------------------------------------------------------

    def unfinished(self) -> list[Tick]:
        """Claimed or started ticks, oldest first: the run queue, and what a killed daemon left."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM ticks WHERE status IN ('claimed', 'started') "
                                "ORDER BY claimed_at, tick_at, origin")
        return [_tick(r) for r in rows]

    def ticks(self, origins: Iterable[str] | None = None, limit: int = 100) -> list[Tick]:
        """Ticks, newest first, of every origin or of some."""
        if origins is None:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM ticks ORDER BY tick_at DESC, origin LIMIT ?", (limit,))
        else:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM ticks WHERE origin IN (SELECT value FROM json_each(?)) "
                "ORDER BY tick_at DESC, origin LIMIT ?", (json.dumps(list(origins)), limit))
        return [_tick(r) for r in rows]

    def last_ticks(self) -> dict[str, Tick]:
        """Each origin's newest tick."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM ticks t WHERE tick_at = (SELECT max(tick_at) FROM ticks WHERE origin = t.origin)")
        return {r[0]: _tick(r) for r in rows}

    def of_run(self, run_id: str) -> list[Tick]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM ticks WHERE run_id = ?", (run_id,))
        return [_tick(r) for r in rows]

    def run_state(self, run_id: str) -> tuple[str, dict[str, int] | None] | None:
        """(status, summary) of a run, or None when it never began.

        A run its process never finished (SIGKILL) reads ``running`` until the next run's start marks
        it ``failed`` with the summary ``{"abandoned": 1}``; both mean "interrupted", not "failed", and
        so does ``running`` once the run is known dead (``StateStore.dead_runs``).
        """
        row = self._db.execute("SELECT status, summary FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        summary = json.loads(row[1]) if row[1] else None
        abandoned = summary == ABANDONED_SUMMARY if row[0] == "failed" else bool(
            row[0] == "running" and self.store.dead_runs([run_id]))
        if abandoned:
            return "interrupted", dict(ABANDONED_SUMMARY)
        return row[0], summary

    def run_resumes(self, run_id: str) -> list[str]:
        """The earlier runs a run resumed (from its trigger), oldest first."""
        row = self._db.execute("SELECT trigger FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        try:
            trigger = json.loads(row[0]) if row and row[0] else {}
        except ValueError:
            return []
        resumes = trigger.get("resumes", []) if isinstance(trigger, dict) else []
        return [r for r in resumes if isinstance(r, str)]

    def settled_assets(self, run_ids: Iterable[str]) -> set[str]:
        """Assets these runs recorded an outcome for that stands (ran, restored, fresh, cutoff)."""
        rows = self._db.execute(
            "SELECT DISTINCT asset FROM events WHERE run_id IN (SELECT value FROM json_each(?)) "
            "AND outcome IN ('ran', 'restored', 'fresh', 'cutoff')", (json.dumps(list(run_ids)),))
        return {r[0] for r in rows}

    def watermark(self) -> tuple[int, int]:
        """(newest materialization id, newest event id): changes whenever a pointer may have moved."""
        row = self._db.execute("SELECT (SELECT max(id) FROM materializations), (SELECT max(id) FROM events)").fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    # -- cursors ----------------------------------------------------------------------------

    def cursors(self, prefix: str = "") -> dict[str, str | None]:
        rows = self._db.execute("SELECT origin, cursor FROM cursors WHERE substr(origin, 1, ?) = ?",
                                (len(prefix), prefix))
        return dict(rows)

    @staticmethod
    def set_cursor(db: sqlite3.Connection, origin: str, cursor: str | None, now: float) -> None:
        db.execute("INSERT INTO cursors (origin, cursor, updated_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (origin) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
                   (origin, cursor, now))

    def set_cursors(self, cursors: dict[str, str | None], now: float) -> None:
        if not cursors:
            return
        with self.store.transaction("saving cursors") as db:
            for origin, cursor in cursors.items():
                self.set_cursor(db, origin, cursor, now)


CLAIMED_FOR = " | claimed for: "  # after a requeued tick's note, the reason it was claimed for


def claimed_for(reason: str | None) -> str | None:
    """The reason a tick was claimed for, through any notes requeueing it added ("queued: ...", "interrupted: ...")."""
    if not reason:
        return None
    if reason.startswith(("queued:", "interrupted:")):
        return reason.split(CLAIMED_FOR, 1)[1] if CLAIMED_FOR in reason else None
    return reason
