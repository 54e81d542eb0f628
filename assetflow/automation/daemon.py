"""The daemon: evaluate schedules, sensors and conditions each tick; claim what is due; run it once.

One evaluation (``Daemon.tick``), in order:

1. notice edited project code (stat of its files) and reload the project; notice changed source
   files (stat) so that conditions see their new data hashes without a user-written sensor;
2. claim what is due, each claim in a transaction *before* its run starts: schedule ticks (by
   instant, per catch-up policy, the schedule's cursor advanced in the same transaction), sensor
   evaluations (their cursor with them), conditions that fire (their memory with them);
3. work through the queue (every ``claimed`` or ``started`` tick, oldest first, including those a
   killed daemon left): a tick whose run already finished is closed from the run's outcome; any
   other runs now, through ``api.materialize``, with the tick recorded as the run's trigger. A run
   interrupted before it finished is resumed by a new run (forced runs skip the assets the earlier
   run already settled), never started twice for one tick.

Runs are sequential: the queue is the ``ticks`` table, worked through one run at a time, because
the project's run lock admits one run at a time and a run's crash recovery relies on it
(docs/automation.md, "The run queue", says what disjoint runs in parallel would need). Per-tick work when nothing is due is stat
calls and one indexed query; staleness is assessed only for what is due. The clock is injected
(``clock``): tests and the soak step time without sleeping.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from assetflow.conditions import Verdict
from assetflow.automation.definitions import ScheduleSpec, SensorSpec, collect, recording_automation
from assetflow.automation.evaluate import (
    ConditionMemory,
    SensorOutcome,
    call_sensor,
    facts_for,
    schedule_due,
    sensor_definition,
    should_fire,
    signature,
)
from assetflow.cron import local_time, parse_cron
from assetflow.declare import AssetSpec, SourceSpec
from assetflow.errors import AssetflowError, ExitCode
from assetflow.hashing import stat_token
from assetflow.partitions.units import is_partitioned
from assetflow.project import FIX_AND_RUN_AGAIN, python_files
from assetflow.state.ticks import Tick, TickStore, claimed_for
from assetflow.workspace import Workspace

if TYPE_CHECKING:
    from assetflow.execute.pool import ProcessExecutor
    from assetflow.state.store import StateStore
    from assetflow.execute.results import RunResult

log = logging.getLogger("assetflow.daemon")
RETRY_IMPORT = 60.0  # seconds between imports of a project that failed to import when none of its files changed
RETRIED = "Fix the error above: the daemon imports the project again as soon as one of its files changes."
CONDITION_RECHECK = 60.0  # seconds between evaluations of time-based conditions when nothing else changed
KEEP_WORKERS = 300.0  # seconds the worker pool is kept after a run, for the next (``Daemon._executor_for_run``)
# The instant a daemon last evaluated, kept (at most once a minute) so that a schedule restored after a while knows
# the daemon ran meanwhile without it (``_plan_due``): its ticks then were not missed, it did not exist.
HEARTBEAT = "daemon:evaluated"
HEARTBEAT_EVERY = 60.0
# Evaluations failing (a project edit that does not import): the HEALTH cursor holds {"since", "error"} while they do,
# for the listings and the page; each distinct error is also a failed tick of FAILED_EVALUATION, closed when it ends.
HEALTH = "daemon:health"
FAILED_EVALUATION = "daemon:evaluation"


@dataclasses.dataclass
class TickReport:
    """What one evaluation did (for logs, ``--once`` and tests)."""

    at: float
    claimed: list[str] = dataclasses.field(default_factory=list)  # "origin@tick_at"
    runs: list[str] = dataclasses.field(default_factory=list)
    reloaded: bool = False
    conditions_evaluated: bool = False
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class ConditionEvaluation:
    """One automated asset's condition at one instant: its verdict, and whether the daemon acts on it."""

    name: str
    condition: str
    verdict: Verdict
    fire: bool
    reason: str
    memory: ConditionMemory
    state: str
    first_seen: bool
    partition: str | None = None  # the latest partition, for a partitioned asset

    def to_json(self) -> dict[str, object]:
        return {"asset": self.name, "condition": self.condition, "holds": self.verdict.holds, "fires": self.fire,
                "reason": self.reason, "partition": self.partition, "verdict": self.verdict.to_json()}


