"""What ``materialize`` needs to run units instead of whole assets (used by execute/runner.py).

The runner schedules unit ids (``name`` or ``name[key]``); this module expands a
selection (and its ``--partition`` text) into units and their edges, works out a
unit's upstream hashes and inputs at its turn, and switches a partitioned asset's
view over its current partitions once they settled (backends with
``activate_partitions``, e.g. DuckDB).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from assetflow.declare import AssetSpec, SourceSpec
from assetflow.partitions.assess import upstream_hashes
from assetflow.partitions.mappings import Identity, Latest
from assetflow.partitions.ranges import select_keys
from assetflow.partitions.summary import NO_SOURCE_DATA
from assetflow.partitions.units import definition_of, split_unit, unit_id
from assetflow.plan import Assessment

if TYPE_CHECKING:
    from assetflow.contracts import InputRef
    from assetflow.state.store import Materialization
    from assetflow.partitions.units import PartitionWorkspace


def expand(ws: PartitionWorkspace, order: Sequence[str], partition: str | None,
           predicted: Mapping[str, Assessment]) -> tuple[list[str], dict[str, tuple[str, ...]], dict[str, Assessment]]:
    """The selected units in order, each one's selected upstream units, and each one's predicted verdict.

    ``partition`` (a range, a list, ``latest`` or ``all``; None: every partition with data)
    picks the keys of each selected partitioned asset that has them (``selected_keys``).
    """
    plan = ws.partition_plan
    chosen = None if partition is None else selected_keys(ws, order, partition)[0]
    units: list[str] = []
    verdicts: dict[str, Assessment] = {}
    for name in order:
        if not plan.partitioned(name):
            units.append(name)
            verdicts[name] = predicted[name]
            continue
        keys = None if chosen is None else chosen.get(name, [])
        by_key = predicted[name].partitions or {}
        for unit in plan.units_of(name, keys):
            units.append(unit)
            verdicts[unit] = by_key[split_unit(unit)[1]]
    chosen = set(units)
    ups = {u: tuple(dict.fromkeys(i for i in plan.unit_inputs(u) if i in chosen)) for u in units}
    return units, ups, verdicts


def current_units(ws: PartitionWorkspace) -> dict[str, Materialization]:
    """unit id -> current materialization, partitions included."""
    current: dict[str, Materialization] = dict(ws.store.current())
    current.update({unit_id(a, k): m for (a, k), m in ws.store.current_partitions().items()})
    return current


def upstream_problem(unit: str, result: object) -> str:
    from assetflow.checks.report import upstream_problem as problem

    return problem(unit, result)


def unit_upstream(ws: PartitionWorkspace, spec: AssetSpec, key: str, results: Mapping[str, object],
                  current: Mapping[str, Materialization]) -> tuple[dict[str, str], list[str]]:
    """A unit's upstream hashes at its turn, and why it cannot run (failed, skipped or missing upstream units)."""
    problems: list[str] = []
    plan = ws.partition_plan

    def hash_of(unit: str) -> str | None:
        asset, part = split_unit(unit)
        outcome = getattr(results.get(unit), "outcome", None)
        if outcome in ("failed", "skipped"):
            problems.append(upstream_problem(unit, results[unit]))
            return None
        if isinstance(ws.graph.specs[asset], SourceSpec):
            if part:
                version = ws.source_partitions(asset).get(part)
                return None if version is None else version.data_hash
            return ws.observe_sources([asset])[asset].data_hash
        mat = current.get(unit)
        if mat is None:
            problems.append(f"upstream `{unit}` has never been materialized (select it too, e.g. +{spec.name})")
        return None if mat is None else mat.data_hash

    hashes, missing = upstream_hashes(plan, spec, key, hash_of)
    empty = keyless(ws, [u for u in missing if u in plan.keys])
    for unit in missing:
        if unit in empty:
            problems.append(f"upstream `{unit}` {empty[unit].removeprefix('it ')}")
        elif not any(f"`{unit}`" in p for p in problems):
            problems.append(f"upstream `{unit}` has no data")
    for dep in spec.deps:
        for unit in [unit_id(dep, key) if key and plan.partitioned(dep) else dep]:
            outcome = getattr(results.get(unit), "outcome", None)
            if outcome in ("failed", "skipped"):
                problems.append(upstream_problem(unit, results[unit]))
    return hashes, problems


def input_refs(ws: PartitionWorkspace, spec: AssetSpec, key: str,
               current: Mapping[str, Materialization]) -> tuple[InputRef, ...]:
    """Where each input of unit (spec, key) is: one ref, or one per upstream partition it reads."""
    from assetflow.contracts import InputRef

    plan = ws.partition_plan

    def ref(up: str, part: str) -> InputRef:
        if isinstance(ws.graph.specs[up], SourceSpec):
            version = ws.source_partitions(up)[part] if part else ws.observe_sources([up])[up]
            return InputRef(up, None, None, version.files)
        mat = current[unit_id(up, part)]
        return InputRef(up, mat.io, mat.location, data_hash=mat.data_hash)

    refs = []
    for up in spec.upstreams:
        if not plan.partitioned(up):
            refs.append(ref(up, ""))
            continue
        keys = plan.upstream_keys(spec.name, up, key)
        single = len(keys) == 1 and isinstance(plan.mappings[(spec.name, up)], Identity | Latest)
        refs.append(ref(up, keys[0]) if single else
                    InputRef(up, None, None, parts=tuple((k, ref(up, k)) for k in keys)))
    return tuple(refs)


