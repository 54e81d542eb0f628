"""``materialize``: run exactly the stale assets of a selection, in dependency order.

Each asset is decided at its turn, once its upstreams have settled: fresh (skip),
restorable (an earlier version with this exact recipe exists: move the pointer),
or stale (compute it). A recomputed asset whose data hash did not change leaves its
downstream fresh (early cutoff). A failure skips only its downstream.

Scheduling: an asset is decided as soon as its own upstreams have settled (not layer
by layer) and, if it must run, waits only for a free executor slot and for room in its
concurrency pools. A failed attempt is retried with exponential backoff up to the
asset's ``retries``. Only this process (the coordinator) writes the state store;
executors only compute and store data. Ctrl-C cancels running assets, records nothing
partial and marks the run interrupted; a second Ctrl-C exits at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import heapq
import os
import random
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Future

from assetflow.contracts import Executor, InputRef
from assetflow.declare import AssetSpec, SourceSpec
from assetflow.durations import format_duration
from assetflow.errors import AssetflowError, RunInterrupted, TaskTimeout, WorkerLost
from assetflow.execute.dry_run import blocked_reason, predict, refused_reason, refusing_check, restorable
from assetflow.execute import handoff
from assetflow.execute.executors import EXECUTOR_ENV, SMALL_PLAN, InProcessExecutor, make_executor, small_work
from assetflow.execute.results import AssetResult, Outcome, RunResult
from assetflow.checks.report import one_line, upstream_problem
from assetflow.execute.gate import CheckRun, Gate
from assetflow.execute.policy import PoolLimits, retry_delay
from assetflow.execute.waiting import is_behind, unsettled_outside, waiting_reasons
from assetflow.execute.task import ComputeResult, ComputeTask, changed_while_running, compute, register_workspace
from assetflow.failpoints import failpoint
from assetflow.partitions.units import is_partitioned, split_unit
from assetflow.fastpath import SNAPSHOT_KEY, build_snapshot
from assetflow.plan import Assessment
from assetflow.state.lock import ProjectLock
from assetflow.state.logs import PARTITION_HEADER, write_log
from assetflow.state.store import Materialization
from assetflow.storage.files import make_durable, remove_temp_files
from assetflow.workspace import Workspace
# While every worker has a task and another is queued, finished results wait up to this long to be made
# durable and recorded together: one syncfs per batch instead of one per wake-up (docs/execution.md).
SETTLE_EVERY_S = 0.05
# Ready assets decided before the coordinator looks again for results: deciding a batch's downstream at
# once (~0.2 ms each on a cold run) left the workers without a task for 5-20 ms after each batch.
DECIDE_BETWEEN_POLLS = 8
# Workers from which, on a run with nothing recorded yet, each walks the code of the assets it computes
# instead of this process: walking costs ~0.2 of this process's ~0.6 ms an asset, enough to keep four
# workers of ~2.5 ms assets waiting; with fewer, this process has the time and walks while they start.
WALK_CODE_IN_WORKERS_FROM = 4
# Assets whose code a first run walks ahead between two looks for results, while it has nothing else to do:
# ~1 ms of walking, so a finished worker waits at most that long for this process to notice.
WALK_AHEAD = 4


@dataclasses.dataclass
class _Launch:
    """An asset decided stale: what to compute, and what its result will be recorded against."""

    task: ComputeTask
    verdict: Assessment
    upstream: dict[str, str]
    pools: frozenset[str]
    attempts: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    logs: list[str] = dataclasses.field(default_factory=list)  # what each attempt printed and logged


@dataclasses.dataclass
class _Computed:
    """A new version made durable, waiting for the batch that publishes and records it (``_record_computed``)."""

    name: str
    mat: Materialization
    sources: dict[str, str]  # its code's sources to save; empty when stored with an earlier record
    result: AssetResult


Listener = Callable[[AssetResult], None]
"""Called with each asset's result as it settles. A listener may also have ``begin(total, to_run,
capacity)`` (called once, before the first asset: how many are selected, how many are predicted to
compute, how many run at once) and ``started(name)`` (an asset was handed to the executor)."""


def new_run_id() -> str:
    """A fresh run id (time-ordered), also for a caller that records it before the run begins (a tick)."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


