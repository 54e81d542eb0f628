"""Assets a run cannot bring up to date: stale only because an upstream outside the selection is.

``materialize b`` with ``a -> b`` and ``a`` stale finds ``b`` up to date with ``a``'s stored data:
running it would make the same data, so nothing runs, and ``b`` stays stale until ``a`` runs
(docs/concepts.md, rule 6). Such an asset (or partition) is *waiting*, not cut off (nothing was
recomputed) nor fresh, and says which upstream it waits on and how to include it. What it feeds
in the run waits too, as does what a unit computed from such an upstream's stored data feeds.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from assetflow.partitions.assess import by_asset, units_text
from assetflow.partitions.units import split_unit, unit_id
from assetflow.plan import Assessment


def unsettled_outside(verdicts: Mapping[str, Assessment], in_run: Collection[str]) -> dict[str, str]:
    """unit -> its state, for each unit assessed not fresh that the run does not settle: an asset
    not selected, or a partition that ``--partition`` leaves out."""
    found: dict[str, str] = {}
    for name, verdict in verdicts.items():
        if verdict.partitions is None:
            if not verdict.fresh and name not in in_run:
                found[name] = verdict.state
            continue
        for key, part in verdict.partitions.items():
            if not part.fresh and unit_id(name, key) not in in_run:
                found[unit_id(name, key)] = part.state
    return found


def waiting_reasons(unit: str, inputs: Iterable[str], outside: Mapping[str, str], behind: Collection[str],
                    selected: Collection[str], narrowed: bool = False,
                    index: Mapping[str, Mapping[str, int]] | None = None) -> list[str]:
    """Why ``unit``, up to date with its upstreams' stored data, is not fresh after the run: each upstream
    unit that stays unsettled: outside the run, or ``behind`` (settled in the run, waiting or computed, and stale
    all the same through such an upstream of its own); grouped by asset, with how to include it
    (``selected``: the selected assets; ``narrowed``: ``--partition`` picks some keys).
    Empty when none does: then the unit is fresh, or cut off by upstreams recomputed to equal data."""
    index = index or {}
    inputs = list(dict.fromkeys(inputs))
    reasons = []
    for group in by_asset([u for u in inputs if u in outside]):
        for state in dict.fromkeys(outside[u] for u in group):
            same = [u for u in group if outside[u] == state]
            reasons.append(f"upstream {units_text(index, same)} {state} and {_how(unit, same, selected, narrowed)}")
    for group in by_asset([u for u in inputs if u in behind]):
        reasons.append(f"upstream {units_text(index, group)} behind a stale upstream outside the selection")
    return reasons


def is_behind(inputs: Iterable[str], outside: Collection[str], behind: Collection[str]) -> bool:
    """Whether a unit computed or restored in the run stays stale: an input of it stays unsettled."""
    return any(u in outside or u in behind for u in inputs)


def _how(unit: str, group: list[str], selected: Collection[str], narrowed: bool) -> str:
    """How to bring one asset's unsettled upstream units into the run (in words that stay true of a range of
    units, whose reasons merge: ``partitions.summary.ranges``)."""
    asset, key = split_unit(group[0])
    if asset in selected:
        return "outside --partition: widen --partition"
    keys = ", with their keys in --partition" if narrowed and key else ""
    return f"not selected: select `{asset}` too, e.g. +{split_unit(unit)[0]}{keys}"