def activate_views(ws: PartitionWorkspace, assets: Sequence[str]) -> dict[str, str]:
    """Switch each partitioned asset's view (where its backend keeps one) to its current partitions.

    Returns asset -> error for the ones whose backend failed; their partitions stay recorded.
    """
    errors = {}
    for name in assets:
        spec = ws.graph.specs[name]
        if not isinstance(spec, AssetSpec) or spec.partitions is None:
            continue
        backend = ws.backends.get(ws.io_of(spec))
        hook = getattr(backend, "activate_partitions", None)
        if hook is None:
            continue
        plan = ws.partition_plan
        current = ws.store.current_partitions(asset=name)
        locations = [current[(name, k)].location for k in plan.present(name) if (name, k) in current]
        try:
            hook(name, locations)
        except Exception as exc:  # noqa: BLE001 - reported as this asset's failure
            errors[name] = f"{type(exc).__name__}: {exc}"
    return errors


def partition_of(spec: AssetSpec, key: str) -> object:
    """The ``partition`` argument of unit (spec, key)."""
    assert spec.partitions is not None
    with contextlib.suppress(ValueError):
        return spec.partitions.partition(key)
    from assetflow.partitioning import Partition

    return Partition(key, parts=(key,))


def source_inputs_changed(ws: PartitionWorkspace, spec: AssetSpec, up: str, expected: str | None, key: str) -> bool:
    """Rule 9 for a partitioned source: did a file the unit read change while it ran? Compared by data hash as
    observed now, as for a plain source (``Run._inputs_changed``): another unit's re-check may have observed
    the files again already."""
    from assetflow.fingerprint.source import unchanged_since

    plan = ws.partition_plan
    versions = ws.source_partitions(up)
    keys = plan.upstream_keys(spec.name, up, key)
    if not all(k in versions and unchanged_since(versions[k], ws.root) for k in keys):
        ws.forget_source(up)
    hashes, missing = upstream_hashes(ws.partition_plan, spec, key, lambda u: _source_hash(ws, u))
    return bool(missing) or hashes.get(up) != expected


def _source_hash(ws: PartitionWorkspace, unit: str) -> str | None:
    asset, part = split_unit(unit)
    if not isinstance(ws.graph.specs[asset], SourceSpec):
        return "-"  # only the source's hash is compared
    if part:
        version = ws.source_partitions(asset).get(part)
        return None if version is None else version.data_hash
    return ws.observe_sources([asset])[asset].data_hash


NO_KEYS = "it has no partitions: "  # how a keyless asset's reason starts (``keyless``), which the CLI's last line reads


def keyless(ws: PartitionWorkspace, assets: Sequence[str]) -> dict[str, str]:
    """The partitioned assets among ``assets`` whose definition lists no key now (every dynamic key removed, or
    none added yet), with why: nothing of theirs can run, and they are missing, not fresh."""
    plan = ws.partition_plan
    found = {}
    for name in assets:
        spec = ws.graph.specs.get(name)
        if isinstance(spec, AssetSpec) and spec.partitions is not None and not plan.keys.get(name):
            found[name] = NO_KEYS + _no_keys(spec)
    return found


def _no_keys(spec: AssetSpec) -> str:
    """``dynamic('customers') has no keys; add some: ...``."""
    from assetflow.partitioning import DynamicPartitions

    definition = spec.partitions
    assert definition is not None
    dimensions = getattr(definition, "dimensions", (definition,))
    dynamic = next((d for d in dimensions if isinstance(d, DynamicPartitions)), None)
    advice = (f"; add some: `assetflow partitions add {dynamic.name} KEY`" if dynamic is not None else
              "; its definition lists none yet")
    return f"{definition.describe()} has no keys{advice}"


