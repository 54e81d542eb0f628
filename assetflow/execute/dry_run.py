"""``materialize --dry-run``: what a run would do, predicted from the state and the version store.

The run is simulated in dependency order. An upstream that stays fresh or will be restored
has a data hash known now, so what it feeds is assessed exactly as the run will assess it
at its turn: fresh, cut off (the upstream returns to the data it was made from), waiting (up to
date with the stored data of an upstream that is stale and not selected), restored
(the version store holds a version with exactly this recipe), or run. An upstream that must
run has no data hash until it has run, so what it feeds "may restore" when the store holds an
intact version made with its code, configuration and storage and the upstream data known so
far (it is restored if the new upstream data equals what that version was made from), and
otherwise runs (or is cut off, should the upstream make the data it had: that is not predicted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.execute.results import MAY_RESTORE
from assetflow.execute.waiting import is_behind, unsettled_outside, waiting_reasons
from assetflow.plan import Assessment
from assetflow.state.store import Materialization

if TYPE_CHECKING:
    from assetflow.workspace import Workspace



@dataclasses.dataclass(frozen=True)
class Predicted:
    """One asset's predicted outcome (a run outcome, or ``may_restore``) and why."""

    name: str
    outcome: str
    reasons: list[str]
    data_hash: str | None = None  # known when it stays fresh or is restored
    refusing: str | None = None  # failed on a check: the check's verdict in one line


def refusing_check(ws: Workspace, spec: AssetSpec, mat: Materialization | None,
                   current: Mapping[str, Materialization]) -> str | None:
    """The blocking check that the version ``mat``, found fresh, fails as defined now (added or edited since it was
    published), in one line: a run judges it from the cache and fails the asset (``Runner._decide``), so a plan
    must say so too. ``current``: the current units, as ``Workspace.verdicts_in_effect`` takes them."""
    if not spec.checks or mat is None:
        return None
    from assetflow.checks.report import one_line

    refused = [v for v in ws.verdicts_in_effect(spec, mat, current) if not v["passed"] and v["severity"] == "error"]
    return one_line(refused[0]) if refused else None


def refused_reason(line: str) -> str:
    """A plan's reason for failing a fresh version on ``refusing_check``'s check."""
    return f"its current version fails a check added or changed since it was made (the run fails it again): {line}"


def blocked_reason(up: str, outcome: str, refusing: str | None) -> str:
    """Why a plan skips what ``up`` (failed or skipped in the plan) feeds, in the run's words (``upstream_problem``)."""
    return f"upstream `{up}` failed its {refusing}" if outcome == "failed" and refusing else f"upstream `{up}` {outcome}"


def restorable(ws: Workspace, verdict: Assessment) -> Materialization | None:
    """An earlier, intact materialization made from exactly the recipe this asset has now."""
    if verdict.recipe is None:
        return None
    for candidate in ws.store.by_recipe(verdict.name, verdict.recipe.key, verdict.recipe.partition):
        if verdict.current is not None and candidate.id == verdict.current.id:
            continue
        if ws.check(candidate).status == "ok":
            return candidate
    return None


def predict(ws: Workspace, order: Sequence[str], force: bool = False) -> list[Predicted]:
    """Each asset of ``order`` (a topological order of assets) with what a run would do to it."""
    upstream = sorted(ws.graph.ancestors(order) - set(order))  # assessed anyway: whether they are stale
    predicted = ws.assess_all([*order, *upstream])
    unsettled = unsettled_outside(predicted, set(order))
    behind: set[str] = set()  # settled and stale all the same: through a stale upstream outside the selection
    # The current versions the assessment read, upstreams outside the selection included (parsing them
    # all again costs ~1 s at 30,000 assets).
    current = {n: v.current for n, v in predicted.items() if v.current is not None}
    after: dict[str, str | None] = {}  # asset -> its data hash after the run (None: known only once it ran)
    blocked: dict[str, str] = {}  # asset failed or skipped in the plan -> why what it feeds is skipped
    plan = []
    for name in order:
        verdict = predicted[name]
        spec = ws.graph.specs[name]
        assert isinstance(spec, AssetSpec)
        if force:
            plan.append(Predicted(name, "ran", ["--force", *verdict.reasons]))
            after[name] = None
            continue
        problems = [blocked[u] for u in spec.inputs if u in blocked]
        if problems:  # the run skips it before anything else
            plan.append(Predicted(name, "skipped", problems))
            blocked[name] = blocked_reason(name, "skipped", None)
            after[name] = None
            continue
        hashes, unknown = _upstream_after(ws, spec, after, current)
        if hashes is None:  # an upstream outside the selection was never built: the run will say so
            item = Predicted(name, "ran", verdict.reasons)
        elif unknown:
            item = _with_unknown_upstream(ws, spec, verdict, hashes, unknown)
        else:
            item = _with_known_upstream(ws, spec, verdict, hashes, current.get(name))
        waits = waiting_reasons(name, spec.inputs, unsettled, behind, order) if item.outcome == "cutoff" else []
        if waits:
            item = dataclasses.replace(item, outcome="waiting", reasons=waits)
        refusing = refusing_check(ws, spec, current.get(name), current) \
            if item.outcome in ("fresh", "cutoff", "waiting") else None
        if refusing is not None:
            item = Predicted(name, "failed", [*item.reasons, refused_reason(refusing)], refusing=refusing)
        if item.outcome == "failed":
            blocked[name] = blocked_reason(name, "failed", item.refusing)
        if waits or (item.outcome != "fresh" and is_behind(spec.inputs, unsettled, behind)):
            behind.add(name)
        plan.append(item)
        after[name] = item.data_hash
    return plan


