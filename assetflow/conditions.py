"""Automation conditions: when the daemon should materialize an asset, composed with ``&``, ``|``, ``~``.

Grammar (Python expressions, like selections are text)::

    condition := on_missing() | on_upstream_change() | on_cron(CRON, timezone=TZ)
               | on_overdue() | eager()
               | condition & condition | condition | condition | ~condition

- ``on_missing()``: the asset has no current version.
- ``on_upstream_change()``: an upstream's *current data hash* differs from the one the asset's current
  version was made from. Content-aware: an upstream recomputed to equal data (early cutoff) or restored
  to the version the asset was made from changes nothing, so it triggers nothing.
- ``on_cron(CRON)``: once per cron tick, as soon as every upstream asset has a version made since that
  tick (sources count as updated: they are observed at the tick). The asset is recomputed even if fresh.
- ``on_overdue()``: the asset's freshness policy (``@asset(freshness=...)``) says it is overdue; it is
  recomputed even if fresh.
- ``eager()``: ``on_missing() | on_upstream_change()``.

A condition that holds fires once per *input state* (its upstreams' data hashes, its current version and
the project's code): an asset whose run failed is not retried every tick, only when something it reads
changes (use ``retries=`` for flaky work). Declarations only describe; nothing here reads the state:
``evaluate`` gets an ``AssetFacts`` the daemon builds. See docs/automation.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from assetflow.errors import DefinitionError


@dataclasses.dataclass(frozen=True)
class AssetFacts:
    """What a condition may look at for one asset, at one instant (built by the daemon)."""

    name: str
    now: float
    has_version: bool
    finished_at: float | None  # when the current version was made
    made_from: Mapping[str, str]  # upstream -> data hash the current version was made from
    upstream_hashes: Mapping[str, str | None]  # upstream -> its current data hash (None: missing)
    upstream_updated: Mapping[str, float | None]  # upstream asset -> when its current version was made
    overdue_reason: str | None  # the freshness policy's verdict, None when on time
    cron_consumed: Mapping[str, float]  # cron key -> the newest tick already acted on
    first_seen: float  # when the daemon first evaluated this asset's condition (no replay before it)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A condition's answer: whether it holds, why, and what acting on it consumes."""

    holds: bool
    reason: str
    force: bool = False  # recompute even if fresh (time-based conditions)
    consumes: tuple[tuple[str, float], ...] = ()  # (cron key, tick) to record as acted on
    # (cron key, tick) to record as seen whether or not the condition fires: a tick under ``~`` (``~on_cron``
    # is false at the evaluation that sees the tick, then true again; no firing would ever consume it).
    seen: tuple[tuple[str, float], ...] = ()
    parts: tuple[Verdict, ...] = ()  # the operands' verdicts, for ``why``

    def lines(self, depth: int = 0) -> list[str]:
        """The verdict tree as indented text lines."""
        mark = "yes" if self.holds else "no"
        out = [f"{'  ' * depth}{mark}: {self.reason}"]
        for part in self.parts:
            out.extend(part.lines(depth + 1))
        return out

    def to_json(self) -> dict[str, object]:
        return {"holds": self.holds, "reason": self.reason, "force": self.force,
                "parts": [p.to_json() for p in self.parts]}


class AutomationCondition:
    """Base class: subclasses describe themselves and evaluate against ``AssetFacts``."""

    def evaluate(self, facts: AssetFacts) -> Verdict:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def crons(self) -> list[OnCron]:
        """Every ``on_cron`` inside (the daemon wakes up at their ticks)."""
        return []

    def __and__(self, other: object) -> AutomationCondition:
        return All(self, _condition(other, "&"))

    def __or__(self, other: object) -> AutomationCondition:
        return Any_(self, _condition(other, "|"))

    def __invert__(self) -> AutomationCondition:
        return Not(self)

    def __repr__(self) -> str:
        return self.describe()


def _condition(value: object, operator: str) -> AutomationCondition:
    if not isinstance(value, AutomationCondition):
        raise DefinitionError(f"automation conditions combine with {operator} only with other conditions "
                              f"(on_missing(), on_upstream_change(), on_cron(...), on_overdue()); got {value!r}.")
    return value


class OnMissing(AutomationCondition):
    def evaluate(self, facts: AssetFacts) -> Verdict:
        if facts.has_version:
            return Verdict(False, "has a current version")
        return Verdict(True, "missing: never materialized or its data is gone")

    def describe(self) -> str:
        return "on_missing()"


