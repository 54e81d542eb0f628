"""Partition states as ranges: ``2024-01-01..2024-03-30 fresh, 2024-03-31 stale (...)``.

Thousands of partitions read as a few runs of consecutive keys sharing a state and a
reason; ``status``, ``--dry-run`` and the page all summarise through ``ranges``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Mapping, Sequence

NO_SOURCE_DATA = "no source data yet"  # an asset's key whose upstream data is absent
NO_FILE = "no file yet"  # a partitioned source's key without its file


@dataclasses.dataclass(frozen=True)
class KeyRange:
    first: str
    last: str
    state: str
    reason: str = ""
    count: int = 1

    @property
    def span(self) -> str:
        return self.first if self.first == self.last else f"{self.first}..{self.last}"

    def __str__(self) -> str:
        return f"{self.span} {self.state}" + (f" ({self.reason})" if self.reason else "")

    def as_json(self) -> dict[str, object]:
        return {"first": self.first, "last": self.last, "state": self.state, "reason": self.reason, "count": self.count}


def ranges(items: Iterable[tuple[str, str, str]], order: Mapping[str, int] | None = None) -> list[KeyRange]:
    """Runs of consecutive (key, state, reason) items, in the order given, sharing state and reason.

    ``order`` (key -> its position in the definition's keys) for items that are only some of
    the keys: a run then spans keys that follow each other in the definition, so that
    ``first..last`` selects exactly its keys.

    Reasons that name each key's own upstream partitions (``upstream `x[2024-01-02]` is stale``) are
    alike but for those keys: they merge as ``upstream `x` partitions are stale``; a lone key keeps
    its own words.
    """
    runs: list[list] = []  # [first, last, state, reason, count, its words without keys]: one object per run
    for key, state, reason in items:
        general = key_free(reason)
        if runs and runs[-1][2] == state and runs[-1][5] == general and (
                order is None or order.get(key) == order.get(runs[-1][1], -2) + 1):
            run = runs[-1]
            run[1] = key
            run[4] += 1
        else:
            runs.append([key, key, state, reason, 1, general])
    return [KeyRange(first, last, state, reason if count == 1 else general, count)
            for first, last, state, reason, count, general in runs]


_UNIT = re.compile(r"`([^`\[\]]+)\[[^`]*\]` is\b")  # `x[2024-01-02]` is
_UNITS = re.compile(r"`([^`]+)` partitions [^`]+? \(\d+\) are\b")  # `x` partitions 2024-01-01..2024-01-03 (3) are


def key_free(reason: str) -> str:
    """A reason without the upstream partitions it names: ``upstream `x[2024-01-02]` is stale`` and
    ``upstream `x` partitions 2024-01-01..2024-01-02 (2) are stale`` both read ``upstream `x` partitions are stale``."""
    if "`" not in reason:
        return reason
    return _UNITS.sub(r"`\1` partitions are", _UNIT.sub(r"`\1` partitions are", reason))


def describe(found: list[KeyRange], limit: int = 6) -> str:
    """One line: the first ``limit`` ranges, then how many more."""
    shown = ", ".join(str(r) for r in found[:limit])
    return shown + (f", and {len(found) - limit} more ranges" if len(found) > limit else "")


def source_reasons(found: list[KeyRange]) -> list[str]:
    """A partitioned source's reasons: its first ranges (observed, or missing without a file)."""
    return [", ".join(str(r) for r in found[:6])] if found else ["no partition yet"]


def report(items: list[tuple[str, str, str]]) -> tuple[dict[str, object], list[KeyRange]]:
    """status --json's per-key states and ranges of (key, state, reason) items, and the ranges."""
    found = ranges(items)
    return {"partitions": {k: s for k, s, _ in items}, "ranges": [r.as_json() for r in found]}, found


def snapshot_report(keys: Sequence[str], missing: Collection[str], source: bool,
                    unmapped: Mapping[str, str] | None = None) -> tuple[dict[str, object], list[str]]:
    """The status report and reasons of a partitioned asset (or source) that the no-op snapshot
    vouches for: every key with data is fresh (observed), the others have none (``unmapped``: those
    no upstream partition maps to, with why; ``PartitionPlan.missing_reason``)."""
    unmapped = unmapped or {}
    if source:
        items = [(k, "missing", NO_FILE) if k in missing else (k, "observed", "") for k in keys]
    else:
        items = [(k, "missing", unmapped.get(k, NO_SOURCE_DATA)) if k in missing else (k, "fresh", "") for k in keys]
    found_report, found = report(items)
    if source:
        return found_report, source_reasons(found)
    return found_report, [describe(found) if found else "no partitions yet"]
