"""The publish gate: a checked asset's new version is stored, judged, and only then made current.

The runner records the new materialization without moving its pointer, hits the
``before_publish`` failpoint, then asks ``Gate.judge`` for the verdicts of the asset's checks;
only if no blocking check failed does it activate the storage (a view switch) and move the
pointer. A process killed anywhere in between leaves the previous version current: the
unpublished one is found by its recipe on the next run and judged before it is restored.

Verdicts are cached by (check fingerprint, data hash) in the state store (``checks.standing``): an
unchanged asset is not re-checked, and editing one check re-runs that check alone. Checks run in the
coordinating process (see docs/checks.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from assetflow.checks.definitions import Check, FunctionCheck, PartitionColumn, Relationship
from assetflow.checks.evaluate import Verdict, run_builtins, run_function
from assetflow.checks.report import one_line
from assetflow.contracts import InputRef
from assetflow.declare import AssetSpec, SourceSpec
from assetflow.failpoints import failpoint
from assetflow.state.store import Materialization
from assetflow.workspace import Workspace


@dataclasses.dataclass(frozen=True)
class CheckRun:
    """The verdicts on one version of an asset (or partition), each as the state stores it."""

    asset: str
    partition: str
    materialization: Materialization
    results: list[dict[str, Any]]

    @property
    def blocking(self) -> list[dict[str, Any]]:
        """Failed checks of severity error: the version must not be published."""
        return [r for r in self.results if not r["passed"] and r["severity"] == "error"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["passed"] and r["severity"] != "error"]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def headline(self) -> str:
        """``check not_null(id): 3 null rows, e.g. row 17``: the first failure, one line."""
        failed = self.blocking or self.warnings
        if not failed:
            return f"{len(self.results)} check{'s' if len(self.results) != 1 else ''} passed"
        first = one_line(failed[0])
        more = len(failed) - 1
        return first + (f" (and {more} more failed check{'s' if more != 1 else ''})" if more else "")

    def rejection(self, had_current: bool = True) -> str:
        """Why the version was not published, and what to do: the asset's failure as the run records it."""
        mat = self.materialization
        unit = f"{self.asset}[{self.partition}]" if self.partition else self.asset
        lines = [self.headline()]
        for r in self.blocking + self.warnings:
            lines.append(f"  {r['severity']:<5} {one_line(r)}  ({r.get('where', '?')})")
            trace = (r.get("findings") or {}).get("traceback") if isinstance(r.get("findings"), dict) else None
            if trace:
                lines.append("    " + trace.rstrip().replace("\n", "\n    "))
        lines.append(
            (f"The previous version of `{unit}` stays current" if had_current else f"`{unit}` has no current version yet")
            + f"; nothing downstream ran on the rejected one. It is kept "
            f"as version {mat.id} ({mat.data_hash[:19]}): `assetflow show {self.asset} --version {mat.id}` or "
            f"assetflow.load({self.asset!r}, version={mat.id}{_partition_arg(self.partition)}) shows it. Fix the "
            f"data (or the check), then run `assetflow materialize` again.")
        return "\n".join(lines)


def _partition_arg(partition: str) -> str:
    return f", partition={partition!r}" if partition else ""


