"""``status``: every selected asset's state (running, fresh, stale, missing, failed, overdue) and why.

The state is one word, the most urgent that applies (running > failed > missing > stale >
overdue > fresh; sources are observed or overdue, or failed while the last run could not
read their files as they still are); ``states`` lists every one that
applies, so a stale asset that is also past its freshness policy is both.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from assetflow.checks.report import one_line
from assetflow.declare import AssetSpec, SourceSpec
from assetflow.durations import format_duration
from assetflow.freshness import parse_policy

if TYPE_CHECKING:
    from assetflow.plan import Assessment
    from assetflow.state.store import Materialization
    from assetflow.workspace import Workspace

PRECEDENCE = ("running", "failed", "missing", "stale", "overdue", "fresh", "observed")


@dataclasses.dataclass(frozen=True)
class AssetStatus:
    """One row of ``status``: an asset or source, its state and every reason."""

    name: str
    kind: str  # "asset" | "source"
    state: str  # the most urgent of ``states``
    reasons: list[str]
    data_hash: str | None
    rows: int | None
    materialized_at: float | None  # when the current version finished (assets)
    group: str | None
    io: str | None
    states: tuple[str, ...] = ()
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    updated_at: float | None = None  # assets: materialized_at; sources: newest file modification
    freshness: str | None = None  # the declared policy
    overdue_by: float | None = None  # seconds past the policy
    partitions: dict[str, object] | None = None  # a partitioned asset or source: per-key states and ranges
    checks: list[dict[str, object]] | None = None  # verdicts of its checks on the current version (None: no checks)
    rejected: dict[str, object] | None = None  # the version the last run refused on a check, and its verdicts

    @property
    def ok(self) -> bool:
        """Fresh (or an observed source) and on time: what ``status --check`` accepts."""
        return self.state in ("fresh", "observed")


def overdue(policy_text: str | None, updated_at: float | None, now: float) -> tuple[float | None, str | None]:
    """(seconds overdue, the reason in words), or (None, None) when on time or without a policy."""
    if policy_text is None:
        return None, None
    policy = parse_policy(policy_text)
    by = policy.overdue_by(updated_at, now)
    if by is None:
        return None, None
    return by, f"overdue by {format_duration(int(by))} (freshness: {policy.describe()})"


def status_row(name: str, kind: str, states: list[str], reasons: list[str], **fields: object) -> AssetStatus:
    """The one builder of a status row (the full assessment here, the fast path in ``fastpath``):
    ``states`` in any order, kept in ``PRECEDENCE`` order, the first of them the row's ``state``."""
    if len(states) == 1 and states[0] in PRECEDENCE:
        ordered: tuple[str, ...] = (states[0],)  # most rows: a third of building one, 10,000 per full status
    else:
        ordered = tuple(s for s in PRECEDENCE if s in states)
    return AssetStatus(name=name, kind=kind, state=ordered[0], reasons=reasons, states=ordered,
                       **fields)  # type: ignore[arg-type]


