"""Run policies: retry backoff and concurrency pools (durations are ``assetflow.durations``)."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping

__all__ = ["MAX_RETRY_DELAY", "PoolLimits", "retry_delay"]

MAX_RETRY_DELAY = 600.0  # backoff never waits longer than this between two attempts
LOOKAHEAD = 32  # waiting assets scored for the next free slot (``PoolLimits.pop_startable``)


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

    def pop_startable(self, score: Callable[[str], int] | None = None) -> tuple[str, frozenset[str]] | None:
        """The longest-waiting asset whose pools all have room, taking its slots; else None.

        With ``score``, of the first ``LOOKAHEAD`` waiting in that asset's queue, the first one
        scoring highest (an executor's ``affinity``: where its inputs already are).
        """
        best: tuple[int, frozenset[str]] | None = None
        for pools, queue in self._queues.items():
            if queue and (best is None or queue[0][0] < best[0]) and all(
                self.in_use[p] < self.limits[p] for p in pools
            ):
                best = (queue[0][0], pools)
        if best is None:
            return None
        pools = best[1]
        queue = self._queues[pools]
        index = 0
        if score is not None and len(queue) > 1:
            scores = [score(queue[i][1]) for i in range(min(LOOKAHEAD, len(queue)))]
            index = scores.index(max(scores))
        _, name = queue[index]
        del queue[index]
        for pool in pools:
            self.in_use[pool] += 1
        return name, pools

    def release(self, pools: frozenset[str]) -> None:
        for pool in pools:
            self.in_use[pool] -= 1