class Gate:
    """Judges versions of the workspace's assets; fingerprints are the workspace's (``checks.standing``)."""

    def __init__(self, ws: Workspace, run_id: str | None = None) -> None:
        self.ws = ws
        self.run_id = run_id

    def judge(self, spec: AssetSpec, mat: Materialization, current: Mapping[str, Materialization],
              restamp: bool = True, recorded: Mapping[str, str] | None = None) -> CheckRun:
        """The verdicts of every check of ``spec`` on ``mat``: cached ones read, the others run and recorded.

        ``current`` is the version of each upstream (by name) the checks read; ``recorded`` the data hashes of
        those that are not the current ones (``check_current``: the versions ``mat`` was made from).
        ``restamp`` records the cached verdicts again under this run (a version being published);
        a fresh asset's cached verdicts are only read, so a no-op over many partitions writes nothing.
        """
        fingerprints = self.ws.check_fingerprints.all_of(spec, mat.partition, current, recorded)
        cached = self.ws.store.check_results(mat.data_hash, fingerprints.values())
        to_run = [c for c in spec.checks if fingerprints[id(c)] not in cached]
        verdicts = {id(v.check): v for v in self._run(spec, mat, to_run, current)} if to_run else {}
        results = []
        for chk in spec.checks:
            fp = fingerprints[id(chk)]
            if fp in cached:
                row = dict(cached[fp], cached=True)
            else:
                row = _row(verdicts[id(chk)], fp, mat, self.run_id)
            row.update(check=chk.name, severity=chk.severity, where=chk.where, run_id=self.run_id)
            results.append(row)
        written = [dict(r, asset=spec.name, partition=mat.partition) for r in results if restamp or not r.get("cached")]
        if written:
            with self.ws.store.cache_write(), self.ws.store.transaction(f"recording the checks of asset {spec.name!r}") as db:
                self.ws.store.save_check_results(db, written)
        failpoint("after_checks")
        return CheckRun(spec.name, mat.partition, mat, results)

    def _run(self, spec: AssetSpec, mat: Materialization, checks: list[Check],
             current: Mapping[str, Materialization]) -> list[Verdict]:
        windows = [c for c in checks if isinstance(c, PartitionColumn)]
        builtins = [c for c in checks if not isinstance(c, FunctionCheck | PartitionColumn)]
        functions = [c for c in checks if isinstance(c, FunctionCheck)]
        # A version this run made had its rows refused before it was stored if outside its window
        # (``partitions.values``): judging it again would read back every new partition (1.35x the CPU of a cold
        # run of 1,000 partitions), for a verdict known already.
        made_here = self.run_id is not None and mat.run_id == self.run_id
        verdicts = [Verdict(c, True, "") for c in windows] if made_here else []
        if made_here and not builtins and not functions:
            return verdicts
        backend = self.ws.backends.get(mat.io)
        value = backend.load(spec.name, mat.location, "polars" if functions else "lazy")
        received: dict[str, InputRef] | None = None  # a partition's inputs, listed when a check first reads one
        loaded: dict[str, Any] = {}

        def upstream(name: str) -> Any:
            """What the checks read of an upstream: what a partition received, else the upstream's current value."""
            nonlocal received
            if name not in loaded:
                if received is None:
                    received = self._unit_inputs(spec, mat, current)
                loaded[name] = self._received(spec, received[name]) if name in received else self._value(name, current)
            return loaded[name]

        others = {c.to_asset: self._column(c, upstream) for c in builtins if isinstance(c, Relationship)}
        verdicts += run_builtins(builtins, value, spec.name, {k: v for k, v in others.items() if v is not None})
        if not made_here:
            verdicts += [_window_verdict(c, spec, mat.partition, value) for c in windows]
        for fc in functions:
            assert isinstance(fc, FunctionCheck)
            try:
                inputs = {p: upstream(p) for p in fc.parameters}
            except Exception as exc:  # noqa: BLE001 - an upstream that cannot be read fails this check alone
                verdicts.append(Verdict(fc, False, f"check {fc.name} of asset `{spec.name}` ({fc.where}) could not "
                                                   f"read its upstream: {type(exc).__name__}: {exc}", error=True))
                continue
            verdicts.append(run_function(fc, value, inputs, spec.name))
        return verdicts

    def _unit_inputs(self, spec: AssetSpec, mat: Materialization,
                     current: Mapping[str, Materialization]) -> dict[str, InputRef]:
        """Where a partition's inputs are, as the run hands them to its asset (the mapped upstream partitions, a
        partitioned source's file for that key); none for an unpartitioned asset."""
        if not mat.partition:
            return {}
        from assetflow.partitions.run import input_refs

        return {ref.name: ref for ref in input_refs(self.ws, spec, mat.partition, current)}

    def _received(self, spec: AssetSpec, ref: InputRef) -> Any:
        """An input as the asset received it, through the run's own loader, as a polars DataFrame."""
        from assetflow.execute.task import load_input

        return load_input(self.ws, spec, ref, kind="polars")

    def _value(self, name: str, current: Mapping[str, Materialization]) -> Any:
        """The current value of an upstream asset or source, as an asset would receive it."""
        upstream = self.ws.graph.specs[name]
        if isinstance(upstream, SourceSpec):
            from assetflow.fingerprint.source import read_source

            return read_source(upstream, self.ws.observe_sources([name])[name], self.ws.root)
        if upstream.partitions is not None:
            from assetflow.partitions.inspect import load_partitions

            return load_partitions(self.ws, upstream, None, None, "polars")
        mat = current.get(name)
        if mat is None:
            raise LookupError(f"`{name}` has no current version")
        return self.ws.backends.get(mat.io).load(name, mat.location, "polars")

    def _column(self, chk: Relationship, upstream: Callable[[str], Any]) -> Any:
        """The target column of a relationship, as a Series (None: the target has no such column or version)."""
        import polars as pl

        try:
            value = upstream(chk.to_asset)
        except (LookupError, KeyError):
            return None
        if isinstance(value, pl.LazyFrame):
            value = value.collect()
        if not isinstance(value, pl.DataFrame) or chk.to_column not in value.columns:
            return None
        return value.get_column(chk.to_column)