def compute_status(ws: Workspace, names: Iterable[str], now: float | None = None) -> list[AssetStatus]:
    """Status rows for these names, in the order given."""
    names = list(names)
    now = time.time() if now is None else now
    specs = ws.graph.specs
    gone = _sources_without_files(ws, names)
    blocked = ws.graph.descendants(gone) if gone else set()
    asset_names = [n for n in names if isinstance(specs[n], AssetSpec) and n not in blocked]
    # The lock before the state: a run names an asset computing only after recording what it reads, so read in
    # this order every upstream of a running asset shows as recorded; the other way round it could show missing.
    in_progress = _in_progress(ws) if asset_names else None
    verdicts = ws.assess_all(asset_names) if asset_names else {}
    sources = ws.observe_sources([n for n in names if isinstance(specs[n], SourceSpec) and n not in gone
                                  and specs[n].partitions is None])
    last_events = ws.store.last_events() if asset_names else {}
    failures: dict[str, dict[str, str | None]] | None = None  # of partitions, read once if a partitioned asset asks
    current_versions: dict[str, Materialization] | None = None  # read once if a checked asset asks (its upstreams)
    rows = []
    for name in names:
        spec = specs[name]
        if name in gone or name in blocked:
            rows.append(_unreadable(ws, name, gone, now))
            continue
        if isinstance(spec, SourceSpec) and spec.partitions is not None:
            from assetflow.partitions.inspect import source_report

            why_list, report, updated = source_report(ws, spec)
            by, why = overdue(spec.freshness, updated, now)
            unreadable = _unreadable_partition(ws, spec)
            rows.append(status_row(name, "source", ["observed"] + (["overdue"] if by is not None else [])
                             + (["failed"] if unreadable else []),
                             ([unreadable] if unreadable else []) + why_list + ([why] if why else []),
                             data_hash=None, rows=None, materialized_at=None,
                             group=spec.group, io=None, tags=dict(spec.tags), updated_at=updated,
                             freshness=spec.freshness, overdue_by=by, partitions=report))
            continue
        if isinstance(spec, SourceSpec):
            version = sources[name]
            mtimes = [int(token.rsplit(":", 1)[1]) / 1e9 for _, token, _ in version.files]
            updated = max(mtimes) if mtimes else None
            by, why = overdue(spec.freshness, updated, now)
            unreadable = _unreadable_source(ws, spec, version.data_hash)
            rows.append(status_row(name, "source", ["observed"] + (["overdue"] if by is not None else [])
                             + (["failed"] if unreadable else []),
                             ([unreadable] if unreadable else []) + ([why] if why else []),
                             data_hash=version.data_hash, rows=None, materialized_at=None, group=spec.group,
                             io=None, tags=dict(spec.tags), updated_at=updated, freshness=spec.freshness,
                             overdue_by=by))
            continue
        assert isinstance(spec, AssetSpec)
        verdict = verdicts[name]
        current = verdict.current
        states = [verdict.state]
        reasons = [_upstream_failed(r, last_events) for r in verdict.reasons]
        last = last_events.get(name)
        rejected, changed = None, []
        if verdict.state != "fresh" and last is not None and last[0] == "failed":
            states.append("failed")
            if spec.checks and spec.partitions is None:
                if current_versions is None:
                    current_versions = ws.current_units()
                rejected, changed = _rejected(ws, spec, last[2], current, current_versions)
            reasons.insert(0, "the last run failed" + (f": {failure_summary(last[1])}" if last[1] else "")
                           + (f" (check{'s' if len(changed) > 1 else ''} {', '.join(changed)} no longer declared as "
                              f"then: the next run judges the version under the checks of now)" if changed else ""))
        report = None
        checked, lines = None, []
        if spec.checks and verdict.partitions is not None:
            if current_versions is None:
                current_versions = ws.current_units()
            checked, lines = _partition_verdicts(ws, spec, verdict, current_versions)
        if verdict.partitions is not None:
            from assetflow.partitions.inspect import partition_report

            if failures is None:
                from assetflow.state.partitions import last_failures

                failures = last_failures(ws.store)
            failed_keys = {k: failure_summary(d or "") for k, d in failures.get(name, {}).items()
                           if k in verdict.partitions and not verdict.partitions[k].fresh}
            report = partition_report(ws, name, verdict, failed_keys, _refused_partitions(verdict, checked or []))
            failed = [r for r in reasons if r.startswith("the last run failed")]
            failed_line = report.pop("failed")
            if failed_line:  # one partition failing fails its asset, naming the partitions as ranges
                states.append("failed")
                failed = [str(failed_line)]
            reasons = failed + [str(report.pop("summary"))]  # every key as ranges: fresh, stale (why), missing
            # its newest partition that holds data: the asset was updated then, whatever its other partitions are
            current = max((v.current for v in verdict.partitions.values() if v.current is not None
                           and v.state != "missing"), key=lambda m: m.finished_at, default=None)
        if checked is not None:
            if any(not v["passed"] and v["severity"] == "error" for v in checked) and "failed" not in states:
                states.append("failed")
            reasons = lines + reasons
        if spec.checks and report is None:
            if current_versions is None:
                current_versions = ws.current_units()
            checked = ws.verdicts_in_effect(spec, current, current_versions) if current is not None else []
            judged = {str(v["check"]) for v in checked}
            if current is not None:  # added or edited since the last run: the next run (or `check`) judges it
                reasons += [f"check {c.name} has no verdict on this version as it is defined now: "
                            f"`assetflow check {name}` judges it" for c in spec.checks if c.name not in judged]
            blocking = [v for v in checked if not v["passed"] and v["severity"] == "error"]
            if blocking and "failed" not in states:
                states.append("failed")
                reasons.insert(0, f"the current version fails {one_line(blocking[0])}")
            reasons += [f"warning: {one_line(v)}" for v in checked if not v["passed"] and v["severity"] != "error"]
        if in_progress is not None and name in in_progress[1]:
            states.append("running")
            reasons.insert(0, f"being computed now by run {in_progress[0]}")
        finished = current.finished_at if current is not None and (report is not None or verdict.state != "missing") \
            else None
        by, why = overdue(spec.freshness, finished, now)
        if why:
            states.append("overdue")
            reasons.append(why)
        rows.append(status_row(name, "asset", states, reasons,
                         data_hash=current.data_hash if current and report is None else None,
                         rows=_rows(verdict) if report is not None else current.rows if current else None, materialized_at=finished, group=spec.group,
                         io=ws.io_of(spec), tags=dict(spec.tags), updated_at=finished, freshness=spec.freshness,
                         overdue_by=by, partitions=report, checks=checked, rejected=rejected))
    return rows