class OnUpstreamChange(AutomationCondition):
    def evaluate(self, facts: AssetFacts) -> Verdict:
        if not facts.has_version:
            return Verdict(False, "no current version to compare upstream data with")
        changed = []
        for up, now_hash in sorted(facts.upstream_hashes.items()):
            old = facts.made_from.get(up)
            if now_hash is not None and now_hash != old:
                changed.append(f"`{up}` has new data ({_short(old)} -> {_short(now_hash)})")
        if not changed:
            return Verdict(False, "no upstream has new data (equal data hashes trigger nothing)")
        return Verdict(True, "upstream " + "; ".join(changed))

    def describe(self) -> str:
        return "on_upstream_change()"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class OnCron(AutomationCondition):
    cron: str
    timezone: str | None = None

    @property
    def key(self) -> str:
        return f"{self.cron}@{self.timezone or 'local'}"

    def crons(self) -> list[OnCron]:
        return [self]

    def evaluate(self, facts: AssetFacts) -> Verdict:
        from assetflow.cron import parse_cron

        tick = parse_cron(self.cron, self.timezone).previous(facts.now)
        done = max(facts.cron_consumed.get(self.key, 0.0), facts.first_seen)
        if tick is None or tick <= done:
            return Verdict(False, f"no tick of {self.cron!r} since the last one acted on")
        waiting = sorted(up for up, at in facts.upstream_updated.items() if at is None or at < tick)
        if waiting:
            return Verdict(False, f"tick {_when(tick)} of {self.cron!r} waits for upstream "
                                  f"{', '.join(f'`{u}`' for u in waiting)} to be updated since it")
        return Verdict(True, f"tick {_when(tick)} of {self.cron!r}", force=True, consumes=((self.key, tick),))

    def describe(self) -> str:
        return f"on_cron({self.cron!r}" + (f", timezone={self.timezone!r})" if self.timezone else ")")


class OnOverdue(AutomationCondition):
    def evaluate(self, facts: AssetFacts) -> Verdict:
        if facts.overdue_reason is None:
            return Verdict(False, "not overdue (or no freshness policy)")
        return Verdict(True, facts.overdue_reason, force=True)

    def describe(self) -> str:
        return "on_overdue()"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class All(AutomationCondition):
    left: AutomationCondition
    right: AutomationCondition

    def crons(self) -> list[OnCron]:
        return self.left.crons() + self.right.crons()

    def evaluate(self, facts: AssetFacts) -> Verdict:
        a, b = self.left.evaluate(facts), self.right.evaluate(facts)
        holds = a.holds and b.holds
        reason = "both hold" if holds else "not both: " + (a.reason if not a.holds else b.reason)
        return Verdict(holds, reason, force=holds and (a.force or b.force),
                       consumes=(a.consumes + b.consumes) if holds else (), seen=a.seen + b.seen, parts=(a, b))

    def describe(self) -> str:
        return f"({self.left.describe()} & {self.right.describe()})"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Any_(AutomationCondition):  # noqa: N801 - ``Any`` is typing's
    left: AutomationCondition
    right: AutomationCondition

    def crons(self) -> list[OnCron]:
        return self.left.crons() + self.right.crons()

    def evaluate(self, facts: AssetFacts) -> Verdict:
        a, b = self.left.evaluate(facts), self.right.evaluate(facts)
        held = [v for v in (a, b) if v.holds]
        if not held:
            return Verdict(False, "neither holds", seen=a.seen + b.seen, parts=(a, b))
        return Verdict(True, "; ".join(v.reason for v in held), force=any(v.force for v in held),
                       consumes=tuple(c for v in held for c in v.consumes), seen=a.seen + b.seen, parts=(a, b))

    def describe(self) -> str:
        return f"({self.left.describe()} | {self.right.describe()})"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Not(AutomationCondition):
    inner: AutomationCondition

    def crons(self) -> list[OnCron]:
        return self.inner.crons()

    def evaluate(self, facts: AssetFacts) -> Verdict:
        v = self.inner.evaluate(facts)
        return Verdict(not v.holds, f"not ({v.reason})", seen=v.seen + (v.consumes if v.holds else ()), parts=(v,))

    def describe(self) -> str:
        return f"~{self.inner.describe()}"


def on_missing() -> AutomationCondition:
    """Holds while the asset has no current version."""
    return OnMissing()


def on_upstream_change() -> AutomationCondition:
    """Holds when an upstream's current data hash differs from the one the current version was made from."""
    return OnUpstreamChange()


def on_cron(cron: str, timezone: str | None = None) -> AutomationCondition:
    """Holds once per tick of ``cron`` (in ``timezone``), once every upstream asset was updated since it."""
    from assetflow.cron import CronError, parse_cron

    try:
        parse_cron(cron, timezone)
    except CronError as exc:
        raise DefinitionError(f"on_cron({cron!r}): {exc}.") from None
    return OnCron(cron, timezone)


def on_overdue() -> AutomationCondition:
    """Holds while the asset's freshness policy says it is overdue."""
    return OnOverdue()


def eager() -> AutomationCondition:
    """``on_missing() | on_upstream_change()``: keep the asset up to date with its inputs."""
    return OnMissing() | OnUpstreamChange()


def validate_automation(value: object, *, what: str, where: str) -> AutomationCondition | None:
    """Check ``@asset(automation=...)`` at declaration time."""
    if value is None or isinstance(value, AutomationCondition):
        return value
    raise DefinitionError(
        f"{what} at {where}: automation={value!r} is not a condition. Use e.g. "
        f"automation=on_upstream_change() | on_cron(\"0 * * * *\") (from assetflow.automation)."
    )


def _short(digest: str | None) -> str:
    if digest is None:
        return "none"
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}:{hexdigest[:8]}" if hexdigest else digest[:12]


def _when(instant: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(instant, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