def _window_verdict(chk: PartitionColumn, spec: AssetSpec, key: str, value: Any) -> Verdict:
    """``partition_column`` on a stored version: what a run refuses in a new partition's rows, as a verdict."""
    import polars as pl

    from assetflow.partitions.values import partition_column_problem

    problem = partition_column_problem(spec, key, value.collect() if isinstance(value, pl.LazyFrame) else value)
    return Verdict(chk, problem is None, "" if problem is None else f"partition {key!r}: {problem}")


def _row(verdict: Verdict, fingerprint: str, mat: Materialization, run_id: str | None) -> dict[str, Any]:
    return {"fingerprint": fingerprint, "data_hash": mat.data_hash, "asset": mat.asset, "partition": mat.partition,
            "check": verdict.check.name, "severity": verdict.check.severity, "passed": verdict.passed,
            "summary": verdict.summary, "findings": verdict.findings, "metadata": dict(verdict.metadata),
            "run_id": run_id, "cached": False, "error": verdict.error}


def check_current(ws: Workspace, names: list[str], run_id: str | None = None) -> list[CheckRun]:
    """``assetflow check``: the verdicts on the current version of each selected asset (each partition).

    Cached verdicts are read, missing ones run and recorded; no pointer moves, whatever they say.
    """
    from assetflow.partitions.units import split_unit

    current = ws.current_units()
    gate = Gate(ws, run_id)
    runs = []
    for name in names:
        spec = ws.graph.specs[name]
        if not isinstance(spec, AssetSpec) or not spec.checks:
            continue
        units = sorted(u for u in current if split_unit(u)[0] == name)
        for unit in units:
            made_with, recorded = _as_made(ws, current[unit], current)
            runs.append(gate.judge(spec, current[unit], made_with, recorded=recorded))
    return runs


def _as_made(ws: Workspace, mat: Materialization,
             current: Mapping[str, Materialization]) -> tuple[dict[str, Materialization], dict[str, str]]:
    """The upstream versions ``mat`` was made from, where they are no longer current (a stale asset), and their
    hashes: judged with them, a version keeps the verdicts it was published with, as ``status`` shows them
    (``checks.standing``), instead of being judged against upstream data it never read."""
    made_with = dict(current)
    recorded: dict[str, str] = {}
    for up, data_hash in (mat.upstream or {}).items():
        upstream = ws.graph.specs.get(up)
        now = current.get(up)
        if isinstance(upstream, AssetSpec) and upstream.partitions is not None:
            read = _partitions_read(ws, mat, up, data_hash, current)
            if read:
                made_with.update(read)
                recorded[up] = data_hash
            continue
        if not isinstance(upstream, AssetSpec) or now is None or now.data_hash == data_hash:
            continue
        earlier = ws.store.by_data_hash(up, data_hash)
        if earlier:
            made_with[up] = earlier[0]
            recorded[up] = data_hash
    return made_with, recorded


def _partitions_read(ws: Workspace, mat: Materialization, up: str, data_hash: str,
                     current: Mapping[str, Materialization]) -> dict[str, Materialization]:
    """The versions of partitioned upstream ``up`` that ``mat`` read, where one is no longer current: the current
    partitions its mapping names, one of them replaced by an earlier version of its key, that combine to the hash
    ``mat`` recorded (one partition changed since: a day's file edited and its asset run alone). Empty when it read
    the current ones, or when more than one changed (then it is judged with the current ones)."""
    from assetflow.partitions.units import hashes_read, unit_id

    keys = ws.partition_plan.upstream_keys(mat.asset, up, mat.partition)
    now = [current.get(unit_id(up, k)) for k in keys]
    if not keys or any(v is None for v in now):
        return {}
    history: list[Materialization] = []

    def earlier(key: str) -> list[str]:
        if not history:
            history.extend(ws.store.history(up, limit=10_000))
        return [m.data_hash for m in history if m.partition == key]

    found = hashes_read(keys, data_hash, [v.data_hash for v in now if v is not None], earlier)
    changed = [(k, h) for k, h, v in zip(keys, found or [], now) if v is not None and h != v.data_hash]
    return {unit_id(up, k): next(m for m in history if m.partition == k and m.data_hash == h) for k, h in changed}