def selected_keys(ws: PartitionWorkspace, order: Sequence[str], partition: str) -> tuple[dict[str, list[str]],
                                                                                        dict[str, str]]:
    """Each selected partitioned asset's keys that ``--partition`` picks, and the assets it leaves out, with why.

    A selection applies to the selected assets whose definition has the keys it names, as a Dagster
    partition selection applies to the assets partitioned that way: ``--partition 2024-03-02`` over
    daily and dynamic assets runs that day of the daily ones and leaves the dynamic ones as they are.
    When no selected asset has them, it is an error, the most telling one (``_telling``).
    """
    from assetflow.errors import PartitionKeyError

    plan = ws.partition_plan if any(definition_of(ws.graph.specs[n]) is not None for n in order) else None
    if plan is None:
        raise PartitionKeyError(f"--partition {partition!r} was given, but no selected asset is partitioned. Select a "
                                f"partitioned asset, or leave out --partition.", key=partition)
    chosen: dict[str, list[str]] = {}
    errors: dict[str, PartitionKeyError] = {}
    for name in order:
        spec = ws.graph.specs[name]
        if isinstance(spec, AssetSpec) and spec.partitions is not None:
            try:
                chosen[name] = select_keys(partition, spec.partitions, plan.keys[name], name, plan.latest(name))
            except PartitionKeyError as exc:
                errors[name] = exc
    if errors and not chosen:
        raise _telling(ws, errors)
    return chosen, {name: f"--partition {partition} names no key of its partitions, "
                          f"{ws.graph.specs[name].partitions.describe()}" for name in errors}  # type: ignore[union-attr]


def _telling(ws: PartitionWorkspace, errors: Mapping[str, PartitionKeyError]) -> PartitionKeyError:
    """The error to show when no selected asset has the keys: a time or static definition's before a dynamic
    one's (a dynamic definition takes almost any text, so 'add it first' would be advice about a date), and
    one that has the key's form (outside its range) first of all; it says that the other assets lack it too."""
    from assetflow.errors import PartitionKeyError
    from assetflow.partitioning import DynamicPartitions

    def rank(item: tuple[str, PartitionKeyError]) -> int:
        definition = ws.graph.specs[item[0]].partitions
        if isinstance(definition, DynamicPartitions):
            return 2
        return 0 if item[1].key and definition is not None and definition.valid_key(item[1].key) else 1

    name, error = min(errors.items(), key=rank)
    definitions = {ws.graph.specs[n].partitions.describe() for n in errors}  # type: ignore[union-attr]
    if len(definitions) == 1:
        return error
    others = ", ".join(repr(n) for n in errors if n != name)
    return PartitionKeyError(f"{error.reason} No other selected asset has it either ({others}); --partition applies "
                             f"to each selected asset whose partitions have its keys.", asset=name, key=error.key,
                             expression=error.expression, position=error.position,
                             length=max(1, len(error.key)) if error.key else 1)


def snapshot_parts(ws: PartitionWorkspace) -> tuple[dict[str, tuple[str, dict[str, str]]], list[tuple], float | None,
                                                    dict[str, dict[str, list[str]]]]:
    """What the no-op fast path must also find unchanged in a partitioned project.

    Each partitioned source as a glob of its placeholder (a new file, say a new day, falls
    back to the full check), every current partition's version, and the instant the clock
    next adds a key to a time definition. Last, for ``status`` from the snapshot, every
    partitioned asset's and source's keys and those of them without data.
    """
    import glob
    import re

    from assetflow.hashing import stat_token

    sources: dict[str, tuple[str, dict[str, str]]] = {}
    for spec in ws.graph.sources():
        if spec.partitions is None or spec.name is None:
            continue
        pattern = re.sub(r"\{[a-z_]*\}", "*", spec.path, count=1)
        observed = {str(ws.root / rel if not rel.startswith("/") else rel): token
                    for version in ws.source_partitions(spec.name).values() for rel, token, _ in version.files}
        matched = {}
        base = pattern if pattern.startswith("/") else str(ws.root / pattern)
        for path in glob.glob(base, recursive=True):
            if os.path.isfile(path):
                matched[path] = observed.get(path) or stat_token(path)
        sources[spec.name] = (pattern, matched)
    assets = [(unit_id(a, k), m.io, m.location, m.data_hash, m.token, ws.backends.local_file(m.io, m.location))
              for (a, k), m in ws.store.current_partitions().items()]
    plan = ws.partition_plan
    keys = {}
    for name, all_keys in plan.keys.items():
        have = ws.source_partitions(name) if isinstance(ws.graph.specs[name], SourceSpec) else plan.available[name]
        missing = [k for k in all_keys if k not in have]
        keys[name] = {"keys": list(all_keys), "missing": missing}
        if not isinstance(ws.graph.specs[name], SourceSpec):  # why, where no file will change it (status says)
            unmapped = {k: why for k in missing if (why := plan.missing_reason(name, k)) != NO_SOURCE_DATA}
            if unmapped:
                keys[name]["unmapped"] = unmapped  # type: ignore[assignment]
    return sources, assets, next_key_instant(ws), keys


def next_key_instant(ws: PartitionWorkspace) -> float | None:
    """The earliest UTC instant at which a time definition of the project gains a key."""
    from assetflow.partitioning import ProductPartitions, TimePartitions

    found: list[float] = []
    plan = ws.partition_plan
    for spec in ws.graph.specs.values():
        definition = definition_of(spec)
        dims = definition.dimensions if isinstance(definition, ProductPartitions) else (definition,)
        for dim in dims:
            if not isinstance(dim, TimePartitions):
                continue
            due = dim.next_due(plan.clock)
            if due is not None:
                found.append(due.timestamp())
    return min(found) if found else None
