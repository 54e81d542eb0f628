"""Staleness: is an asset fresh, stale or missing, and exactly why (docs/concepts.md, "Staleness rules").

The same assessment serves ``status`` (a prediction, upstreams as they are now) and
``materialize`` (at each asset's turn, after its upstreams have settled), so the two
can never disagree about the rules.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from typing import Literal

from assetflow.hashing import Digest
from assetflow.secrets import redact_passwords
from assetflow.state.store import Materialization
from assetflow.contracts import CheckResult

State = Literal["fresh", "stale", "missing"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything that determines an asset's output; its key decides freshness.

    Metadata (description, owners, tags) and locations are deliberately absent.
    """

    code: str
    config: str
    io: str
    upstream: Mapping[str, str]  # data-carrying upstream name -> data hash
    deps: tuple[str, ...]  # order-only upstreams: their names count, their data does not
    partition: str = ""

    @functools.cached_property
    def key(self) -> str:
        """The recipe's hash (computed once: a run asks for it at the decision, the restore and the record).

        Remembered per process by the recipe's content (``_KEYS``): a daemon assesses the same
        10,000 recipes on every due tick, and hashing them was a third of that assessment.
        """
        upstream = sorted(self.upstream.items())
        content = (self.code, self.config, self.io, self.partition, str(len(upstream)),
                   *(x for pair in upstream for x in pair), str(len(self.deps)), *sorted(self.deps))
        found = _KEYS.get(content)  # the very fields hashed, so two recipes share an entry only if equal
        if found is None:
            found = Digest("recipe").fields(*content).hexdigest()
            if len(_KEYS) >= _KEYS_KEPT:
                _KEYS.clear()  # a bound, not an eviction policy: the next assessment fills it again
            _KEYS[content] = found
        return found


_KEYS: dict[tuple[str, ...], str] = {}  # recipe content -> key, for ``Recipe.key``
_KEYS_KEPT = 200_000


def canonical_config(config: object | None) -> str:
    """A stable text form of an asset's configuration object, for hashing and diffs.

    A ``Secret`` field shows as ``secret('NAME')`` (its repr), and the password of a
    connection string as ``***``: neither is hashed, stored or shown.
    """
    if config is None:
        return ""
    payload = {"type": f"{type(config).__module__}.{type(config).__qualname__}",
               "fields": dataclasses.asdict(config)}  # type: ignore[call-overload]
    return redact_passwords(json.dumps(payload, sort_keys=True, default=repr))


@dataclasses.dataclass
class Assessment:
    """The verdict on one asset, with every reason spelled out."""

    name: str
    state: State
    reasons: list[str]
    recipe: Recipe | None = None
    current: Materialization | None = None
    partitions: dict[str, Assessment] | None = None  # a partitioned asset's verdict per key (docs/partitions.md)

    @property
    def fresh(self) -> bool:
        return self.state == "fresh"


def changed_code_names(old: Mapping[str, str] | None, new: Mapping[str, str]) -> list[str]:
    """Qualified names whose normalised source differs between two fingerprints."""
    from assetflow.fingerprint.changes import changed_names

    return changed_names(old, new)


def assess(
    name: str,
    recipe: Recipe | None,
    current: Materialization | None,
    check: CheckResult | None,
    *,
    sources: frozenset[str] = frozenset(),
    old_code: Mapping[str, str] | None = None,
    new_code: Mapping[str, str] | None = None,
) -> Assessment:
    """Compare the recipe an asset would have now with its current materialization.

    ``sources`` names the upstreams that are sources, so their changes read as
    "source `x` changed". ``old_code``/``new_code`` (normalised sources) let the reason
    name the helper that changed.
    """
    if current is None:
        return Assessment(name, "missing", ["never materialized"], recipe, None)
    assert recipe is not None, "an asset with a current version is judged against its recipe"
    if check is not None and check.status == "missing":
        where = f"{current.io}: {current.location}"
        why = f"stored data cannot be read ({where}): {check.detail}" if check.detail else f"stored data is missing ({where})"
        return Assessment(name, "missing", [why], recipe, current)
    reasons: list[str] = []
    if current.code_fingerprint != recipe.code:
        changed = changed_code_names(old_code, new_code or {})
        if changed and old_code is not None:
            from assetflow.fingerprint.changes import describe

            new = new_code or {}
            reasons.extend(f"code changed: {describe(n, old_code.get(n), new.get(n), name)}" for n in changed)
        else:
            reasons.append("code changed")
    if current.config != recipe.config:
        reasons.append("configuration changed")
    if current.io != recipe.io:
        reasons.append(f"storage changed: {current.io} -> {recipe.io}")
    for up in sorted(set(recipe.upstream) - set(current.upstream)):
        reasons.append(f"upstream `{up}` was added")
    for up in sorted(set(current.upstream) - set(recipe.upstream)):
        reasons.append(f"upstream `{up}` was removed")
    for up in sorted(set(recipe.upstream) & set(current.upstream)):
        if recipe.upstream[up] != current.upstream[up]:
            what = "source" if up in sources else "upstream"
            verb = "changed" if up in sources else "has new data"
            reasons.append(f"{what} `{up}` {verb}")
    for dep in sorted(set(recipe.deps) ^ set(current.deps)):
        reasons.append(f"order-only dependency `{dep}` was {'added' if dep in recipe.deps else 'removed'}")
    if check is not None and check.status == "modified":
        reasons.append("stored data changed outside assetflow (hash mismatch)")
    if not reasons and current.recipe_key != recipe.key:
        # Every other field is compared above: what is left is the partition's (its window's cadence, zone).
        reasons.append("the partition's window changed (its definition's cadence or time zone)" if recipe.partition
                       else "recipe changed")
    return Assessment(name, "stale" if reasons else "fresh", reasons, recipe, current)
