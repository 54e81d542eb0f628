"""Partition states as ranges: ``2024-01-01..2024-03-30 fresh, 2024-03-31 stale (...)``.

Thousands of partitions read as a few runs of consecutive keys sharing a state and a
reason; ``status``, ``--dry-run`` and the page all summarise through ``ranges``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable


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


def ranges(items: Iterable[tuple[str, str, str]]) -> list[KeyRange]:
    """Runs of consecutive (key, state, reason) items, in the order given, sharing state and reason."""
    found: list[KeyRange] = []
    for key, state, reason in items:
        if found and found[-1].state == state and found[-1].reason == reason:
            last = found[-1]
            found[-1] = dataclasses.replace(last, last=key, count=last.count + 1)
        else:
            found.append(KeyRange(key, key, state, reason))
    return found


def describe(found: list[KeyRange], limit: int = 6) -> str:
    """One line: the first ``limit`` ranges, then how many more."""
    shown = ", ".join(str(r) for r in found[:limit])
    return shown + (f", and {len(found) - limit} more ranges" if len(found) > limit else "")
