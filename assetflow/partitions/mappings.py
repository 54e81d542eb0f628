"""Partition mappings: which upstream partitions one downstream partition reads.

Declared per upstream, ``@asset(partitions=..., mappings={"events": window(-6, 0)})``:

- ``identity()`` (the default between equal definitions): the same key.
- ``window(-6, 0)``: the keys from 6 before to 0 after the same key (the last 7 days);
  clipped at the first key.
- ``all_partitions()`` (the default for an unpartitioned reader): every partition, in key order.
- ``latest()``: the upstream's last key.
- a dict ``{"upstream key": "downstream key" or [keys]}`` (static to static).

``resolve`` validates a declaration once (a wrong mapping is a ``DefinitionError``
naming both assets); ``upstream_keys`` answers per downstream key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from assetflow.errors import DefinitionError
from assetflow.partitioning import PartitionsDefinition, StaticPartitions, TimePartitions


class PartitionMapping:
    """Base of every mapping."""

    def upstream_keys(self, key: str, upstream_keys: Sequence[str], index: Mapping[str, int]) -> list[str]:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Identity(PartitionMapping):
    def upstream_keys(self, key: str, upstream_keys: Sequence[str], index: Mapping[str, int]) -> list[str]:
        return [key] if key in index else []

    def describe(self) -> str:
        return "identity()"


@dataclasses.dataclass(frozen=True)
class Window(PartitionMapping):
    before: int
    after: int

    def upstream_keys(self, key: str, upstream_keys: Sequence[str], index: Mapping[str, int]) -> list[str]:
        at = index.get(key)
        if at is None:
            return []
        return list(upstream_keys[max(0, at + self.before): at + self.after + 1])

    def describe(self) -> str:
        return f"window({self.before}, {self.after})"


@dataclasses.dataclass(frozen=True)
class AllPartitions(PartitionMapping):
    def upstream_keys(self, key: str, upstream_keys: Sequence[str], index: Mapping[str, int]) -> list[str]:
        return list(upstream_keys)

    def describe(self) -> str:
        return "all_partitions()"


@dataclasses.dataclass(frozen=True)
class Latest(PartitionMapping):
    def upstream_keys(self, key: str, upstream_keys: Sequence[str], index: Mapping[str, int]) -> list[str]:
        return list(upstream_keys[-1:])

    def describe(self) -> str:
        return "latest()"


@dataclasses.dataclass(frozen=True)
class StaticMapping(PartitionMapping):
    """Downstream key -> upstream keys in key order, inverted from the declared ``{upstream: downstream}``."""

    pairs: tuple[tuple[str, str], ...]  # (upstream key, downstream key)

    def upstream_keys(self, key: str, upstream_keys: Sequence[str], index: Mapping[str, int]) -> list[str]:
        return sorted((up for up, down in self.pairs if down == key and up in index), key=index.__getitem__)

    def describe(self) -> str:
        return f"static mapping {dict(self.pairs)!r}"


def identity() -> Identity:
    """The same key upstream (the default between equal definitions)."""
    return Identity()


def window(before: int, after: int = 0) -> Window:
    """Keys ``before``..``after`` around the same key, e.g. ``window(-6, 0)``: the last 7 days."""
    if not isinstance(before, int) or not isinstance(after, int) or before > after:
        raise DefinitionError(f"window({before!r}, {after!r}): give two integers, first <= second, e.g. window(-6, 0) "
                              f"for the last 7 keys.")
    return Window(before, after)


def all_partitions() -> AllPartitions:
    """Every upstream partition, in key order (concatenated, or a dict by key if the parameter asks)."""
    return AllPartitions()


def latest() -> Latest:
    """The upstream's last partition."""
    return Latest()


def _static(table: Mapping[str, object], down: str, up: str) -> StaticMapping:
    pairs = []
    for up_key, targets in table.items():
        for target in [targets] if isinstance(targets, str) else list(targets):  # type: ignore[call-overload]
            if not isinstance(up_key, str) or not isinstance(target, str):
                raise DefinitionError(f"Asset {down!r}: the mapping of upstream {up!r} must map key strings to key "
                                      f"strings (or lists of them); got {up_key!r}: {targets!r}.")
            pairs.append((up_key, target))
    return StaticMapping(tuple(pairs))


