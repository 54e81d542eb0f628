"""Run policies: durations, retry backoff, and concurrency pools.

Kept free of heavy imports: ``@asset(timeout="10m")`` parses its duration here at
declaration time, while the user's module is being imported.
"""

from __future__ import annotations

import datetime
import random
import re
from collections import deque
from collections.abc import Iterable, Mapping

__all__ = ["MAX_RETRY_DELAY", "PoolLimits", "format_duration", "parse_duration", "retry_delay"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*")
MAX_RETRY_DELAY = 600.0  # backoff never waits longer than this between two attempts


def parse_duration(value: object, *, what: str) -> float:
    """Seconds from ``"10m"``, ``"1h30m"``, ``"45s"``, ``"250ms"``, a number of seconds or a timedelta.

    ``what`` names the option in the error message (``"timeout of asset 'x' at f.py:3"``).
    """
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        seconds, position = 0.0, 0
        for match in _DURATION.finditer(value):
            if match.start() != position:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            position = match.end()
        if position != len(value):
            raise ValueError(
                f"{what}: cannot read {value!r} as a duration; write it like \"30s\", \"10m\", "
                f"\"1h30m\" or \"250ms\" (units ms, s, m, h, d, w), or give a number of seconds."
            )
    else:
        raise ValueError(f"{what}: expected a duration such as \"10m\" or a number of seconds; got {value!r}.")
    if not seconds > 0:
        raise ValueError(f"{what}: a duration must be positive; got {value!r}.")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form: ``250ms``, ``45s``, ``10m``, ``1h30m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts)


def retry_delay(first: float, failures: int, *, jitter: random.Random | None = None) -> float:
    """Exponential backoff: ``first``, then twice as long after every further failure, capped.

    With ``jitter`` each delay is drawn from [50%, 100%] of its nominal value, so many
    assets that failed together (a database restart) do not all retry at the same instant.
    """
    nominal = min(MAX_RETRY_DELAY, first * 2 ** max(0, failures - 1))
    return nominal if jitter is None else nominal * (0.5 + 0.5 * jitter.random())


class PoolLimits:
    """Admission control for concurrency pools: at most ``limit`` running assets per pool.

    Assets waiting for a slot are queued by the set of limited pools they belong to, so
    finding the next one that may start costs O(number of distinct pool sets), not
    O(waiting assets), even when thousands wait behind a saturated pool.
    """

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self.in_use: dict[str, int] = dict.fromkeys(self.limits, 0)
        self._queues: dict[frozenset[str], deque[tuple[int, str]]] = {}
        self._sequence = 0

    def pools_of(self, pools: Iterable[str]) -> frozenset[str]:
        """The limited pools among ``pools`` (a pool without a configured limit is unlimited)."""
        return frozenset(p for p in pools if p in self.limits)

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def push(self, name: str, pools: frozenset[str]) -> None:
        self._sequence += 1
        self._queues.setdefault(pools, deque()).append((self._sequence, name))

    def pop_startable(self) -> tuple[str, frozenset[str]] | None:
        """The longest-waiting asset whose pools all have room, taking its slots; else None."""
        best: tuple[int, frozenset[str]] | None = None
        for pools, queue in self._queues.items():
            if queue and (best is None or queue[0][0] < best[0]) and all(
                self.in_use[p] < self.limits[p] for p in pools
            ):
                best = (queue[0][0], pools)
        if best is None:
            return None
        pools = best[1]
        _, name = self._queues[pools].popleft()
        for pool in pools:
            self.in_use[pool] += 1
        return name, pools

    def release(self, pools: frozenset[str]) -> None:
        for pool in pools:
            self.in_use[pool] -= 1