def _rejected(ws: Workspace, spec: AssetSpec, run_id: str, current: Materialization | None,
              units: Mapping[str, Materialization]) -> tuple[dict[str, object] | None, list[str]]:
    """The version the run ``run_id`` refused on a blocking check, and that run's verdicts on it (None: the run
    failed otherwise), each placed where its check is declared now (None: no longer declared); with the
    refusing checks that are no longer declared as they were (removed, or edited: another fingerprint)."""
    verdicts = ws.store.checks_by_run(spec.name, run_id)
    refusing = [v for v in verdicts if not v["passed"] and v["severity"] == "error"]
    if not refusing:
        return None, []
    declared = {c.name: c.where for c in spec.checks}
    version = ws.store.version_judged(spec.name, run_id, str(verdicts[0]["data_hash"]),
                                      current.id if current is not None else None)
    now = set(ws.check_fingerprints.all_of(spec, "", units, version.upstream).values()) if version else set()
    changed = [str(v["check"]) for v in refusing if version is not None and v["fingerprint"] not in now]
    return ({"version": version.id if version is not None else None, "data_hash": verdicts[0]["data_hash"],
             "run_id": run_id, "checks": [dict(v, where=declared.get(str(v["check"]))) for v in verdicts]}, changed)


_STALE_UPSTREAM = re.compile(r"upstream `([^`\[]+)` is stale")


def _upstream_failed(reason: str, last_events: Mapping[str, Any]) -> str:
    """``upstream `a` is stale`` says why too when ``a``'s last run failed (``a`` shows as failed a line above:
    its previous version stands, and a rerun of it comes first)."""
    match = _STALE_UPSTREAM.fullmatch(reason)
    last = last_events.get(match.group(1)) if match else None
    return f"{reason} (its last run failed)" if last is not None and last[0] == "failed" else reason


def _partition_verdicts(ws: Workspace, spec: AssetSpec, verdict: Assessment,
                        current: Mapping[str, Materialization]) -> tuple[list[dict[str, object]], list[str]]:
    """The verdicts that stand on each current partition (each row names its ``partition``), and what status
    says of them: the partitions whose current version fails a blocking check or a warning, and those with
    a check not judged as it is defined now, as key ranges."""
    from assetflow.partitions.summary import ranges

    found: list[dict[str, object]] = []
    said: dict[tuple[str, str], list[tuple[str, str, str]]] = {}  # (kind, check) -> [(key, kind, line)]
    for key, part in (verdict.partitions or {}).items():
        if part.current is None:
            continue
        rows = [dict(v, partition=key) for v in ws.verdicts_in_effect(spec, part.current, current)]
        found += rows
        judged = {str(v["check"]) for v in rows}
        for chk in spec.checks:
            if chk.name not in judged:
                said.setdefault(("unjudged", chk.name), []).append((key, "unjudged", chk.name))
        for v in rows:
            if not v["passed"]:
                kind = "fails" if v["severity"] == "error" else "warning"
                said.setdefault((kind, str(v["check"])), []).append((key, kind, one_line(v)))
    order = ws.partition_plan.index.get(spec.name, {})  # a range spans keys that follow each other only
    lines = []
    for (kind, name), items in sorted(said.items()):
        spans = ", ".join(r.span for r in ranges(((key, kind, "") for key, _, _ in items), order))
        lines.append(f"the current version of partitions {spans} fails {items[0][2]}" if kind == "fails" else
                     f"warning: partitions {spans}: {items[0][2]}" if kind == "warning" else
                     f"check {name} has no verdict on partitions {spans} as it is defined now: "
                     f"`assetflow check {spec.name}` judges it")
    return found, lines