class Run:
    """One materialization run over a workspace."""

    def __init__(
        self,
        workspace: Workspace,
        selection: Iterable[str],
        *,
        force: bool = False,
        executor: Executor | str | None = None,
        jobs: int | None = None,
        address: str | None = None,
        listener: Listener | None = None,
        partition: str | None = None,
        run_id: str | None = None,
        trigger: dict[str, object] | None = None,
    ) -> None:
        self.ws = workspace
        self.partition = partition  # which partitions of partitioned assets (docs/partitions.md); None: all
        self.graph = workspace.graph
        selected = set(selection)
        self.order = [n for n in self.graph.order if n in selected and isinstance(self.graph.specs[n], AssetSpec)]
        self.force = force
        self._executor = executor
        self._executor_options = {"jobs": jobs, "address": address}
        self._owns_executor = False  # whether this run built the executor (and so shuts it down)
        self._submitting: str | None = None
        self.listener = listener
        self.run_id = run_id or new_run_id()
        self.trigger = trigger  # what started it (None: a person); recorded with the run
        self.results: dict[str, AssetResult] = {}
        self._unreadable: set[str] = set()  # sources whose files could not be read in this run
        self._fresh_events: list[tuple[str, str, str, float | None, str | None, str]] = []
        self._shares_host = False  # whether every task runs on this host: set once the executor is known (``_run_all``)
        self._code_in_workers = False  # a first run: workers walk the code of the assets they compute (``_run_all``)
        self._saved_code: set[str] = set()  # code fingerprints whose sources this run has recorded
        self._computed: list[_Computed] = []  # settled results not yet recorded (``_record_computed``)
        # Each source's data hash as re-checked after the results settling now (rule 9, ``_inputs_changed``).
        self._sources_rechecked: dict[str, str] = {}
        self._gate: Gate | None = None  # judges checked assets' versions (built on first use)
        self.left_out: dict[str, str] = {}  # selected assets --partition names no key of -> why (``selected_keys``)
        self._outside: dict[str, str] = {}  # unit -> state: the units not fresh that this run does not settle
        self._behind: set[str] = set()  # units settled and stale all the same, through ``_outside`` (``execute.waiting``)

    # -- planning ---------------------------------------------------------------------------

    def plan(self) -> RunResult:
        """What would happen, with each asset's reasons; nothing runs and no version, pointer or run is recorded.

        Assessing does write caches, in short transactions of their own: the stat cache of
        source files, the sources' observed hashes, refreshed data tokens (a token that
        moved but whose data still hashes alike) and the code-fingerprint cache (digests kept
        while the project's module bytes are the same). They change no answer, only the cost of
        the next one; the lock is not taken, so a plan never waits for a run.

        A restore is predicted wherever the version store makes it predictable, and
        ``may_restore`` said where it depends on data not made yet (see ``dry_run``).
        """
        if is_partitioned(self.graph):
            return self._plan_units()
        results = {p.name: AssetResult(p.name, p.outcome, p.reasons, data_hash=p.data_hash)  # type: ignore[arg-type]
                   for p in predict(self.ws, self.order, self.force)}
        return RunResult(self.run_id, results, dry_run=True)

    def _plan_units(self) -> RunResult:
        """The plan of a graph with partitions: each unit's outcome and reasons."""
        self._check_partition()
        assessed = self.ws.assess_all(self._assessed_names())
        units, _, verdicts = self._units({n: assessed[n] for n in self.order})
        self._outside = {} if self._whole() else unsettled_outside(assessed, set(units))
        if self._outside:
            self.current = self.ws.current_units()  # what a waiting unit's upstreams hold (``_planned_waits``)
        results: dict[str, AssetResult] = {}
        current: dict[str, Materialization] | None = None  # every current unit, read once if a check needs them
        stopped: set[str] = set()  # units the plan fails or skips: what they feed is skipped
        from assetflow.partitions.run import keyless

        empty = keyless(self.ws, list(self.graph.specs))  # what reads them is skipped, as the run skips it
        for name in units:
            verdict = verdicts[name]
            blocked = [blocked_reason(u, results[u].outcome, results[u].error)
                       for u in self._unit_inputs(name) if u in stopped] if stopped else []
            blocked += [f"upstream `{u}` {empty[u].removeprefix('it ')}"
                        for u in getattr(self.graph.specs[split_unit(name)[0]], "upstreams", ()) if u in empty]
            waits = [] if self.force or verdict.fresh or blocked else self._planned_waits(name, results)
            if self.force:
                results[name] = AssetResult(name, "ran", ["--force"] + verdict.reasons)
            elif blocked:  # the run skips it before anything else
                results[name] = AssetResult(name, "skipped", blocked)
            elif verdict.fresh:
                results[name] = AssetResult(name, "fresh", [])
            elif waits:
                self._behind.add(name)
                results[name] = AssetResult(name, "waiting", waits)
            elif restorable(self.ws, verdict):
                results[name] = AssetResult(name, "restored", verdict.reasons)
            else:
                results[name] = AssetResult(name, "ran", verdict.reasons)
            spec = self.graph.specs[split_unit(name)[0]]
            if results[name].outcome in ("fresh", "waiting") and isinstance(spec, AssetSpec) and spec.checks:
                current = self.ws.current_units() if current is None else current
                refusing = refusing_check(self.ws, spec, verdict.current, current)
                if refusing is not None:  # the run judges the version it keeps and fails it again
                    results[name] = AssetResult(name, "failed", [*results[name].reasons, refused_reason(refusing)],
                                                error=refusing)
            if results[name].outcome in ("failed", "skipped"):
                stopped.add(name)
        return RunResult(self.run_id, results, dry_run=True, key_order=self.ws.partition_plan.index,
                         left_out=self.left_out)

    def _planned_waits(self, name: str, planned: dict[str, AssetResult]) -> list[str]:
        """A stale unit's reasons to wait, when the plan can tell: every upstream unit in the run stays as it is
        (fresh or waiting), so the unit sees its upstreams' stored data, and that data is what it was made from."""
        absent = self._absent_outside(name)
        if absent:
            return self._waits(name, absent)
        inputs = self._unit_inputs(name)
        if any(u in planned and planned[u].outcome not in ("fresh", "waiting") for u in inputs):
            return []  # an upstream runs first: the plan cannot know its data
        waits = self._waits(name)
        if not waits:
            return []
        asset, key = split_unit(name)
        spec = self.graph.specs[asset]
        assert isinstance(spec, AssetSpec)
        upstream, problems = self._upstream_hashes(spec, key)
        if problems:
            return []
        current = self.current.get(name)
        return waits if self.ws.assess_one(spec, upstream, current, partition=key).fresh else []

    # -- running ----------------------------------------------------------------------------

    def execute(self, wait_for_lock: bool = False) -> RunResult:
        self._check_partition()  # a bad key or range fails before anything is written
        self.executor  # noqa: B018 - built first, so a bad --executor or --jobs fails before anything is written
        lock = self._lock = ProjectLock(self.ws.config.state_path)
        lock.acquire(self.run_id, wait=wait_for_lock)
        try:
            store = self.ws.store
            # We hold the project lock, so no other run is alive: any still 'running' died (SIGKILL, power loss).
            dead = store.mark_abandoned_runs(lambda pid, host: False)
            if dead or any(r["status"] != "succeeded" for r in store.runs(limit=1)):
                remove_temp_files(self.ws.config.data_path)  # partial writes of a killed writer
            store.set_meta(SNAPSHOT_KEY, None)
            store.begin_run(self.run_id, " ".join(sys.argv), os.getpid(), socket.gethostname(), trigger=self.trigger)
            status = "failed"
            snapshot = None
            try:
                with self._ctrl_c():
                    self._run_all()
                self.ws.save_code_cache()  # the digests walked at each asset's turn: the next full check reuses them
                status = "succeeded" if all(r.outcome not in ("failed", "skipped") for r in self.results.values()) else "failed"
                if (status == "succeeded" and len(self.order) == len(self.graph.assets())
                        and self.partition in (None, "all")):  # a backfill of a range leaves other keys as they are
                    snapshot = self._snapshot()
            except BaseException:
                status = "interrupted"
                raise
            finally:
                result = RunResult(self.run_id, self.results, left_out=self.left_out)
                store.finish_run(self.run_id, status, result.counts())
            # Written once the run is recorded finished: the no-op fast path takes no lock and marks no dead run,
            # so a snapshot written before, then a kill, left this run 'running' for as long as nothing changed.
            if snapshot is not None:
                failpoint("before_snapshot_write")
                store.set_meta(SNAPSHOT_KEY, snapshot)
        finally:
            lock.release()
            handoff.clear()  # tables kept for this run's inputs (``--executor inprocess``)
            if self._owns_executor and "executor" in self.__dict__:
                self.executor.shutdown()
        return result

    @functools.cached_property
    def executor(self) -> Executor:
        """The executor, built by name on first use (so planning and dry runs start none)."""
        if self._executor is None or isinstance(self._executor, str):
            self._owns_executor = True
            return make_executor(self._executor, **self._executor_options)  # type: ignore[arg-type]
        self._owns_executor = False
        return self._executor

    def _run_small_plan_here(self, stale: list[str]) -> None:
        """Compute a small plan in this process: starting a worker costs more than a few assets' work.

        A worker is a fork-server start plus importing the project and polars again (about a
        second, twice the whole run when one asset changed). Only when nobody chose where tasks
        run (no ``--executor``, ``$ASSETFLOW_EXECUTOR`` or ``--jobs``), in the main thread (the
        in-process executor times out with SIGALRM) and when none of them has a timeout (a pool
        can kill a call stuck in C, SIGALRM cannot interrupt one).
        """
        if (self._executor is not None or os.environ.get(EXECUTOR_ENV) or self._executor_options["jobs"] is not None
                or not self._owns_executor or threading.current_thread() is not threading.main_thread()):
            return
        if any(getattr(self.graph.specs[split_unit(n)[0]], "timeout", None) is not None for n in stale):
            return
        if "executor" in self.__dict__:
            self.executor.shutdown()  # built to validate the options; it started no worker
        self.__dict__["executor"] = InProcessExecutor()

    def _snapshot(self) -> str | None:
        """Everything the no-op fast path must find unchanged to skip loading the project."""
        sources = {}
        contents: dict[str, tuple[str, str]] = {f: ("code", d) for f, d in self.ws.code_contents().items()}
        for spec in self.graph.sources():
            assert spec.name is not None
            if spec.partitions is not None:  # its files: snapshot_parts; their bytes as each partition read them
                contents.update({str(self.ws.root / rel): ("data", content)
                                 for version in self.ws.source_partitions(spec.name).values()
                                 for rel, _, content in version.files})
                continue
            version = self.ws.observe_sources([spec.name])[spec.name]
            sources[spec.name] = (spec.path, {str(self.ws.root / rel): token for rel, token, _ in version.files})
            contents.update({str(self.ws.root / rel): ("data", content) for rel, _, content in version.files})
        current = self.ws.store.current()  # re-read: checks may have refreshed tokens
        assets = [(m.asset, m.io, m.location, m.data_hash, m.token, self.ws.backends.local_file(m.io, m.location))
                  for m in current.values()]
        valid_until = None
        partitions = None
        if is_partitioned(self.graph):
            from assetflow.partitions.run import snapshot_parts

            more_sources, more_assets, valid_until, partitions = snapshot_parts(self.ws)
            sources.update(more_sources)
            assets += more_assets
        verdicts = {name: sorted(str(v["fingerprint"]) for v in result.checks)
                    for name, result in self.results.items() if result.checks and name in current}
        return build_snapshot(self.ws.config, self.ws.code_tokens(), sources, assets, self.ws.loaded_at_ns,
                              valid_until, contents, partitions, verdicts)

    def _run_all(self) -> None:
        """Decide each asset once its upstreams settle; keep the executor full; settle results as they come."""
        self.code_token = register_workspace(self.ws)
        warm_up = getattr(self.executor, "warm_up", None)
        # On a first run every asset will be computed: the workers import the project while this process
        # assesses it (~0.2 ms an asset of code fingerprints when every asset is ready at once).
        first = not self.ws.store.has_versions()
        warmed = False
        if warm_up is not None and first and len(self.order) > SMALL_PLAN:
            warm_up(self.ws.config, len(self.order))
            warmed = True
        # Nothing recorded yet: every asset is new and none can be restored, so with enough workers the one
        # computing an asset walks its code for its record, in parallel, instead of this process one at a time.
        self._code_in_workers = (first and not is_partitioned(self.graph)
                                 and self.executor.capacity >= WALK_CODE_IN_WORKERS_FROM)
        assessed = self.ws.assess_all(self._assessed_names(), walk_code=not self._workers_walk_code())
        units, unit_upstream, predicted = self._units({n: assessed[n] for n in self.order})
        self._outside = {} if self._whole() else unsettled_outside(assessed, set(units))
        self.current = self.ws.current_units()
        remaining = {n: len(unit_upstream[n]) for n in units}
        unit_downstream: dict[str, list[str]] = {n: [] for n in units}
        for unit, ups in unit_upstream.items():
            for up in ups:
                unit_downstream[up].append(unit)
        ready = deque(n for n in units if remaining[n] == 0)
        limits = PoolLimits(self.ws.config.pools)
        launches: dict[str, _Launch] = {}
        running: dict[Future[object], str] = {}
        settling: dict[Future[object], str] = {}  # done, not yet recorded
        backoff: list[tuple[float, int, str]] = []  # (due, sequence, name): failed attempts waiting to retry
        jitter = random.Random()
        stale = len(units) if self.force else sum(1 for v in predicted.values() if not v.fresh)
        if stale and _small_plan([predicted[n] for n in units if self.force or not predicted[n].fresh]):
            self._run_small_plan_here([n for n in units if self.force or not predicted[n].fresh])
            warm_up = getattr(self.executor, "warm_up", None)  # the pool's was for the pool just set aside
        if warm_up is not None and stale and not warmed:
            warm_up(self.ws.config, stale)
        capacity = max(1, int(self.executor.capacity))
        # Tasks in flight: a pool's worker holds its next task while it computes one (``queue_depth``).
        in_flight = capacity * max(1, int(getattr(self.executor, "queue_depth", 1)))
        # A worker freed by a result starts its next task before that result is recorded: recording costs
        # the coordinator ~1 ms a result, a third of a worker's time on small assets (docs/execution.md).
        refill_first = not getattr(self.executor, "computes_in_submit", False)
        # A first run walked here walks each asset's code when the asset is decided, after its upstreams settle:
        # ~0.2 ms each, and 10-30 ms for the first asset of each module (its source parsed), while the workers wait
        # for their next task. Walked instead while this process would wait for results (``WALK_AHEAD``).
        walk_ahead: deque[str] = deque()
        if first and refill_first and not self._workers_walk_code():
            walk_ahead.extend(dict.fromkeys(split_unit(n)[0] for n in units))
        # Workers on this host leave their files' fsyncs to this process (one syncfs per batch of results), and check
        # the source files they read against the decided ones (their stat tokens mean the same here).
        self._shares_host = bool(getattr(self.executor, "shares_host", False))
        self._notify("begin", len(units), stale, capacity)
        affinity = getattr(self.executor, "affinity", None)  # optional: where a task's inputs already are
        score = None if affinity is None else (lambda name: affinity(launches[name].task))

        # The lock file names the assets computing now, for ``status``: written when this process is about
        # to wait or record, not at each task sent and each result (twice an asset, ~0.02 ms each).
        noted = True

        def note_running() -> None:
            nonlocal noted
            if not noted:
                self._lock.note_running(running.values())
                noted = True

        def start_ready() -> None:
            nonlocal noted
            while len(running) < in_flight:
                startable = limits.pop_startable(score)
                if startable is None:
                    return
                name = startable[0]
                launch = launches[name]
                launch.attempts += 1
                spec = self.graph.specs[split_unit(name)[0]]
                assert isinstance(spec, AssetSpec)
                self._notify("started", name)
                if refill_first:
                    noted = False
                else:  # it computes inside submit: say so first
                    self._lock.note_running([*running.values(), name])
                self._submitting = name  # an in-process executor computes it inside submit
                running[self.executor.submit(compute, launch.task, timeout=spec.timeout)] = name
                self._submitting = None

        def settle(name: str) -> None:
            for down in unit_downstream[name]:
                if down in remaining:
                    remaining[down] -= 1
                    if remaining[down] == 0:
                        ready.append(down)

        try:
            settle_by = 0.0  # when the oldest result in ``settling`` must be recorded
            while ready or running or settling or backoff or len(limits):
                for _ in range(min(len(ready), DECIDE_BETWEEN_POLLS)):
                    name = ready.popleft()
                    launch = self._decide(name, predicted[name])
                    if launch is None:
                        settle(name)
                    else:
                        launches[name] = launch
                        limits.push(name, launch.pools)
                now = time.monotonic()
                while backoff and backoff[0][0] <= now:
                    name = heapq.heappop(backoff)[2]
                    limits.push(name, launches[name].pools)
                start_ready()
                wait = max(0.0, backoff[0][0] - time.monotonic()) if backoff else None
                if not running and not settling:
                    if wait is not None and not ready:
                        time.sleep(wait)
                    continue
                if running:
                    deciding = bool(ready)  # more to decide: only collect what finished, then decide on
                    if deciding:
                        wait = 0.0
                    elif settling:
                        until_settle = max(0.0, settle_by - time.monotonic())
                        wait = until_settle if wait is None else min(wait, until_settle)
                    walked = False
                    if wait != 0.0 and walk_ahead and not settling:
                        for _ in range(min(len(walk_ahead), WALK_AHEAD)):
                            spec = self.graph.specs[walk_ahead.popleft()]
                            if isinstance(spec, AssetSpec):
                                with contextlib.suppress(Exception):  # raised again, in its place, at its turn
                                    self.ws.code_digest(spec)
                        wait, walked = 0.0, True
                    if wait != 0.0:
                        note_running()
                    done = self.executor.wait_any(list(running), timeout=wait)
                    if walked and not done:
                        continue  # nothing finished meanwhile: walk on
                    if done and not settling:
                        settle_by = time.monotonic() + SETTLE_EVERY_S
                    for future in done:
                        settling[future] = running.pop(future)
                        limits.release(launches[settling[future]].pools)
                    if done:
                        noted = False
                    if refill_first:  # the freed workers get tasks decided before; they compute while these are recorded
                        start_ready()
                        if len(running) >= in_flight and len(limits) and time.monotonic() < settle_by:
                            continue  # no worker waits on these results: record them with the next ones
                    if deciding and (not settling or time.monotonic() < settle_by):
                        continue  # decide the rest first: that feeds the workers
                note_running()
                make_durable([path for future in settling if _has_result(future)
                              for path in getattr(future.result(), "unsynced", ())])  # before any is recorded
                self._sources_rechecked = {}  # each result below had finished before the first re-check of a batch
                while settling:
                    future = next(iter(settling))
                    name = settling.pop(future)
                    launch = launches[name]
                    error = self._attempt_error(name, future)
                    launch.logs.append(getattr(future.result(), "log", "") if _has_result(future) else "")
                    spec = self.graph.specs[split_unit(name)[0]]
                    assert isinstance(spec, AssetSpec)
                    if error is not None and launch.attempts <= spec.retries and not _same_bytes_again(future):
                        launch.errors.append(error)
                        delay = retry_delay(spec.retry_delay, launch.attempts, jitter=jitter)
                        self._record_retry(name, launch, error, delay)
                        heapq.heappush(backoff, (time.monotonic() + delay, launch.attempts, name))
                        continue
                    del launches[name]
                    self._keep_log(name, launch)
                    self._finish(name, launch, future, error)
                    settle(name)
                self._record_computed()  # before any downstream is decided against these versions
            self._flush_events()
            self._activate_views()
        except KeyboardInterrupt as exc:
            cancelled = sorted({*running.values(), *settling.values(), *([self._submitting] if self._submitting else [])})
            self.executor.shutdown(cancel=True)  # running assets stop; their results are never recorded
            with contextlib.suppress(Exception):
                self._record_computed()  # settled before the interrupt: complete and durable
            with contextlib.suppress(Exception):
                self._flush_events()
            raise RunInterrupted(self.run_id, self.results, cancelled) from exc

    @contextlib.contextmanager
    def _ctrl_c(self) -> Iterator[None]:
        """Ctrl-C raises KeyboardInterrupt (the run then stops cleanly); a second one exits at once.

        The second works even if the first was swallowed (an asset catching
        KeyboardInterrupt in process) or the clean stop hangs: workers are killed, the run
        is marked interrupted if the state store can be written within 0.2 s (else the next
        run finds it abandoned), and the process exits with 130.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        pressed = False

        def on_sigint(signum: int, frame: object) -> None:
            nonlocal pressed
            if pressed:
                kill_now = getattr(self.__dict__.get("executor"), "kill_now", None)
                if kill_now is not None:
                    kill_now()
                self.ws.store.mark_interrupted_now(self.run_id)
                os._exit(130)
            pressed = True
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _attempt_error(self, name: str, future: Future[object]) -> str | None:
        """Why an attempt failed (the asset's traceback, a timeout, a lost worker), or None."""
        spec = self.graph.specs[split_unit(name)[0]]
        assert isinstance(spec, AssetSpec)
        try:
            result = future.result()
        except TaskTimeout as exc:
            return f"Asset `{name}` timed out: it ran longer than its timeout of {format_duration(spec.timeout or 0)} ({exc})."
        except WorkerLost as exc:
            return f"Asset `{name}` was lost: {exc}."
        except CancelledError:
            return f"Asset `{name}` was cancelled by its executor."
        except Exception as exc:  # noqa: BLE001 - an executor's own failure, e.g. a task that cannot be pickled
            return f"Asset `{name}` could not run on the executor:\n" + "".join(traceback.format_exception(exc))
        assert isinstance(result, ComputeResult)
        if result.error is not None or result.stored is None:
            return result.error or f"Asset `{name}` stored nothing."
        return None

    def _notify(self, event: str, *args: object) -> None:
        """Tell the listener about the run's progress beyond settled assets, if it listens for ``event``."""
        method = getattr(self.listener, event, None)
        if method is not None:
            method(*args)

    def _keep_log(self, name: str, launch: _Launch) -> None:
        """Keep what the asset printed and logged, every attempt under its own header if it was retried."""
        if not any(launch.logs):
            return
        text = launch.logs[0] if len(launch.logs) == 1 else "".join(
            f"--- attempt {i} of {len(launch.logs)} ---\n{log}" for i, log in enumerate(launch.logs, 1))
        asset, key = split_unit(name)
        if key:  # the partitions of an asset share its log, each under its own header
            write_log(self.ws.config.state_path, self.run_id, asset, PARTITION_HEADER.format(key) + text, append=True)
        else:
            write_log(self.ws.config.state_path, self.run_id, asset, text)

    def _record_retry(self, name: str, launch: _Launch, error: str, delay: float) -> None:
        spec = self.graph.specs[split_unit(name)[0]]
        assert isinstance(spec, AssetSpec)
        detail = (f"attempt {launch.attempts} of {spec.retries + 1} failed; retrying in "
                  f"{format_duration(delay)}\n{error}")
        with self.ws.store.transaction() as db:
            self.ws.store.add_events(db, [(self.run_id, spec.name, "retried", None, detail, split_unit(name)[1])])

    def _whole(self) -> bool:
        """Whether the run settles every unit that has data: nothing outside it can hold a selected unit back."""
        return len(self.order) == len(self.graph.assets()) and self.partition in (None, "all")

    def _assessed_names(self) -> list[str]:
        """The selection, and its upstream assets unless it is whole: whether they are stale tells which
        selected units wait on them (``execute.waiting``). Assessing a selection assesses its upstreams anyway."""
        if self._whole():
            return self.order
        return self.order + sorted(self.graph.ancestors(self.order) - set(self.order))

    def _unit_inputs(self, name: str) -> list[str]:
        if is_partitioned(self.graph):
            return self.ws.partition_plan.unit_inputs(name)
        return list(self.graph.specs[name].inputs)

    def _waits(self, name: str, inputs: list[str] | None = None) -> list[str]:
        """Why a unit up to date with its upstreams' stored data stays stale after this run (none: it does not);
        ``inputs``: only these of its upstream units."""
        if not self._outside:
            return []
        index = self.ws.partition_plan.index if is_partitioned(self.graph) else {}
        return waiting_reasons(name, self._unit_inputs(name) if inputs is None else inputs, self._outside,
                               self._behind, set(self.order), narrowed=self.partition not in (None, "all"),
                               index=index)

    def _absent_outside(self, name: str) -> list[str]:
        """The upstream units of ``name`` with no data that ``--partition`` leaves out of the run (their assets are
        selected): a backfill of some days cannot make an asset that reads every day, so it waits, as for a stale
        unit left out, rather than failing the backfill as a skipped asset (a missing upstream *not selected* still
        skips it: the user asked for it alone)."""
        if not self._outside:
            return []
        return [u for u in self._unit_inputs(name) if self._outside.get(u) == "missing" and u not in self.current
                and split_unit(u)[1] != "" and split_unit(u)[0] in self.order]

    def _units(self, verdicts: dict[str, Assessment]) -> tuple[list[str], dict[str, tuple[str, ...]], dict[str, Assessment]]:
        """The units to settle (assets, or one per selected partition), their upstream units, their verdicts."""
        if not is_partitioned(self.graph):
            selected = set(self.order)
            return (list(self.order), {n: tuple(u for u in self.graph.upstream[n] if u in selected) for n in self.order},
                    verdicts)
        from assetflow.partitions.run import expand

        return expand(self.ws, self.order, self.partition, verdicts)

    def _check_partition(self) -> None:
        """What the run leaves out: the selected assets with no key at all, and those ``--partition`` names none of."""
        from assetflow.partitions.run import keyless, selected_keys

        if self.partition is not None:  # refused when no selected asset is partitioned
            self.left_out = selected_keys(self.ws, self.order, self.partition)[1]
        if is_partitioned(self.graph):
            self.left_out.update(keyless(self.ws, self.order))

    def _flush_events(self) -> None:
        if self._fresh_events:
            with self.ws.store.transaction("recording fresh partitions") as db:
                self.ws.store.add_events(db, self._fresh_events)
            self._fresh_events = []

    def _activate_views(self) -> None:
        """Switch partitioned assets' views (e.g. DuckDB) over their current partitions, once they settled."""
        if not is_partitioned(self.graph):
            return
        from assetflow.partitions.run import activate_views

        # Every selected partitioned asset: a run killed before this point left its view behind.
        for name, error in activate_views(self.ws, self.order).items():
            self._record_event(AssetResult(name, "failed", [], error=(
                f"The storage backend could not switch the view of `{name}` over its current partitions ({error}); "
                f"every partition stays recorded. Fix the storage problem, then run `assetflow materialize {name}`.")))

    def _upstream_hashes(self, spec: AssetSpec, key: str = "") -> tuple[dict[str, str], list[str]]:
        if is_partitioned(self.graph):
            from assetflow.partitions.run import unit_upstream

            return unit_upstream(self.ws, spec, key, self.results, self.current)
        hashes: dict[str, str] = {}
        problems: list[str] = []
        for up in spec.upstreams:
            upstream_spec = self.graph.specs[up]
            if isinstance(upstream_spec, SourceSpec):
                hashes[up] = self.ws.observe_sources([up])[up].data_hash
            elif up in self.results and self.results[up].outcome in ("failed", "skipped"):
                problems.append(upstream_problem(up, self.results[up]))
            elif up in self.current:
                hashes[up] = self.current[up].data_hash
            else:
                problems.append(f"upstream `{up}` has never been materialized (select it too, e.g. +{spec.name})")
        for dep in spec.deps:
            if dep in self.results and self.results[dep].outcome in ("failed", "skipped"):
                problems.append(upstream_problem(dep, self.results[dep]))
        return hashes, problems

    def _record_event(self, result: AssetResult) -> None:
        self.results[result.name] = result
        detail = result.error or ("; ".join(result.reasons) if result.reasons else None)
        row = (self.run_id, result.asset, result.outcome, result.duration, detail, result.partition)
        if result.partition and result.outcome == "fresh":
            # A fresh partition changes nothing: its event waits to be written with others, one
            # transaction per batch rather than per partition (a no-op over 10,000 partitions).
            self._fresh_events.append(row)
            if len(self._fresh_events) >= 1000:
                self._flush_events()
        else:
            with self.ws.store.transaction(f"recording the outcome of asset {result.name!r}") as db:
                self.ws.store.add_events(db, [row])
        failpoint("after_event")
        if self.listener is not None:
            self.listener(result)

    def _decide(self, name: str, predicted: Assessment) -> _Launch | None:
        """Settle an asset (or one partition) now (skipped, fresh, cutoff, restored) or return what to compute."""
        asset, key = split_unit(name)
        spec = self.graph.specs[asset]
        assert isinstance(spec, AssetSpec)
        upstream, problems = self._upstream_hashes(spec, key)
        absent = self._absent_outside(name) if problems else []
        if absent and all(any(f"`{u}`" in p for u in absent) for p in problems):
            self._behind.add(name)
            self._record_event(AssetResult(name, "waiting", self._waits(name, absent)))
            return None
        if problems:
            self._record_event(AssetResult(name, "skipped", problems))
            return None
        if self._outside and is_behind(self._unit_inputs(name), self._outside, self._behind):
            self._behind.add(name)  # however it settles, it stays stale: so does what it feeds
        current = self.current.get(name)
        if (predicted.fresh and predicted.recipe is not None and current is not None and predicted.current is not None
                and predicted.current.id == current.id and predicted.recipe.upstream == upstream):
            verdict = predicted  # predicted fresh, and its upstreams settled on the hashes predicted: still fresh
        else:
            verdict = self.ws.assess_one(spec, upstream, current, partition=key,
                                         walk_code=not self._workers_walk_code())
        if verdict.fresh and not self.force:
            waits = [] if predicted.fresh else self._waits(name)
            outcome: Outcome = "fresh" if predicted.fresh else "waiting" if waits else "cutoff"
            reasons = waits or ([] if predicted.fresh else [r for r in predicted.reasons if r.startswith("upstream")])
            checked = None
            if spec.checks and verdict.current is not None:  # a check added or edited since: judge the current version
                checked = self._judge(spec, verdict.current, restamp=False)
                if isinstance(checked, str):
                    self._record_event(AssetResult(name, "failed", reasons, error=checked))
                    return None
                if not checked.ok:
                    self._record_event(AssetResult(name, "failed", reasons, error=_check_failure(checked, current=True),
                                                   checks=checked.results))
                    return None
            self._record_event(AssetResult(name, outcome, reasons,
                                           checks=checked.results if isinstance(checked, CheckRun) else None,
                                           data_hash=verdict.current.data_hash if verdict.current else None))
            return None
        earlier = None if self.force else restorable(self.ws, verdict)
        if earlier is not None and earlier.id is not None:
            if spec.checks:  # an earlier version is judged like a new one (it may be a rejected or unchecked one)
                self._publish_checked(name, earlier, "restored", verdict.reasons)
                return None
            if not self._activated(name, earlier, verdict.reasons):
                return None
            with self.ws.store.transaction(f"restoring asset {name!r}") as db:
                self.ws.store.point(db, asset, earlier.id, key)
            self.current[name] = earlier
            self._record_event(AssetResult(name, "restored", verdict.reasons, data_hash=earlier.data_hash))
            return None
        task = ComputeTask(self.ws.config, asset, self._inputs(spec, key), self.ws.io_of(spec), self.code_token, key,
                           same_host=self._shares_host, walk_code=verdict.recipe is None)
        return _Launch(task, verdict, upstream, self._pools(spec))

    def _workers_walk_code(self) -> bool:
        """Whether new assets are decided without walking their code, their workers walking it
        (``ComputeTask.walk_code``): on a run with nothing recorded yet, by workers of their own (threads of this
        process would walk it one at a time, holding the GIL, as this process does)."""
        return self._code_in_workers and not getattr(self.executor, "computes_in_submit", False) \
            and not getattr(self.executor, "shares_process", False)

    def _pools(self, spec: AssetSpec) -> frozenset[str]:
        """The limited pools an asset holds a slot of: its ``pool=``, ``tag:KEY=VALUE``, ``group:NAME``."""
        if not self.ws.config.pools:
            return frozenset()
        names = [*spec.pools, *(f"tag:{k}={v}" for k, v in spec.tags.items())]
        if spec.group:
            names.append(f"group:{spec.group}")
        return frozenset(n for n in names if n in self.ws.config.pools)

    def _inputs(self, spec: AssetSpec, key: str = "") -> tuple[InputRef, ...]:
        if is_partitioned(self.graph):
            from assetflow.partitions.run import input_refs

            return input_refs(self.ws, spec, key, self.current)
        refs = []
        for up in spec.upstreams:
            if isinstance(self.graph.specs[up], SourceSpec):
                version = self.ws.observe_sources([up])[up]
                refs.append(InputRef(up, None, None, version.files))
            else:
                mat = self.current[up]
                refs.append(InputRef(up, mat.io, mat.location, data_hash=mat.data_hash))
        return tuple(refs)

    def _inputs_changed(self, spec: AssetSpec, upstream: dict[str, str], key: str = "") -> list[str]:
        """Rule 9: inputs re-checked after the run; a changed one voids the result.

        A source is compared by its data hash as observed now, not by whether its files moved since
        it was last observed: another asset's re-check may have observed it again already, and an
        asset decided against the earlier bytes may have read the later ones (recorded under the
        earlier hash, that version would be restored as fresh when the earlier bytes came back).
        Observed once for a batch of results: each had finished before the first re-check.
        """
        from assetflow.fingerprint.source import unchanged_since

        changed = []
        for up in spec.upstreams:
            if isinstance(self.graph.specs[up], SourceSpec) and getattr(self.graph.specs[up], "partitions", None):
                from assetflow.partitions.run import source_inputs_changed

                if source_inputs_changed(self.ws, spec, up, upstream.get(up), key):
                    changed.append(up)
                continue
            if isinstance(self.graph.specs[up], SourceSpec):
                data_hash = self._sources_rechecked.get(up)
                if data_hash is None:
                    version = self.ws.observe_sources([up])[up]
                    if not unchanged_since(version, self.ws.root):
                        self.ws.forget_source(up)
                        version = self.ws.observe_sources([up])[up]
                    data_hash = self._sources_rechecked[up] = version.data_hash
                if data_hash != upstream[up]:
                    changed.append(up)
        return changed

    def _finish(self, name: str, launch: _Launch, future: Future[object], error: str | None) -> None:
        """Settle an asset's last attempt: a failure is recorded now, a new version joins the batch
        ``_record_computed`` records (a checked one is recorded, judged and published at once)."""
        asset, key = split_unit(name)
        spec = self.graph.specs[asset]
        assert isinstance(spec, AssetSpec)
        verdict, upstream = launch.verdict, launch.upstream
        result = None if error is not None and not _has_result(future) else future.result()
        duration = result.finished_at - result.started_at if isinstance(result, ComputeResult) else None
        reasons = ["--force"] if self.force and verdict.fresh else verdict.reasons
        if error is not None:
            if isinstance(result, ComputeResult) and result.unreadable_source:
                self._record_unreadable_source(result.unreadable_source, upstream, error)
            if isinstance(result, ComputeResult) and result.moved_source:
                self._distrust_stat_of(result.moved_source)
            if launch.attempts > 1:
                error = f"Failed after {launch.attempts} attempts; the last error:\n{error}"
            self._record_event(AssetResult(name, "failed", reasons, duration, error=error, attempts=launch.attempts))
            return
        assert isinstance(result, ComputeResult)
        changed = self._inputs_changed(spec, upstream, key)
        if changed:
            error = changed_while_running(changed, name)
            self._record_event(AssetResult(name, "failed", reasons, duration, error=error, attempts=launch.attempts))
            return
        stored = result.stored
        assert stored is not None  # a result without an error carries what it stored
        recipe = verdict.recipe
        if recipe is None:  # a new asset, its code walked by its worker (``ComputeTask.walk_code``)
            if result.code is not None:
                self.ws.learn_code(spec.name, result.code)
            recipe = self.ws.recipe(spec, upstream, key)  # walks the code here if the worker did not
        code = self.ws.code_to_record(spec, self.current.get(name))
        mat = Materialization(
            asset=asset, partition=key, run_id=self.run_id, recipe_key=recipe.key, data_hash=stored.data_hash,
            code_fingerprint=code.digest, config=recipe.config, upstream=dict(recipe.upstream),
            deps=recipe.deps, io=recipe.io, location=stored.location, token=stored.token,
            rows=stored.rows, schema=stored.schema, bytes=stored.bytes, libraries=dict(code.libraries),
            started_at=result.started_at, finished_at=result.finished_at,
        )
        if spec.checks:  # stored, judged, and only then published (docs/checks.md)
            self._record_computed()  # a check may read any current version: record the batch first
            with self.ws.store.transaction(f"recording asset {name!r} before its checks") as db:
                mat_id = self.ws.store.record(db, mat, point=False)
                if code.sources:  # empty: stored with the earlier record of this digest (``code_to_record``)
                    self.ws.store.save_code_sources(db, code.digest, code.sources)
            failpoint("before_publish")
            self._publish_checked(name, dataclasses.replace(mat, id=mat_id), "ran", reasons, duration, launch.attempts)
            return
        result_of = AssetResult(name, "ran", reasons, duration, data_hash=stored.data_hash, attempts=launch.attempts)
        self._computed.append(_Computed(name, mat, code.sources, result_of))

    def _record_computed(self) -> None:
        """Publish and record the results settled since the last batch, all in one state transaction.

        A transaction costs the coordinator as much as the rest of an asset's record: results that
        finish together (docs/execution.md, "Batched recording") are committed together. Each is
        made current in its backend first, as one asset's would be; a crash before the commit
        loses only these records, never leaves one half-written.
        """
        batch = [c for c in self._computed if self._activated(c.name, c.mat, c.result.reasons, c.result.duration,
                                                               c.result.attempts)]
        self._computed = []
        if not batch:
            return
        names = ", ".join(repr(c.name) for c in batch[:3]) + (", ..." if len(batch) > 3 else "")
        what = f"recording asset {names}" if len(batch) == 1 else f"recording {len(batch)} assets ({names})"
        saved = set(self._saved_code)
        with self.ws.store.transaction(what) as db:
            ids = []
            for computed in batch:
                mat = computed.mat
                ids.append(self.ws.store.record(db, mat))
                if computed.sources and mat.code_fingerprint not in saved:  # once a run: partitions share code
                    self.ws.store.save_code_sources(db, mat.code_fingerprint, computed.sources)
                    saved.add(mat.code_fingerprint)
                failpoint("before_state_commit")
            self.ws.store.add_events(db, [(self.run_id, c.mat.asset, "ran", c.result.duration,
                                           "; ".join(c.result.reasons) or None, c.mat.partition) for c in batch])
        self._saved_code = saved
        for computed, mat_id in zip(batch, ids, strict=True):
            failpoint("after_state_commit")
            self.current[computed.name] = dataclasses.replace(computed.mat, id=mat_id)
            self.results[computed.name] = computed.result
            if self.listener is not None:
                self.listener(computed.result)

    def _judge(self, spec: AssetSpec, mat: Materialization, restamp: bool = True) -> CheckRun | str:
        """The verdicts on a version, or why it could not be judged (its data unreadable): never publishable."""
        if self._gate is None:
            self._gate = Gate(self.ws, self.run_id)
        try:
            return self._gate.judge(spec, mat, self.current, restamp)
        except AssetflowError as exc:  # the stored data or the state cannot be read: this asset fails, not the run
            return (f"The checks of `{spec.name}` could not read version {mat.id} ({type(exc).__name__}: {exc}); it "
                    f"was not published. Fix the problem named, then run `assetflow materialize` again.")

    def _publish_checked(self, name: str, mat: Materialization, outcome: Outcome, reasons: list[str],
                         duration: float | None = None, attempts: int = 0) -> None:
        """Judge a recorded but unpublished version; publish it (storage, then pointer) only if no blocking check failed."""
        asset, key = split_unit(name)
        spec = self.graph.specs[asset]
        assert isinstance(spec, AssetSpec) and mat.id is not None
        checked = self._judge(spec, mat)
        if isinstance(checked, str):
            self._record_event(AssetResult(name, "failed", reasons, duration, data_hash=mat.data_hash, error=checked,
                                           attempts=attempts))
            return
        if not checked.ok:
            self._record_event(AssetResult(name, "failed", reasons, duration, data_hash=mat.data_hash,
                                           error=checked.rejection(name in self.current), attempts=attempts,
                                           checks=checked.results))
            return
        if not self._activated(name, mat, reasons, duration, attempts):
            return
        detail = "; ".join([*reasons, *(f"warning: {one_line(w)}" for w in checked.warnings)]) or None
        with self.ws.store.transaction(f"publishing asset {name!r}") as db:
            self.ws.store.point(db, asset, mat.id, key)
            self.ws.store.add_events(db, [(self.run_id, asset, outcome, duration, detail, key)])
            failpoint("before_state_commit")
        failpoint("after_state_commit")
        self.current[name] = mat
        result = AssetResult(name, outcome, reasons, duration, data_hash=mat.data_hash, attempts=attempts,
                             checks=checked.results)
        self.results[name] = result
        if self.listener is not None:
            self.listener(result)

    def _distrust_stat_of(self, source: str) -> None:
        """A worker read bytes of ``source`` other than those it was decided against: forget its files' cached hashes.

        Their stat may be the very one the cache holds (a file rewritten in place with its mtime put back),
        which would have the next run decide against the old bytes again and fail the same way, forever.
        """
        from assetflow.fingerprint.source import source_files

        spec = self.graph.specs.get(source)
        if isinstance(spec, SourceSpec):
            with self.ws.store.cache_write(), self.ws.store.transaction() as db:
                self.ws.store.forget_stat_cache(db, [str(path) for path in source_files(spec, self.ws.root)])

    def _record_unreadable_source(self, source: str, upstream: dict[str, str], error: str) -> None:
        """A source's file could not be read: say so under the source's name, once per run, and keep it for status."""
        from assetflow.fingerprint.read_errors import remembered_failure

        spec = self.graph.specs.get(source)
        if not isinstance(spec, SourceSpec) or source in self._unreadable or source not in upstream:
            return
        self._unreadable.add(source)
        message = error.split(": ", 1)[1] if error.startswith("SourceReadError: ") else error
        self.ws.store.set_meta(*remembered_failure(spec, upstream[source], message))
        with self.ws.store.transaction(f"recording that source {source!r} cannot be read") as db:
            self.ws.store.add_events(db, [(self.run_id, source, "failed", None, message)])

    def _activated(self, name: str, mat: Materialization, reasons: list[str], duration: float | None = None,
                   attempts: int = 1) -> bool:
        """Let the backend make this version current (e.g. switch a SQL view) before the state says so.

        Done first so that a failure fails this asset alone and records nothing; the next run
        tries again. A partition's version is made current with its asset's view, after the run settles.
        """
        if mat.partition:
            return True
        try:
            self.ws.backends.activate(mat.io, name, mat.location)
        except Exception as exc:  # noqa: BLE001 - any backend failure fails this asset, not the run
            error = (f"The {mat.io} backend could not make this version of `{name}` current "
                     f"({type(exc).__name__}: {exc}); nothing was recorded, the previous version stays current. "
                     f"Fix the storage problem, then run `assetflow materialize` again.\n{traceback.format_exc()}")
            self._record_event(AssetResult(name, "failed", reasons, duration, error=error, attempts=attempts))
            return False
        return True


def _small_plan(stale: list[Assessment]) -> bool:
    """Whether computing ``stale`` here costs less than starting workers for it (``executors.small_work``,
    from each asset's last run)."""
    return small_work(None if v.current is None else v.current.finished_at - v.current.started_at for v in stale)


def _check_failure(checked: CheckRun, current: bool = False) -> str:
    """A current version failing a check added or edited since it was published."""
    return (checked.rejection().rsplit("\n", 1)[0] + f"\nThe current version of `{checked.asset}` fails a blocking "
            f"check added or changed since it was made; nothing downstream ran. Fix the data (or the check), then run "
            f"`assetflow materialize` again.")


def _same_bytes_again(future: Future[object]) -> bool:
    """Whether the attempt failed on a source that a retry would read the same way: an unreadable file, or
    files that changed after the asset was decided (rule 9: the run is told to start again instead)."""
    if not _has_result(future):
        return False
    result = future.result()
    return isinstance(result, ComputeResult) and bool(result.unreadable_source or result.moved_source)


def _has_result(future: Future[object]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None
