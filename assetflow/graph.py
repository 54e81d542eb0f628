"""The asset graph: built from declarations, validated, and walked in order.

Validation happens once, up front, so every later layer may assume a graph with
no cycles, no unknown upstreams and one definition per name.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from assetflow.errors import CycleError, UnknownAssetError

if TYPE_CHECKING:  # loaded with the first project: the fast path's cached graph needs no declaration
    from assetflow.declare import AssetSpec, SourceSpec, Spec


class AssetGraph:
    """Assets and sources, their upstream and downstream edges, and a topological order."""

    def __init__(self, specs: Mapping[str, Spec]) -> None:
        self.specs: dict[str, Spec] = dict(specs)
        self._check_upstreams()
        self.upstream: dict[str, tuple[str, ...]] = {n: tuple(s.inputs) for n, s in self.specs.items()}
        downstream: dict[str, list[str]] = {name: [] for name in self.specs}
        for name, ups in self.upstream.items():
            for up in ups:
                downstream[up].append(name)
        self.downstream: dict[str, tuple[str, ...]] = {n: tuple(sorted(d)) for n, d in downstream.items()}
        self.order: tuple[str, ...] = self._topological_order()
        if self.partitioned:
            from assetflow.partitions.units import validate

            validate(self)  # a mapping that cannot work is a definition error at load, naming both assets

    @functools.cached_property
    def partitioned(self) -> bool:
        """Whether any asset or source is partitioned: asked per asset by the runner, so scanned once."""
        return any(getattr(s, "partitions", None) is not None for s in self.specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def __len__(self) -> int:
        return len(self.specs)

    def assets(self) -> list[AssetSpec]:
        from assetflow.declare import AssetSpec

        return [s for s in (self.specs[n] for n in self.order) if isinstance(s, AssetSpec)]

    def sources(self) -> list[SourceSpec]:
        from assetflow.declare import SourceSpec

        return [s for s in (self.specs[n] for n in self.order) if isinstance(s, SourceSpec)]

    def _check_upstreams(self) -> None:
        for name, spec in self.specs.items():
            for up in spec.inputs:
                if up in self.specs:
                    continue
                import difflib  # only to suggest a name: not on every command's start-up

                close = difflib.get_close_matches(up, list(self.specs), n=3, cutoff=0.6)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                role = "parameter" if up in spec.upstreams else "deps entry"
                raise UnknownAssetError(
                    f"Asset {name!r} ({spec.where}) has {role} {up!r}, but no asset or source "
                    f"is named {up!r}.{hint} Declare it with @asset or source(), or fix the name."
                )

    def _topological_order(self) -> tuple[str, ...]:
        """Kahn's algorithm with a heap, so the order is deterministic (by name among ready nodes)."""
        indegree = {name: len(ups) for name, ups in self.upstream.items()}
        ready = [name for name, deg in indegree.items() if deg == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            name = heapq.heappop(ready)
            order.append(name)
            for down in self.downstream[name]:
                indegree[down] -= 1
                if indegree[down] == 0:
                    heapq.heappush(ready, down)
        if len(order) != len(self.specs):
            cycle = self._find_cycle({n for n, d in indegree.items() if d > 0})
            path = " -> ".join(cycle)
            where = "\n".join(f"  {n}: {self.specs[n].where}" for n in cycle[:-1])
            raise CycleError(
                f"Assets depend on each other in a cycle: {path}\n{where}\n"
                f"Break the cycle by removing one of these dependencies.",
                cycle,
            )
        return tuple(order)

    def _find_cycle(self, remaining: set[str]) -> list[str]:
        """One concrete cycle among nodes Kahn's algorithm could not order."""
        start = min(remaining)
        path: list[str] = []
        position: dict[str, int] = {}
        node = start
        while node not in position:
            position[node] = len(path)
            path.append(node)
            node = min(up for up in self.upstream[node] if up in remaining)
        cycle = path[position[node]:] + [node]
        cycle.reverse()  # report in data-flow order: upstream -> downstream
        return cycle

    def ancestors(self, names: Iterable[str], depth: int | None = None) -> set[str]:
        return self._walk(names, self.upstream, depth)

    def descendants(self, names: Iterable[str], depth: int | None = None) -> set[str]:
        return self._walk(names, self.downstream, depth)

    @staticmethod
    def _walk(names: Iterable[str], edges: Mapping[str, tuple[str, ...]], depth: int | None) -> set[str]:
        seen: set[str] = set()
        frontier = list(names)
        level = 0
        while frontier and (depth is None or level < depth):
            nxt = []
            for name in frontier:
                for other in edges[name]:
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
            level += 1
        return seen