def resolve(down: str, down_def: PartitionsDefinition | None, up: str, up_def: PartitionsDefinition | None,
            declared: object | None) -> PartitionMapping | None:
    """The mapping from ``down`` to its upstream ``up``, checked; None when ``up`` is not partitioned.

    Raises a DefinitionError naming both assets when the two definitions cannot map.
    """
    if up_def is None:
        if declared is not None:
            raise DefinitionError(f"Asset {down!r} declares a partition mapping for upstream {up!r}, but {up!r} is not "
                                  f"partitioned. Remove the mapping (every partition of {down!r} reads all of {up!r}).")
        return None
    if isinstance(declared, Mapping):
        declared = _static(declared, down, up)
    if declared is not None and not isinstance(declared, PartitionMapping):
        raise DefinitionError(f"Asset {down!r}: the mapping for upstream {up!r} must be identity(), window(a, b), "
                              f"all_partitions(), latest() or a dict of keys; got {declared!r}.")
    if down_def is None:
        if declared is None or isinstance(declared, AllPartitions | Latest):
            return declared or AllPartitions()
        raise DefinitionError(f"Asset {down!r} is not partitioned but maps upstream {up!r} by {declared.describe()}; "
                              f"an unpartitioned reader takes all_partitions() (the default) or latest().")
    misaligned = _misaligned(down, down_def, up, up_def)
    if misaligned and (declared is None or isinstance(declared, Identity | Window)):
        raise DefinitionError(misaligned)
    if declared is None:
        if down_def == up_def or _same_cadence(down_def, up_def):
            return Identity()
        raise DefinitionError(
            f"Asset {down!r} ({down_def.describe()}) reads {up!r} ({up_def.describe()}), and the two definitions "
            f"differ, so no key maps by default. Declare how, e.g. @asset(partitions=..., mappings={{{up!r}: "
            f"all_partitions()}}) or latest(), or give both the same definition.")
    if isinstance(declared, Identity | Window) and not (down_def == up_def or _same_cadence(down_def, up_def)):
        raise DefinitionError(
            f"Asset {down!r} maps upstream {up!r} by {declared.describe()}, which needs the same keys on both sides, "
            f"but {down!r} is {down_def.describe()} and {up!r} is {up_def.describe()}. Use the same definition, or "
            f"all_partitions(), latest() or a dict of keys.")
    if isinstance(declared, StaticMapping):
        if not isinstance(up_def, StaticPartitions) or not isinstance(down_def, StaticPartitions):
            raise DefinitionError(f"Asset {down!r} maps upstream {up!r} by a dict of keys, which needs static "
                                  f"partitions on both sides; {down!r} is {down_def.describe()} and {up!r} is "
                                  f"{up_def.describe()}.")
        for up_key, down_key in declared.pairs:
            if up_key not in up_def.values:
                raise DefinitionError(f"Asset {down!r} maps key {up_key!r} of upstream {up!r}, which {up!r} does not "
                                      f"have (its keys: {', '.join(up_def.values)}). Fix the mapping.")
            if down_key not in down_def.values:
                raise DefinitionError(f"Asset {down!r} maps upstream {up!r}'s key {up_key!r} to {down_key!r}, which "
                                      f"{down!r} does not have (its keys: {', '.join(down_def.values)}). Fix the mapping.")
    return declared


def _misaligned(down: str, down_def: PartitionsDefinition, up: str, up_def: PartitionsDefinition) -> str | None:
    """Why two hourly definitions of one zone share no key, if they do not: their hours start at other minutes
    (``hourly("2024-01-01-00:30")`` against on-the-hour keys), so a key-by-key mapping would find nothing to read
    and the reader would wait for data forever."""
    if not (_same_cadence(down_def, up_def) and isinstance(down_def, TimePartitions) and down_def.cadence == "hourly"):
        return None
    assert isinstance(up_def, TimePartitions)
    minutes = (down_def.start[14:16], up_def.start[14:16])
    if minutes[0] == minutes[1]:
        return None
    return (f"Asset {down!r} ({down_def.describe()}) reads {up!r} ({up_def.describe()}) key by key, but their hours "
            f"start at :{minutes[0]} and :{minutes[1]}, so no key of one is a key of the other and {down!r} would "
            f"never run. Start both on the same minute, or map by all_partitions() or latest().")


def _same_cadence(a: PartitionsDefinition, b: PartitionsDefinition) -> bool:
    """Two time definitions with the same cadence and zone share keys (starts and ends may differ)."""
    return (isinstance(a, TimePartitions) and isinstance(b, TimePartitions)
            and a.cadence == b.cadence and a.timezone == b.timezone)