class Daemon:
    """Automation for one project. ``open()``, then ``tick()`` repeatedly (``serve`` loops), ``close()``."""

    def __init__(self, project_dir: Path | str | None = None, modules: Iterable[str] = (), files: Iterable[str] = (),
                 *, clock: Callable[[], float] = time.time, interval: float = 5.0, executor: str | None = None,
                 jobs: int | None = None, lateness: float | None = None, keep_workers: float | None = None) -> None:
        self.project = (Path(project_dir) if project_dir else None, tuple(modules), tuple(files))
        self.clock = clock
        self.interval = interval
        self.executor = executor
        self.jobs = jobs
        self.keep_workers = KEEP_WORKERS if keep_workers is None else keep_workers
        self._pool: ProcessExecutor | None = None  # kept between runs while they come (``_executor_for_run``)
        self._pool_used_at = 0.0
        self.lateness = lateness if lateness is not None else max(60.0, 3 * interval)
        self.running = False  # a run is in progress (SIGTERM then interrupts it cleanly)
        self.verdicts: dict[str, tuple[object, bool, str]] = {}  # asset -> (verdict, fired, reason)
        self.ws: Workspace | None = None
        self._hung: dict[str, threading.Thread] = {}
        self._hung_since: dict[str, float] = {}  # when each hung call began
        self._schedule_cursor: dict[str, float] = {}
        self._due: list[tuple[float, str, str]] = []  # heap of (instant, kind, name)
        self._code_tokens: dict[str, str | None] = {}
        self._source_tokens: dict[str, tuple[tuple[str, str], ...]] = {}
        self._watermark: tuple[int, int] | None = None
        self._conditions_at = float("-inf")
        self._next_condition_cron = float("inf")
        self._generation = 0
        self._heartbeat = float("-inf")  # when this daemon last wrote HEARTBEAT
        self._alive_since: float | None = None  # this daemon's first evaluation: ticks due since were not missed
        self._next_key_at = float("inf")  # when a time partition definition gains its next key
        self._dynamic_keys: dict[str, list[str]] = {}  # the dynamic keys the workspace's key listing holds
        self._failing: str | None = None  # the error evaluations fail with now (``evaluation_failed``)
        self._health_read = False  # whether a failure an earlier daemon left recorded was looked for
        self._own_store: StateStore | None = None  # to record a failure when the project never loaded
        self._broken: tuple[AssetflowError, dict[str, str | None], float] | None = None  # a failed import: its error,
        # the project's files as they were before it, and when it was tried (``_import_due``)

    # -- loading ----------------------------------------------------------------------------

    def open(self, readonly: bool = False) -> Daemon:
        """Load the project; ``readonly`` (listings, ``why``) records nothing, not even first sightings."""
        self.readonly = readonly
        self._reload(self.clock())
        return self

    def close(self) -> None:
        self._stop_workers()
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self._own_store is not None:
            self._own_store.close()
            self._own_store = None

    @property
    def ticks(self) -> TickStore:
        assert self.ws is not None
        return TickStore(self.ws.store)

    def _load(self) -> None:
        project_dir, modules, files = self.project
        with recording_automation() as declared:
            ws = Workspace.load(project_dir, modules, files)
        try:
            schedules, sensors = collect(declared)
            _check_selections(ws, [*schedules.values(), *sensors.values()])
        except AssetflowError:
            ws.close()
            raise
        self.schedules, self.sensors = schedules, sensors
        if self.ws is not None:
            self.ws.close()
        self._stop_workers()  # they imported the code just replaced
        self.ws = ws
        self._generation += 1
        self.automated = {n: s for n, s in ws.graph.specs.items()
                          if isinstance(s, AssetSpec) and s.automation is not None}
        self._code_tokens = self._stat_code()
        self._source_tokens = {}
        self._watermark = None
        self._plan_due(self.clock())

    def _reload(self, now: float) -> None:
        """Load the project again, after an edit or while it does not import. A failed import is not tried again
        before a project file changes (or ``RETRY_IMPORT`` passed: a package installed meanwhile): its error is
        raised again instead, so each evaluation fails as the last one did without importing the project anew."""
        if self._broken is not None:
            error, tokens, tried = self._broken
            if now - tried < RETRY_IMPORT and self._project_files() == tokens:
                raise error
        elif self.ws is not None:
            log.info("project code changed: reloading the project")
        tokens = self._project_files()  # before the import: an edit landing during it still reads as a change
        try:
            self._load()
        except AssetflowError as exc:
            self._broken = (exc, tokens, now)
            raise
        self._broken = None

    def _project_files(self) -> dict[str, str | None]:
        """The stat tokens of every Python file of the project and of its configuration: what a failed import may have
        read, since which modules it reached is not known."""
        from assetflow.project import load_config

        project_dir, modules, files = self.project
        try:
            config = self.ws.config if self.ws is not None else load_config(project_dir, modules, files)
        except AssetflowError:  # its pyproject.toml is what fails: watch the folder the daemon was started in
            root = project_dir or Path.cwd()
            return self._stat_code([*_modules(root), str(root / "pyproject.toml")])
        watched = [*_modules(config.root), *([config.pyproject] if config.pyproject else []),
                   *(config.root / f for f in config.files)]
        return self._stat_code([str(p) for p in watched])

    def _stat_code(self, files: Iterable[str] | None = None) -> dict[str, str | None]:
        """The stat tokens of ``files`` now; without ``files``, of the loaded code as it was read.

        A module's token is the one taken before its bytes were read (``Workspace.code_tokens``),
        so an edit landing between the import and this call still reads as a change and reloads.
        """
        tokens: dict[str, str | None] = {}
        if files is None:
            assert self.ws is not None
            tokens.update(self.ws.code_tokens())
        paths = list(files) if files is not None else (
            [str(self.ws.config.pyproject)] if self.ws.config.pyproject else [])
        for path in paths:
            try:
                tokens[path] = stat_token(path)
            except OSError:
                tokens[path] = None
        return tokens

    def code_stamp(self) -> str:
        """The project's code as its files' stat tokens: stable across restarts, new after any edit."""
        import hashlib
        import json

        return hashlib.sha256(json.dumps(sorted(self._code_tokens.items(), key=str)).encode()).hexdigest()[:16]

    @classmethod
    def for_workspace(cls, ws: Workspace, clock: Callable[[], float] = time.time,
                      declared: Iterable[object] = ()) -> Daemon:
        """A read-only daemon over an already loaded project (``why``, the page): conditions, and the
        schedules and sensors ``declared`` while it was imported (``recording_automation``)."""
        daemon = cls(clock=clock)
        daemon.ws, daemon.readonly = ws, True
        daemon.schedules, daemon.sensors = collect(list(declared))  # type: ignore[arg-type]
        _check_selections(ws, [*daemon.schedules.values(), *daemon.sensors.values()])
        daemon.automated = {n: s for n, s in ws.graph.specs.items()
                            if isinstance(s, AssetSpec) and s.automation is not None}
        daemon._code_tokens = daemon._stat_code()
        return daemon

    def _plan_due(self, now: float) -> None:
        """Each schedule's and sensor's next due instant (a heap: a tick looks only at what is due)."""
        ticks = self.ticks
        cursors = ticks.cursors("schedule:")
        # A schedule's cursor is the last instant it was claimed at; the newest of them, or the daemon's heartbeat,
        # the last instant a daemon evaluated. A cursor older than that belongs to a schedule no daemon evaluated meanwhile although one
        # ran: it was not declared (removed to pause it, then restored). Its ticks then were never due, so it counts
        # from there; only ticks after it, when no daemon ran, follow its catch-up policy.
        evaluated = max((float(text) for text in (*cursors.values(), ticks.cursors(HEARTBEAT).get(HEARTBEAT)) if text),
                        default=None)
        fresh = {}
        self._due = []
        for name, spec in self.schedules.items():
            text = cursors.get(spec.origin)
            since = max(float(text), evaluated or 0.0) if text else now
            if not text:
                fresh[spec.origin] = repr(now)  # first seen: no tick before this instant is replayed
            self._schedule_cursor[name] = since
            self._due.append((parse_cron(spec.cron, spec.timezone).next(since), "schedule", name))
        if not getattr(self, "readonly", False):
            ticks.set_cursors(fresh, now)
        last = ticks.last_ticks()
        for name, spec in self.sensors.items():
            previous = last.get(spec.origin)
            self._due.append(((previous.tick_at + spec.interval) if previous else now, "sensor", name))
        heapq.heapify(self._due)

    # -- one evaluation ---------------------------------------------------------------------

    def tick(self) -> TickReport:
        """Evaluate once at ``clock()``: claim what is due, then run the queue."""
        started = time.perf_counter()
        now = self.clock()
        if self._alive_since is None:
            self._alive_since = now
        report = TickReport(now)
        if self.ws is None or self._code_changed():  # None: it did not load when the daemon started
            self._reload(now)
            report.reloaded = True
        self._list_partition_keys(now)
        sources_changed = self._sources_changed()
        while self._due and self._due[0][0] <= now:
            _, kind, name = heapq.heappop(self._due)
            if kind == "schedule" and name in self.schedules:
                self._claim_schedule(self.schedules[name], now, report)
            elif kind == "sensor" and name in self.sensors:
                self._claim_sensor(self.sensors[name], now, report)
        if self.automated and self._conditions_due(now, sources_changed, report.reloaded):
            self._claim_conditions(now, report)
            report.conditions_evaluated = True
        self._work_queue(report)
        if now - self._heartbeat >= HEARTBEAT_EVERY and not getattr(self, "readonly", False):
            self.ticks.set_cursors({HEARTBEAT: repr(now)}, now)
            self._heartbeat = now
        if self._pool is not None and not report.runs and now - self._pool_used_at >= self.keep_workers:
            self._stop_workers()  # no run for a while: give their memory back (checked after the queue, so
            # a schedule whose period is keep_workers finds them still there)
        report.seconds = time.perf_counter() - started
        return report

    def _list_partition_keys(self, now: float) -> None:
        """List partition keys as of ``now`` whenever they may have changed since the last listing.

        A workspace lists its keys once (a run's instant); the daemon's lives for days, so without this a day
        passing would add no daily key, and keys added by ``assetflow partitions add`` (another process) would
        not be seen. Listed again when a time definition's next key is due or the dynamic keys stored changed,
        at the daemon's clock, so conditions, schedules and the runs they start agree on the keys.
        """
        ws = self.ws
        assert ws is not None
        if not is_partitioned(ws.graph):
            return
        from assetflow.partitions.keys import dynamic_names
        from assetflow.partitions.run import next_key_instant
        from assetflow.state.partitions import dynamic_keys

        dynamic = {name: dynamic_keys(ws.store, name) for name in sorted(dynamic_names(ws))}
        if ws.now is not None and now < self._next_key_at and dynamic == self._dynamic_keys:
            return
        ws.now = now
        ws.forget_partition_keys()
        self._dynamic_keys = dynamic
        self._next_key_at = next_key_instant(ws) or float("inf")

    def _code_changed(self) -> bool:
        return self._stat_code(self._code_tokens) != self._code_tokens

    def _sources_changed(self) -> bool:
        """Stat every source's files; forget the observation of those that moved (rehashed when read)."""
        from assetflow.fingerprint.source import source_files

        assert self.ws is not None
        changed = False
        for spec in self.ws.graph.sources():
            assert spec.name is not None
            try:
                tokens = tuple((str(p), stat_token(p)) for p in source_files(spec, self.ws.root))
            except OSError:
                tokens = ()
            if self._source_tokens.get(spec.name) != tokens:
                if spec.name in self._source_tokens:
                    log.info("source %s changed on disk", spec.name)
                    changed = True
                self._source_tokens[spec.name] = tokens
                self.ws.forget_source(spec.name)
        return changed

    # -- schedules --------------------------------------------------------------------------

    def _claim_schedule(self, spec: ScheduleSpec, now: float, report: TickReport) -> None:
        since = self._schedule_cursor.get(spec.name, now)
        due = schedule_due(spec, since, now, self.lateness, self._alive_since)
        cron = parse_cron(spec.cron, spec.timezone)
        definition = spec.definition()
        with self.ws.store.transaction(f"claiming ticks of schedule {spec.name!r}") as db:  # type: ignore[union-attr]
            for tick_at, why in due.skipped:  # every due tick is recorded: those let go say why
                TickStore.claim(db, spec.origin, tick_at, now, definition, status="skipped", reason=why)
            for tick_at in due.ticks:
                if TickStore.claim(db, spec.origin, tick_at, now, definition, reason=due.reason_for(tick_at)):
                    report.claimed.append(f"{spec.origin}@{tick_at:.0f}")
            TickStore.set_cursor(db, spec.origin, repr(now), now)
        self._schedule_cursor[spec.name] = now
        heapq.heappush(self._due, (cron.next(now), "schedule", spec.name))

    # -- sensors ----------------------------------------------------------------------------

    def _claim_sensor(self, spec: SensorSpec, now: float, report: TickReport) -> None:
        heapq.heappush(self._due, (now + spec.interval, "sensor", spec.name))
        hung = self._hung.get(spec.name)
        if hung is not None and hung.is_alive():  # its last call still runs: this evaluation is skipped, visibly
            since = self._hung_since.get(spec.name, now)
            outcome = SensorOutcome("skipped", f"not called: its call of {local_time(since)} still runs, past its "
                                               f"{spec.timeout:g}s timeout (called again once that call returns)")
        else:
            self._hung.pop(spec.name, None)
            outcome = call_sensor(spec, self.ticks.cursors(spec.origin).get(spec.origin), now)
        if outcome.hung is not None:
            self._hung[spec.name] = outcome.hung
            self._hung_since[spec.name] = now
        if outcome.status == "failed":
            log.warning("sensor %s failed: %s", spec.name, outcome.reason)
        definition = sensor_definition(spec, outcome.requests) if outcome.requests else {"select": list(spec.select)}
        status = "claimed" if outcome.status == "requested" else outcome.status
        with self.ws.store.transaction(f"recording sensor {spec.name!r}") as db:  # type: ignore[union-attr]
            if TickStore.claim(db, spec.origin, now, now, definition, status=status, reason=outcome.reason):
                if status == "claimed":
                    report.claimed.append(f"{spec.origin}@{now:.0f}")
            if outcome.cursor_changed:
                TickStore.set_cursor(db, spec.origin, outcome.cursor, now)

    # -- conditions -------------------------------------------------------------------------

    def _conditions_due(self, now: float, sources_changed: bool, reloaded: bool) -> bool:
        watermark = self.ticks.watermark()
        changed = watermark != self._watermark
        self._watermark = watermark
        return (changed or sources_changed or reloaded or now >= self._next_condition_cron
                or now - self._conditions_at >= CONDITION_RECHECK)

    def evaluate_conditions(self, now: float) -> list[ConditionEvaluation]:
        """Every automated asset's verdict at ``now`` and whether it would fire (nothing is written)."""
        from assetflow.inspect.status import overdue

        ws = self.ws
        assert ws is not None
        self._list_partition_keys(now)
        current = ws.store.current_of({n for s in self.automated.values() for n in (s.name, *s.upstreams)})
        units = ws.current_units() if is_partitioned(ws.graph) else None
        source_hashes: dict[str, str] = {}
        if units is None:
            for name in sorted({u for s in self.automated.values() for u in s.upstreams
                                if isinstance(ws.graph.specs.get(u), SourceSpec)}):
                try:
                    source_hashes[name] = ws.observe_sources([name])[name].data_hash
                except AssetflowError:
                    continue  # no file: nothing to compare; status reports it
        memories = self.ticks.cursors("condition:")
        found = []
        for name, spec in self.automated.items():
            origin = f"condition:{name}"
            memory = ConditionMemory.parse(memories.get(origin), now)
            latest = self._latest_key(spec)
            if latest is None and spec.partitions is not None:  # its definition has no key yet
                waits = Verdict(False, "no partition key yet: its definition starts later")
                found.append(ConditionEvaluation(name, spec.automation.describe(), waits, False, waits.reason, memory,
                                                 memory.fired or "", origin not in memories, None))
                continue
            view = current if latest is None else self._partition_view(spec, latest, current)
            mat = view.get(name)
            if units is None:
                reads: dict[str, str | None] = {up: source_hashes[up] if up in source_hashes
                                                else getattr(view.get(up), "data_hash", None) for up in spec.upstreams}
            else:  # what the (latest) partition reads, combined over the upstream partitions its mapping names, as a
                # run records it: a partitioned source's key file, a window's partitions (``unit_upstream``)
                from assetflow.partitions.run import unit_upstream

                reads = dict(unit_upstream(ws, spec, latest or "", {}, units)[0])
            observed = [up for up in spec.upstreams if isinstance(ws.graph.specs.get(up), SourceSpec) and reads.get(up)]
            facts = facts_for(name, spec, now, view, reads, observed,
                              overdue(spec.freshness, mat.finished_at if mat else None, now)[1], memory)
            verdict = spec.automation.evaluate(facts)
            state = signature(facts, self.code_stamp() + (f"|{latest}" if latest else ""))
            fire, reason = should_fire(verdict, memory, state)
            found.append(ConditionEvaluation(name, spec.automation.describe(), verdict, fire, reason, memory, state,
                                             origin not in memories, latest))
        return found

    def _latest_key(self, spec: AssetSpec) -> str | None:
        """A partitioned asset's latest key, the one a run of ``--partition latest`` builds (the last with data, else
        the last there is): conditions look at that partition. None when unpartitioned."""
        if getattr(spec, "partitions", None) is None:
            return None
        plan = self.ws.partition_plan  # type: ignore[union-attr]
        keys = plan.keys.get(spec.name, ())
        return plan.latest(spec.name) or (keys[-1] if keys else None)

    def _partition_view(self, spec: AssetSpec, key: str, current: dict) -> dict:
        """Current versions as the latest partition sees them: its own, and its partitioned upstreams' same key."""
        store = self.ws.store  # type: ignore[union-attr]
        view = dict(current)
        view.pop(spec.name, None)
        for name in (spec.name, *spec.upstreams):
            mat = store.current_partitions(asset=name).get((name, key))
            if mat is not None:
                view[name] = mat
        return view

    def _claim_conditions(self, now: float, report: TickReport) -> None:
        ws = self.ws
        assert ws is not None
        self._conditions_at = now
        evaluations = self.evaluate_conditions(now)
        self._next_condition_cron = min(
            (parse_cron(c.cron, c.timezone).next(now) for s in self.automated.values() for c in s.automation.crons()),
            default=float("inf"))
        updates: dict[str, str] = {}
        fired = []
        for ev in evaluations:
            self.verdicts[ev.name] = (ev.verdict, ev.fire, ev.reason)
            if ev.fire:
                ev.memory.fired = ev.state
                ev.memory.cron.update(dict(ev.verdict.consumes))
                fired.append(ev)
            if ev.verdict.seen:
                ev.memory.cron.update(dict(ev.verdict.seen))
                self._conditions_at = float("-inf")  # evaluated again at the next tick, the tick put behind it
            if ev.fire or ev.first_seen or ev.verdict.seen:
                updates[f"condition:{ev.name}"] = ev.memory.dump()
        if not updates:
            return
        with ws.store.transaction("claiming condition ticks") as db:
            for ev in fired:
                # Forced (time-based) runs recompute the asset alone; others bring what it reads up to date too.
                select = [ev.name] if ev.verdict.force else [f"+{ev.name}"]
                definition = {"select": select, "force": ev.verdict.force, "condition": ev.condition}
                if ev.partition is not None:
                    definition["partition"] = "latest"  # a partitioned asset's condition acts on its latest key
                if TickStore.claim(db, f"condition:{ev.name}", now, now, definition, reason=ev.verdict.reason):
                    report.claimed.append(f"condition:{ev.name}@{now:.0f}")
            for origin, text in updates.items():
                TickStore.set_cursor(db, origin, text, now)

    # -- the queue --------------------------------------------------------------------------

    def _work_queue(self, report: TickReport) -> None:
        pending = self.ticks.unfinished()
        groups: dict[tuple[str, float, bool, object], list[Tick]] = {}
        for tick in pending:
            if tick.kind == "condition":  # one run for the conditions that fired together
                key = ("condition", tick.tick_at, bool(tick.definition.get("force")), tick.definition.get("partition"))
            else:
                key = (tick.origin, tick.tick_at, False, None)
            groups.setdefault(key, []).append(tick)
        for group in groups.values():
            run_id = self._work(group)
            if run_id:
                report.runs.append(run_id)

    def _work(self, group: list[Tick]) -> str | None:
        """Close, skip, resume or run one queued tick (or one group of condition ticks)."""
        from assetflow.errors import RunInterrupted
        from assetflow.execute.runner import new_run_id

        ticks, ws = self.ticks, self.ws
        assert ws is not None
        first = group[0]
        keys = [(t.origin, t.tick_at) for t in group]
        resumes: list[str] = []
        if first.run_id:  # started before (or requeued after an interrupt): finish it or resume it
            state = ticks.run_state(first.run_id)
            if state is not None and state[0] in ("succeeded", "failed"):
                self._finish(group, state[0], f"run {first.run_id} {state[0]} (noted after a restart)")
                return None
            earlier = first.definition.get("resumes")
            chain = [str(r) for r in earlier] if isinstance(earlier, list) else ticks.run_resumes(first.run_id)
            resumes = [*chain, first.run_id] if state is not None else chain  # None: killed before it began
        select = sorted({s for t in group for s in t.definition.get("select", [])})  # type: ignore[union-attr]
        force = any(bool(t.definition.get("force")) for t in group)
        try:
            names = self._selected(select)
        except AssetflowError as exc:
            self._finish(group, "failed", f"the selection no longer resolves: {exc}")
            return None
        if resumes and force:  # what is left for the resuming run: assets the earlier runs did not settle
            settled, assets = ticks.settled_assets(resumes), {spec.name for spec in ws.graph.assets()}
            names = [n for n in names if n in assets and n not in settled]
        if not force and not resumes:
            todo = self._not_fresh(names)
            if not todo:
                self._finish(group, "skipped", f"nothing in {_what(group)} is stale")
                return None
        if not names:
            self._close_dead_runs()
            self._finish(group, "succeeded", "the interrupted run had settled every asset")
            return None
        run_id = new_run_id()
        trigger = self._trigger(group, resumes)
        ticks.start_many(keys, run_id, resumes)
        log.info("%s: run %s of %d asset(s)%s", ", ".join(t.origin for t in group), run_id, len(names),
                 f" (resuming {resumes[-1]})" if resumes else "")
        from assetflow.execute.runner import Run
        from assetflow.fastpath import cache_graph_after_run

        self.running = True
        executor: ProcessExecutor | str | None = None
        try:  # what api.materialize does (the daemon sits below the API, which lists its schedules)
            executor = self._executor_for_run()  # a pool that cannot be built fails the tick, as a run's would
            result = Run(ws, names, force=force, executor=executor, jobs=self.jobs, partition=_partition(first),
                         run_id=run_id, trigger=trigger).execute(wait_for_lock=False)
            cache_graph_after_run(ws)
        except RunInterrupted:
            for origin, tick_at in keys:
                ticks.requeue(origin, tick_at, f"interrupted: run {run_id} stopped; the next start resumes it")
            raise
        except AssetflowError as exc:
            if exc.exit_code == ExitCode.LOCKED:  # a person's run holds the project: wait in the queue
                for origin, tick_at in keys:
                    ticks.requeue(origin, tick_at, f"queued: {exc}")
                log.info("queued behind another run: %s", exc)
                return None
            self._finish(group, "failed", str(exc))
            return run_id
        finally:
            self.running = False
            if self._pool is not None and executor is self._pool:  # the pool kept for the next run
                self._pool.end_run()
                self._pool_used_at = self.clock()
        waits = any(r.partition for r in result.by_outcome("waiting"))  # named as ranges of the definition's keys
        self._finish(group, *_closing(result, _what(group), ws.partition_plan.index if waits else {}))
        return run_id

    def _executor_for_run(self) -> ProcessExecutor | str | None:
        """The worker pool kept between runs, or the executor's name for the run to build its own.

        Kept (``keep_workers`` seconds after the last run) only for the process pool: a run then starts
        no worker, and its workers have polars, pyarrow and the project imported already (a second or
        more of each run's wall time on a large project). Every run, small ones included, computes in
        those workers, never in the daemon's own process. Other executors, and ``keep_workers`` 0,
        build their executor per run as ``assetflow materialize`` does.
        """
        from assetflow.execute.executors import executor_class
        from assetflow.execute.pool import ProcessExecutor

        if self.keep_workers <= 0:
            return self.executor
        try:
            if executor_class(self.executor) is not ProcessExecutor:
                return self.executor
        except AssetflowError:  # an unknown name: the run reports it
            return self.executor
        if self._pool is None:
            self._pool = ProcessExecutor(jobs=self.jobs)
        return self._pool

    def _stop_workers(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown()

    def _close_dead_runs(self) -> None:
        """Mark the runs a killed daemon left ``running`` as abandoned, as the next run's start would (under the
        project lock, so none of them is alive). Needed when a tick closes without another run: else the dead
        run reads ``running`` in the history until some later run starts. A run holding the lock marks them."""
        from assetflow.errors import ProjectLockedError
        from assetflow.state.lock import ProjectLock

        assert self.ws is not None
        lock = ProjectLock(self.ws.config.state_path)
        try:
            lock.acquire("automation", wait=False)
        except ProjectLockedError:
            return
        try:
            self.ws.store.mark_abandoned_runs(lambda pid, host: False)
        finally:
            lock.release()

    def _finish(self, group: list[Tick], status: str, outcome: str) -> None:
        """Close ticks with their outcome, after the reason they were claimed for (a condition's verdict)."""
        now = self.clock()
        for tick in group:
            why = claimed_for(tick.reason)
            self.ticks.finish(tick.origin, tick.tick_at, status, f"{why} -> {outcome}" if why else outcome, now)
        log.info("%s: %s: %s", ", ".join(t.origin for t in group), status, outcome)

    def _selected(self, select: list[str]) -> list[str]:
        from assetflow.inspect.status import selected

        assert self.ws is not None
        return selected(self.ws, select)

    def _not_fresh(self, names: list[str]) -> list[str]:
        """Selected assets that a run would do something for (stale, missing, failed).

        First the no-op snapshot (``assetflow.fastpath``): when the last complete run's snapshot
        proves nothing changed, nothing is stale, for the cost of a stat per file (0.14 s at 10,000
        assets, against 6.5 s for the full assessment). Any difference falls back to the full check.
        """
        from assetflow.fastpath import check_snapshot
        from assetflow.inspect.status import compute_status
        from assetflow.state.snapshot import SNAPSHOT_KEY

        assert self.ws is not None
        proved = check_snapshot(self.ws.config, self.ws.store.get_meta(SNAPSHOT_KEY))
        specs = self.ws.graph.specs
        if proved is not None and {n for n in names if isinstance(specs[n], AssetSpec)} <= set(proved):
            return []
        rows = compute_status(self.ws, names) if names else []
        return [r.name for r in rows if r.kind == "asset" and {"stale", "missing", "failed"} & set(r.states)]

    def _trigger(self, group: list[Tick], resumes: list[str]) -> dict[str, object]:
        first = group[0]
        trigger: dict[str, object] = {"kind": first.kind, "tick": first.tick_at}
        if first.kind == "condition":
            trigger["assets"] = [t.name for t in group]
            trigger["reasons"] = {t.name: t.reason for t in group}
        else:
            trigger["name"] = first.name
        if resumes:
            trigger["resumes"] = resumes
        return trigger

    # -- the loop ---------------------------------------------------------------------------

    def serve(self, stop: threading.Event, once: bool = False) -> None:
        """Tick every ``interval`` (real seconds) until ``stop`` is set; errors of one tick are logged.

        The same error again (a project that does not import until it is fixed) is logged once, not at every
        tick, and its end is said when an evaluation succeeds again."""
        while not stop.is_set():
            try:
                report = self.tick()
            except AssetflowError as exc:
                self.evaluation_failed(exc)
                report = None
            else:
                self.evaluation_succeeded()
            if report is not None and (report.claimed or report.runs):
                log.info("tick %.0f: claimed %d, ran %d run(s) in %.2fs", report.at, len(report.claimed),
                         len(report.runs), report.seconds)
            if once:
                return
            stop.wait(self.interval)


    # -- health -----------------------------------------------------------------------------

    def evaluation_failed(self, error: AssetflowError) -> None:
        """Make failing evaluations visible where users look, once per distinct error: the log, a failed tick of
        ``FAILED_EVALUATION`` (``assetflow ticks``) and the ``HEALTH`` cursor (the listings' and the page's daemon
        line). Nothing is claimed or run meanwhile; ticks due meanwhile are claimed, as on time, once it succeeds."""
        text = str(error)
        if text.endswith(FIX_AND_RUN_AGAIN):  # the daemon imports it again by itself
            text = text[:-len(FIX_AND_RUN_AGAIN)] + RETRIED
        if text == self._failing:
            return
        log.error("evaluation failed (tried again at later ticks; said again only if it changes): %s", text)
        self._failing = text
        store = self._health_store()
        if store is None:
            return
        now = self.clock()
        try:  # the state store may be what fails: then the log is all there is, and the loop goes on
            self._close_failure(store, now, "another error")
            with store.transaction("recording a failed evaluation") as db:
                TickStore.claim(db, FAILED_EVALUATION, now, now, {}, status="failed", reason=(
                    f"evaluation failed, so nothing is claimed or run until it succeeds: {text}"))
                TickStore.set_cursor(db, HEALTH, json.dumps({"since": now, "error": text}), now)
        except (AssetflowError, sqlite3.Error) as exc:
            log.warning("could not record the failed evaluation in the state store: %s", exc)

    def evaluation_succeeded(self) -> None:
        """Close the recorded failure, this daemon's or one a stopped daemon left, when an evaluation succeeds."""
        if self._failing is None and self._health_read:
            return
        if self._failing is not None:
            log.info("evaluation succeeds again")
        self._failing, self._health_read = None, True
        store = self._health_store()
        if store is not None:
            try:
                self._close_failure(store, self.clock(), "it succeeded again")
            except (AssetflowError, sqlite3.Error) as exc:
                log.warning("could not record that evaluations succeed again: %s", exc)

    def _close_failure(self, store: StateStore, now: float, why: str) -> None:
        ticks = TickStore(store)
        if not ticks.cursors(HEALTH).get(HEALTH):
            return
        for tick in ticks.ticks([FAILED_EVALUATION], limit=1):
            ticks.finish(tick.origin, tick.tick_at, "failed", f"{tick.reason} -> until {local_time(now)}: {why}", now)
        ticks.set_cursors({HEALTH: None}, now)

    def _health_store(self) -> StateStore | None:
        """The state store, also when the project never loaded (found from its configuration alone); None when even
        that fails (a broken pyproject.toml): the failure is then in the log only."""
        if getattr(self, "readonly", False):
            return None
        if self.ws is not None:
            return self.ws.store
        if self._own_store is None:
            from assetflow.project import load_config
            from assetflow.state.store import StateStore

            project_dir, modules, files = self.project
            try:
                self._own_store = StateStore(load_config(project_dir, modules, files).state_path)
            except AssetflowError:
                return None
        return self._own_store


def _modules(root: Path) -> list[str]:
    """The project's Python files (not their folders, whose times change as logs or ``__pycache__`` are written):
    the walk is repeated at each look, so a new file is a new entry."""
    return [str(path) for path in python_files(root)]


def _check_selections(ws: Workspace, specs: list[ScheduleSpec | SensorSpec]) -> None:
    """A schedule's or sensor's selection must name what the project has, when the project loads: not at its
    first tick, maybe a day later. ``status:`` selectors depend on the state and are resolved at each tick."""
    from assetflow.errors import DefinitionError
    from assetflow.inspect.status import selected

    for spec in specs:
        fixed = [expression for expression in spec.select if "status:" not in expression]
        if not fixed:
            continue
        try:
            selected(ws, fixed)
        except AssetflowError as exc:
            raise DefinitionError(f"{spec.kind.capitalize()} {spec.name!r} at {spec.where}: select="
                                  f"{list(spec.select)!r} does not resolve: {exc}") from None


def _what(group: list[Tick]) -> str:
    """What a tick's reason names: its schedule or sensor, or the assets whose conditions fired together."""
    first = group[0]
    return first.name if first.kind != "condition" else ", ".join(t.name for t in group)


def _closing(result: RunResult, what: str, index: Mapping[str, Mapping[str, int]]) -> tuple[str, str]:
    """A tick's status and outcome from its run's result.

    A run that settled every asset but computed nothing, because what is stale in the selection waits on an upstream
    outside it (one whose check failed, say), is a skipped tick, as one with nothing stale is: the run could do nothing,
    and the next tick will not either until that upstream runs; its reason says which upstream and how to take it in.
    ``index``: each partitioned asset's key -> its position (``PartitionPlan.index``).
    """
    counts = {k: v for k, v in result.counts().items() if v}
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    if not result.ok:
        return "failed", f"{summary}: {_causes(result, index)}"
    if not counts.get("waiting"):
        return "succeeded", summary
    if not any(counts.get(k) for k in ("ran", "restored", "cutoff")):
        return "skipped", f"nothing in {what} could run ({summary}): {_causes(result, index)}"
    return "succeeded", f"{summary}: {_causes(result, index)}"


CAUSES_SHOWN = 3  # a tick's reason names this many failed, skipped or waiting assets, with why, then counts the rest


def _causes(result: RunResult, index: Mapping[str, Mapping[str, int]]) -> str:
    """Why a run did not settle every asset, for its tick's reason: each failed asset with its error's last line (as
    ``status`` shows it), each skipped one with what it lacked (its upstream failed, or was never materialized); the
    first few, then how many more."""
    from assetflow.inspect.status import failure_summary

    causes = [f"{r.name} failed: {failure_summary(r.error or '; '.join(r.reasons)) or 'no error recorded'}"
              for r in result.by_outcome("failed")]
    causes += [f"{r.name} skipped: {'; '.join(r.reasons) or 'no reason recorded'}" for r in result.by_outcome("skipped")]
    causes += _waiting(result, index)
    more = len(causes) - CAUSES_SHOWN
    return "; ".join(causes[:CAUSES_SHOWN]) + (f"; and {more} more (assetflow history)" if more > 0 else "")


def _waiting(result: RunResult, index: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The units that wait on a stale upstream outside the selection, one asset's keys sharing a reason as ranges:
    ``two_day[2024-03-02..2024-03-03] waiting: upstream `daily_ev[2024-03-02]` is stale and not selected: ...``."""
    from assetflow.partitions.summary import ranges

    groups: dict[tuple[str, str], list[str]] = {}
    for r in result.by_outcome("waiting"):
        groups.setdefault((r.asset, "; ".join(r.reasons) or "no reason recorded"), []).append(r.partition)
    causes = []
    for (asset, why), keys in groups.items():
        found = ranges(((key, "", "") for key in keys), index.get(asset, {}))
        name = f"{asset}[{', '.join(r.span for r in found)}]" if keys != [""] else asset
        causes.append(f"{name} waiting: {why}")
    return causes


def _partition(tick: Tick) -> str | None:
    """The partitions a tick's run is limited to: a condition's "latest", or a sensor's requested keys."""
    if tick.definition.get("partition"):
        return str(tick.definition["partition"])
    keys = tick.definition.get("partitions")
    return ",".join(str(k) for k in keys) if isinstance(keys, list) and keys else None
