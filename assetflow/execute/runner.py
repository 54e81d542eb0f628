"""``materialize``: run exactly the stale assets of a selection, in dependency order.

Each asset is decided at its turn, once its upstreams have settled: fresh (skip),
restorable (an earlier version with this exact recipe exists: move the pointer),
or stale (compute it). A recomputed asset whose data hash did not change leaves its
downstream fresh (early cutoff). A failure skips only its downstream.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Literal

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.execute.executors import Executor, InProcessExecutor
from assetflow.execute.lock import ProjectLock
from assetflow.execute.task import ComputeResult, ComputeTask, InputRef, compute, register_workspace
from assetflow.fastpath import SNAPSHOT_KEY, build_snapshot
from assetflow.plan import Assessment
from assetflow.state.store import Materialization
from assetflow.workspace import Workspace, process_alive

Outcome = Literal["ran", "restored", "fresh", "cutoff", "failed", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("ran", "restored", "fresh", "cutoff", "failed", "skipped")


@dataclasses.dataclass
class AssetResult:
    name: str
    outcome: Outcome
    reasons: list[str]
    duration: float | None = None
    data_hash: str | None = None
    error: str | None = None


@dataclasses.dataclass
class RunResult:
    run_id: str
    results: dict[str, AssetResult]
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(r.outcome not in ("failed", "skipped") for r in self.results.values())

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for result in self.results.values():
            counts[result.outcome] += 1
        return counts

    def by_outcome(self, outcome: Outcome) -> list[AssetResult]:
        return [r for r in self.results.values() if r.outcome == outcome]


Listener = Callable[[AssetResult], None]


class Run:
    """One materialization run over a workspace."""

    def __init__(
        self,
        workspace: Workspace,
        selection: Iterable[str],
        *,
        force: bool = False,
        executor: Executor | None = None,
        listener: Listener | None = None,
    ) -> None:
        self.ws = workspace
        self.graph = workspace.graph
        selected = set(selection)
        self.order = [n for n in self.graph.order if n in selected and isinstance(self.graph.specs[n], AssetSpec)]
        self.force = force
        self.executor = executor or InProcessExecutor()
        self.listener = listener
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.results: dict[str, AssetResult] = {}

    # -- planning ---------------------------------------------------------------------------

    def plan(self) -> RunResult:
        """What would happen, with each asset's reasons; nothing runs, nothing is written."""
        verdicts = self.ws.assess_all(self.order)
        results = {}
        for name in self.order:
            verdict = verdicts[name]
            if self.force:
                results[name] = AssetResult(name, "ran", ["--force"] + verdict.reasons)
            elif verdict.fresh:
                results[name] = AssetResult(name, "fresh", [])
            elif self._restorable(verdict):
                results[name] = AssetResult(name, "restored", verdict.reasons)
            else:
                results[name] = AssetResult(name, "ran", verdict.reasons)
        return RunResult(self.run_id, results, dry_run=True)

    def _restorable(self, verdict: Assessment) -> Materialization | None:
        """An earlier, intact materialization made from exactly the recipe this asset has now."""
        if verdict.recipe is None:
            return None
        for candidate in self.ws.store.by_recipe(verdict.name, verdict.recipe.key):
            if verdict.current is not None and candidate.id == verdict.current.id:
                continue
            if self.ws.check(candidate).status == "ok":
                return candidate
        return None

    # -- running ----------------------------------------------------------------------------

    def execute(self, wait_for_lock: bool = False) -> RunResult:
        lock = ProjectLock(self.ws.config.state_path)
        lock.acquire(self.run_id, wait=wait_for_lock)
        try:
            store = self.ws.store
            store.mark_abandoned_runs(process_alive)
            store.set_meta(SNAPSHOT_KEY, None)
            store.begin_run(self.run_id, " ".join(sys.argv), os.getpid(), socket.gethostname())
            status = "failed"
            try:
                self._run_all()
                status = "succeeded" if all(r.outcome not in ("failed", "skipped") for r in self.results.values()) else "failed"
                if status == "succeeded" and len(self.order) == len(self.graph.assets()):
                    snapshot = self._snapshot()
                    if snapshot is not None:
                        store.set_meta(SNAPSHOT_KEY, snapshot)
            except BaseException:
                status = "interrupted"
                raise
            finally:
                result = RunResult(self.run_id, self.results)
                store.finish_run(self.run_id, status, result.counts())
        finally:
            lock.release()
            self.executor.shutdown()
        return result

    def _snapshot(self) -> str | None:
        """Everything the no-op fast path must find unchanged to skip loading the project."""
        sources = {}
        for spec in self.graph.sources():
            assert spec.name is not None
            version = self.ws.observe_sources([spec.name])[spec.name]
            sources[spec.name] = (spec.path, {str(self.ws.root / rel): token for rel, token, _ in version.files})
        current = self.ws.store.current()  # re-read: checks may have refreshed tokens
        assets = [(m.asset, m.io, m.location, m.data_hash, m.token, self.ws.backends.local_file(m.io, m.location))
                  for m in current.values()]
        return build_snapshot(self.ws.config, self.ws.code_files(), sources, assets, self.ws.loaded_at_ns)

    def _run_all(self) -> None:
        register_workspace(self.ws)
        predicted = self.ws.assess_all(self.order)
        self.current = self.ws.store.current()
        self.hashes: dict[str, str] = {}
        selected = set(self.order)
        remaining = {n: sum(1 for u in self.graph.upstream[n] if u in selected) for n in self.order}
        ready = deque(n for n in self.order if remaining[n] == 0)
        running: dict[Future[object], tuple[str, Assessment, dict[str, str]]] = {}

        def settle(name: str) -> None:
            for down in self.graph.downstream[name]:
                if down in remaining:
                    remaining[down] -= 1
                    if remaining[down] == 0:
                        ready.append(down)

        while ready or running:
            while ready:
                name = ready.popleft()
                submitted = self._decide(name, predicted[name])
                if submitted is None:
                    settle(name)
                else:
                    running[submitted[0]] = (name, *submitted[1:])
            if running:
                for future in self.executor.wait_any(running):
                    name, verdict, upstream = running.pop(future)
                    self._finish(name, verdict, upstream, future)
                    settle(name)

    def _upstream_hashes(self, spec: AssetSpec) -> tuple[dict[str, str], list[str]]:
        hashes: dict[str, str] = {}
        problems: list[str] = []
        for up in spec.upstreams:
            upstream_spec = self.graph.specs[up]
            if isinstance(upstream_spec, SourceSpec):
                hashes[up] = self.ws.observe_sources([up])[up].data_hash
            elif up in self.results and self.results[up].outcome in ("failed", "skipped"):
                problems.append(f"upstream `{up}` {self.results[up].outcome}")
            elif up in self.current:
                hashes[up] = self.current[up].data_hash
            else:
                problems.append(f"upstream `{up}` has never been materialized (select it too, e.g. +{spec.name})")
        for dep in spec.deps:
            if dep in self.results and self.results[dep].outcome in ("failed", "skipped"):
                problems.append(f"upstream `{dep}` {self.results[dep].outcome}")
        return hashes, problems

    def _record_event(self, result: AssetResult) -> None:
        self.results[result.name] = result
        with self.ws.store.transaction() as db:
            detail = result.error or ("; ".join(result.reasons) if result.reasons else None)
            self.ws.store.add_events(db, [(self.run_id, result.name, result.outcome, result.duration, detail)])
        if self.listener is not None:
            self.listener(result)

    def _decide(self, name: str, predicted: Assessment) -> tuple[Future[object], Assessment, dict[str, str]] | None:
        spec = self.graph.specs[name]
        assert isinstance(spec, AssetSpec)
        upstream, problems = self._upstream_hashes(spec)
        if problems:
            self._record_event(AssetResult(name, "skipped", problems))
            return None
        verdict = self.ws.assess_one(spec, upstream, self.current.get(name))
        if verdict.fresh and not self.force:
            outcome: Outcome = "fresh" if predicted.fresh else "cutoff"
            reasons = [] if predicted.fresh else [r for r in predicted.reasons if r.startswith("upstream")]
            self._record_event(AssetResult(name, outcome, reasons, data_hash=verdict.current.data_hash if verdict.current else None))
            return None
        earlier = None if self.force else self._restorable(verdict)
        if earlier is not None and earlier.id is not None:
            with self.ws.store.transaction() as db:
                self.ws.store.point(db, name, earlier.id)
            self.ws.backends.activate(earlier.io, name, earlier.location)
            self.current[name] = earlier
            self._record_event(AssetResult(name, "restored", verdict.reasons, data_hash=earlier.data_hash))
            return None
        task = ComputeTask(self.ws.config, name, self._inputs(spec), self.ws.io_of(spec))
        return self.executor.submit(compute, task), verdict, upstream

    def _inputs(self, spec: AssetSpec) -> tuple[InputRef, ...]:
        refs = []
        for up in spec.upstreams:
            if isinstance(self.graph.specs[up], SourceSpec):
                version = self.ws.observe_sources([up])[up]
                refs.append(InputRef(up, None, None, version.files))
            else:
                mat = self.current[up]
                refs.append(InputRef(up, mat.io, mat.location))
        return tuple(refs)

    def _inputs_changed(self, spec: AssetSpec, upstream: dict[str, str]) -> list[str]:
        """Rule 9: inputs re-checked after the run; a changed one voids the result."""
        from assetflow.fingerprint.source import unchanged_since

        changed = []
        for up in spec.upstreams:
            if isinstance(self.graph.specs[up], SourceSpec):
                version = self.ws.observe_sources([up])[up]
                if not unchanged_since(version, self.ws.root):
                    self.ws.forget_source(up)
                    if self.ws.observe_sources([up])[up].data_hash != upstream[up]:
                        changed.append(up)
        return changed

    def _finish(self, name: str, verdict: Assessment, upstream: dict[str, str], future: Future[object]) -> None:
        spec = self.graph.specs[name]
        assert isinstance(spec, AssetSpec)
        result = future.result()
        assert isinstance(result, ComputeResult)
        duration = result.finished_at - result.started_at
        reasons = ["--force"] if self.force and verdict.fresh else verdict.reasons
        if result.error is not None or result.stored is None:
            self._record_event(AssetResult(name, "failed", reasons, duration, error=result.error))
            return
        changed = self._inputs_changed(spec, upstream)
        if changed:
            message = (f"input {', '.join(f'`{c}`' for c in changed)} changed while `{name}` ran; its result "
                       f"was not recorded. Run `assetflow materialize` again.")
            self._record_event(AssetResult(name, "failed", reasons, duration, error=message))
            return
        stored = result.stored
        assert verdict.recipe is not None
        code = self.ws.code(spec)
        mat = Materialization(
            asset=name, run_id=self.run_id, recipe_key=verdict.recipe.key, data_hash=stored.data_hash,
            code_fingerprint=code.digest, config=verdict.recipe.config, upstream=dict(verdict.recipe.upstream),
            deps=verdict.recipe.deps, io=verdict.recipe.io, location=stored.location, token=stored.token,
            rows=stored.rows, schema=stored.schema, bytes=stored.bytes, libraries=dict(code.libraries),
            started_at=result.started_at, finished_at=result.finished_at,
        )
        asset_result = AssetResult(name, "ran", reasons, duration, data_hash=stored.data_hash)
        with self.ws.store.transaction() as db:
            mat_id = self.ws.store.record(db, mat)
            self.ws.store.save_code_sources(db, code.digest, code.sources)
            self.ws.store.add_events(db, [(self.run_id, name, "ran", duration, "; ".join(reasons) or None)])
        self.ws.backends.activate(mat.io, name, mat.location)
        self.current[name] = dataclasses.replace(mat, id=mat_id)
        self.results[name] = asset_result
        if self.listener is not None:
            self.listener(asset_result)