def _upstream_after(ws: Workspace, spec: AssetSpec, after: Mapping[str, str | None],
                    current: Mapping[str, Materialization]) -> tuple[dict[str, str] | None, list[str]]:
    """The upstream data hashes the asset will see at its turn, and the upstreams not known before they run."""
    hashes: dict[str, str] = {}
    unknown = []
    for up in spec.upstreams:
        if isinstance(ws.graph.specs[up], SourceSpec):
            hashes[up] = ws.observe_sources([up])[up].data_hash
        elif up in after:
            known = after[up]
            if known is None:
                unknown.append(up)
            else:
                hashes[up] = known
        elif up in current:
            hashes[up] = current[up].data_hash
        else:
            return None, []
    return hashes, unknown


def _with_known_upstream(ws: Workspace, spec: AssetSpec, predicted: Assessment, hashes: dict[str, str],
                         current: Materialization | None) -> Predicted:
    """Every upstream's data is known: the same decision the run takes at the asset's turn."""
    if predicted.fresh and predicted.current is not None and predicted.recipe is not None \
            and predicted.recipe.upstream == hashes:
        return Predicted(spec.name, "fresh", [], predicted.current.data_hash)  # assessed with these very inputs
    verdict = ws.assess_one(spec, hashes, current)
    if verdict.fresh and verdict.current is not None:
        if predicted.fresh:
            return Predicted(spec.name, "fresh", [], verdict.current.data_hash)
        reasons = [r for r in predicted.reasons if r.startswith("upstream")]
        return Predicted(spec.name, "cutoff", reasons, verdict.current.data_hash)
    earlier = restorable(ws, verdict)
    if earlier is not None:
        refused = [v for v in (ws.verdicts_in_effect(spec, earlier) if spec.checks else [])
                   if not v["passed"] and v["severity"] == "error"]
        if refused:  # the run would judge it again from the cache, refuse it and keep the current version
            from assetflow.checks.report import one_line

            return Predicted(spec.name, "failed", [*verdict.reasons, f"the version it would restore (materialization "
                                                   f"{earlier.id}) fails {one_line(refused[0])}: it stays refused"],
                             refusing=one_line(refused[0]))
        return Predicted(spec.name, "restored", verdict.reasons, earlier.data_hash)
    return Predicted(spec.name, "ran", predicted.reasons)


def _with_unknown_upstream(ws: Workspace, spec: AssetSpec, predicted: Assessment, hashes: dict[str, str],
                           unknown: list[str]) -> Predicted:
    """An upstream runs first: a restore is possible if a stored version agrees on all that is known."""
    probe = ws.recipe(spec, {**hashes, **dict.fromkeys(unknown, "")})  # the recipe but for the unknown hashes
    current = predicted.current.id if predicted.current is not None else None
    for candidate in ws.store.history(spec.name, limit=1_000):
        if candidate.id == current:
            continue  # the version it has: equal upstream data would be a cutoff, not a restore
        if candidate.partition or (probe.code, probe.config, probe.io) != (
                candidate.code_fingerprint, candidate.config, candidate.io):
            continue
        if set(candidate.upstream) != set(spec.upstreams) or set(candidate.deps) != set(probe.deps):
            continue
        if any(candidate.upstream[u] != h for u, h in hashes.items()):
            continue
        if ws.check(candidate).status == "ok":
            waits = ", ".join(f"`{u}`" for u in unknown)
            return Predicted(spec.name, MAY_RESTORE, [*predicted.reasons,
                             f"restored if {waits} produce{'s' if len(unknown) == 1 else ''} data seen before"])
    return Predicted(spec.name, "ran", predicted.reasons)