def _refused_partitions(verdict: Assessment, checked: list[dict[str, object]]) -> dict[str, str]:
    """The fresh partitions whose current version fails a blocking check as defined now (one added or edited
    since it was made), each with the failure: a run fails them again (``Runner._decide``), so they are not fresh."""
    refused: dict[str, str] = {}
    for v in checked:
        key = str(v["partition"])
        part = (verdict.partitions or {}).get(key)
        if not v["passed"] and v["severity"] == "error" and part is not None and part.fresh and key not in refused:
            refused[key] = f"its current version fails {one_line(v)}"
    return refused


def _rows(verdict: Assessment) -> int | None:
    """A partitioned asset's rows: the sum over its current partitions."""
    counts = [v.current.rows for v in (verdict.partitions or {}).values() if v.current is not None]
    return sum(c for c in counts if c is not None) if counts else None


def _in_progress(ws: Workspace) -> tuple[str, list[str]] | None:
    """The live run and the assets it computes right now, from the project lock (see ``ProjectLock``)."""
    from assetflow.state.lock import running_now

    from assetflow.partitions.units import split_unit

    runs = [str(r["run_id"]) for r in ws.store.runs(limit=5) if r["status"] == "running"]
    found = running_now(ws.config.state_path, runs) if runs else None
    return None if found is None else (found[0], sorted({split_unit(unit)[0] for unit in found[1]}))


def _unreadable_source(ws: Workspace, spec: SourceSpec, data_hash: str) -> str | None:
    """Why the last run could not read this source, if its content and reader options are still the same."""
    from assetflow.fingerprint.read_errors import failure_key, recalled_failure

    return recalled_failure(spec, data_hash, ws.store.get_meta(failure_key(spec)))


def _unreadable_partition(ws: Workspace, spec: SourceSpec) -> str | None:
    """Why the last run could not read one key's file of a partitioned source, while that file is unchanged (the
    failure is remembered with the hash the partition read: its key's, combined)."""
    from assetflow.fingerprint.read_errors import failure_key, recalled_failure
    from assetflow.partitions.units import combined_hash

    remembered = ws.store.get_meta(failure_key(spec))
    if not remembered:
        return None
    for key, version in ws.source_partitions(str(spec.name)).items():
        found = recalled_failure(spec, combined_hash([(key, version.data_hash)]), remembered)
        if found:
            return f"partition {key}: {found}"
    return None


def _sources_without_files(ws: Workspace, names: list[str]) -> dict[str, str]:
    """Sources (selected, or upstream of the selection) that match no file: name -> path."""
    from assetflow.fingerprint.source import source_files

    gone = {}
    for name in set(names) | ws.graph.ancestors(names):
        spec = ws.graph.specs[name]
        if isinstance(spec, SourceSpec) and spec.partitions is None and not source_files(spec, ws.root):
            gone[name] = spec.path
    return gone


def _unreadable(ws: Workspace, name: str, gone: dict[str, str], now: float) -> AssetStatus:
    """A source with no files is missing; what it feeds cannot be assessed, and says why."""
    spec = ws.graph.specs[name]
    if name in gone:
        return status_row(name, "source", ["missing"], [f"no file matches {gone[name]!r}"], data_hash=None, rows=None,
                    materialized_at=None, group=spec.group, io=None, tags=dict(spec.tags), freshness=spec.freshness)
    assert isinstance(spec, AssetSpec)
    mat = ws.store.current().get(name)
    reasons = [f"source `{s}` has no files ({gone[s]!r})" for s in sorted(set(gone) & ws.graph.ancestors([name]))]
    finished = mat.finished_at if mat else None
    return status_row(name, "asset", ["stale" if mat else "missing"], reasons, data_hash=mat.data_hash if mat else None,
                rows=mat.rows if mat else None, materialized_at=finished, group=spec.group, io=ws.io_of(spec),
                tags=dict(spec.tags), updated_at=finished, freshness=spec.freshness)


def failure_summary(text: str) -> str:
    """A failure in one line: a check's headline (its first line), else the traceback's last line."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("check "):
        return lines[0].strip()
    return lines[-1].strip() if lines else ""


def state_map(rows: Iterable[AssetStatus]) -> Mapping[str, tuple[str, ...]]:
    """Name -> every state that applies: what ``status:`` selectors match."""
    return {r.name: r.states for r in rows}


def selected(ws: Workspace, select: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[str]:
    """The names the selection expressions mean in ``ws``; the project is assessed only if a
    ``status:`` selector asks (``api.selected`` is the public face of this)."""
    from assetflow.select import select as select_names

    return select_names(ws.graph, list(select), list(exclude), default_io=ws.config.default_io,
                        statuses=lambda: state_map(compute_status(ws, ws.graph.order)))
