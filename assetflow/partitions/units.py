"""The unit graph: every (asset, partition key) as a node of its own.

A unit is an unpartitioned asset (id ``name``) or one partition of a partitioned one
(id ``name[key]``). Each has its own recipe (the key is part of it), its own stored
version and its own pointer, so staleness, early cutoff and restore hold per unit.
``PartitionPlan`` lists the keys of every partitioned asset and source now, which
upstream units each unit reads (through its mappings), and which units can be built at
all: a partition whose source file is absent has no data yet, and neither has anything
that reads it.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.errors import DefinitionError
from assetflow.hashing import Digest
from assetflow.partitioning import PartitionsDefinition
from assetflow.partitions.mappings import AllPartitions, Latest, PartitionMapping, resolve



class AssetGraph(Protocol):
    """What partition planning needs of ``assetflow.graph.AssetGraph`` (which calls ``validate``
    while it is built, so this module cannot import it)."""

    @property
    def specs(self) -> Mapping[str, AssetSpec | SourceSpec]: ...

    @property
    def order(self) -> tuple[str, ...]: ...



class PartitionWorkspace(Protocol):
    """What the partition modules use of ``assetflow.workspace.Workspace``: the workspace calls
    them (to plan and assess units), so they see it through this protocol rather than import it."""

    @property
    def root(self) -> Path: ...

    @property
    def now(self) -> float | None: ...

    @property
    def graph(self) -> Any: ...

    @property
    def store(self) -> Any: ...

    @property
    def backends(self) -> Any: ...


    @property
    def partition_plan(self) -> PartitionPlan: ...

    def observe_sources(self, names: Iterable[str]) -> dict[str, Any]: ...

    def source_partitions(self, name: str) -> dict[str, Any]: ...

    def assess_one(self, *args: Any, **kwargs: Any) -> Any: ...

    def io_of(self, spec: AssetSpec) -> str: ...

    def forget_source(self, name: str) -> None: ...

    key_clock: Any  # set by partitions.keys.key_clock, once per load

    def forget_partition_keys(self) -> None: ...


def unit_id(asset: str, key: str = "") -> str:
    return f"{asset}[{key}]" if key else asset


def split_unit(unit: str) -> tuple[str, str]:
    """(asset, key) of a unit id; key is "" for an unpartitioned asset."""
    if unit.endswith("]") and "[" in unit:
        asset, _, key = unit[:-1].partition("[")
        return asset, key
    return unit, ""


def combined_hash(parts: Sequence[tuple[str, str]]) -> str:
    """One hash for several upstream partitions read together: (key, data hash) in key order."""
    if len(parts) == 1 and parts[0][0] == "":
        return parts[0][1]
    digest = Digest("partitions").field(str(len(parts)))
    for key, data_hash in parts:
        digest.fields(key, data_hash)
    return digest.hexdigest()


def hashes_read(keys: Sequence[str], data_hash: str, likely: Sequence[str],
                alternatives: Callable[[str], Iterable[str]]) -> list[str] | None:
    """The data hash of each of ``keys`` (upstream partitions read together) that combine to ``data_hash``, the hash a
    version recorded for them: ``likely`` (one per key, what was most likely there), or ``likely`` with one key's hash
    replaced by one of its ``alternatives(key)`` (one partition changed since, or a newer version of it was refused).
    None when neither does: more than one changed, and every combination is too many to try."""
    pairs = list(zip(keys, likely))
    if combined_hash(pairs) == data_hash:
        return list(likely)
    for i, key in enumerate(keys):
        for other in dict.fromkeys(alternatives(key)):
            if other != likely[i] and combined_hash([*pairs[:i], (key, other), *pairs[i + 1:]]) == data_hash:
                return [*likely[:i], other, *likely[i + 1:]]
    return None


def definition_of(spec: AssetSpec | SourceSpec) -> PartitionsDefinition | None:
    return getattr(spec, "partitions", None)


def is_partitioned(graph: AssetGraph) -> bool:
    """Whether any asset or source of the graph is partitioned (computed once, when the graph is built)."""
    return graph.partitioned


def validate(graph: AssetGraph) -> dict[tuple[str, str], PartitionMapping | None]:
    """Check every mapping once (at load); (downstream, upstream) -> mapping, None for an unpartitioned upstream."""
    found: dict[tuple[str, str], PartitionMapping | None] = {}
    for name, spec in graph.specs.items():
        if not isinstance(spec, AssetSpec):
            continue
        down_def = spec.partitions
        for up in spec.upstreams:
            up_spec = graph.specs[up]
            try:
                found[(name, up)] = resolve(name, down_def, up, definition_of(up_spec), spec.mappings.get(up))
            except DefinitionError as exc:
                raise DefinitionError(f"{exc} ({name!r} at {spec.where}, {up!r} at {up_spec.where})") from None
        for dep in spec.deps:
            if dep not in spec.upstreams and definition_of(graph.specs[dep]) is not None and down_def is not None \
                    and definition_of(graph.specs[dep]) != down_def:
                raise DefinitionError(
                    f"Asset {name!r} ({spec.where}) has order-only dependency {dep!r}, whose partitions differ from its "
                    f"own; order-only dependencies between partitioned assets need the same definition.")
    return found


@dataclasses.dataclass
class KeyClock:
    """The ``KeyContext`` of one process: the clock, and dynamic keys read from the state store."""

    now: datetime.datetime
    _dynamic: Mapping[str, list[str]]

    def dynamic_keys(self, name: str) -> list[str]:
        return list(self._dynamic.get(name, ()))


class PartitionPlan:
    """Keys, mapped inputs and availability of every unit of a graph, as of one instant."""

    def __init__(self, graph: AssetGraph, clock: KeyClock, source_keys: Mapping[str, Iterable[str]]) -> None:
        """``source_keys``: for each partitioned source, the keys whose file exists now."""
        self.graph = graph
        self.clock = clock
        self.mappings = validate(graph)
        self.keys: dict[str, list[str]] = {}
        self.index: dict[str, dict[str, int]] = {}
        self.available: dict[str, set[str]] = {}
        self._present: dict[str, list[str]] = {}
        for name in graph.order:
            definition = definition_of(graph.specs[name])
            if definition is None:
                continue
            keys = definition.keys(clock)
            self.keys[name] = keys
            self.index[name] = {k: i for i, k in enumerate(keys)}
        for name in graph.order:
            spec = graph.specs[name]
            if name not in self.keys:
                continue
            if isinstance(spec, SourceSpec):
                present = set(source_keys.get(name, ()))
                self.available[name] = {k for k in self.keys[name] if k in present}
            else:
                self.available[name] = {k for k in self.keys[name] if self._inputs_available(spec, k)}

    def _inputs_available(self, spec: AssetSpec, key: str) -> bool:
        for up in spec.upstreams:
            if up not in self.keys:
                continue
            mapped = self.upstream_keys(spec.name, up, key)
            if not mapped or any(k not in self.available[up] for k in mapped):
                return False
        return True

    def partitioned(self, name: str) -> bool:
        return name in self.keys

    def missing_reason(self, asset: str, key: str) -> str:
        """Why key ``key`` of ``asset`` cannot be built now, followed upstream: the source data it comes from has
        not arrived yet, or an upstream has no partition it maps to (its keys start later, end earlier, or are
        others), which no file will ever change."""
        from assetflow.partitions.summary import NO_SOURCE_DATA

        spec = self.graph.specs[asset]
        if isinstance(spec, SourceSpec):
            return NO_SOURCE_DATA
        for up in spec.upstreams:
            if up not in self.keys:
                continue
            mapped = self.upstream_keys(asset, up, key)
            if not mapped and isinstance(self.mappings[(asset, up)], AllPartitions | Latest):
                if not self.keys[up]:
                    return f"`{up}` has no partitions yet"
                return self.missing_reason(up, self.keys[up][-1])
            if not mapped:
                keys = self.keys[up]
                span = f"{keys[0]}..{keys[-1]}" if keys else "none yet"
                return f"no partition of `{up}` maps to it; `{up}` has {span}"
            for found in mapped:
                if found not in self.available[up]:
                    return self.missing_reason(up, found)
        return NO_SOURCE_DATA

    def upstream_keys(self, asset: str, up: str, key: str) -> list[str]:
        """The keys of partitioned upstream ``up`` that unit (asset, key) reads."""
        mapping = self.mappings[(asset, up)]
        assert mapping is not None
        if isinstance(mapping, AllPartitions | Latest):  # of the partitions that exist
            return mapping.upstream_keys(key, self.present(up), {})
        return mapping.upstream_keys(key, self.keys[up], self.index[up])

    def present(self, asset: str) -> list[str]:
        """The keys of ``asset`` that have data (or can be built) now, in key order: what all_partitions() reads."""
        present = self._present.get(asset)
        if present is None:
            present = self._present[asset] = [k for k in self.keys[asset] if k in self.available[asset]]
        return present

    def units_of(self, asset: str, keys: Iterable[str] | None = None) -> list[str]:
        """The unit ids of an asset: itself, or its available partitions (of ``keys`` if given) in key order."""
        if asset not in self.keys:
            return [asset]
        wanted = self.available[asset] if keys is None else self.available[asset] & set(keys)
        return [unit_id(asset, k) for k in self.keys[asset] if k in wanted]

    def unit_inputs(self, unit: str) -> list[str]:
        """The upstream units (asset units and source partitions) a unit reads or waits for."""
        asset, key = split_unit(unit)
        spec = self.graph.specs[asset]
        found: list[str] = []
        for up in spec.inputs:
            if up not in self.keys:
                found.append(up)
            elif self.mappings.get((asset, up)) is not None:
                found.extend(unit_id(up, k) for k in self.upstream_keys(asset, up, key))
            else:  # an order-only dependency with the same definition
                found.append(unit_id(up, key) if key else up)
        return found

    def latest(self, asset: str) -> str | None:
        """The last key that has data (or can be built)."""
        available = self.available.get(asset, set())
        return next((k for k in reversed(self.keys.get(asset, ())) if k in available), None)

    def missing_keys(self, asset: str) -> list[str]:
        """Keys of the definition that cannot be built now (their source data is absent)."""
        return [k for k in self.keys.get(asset, ()) if k not in self.available.get(asset, set())]
