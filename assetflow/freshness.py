"""Freshness policies (docs/concepts.md, rule 7): when an asset is *overdue*, whatever its staleness.

Two kinds, declared as a string on ``@asset(freshness=...)`` or ``source(..., freshness=...)``:

- a maximum age, ``"1d"``, ``"6h"``, ``"1h30m"`` (a duration, see ``assetflow.durations``): overdue once the
  current version is older than that;
- an expected schedule, ``"cron:0 6 * * *"``, optionally with a grace period,
  ``"cron:0 6 * * * +2h"``: overdue once a scheduled time (plus the grace) has passed
  without a newer version.

For an asset, "updated" is when its current materialization finished; for a source, the
newest modification time of its files. Overdue never makes anything stale: it is reported.
"""

from __future__ import annotations

import dataclasses

from assetflow.durations import format_duration, parse_duration
from assetflow.errors import DefinitionError

CRON_PREFIX = "cron:"


@dataclasses.dataclass(frozen=True)
class FreshnessPolicy:
    """A parsed policy; ``text`` is what the user wrote."""

    text: str
    max_age: float | None = None
    cron: str | None = None
    grace: float = 0.0

    def due(self, now: float) -> float | None:
        """The time by which the newest version must have been made, judged at ``now``."""
        if self.max_age is not None:
            return now - self.max_age
        assert self.cron is not None
        from assetflow.cron import parse_cron

        tick = parse_cron(self.cron).previous(now - self.grace)
        return tick

    def overdue_by(self, updated_at: float | None, now: float) -> float | None:
        """Seconds past the policy, or None when on time (or never made: that is "missing")."""
        if updated_at is None:
            return None
        due = self.due(now)
        if due is None or updated_at >= due:
            return None
        if self.max_age is not None:
            return now - updated_at - self.max_age
        return now - (due + self.grace)

    def describe(self) -> str:
        if self.max_age is not None:
            return f"at most {self.text} old"
        return f"expected on cron {self.cron!r}" + (f" within {format_duration(self.grace)}" if self.grace else "")


def parse_policy(text: str) -> FreshnessPolicy:
    """Read a policy string; raises ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string such as '1d' or 'cron:0 6 * * *', got {type(text).__name__}")
    stripped = text.strip()
    if stripped.startswith(CRON_PREFIX):
        from assetflow.cron import CronError, parse_cron

        body = stripped[len(CRON_PREFIX):].strip()
        grace = 0.0
        head, plus, tail = body.rpartition("+")
        if plus and tail.strip() and tail.strip()[-1].isalpha():
            grace = parse_duration(tail, what="grace period")
            body = head.strip()
        try:
            parse_cron(body)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return FreshnessPolicy(text, cron=body, grace=grace)
    return FreshnessPolicy(text, max_age=parse_duration(stripped, what="maximum age"))


def validate_policy(text: str | None, *, what: str, where: str) -> str | None:
    """Check a declared policy at declaration time; the text is kept, parsed when used."""
    if text is None:
        return None
    try:
        parse_policy(text)
    except ValueError as exc:
        raise DefinitionError(
            f"{what} at {where}: freshness={text!r} is not a policy ({exc}). Use a maximum age such as "
            f"freshness=\"1d\" or \"6h\", or a schedule such as freshness=\"cron:0 6 * * *\" "
            f"(optionally \"cron:0 6 * * * +2h\" for a grace period)."
        ) from None
    return text
