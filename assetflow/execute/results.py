"""What a run returns: each asset's result and the run's, light enough to build without the engine.

The runner fills them in; the no-op fast path (``api.materialize`` with nothing to do) builds
one from the state store alone, before the engine (or the user's code) is imported, so this
module imports nothing heavier than the standard library.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Outcome = Literal["ran", "restored", "fresh", "cutoff", "waiting", "failed", "skipped", "may_restore"]
# and a plan's may_restore. "waiting": up to date with its upstreams' stored data, but stale because one of them
# is and was not selected (docs/concepts.md, rule 6): nothing to run until that upstream runs.
OUTCOMES: tuple[Outcome, ...] = ("ran", "restored", "fresh", "cutoff", "waiting", "failed", "skipped")
MAY_RESTORE: Outcome = "may_restore"  # the plan's outcome when it cannot know before running


@dataclasses.dataclass
class AssetResult:
    name: str
    outcome: Outcome
    reasons: list[str]
    duration: float | None = None
    data_hash: str | None = None
    error: str | None = None
    attempts: int = 0  # how many times it was computed in this run (0: not computed)
    checks: list[dict[str, object]] | None = None  # the verdicts of its checks on the version it settled on

    @property
    def asset(self) -> str:
        """The asset's name (``name`` is ``asset[key]`` for one partition of a partitioned asset)."""
        from assetflow.partitions.units import split_unit

        return split_unit(self.name)[0]

    @property
    def partition(self) -> str:
        from assetflow.partitions.units import split_unit

        return split_unit(self.name)[1]


@dataclasses.dataclass
class RunResult:
    """A run's results by name. ``run_id`` is None, and ``fast_path`` True, when the no-op
    snapshot proved everything fresh and no run was started."""

    run_id: str | None
    results: dict[str, AssetResult]
    dry_run: bool = False
    fast_path: bool = False
    key_order: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    """A plan's partitioned assets: key -> its position in the definition's keys (its ranges span consecutive keys)."""
    left_out: dict[str, str] = dataclasses.field(default_factory=dict)
    """Selected partitioned assets that ``--partition`` names no key of, with why: left as they are."""

    @property
    def ok(self) -> bool:
        return all(r.outcome not in ("failed", "skipped") for r in self.results.values())

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES + ((MAY_RESTORE,) if self.dry_run else ()), 0)
        for result in self.results.values():
            counts[result.outcome] += 1
        return counts

    def by_outcome(self, outcome: Outcome) -> list[AssetResult]:
        return [r for r in self.results.values() if r.outcome == outcome]
