"""Declaring assets: the ``@asset`` decorator and ``source()``.

Declarations only describe; nothing runs and nothing is hashed here. Names are
checked at declaration time, because a name becomes a file name and a SQL
identifier later and must be safe as both.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import inspect
import re
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from assetflow.durations import parse_duration
from assetflow.errors import DefinitionError
from assetflow.freshness import validate_policy
from assetflow.names import validate_name
from assetflow.partitioning import PartitionsDefinition
from assetflow.recorder import Recorder

CONFIG_PARAMETER = "config"
PARTITION_PARAMETER = "partition"  # receives the partition being computed (assetflow.partitions.Partition)
SOURCE_FORMATS = ("csv", "parquet", "json", "ndjson", "path")


def _location(fn: Callable[..., object]) -> tuple[str, int]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return "<unknown>", 0
    return code.co_filename, code.co_firstlineno


def _parameters(fn: Callable[..., object]) -> list[tuple[str, bool]]:
    """``fn``'s parameters in order, each with whether it collects the rest (``*args``, ``**kwargs``).

    A plain function's are read from its code object: ``inspect.signature`` costs ~20 us an asset,
    a quarter of declaring one, paid by the run and by each worker that imports the project. A wrapped
    function (``functools.wraps``) or anything else goes through ``inspect.signature``, which follows
    ``__wrapped__`` and ``__signature__``.
    """
    if not _is_plain_function(fn):
        return [(p.name, p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
                for p in inspect.signature(fn).parameters.values()]
    code = fn.__code__
    names, positional, keyword = code.co_varnames, code.co_argcount, code.co_kwonlyargcount
    star = 1 if code.co_flags & inspect.CO_VARARGS else 0  # *args is named after the keyword-only ones
    parameters = [(name, False) for name in names[:positional]]
    parameters += [(names[positional + keyword], True)] if star else []
    parameters += [(name, False) for name in names[positional:positional + keyword]]
    if code.co_flags & inspect.CO_VARKEYWORDS:
        parameters.append((names[positional + keyword + star], True))
    return parameters


def _is_plain_function(fn: object) -> bool:
    """A function whose code object and annotations are its own: not wrapped, no ``__signature__``."""
    return type(fn) is types.FunctionType and not hasattr(fn, "__wrapped__") and not hasattr(fn, "__signature__")


def annotation_of(fn: Callable[..., object], parameter: str) -> object:
    """The annotation of ``fn``'s ``parameter`` as written (a string under postponed annotations),
    as ``inspect.signature`` gives it, without its ~20 us cost for a plain function: a worker asks
    it for every input of every task."""
    if _is_plain_function(fn):
        return fn.__annotations__.get(parameter, inspect.Parameter.empty)
    return inspect.signature(fn).parameters[parameter].annotation


def _caller_location() -> tuple[str, int]:
    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back if frame and frame.f_back else None
        if caller is None:
            return "<unknown>", 0
        return caller.f_code.co_filename, caller.f_lineno
    finally:
        del frame


def _validate_tags(tags: Mapping[str, str] | None, where: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise DefinitionError(f"tags at {where} must map strings to strings; got {key!r}: {value!r}.")
        result[key] = value
    return result


@dataclasses.dataclass(eq=False)
class AssetSpec:
    """A declared asset: a function whose parameters name its upstream assets."""

    __assetflow_asset__ = True

    name: str
    fn: Callable[..., object]
    upstreams: tuple[str, ...]
    deps: tuple[str, ...] = ()
    io: str | None = None
    group: str | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    version: str | None = None
    description: str | None = None
    owners: tuple[str, ...] = ()
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    config: object | None = None
    retries: int = 0
    freshness: str | None = None  # a policy: "1d", "cron:0 6 * * *" (see assetflow.freshness)
    timeout: float | None = None  # seconds one attempt may run; None: no limit
    pools: tuple[str, ...] = ()  # concurrency pools it holds a slot of while running
    retry_delay: float = 1.0  # seconds before the first retry; doubles after each further failure
    partitions: PartitionsDefinition | None = None  # see docs/partitions.md
    mappings: dict[str, object] = dataclasses.field(default_factory=dict)  # upstream -> partition mapping
    wants_partition: bool = False  # the function takes a ``partition`` parameter
    partition_column: str | None = None  # a column whose values must match the partition computed
    automation: Any = None  # an AutomationCondition: when the daemon materializes it (docs/automation.md)
    checks: tuple[Any, ...] = ()  # built-ins and @check functions judging each new version (docs/checks.md)
    file: str = "<unknown>"
    line: int = 0

    kind = "asset"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every upstream, data-carrying or order-only, in declaration order."""
        return self.upstreams + tuple(d for d in self.deps if d not in self.upstreams)

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self.fn(*args, **kwargs)


@dataclasses.dataclass(eq=False)
class SourceSpec:
    """External data assetflow observes but never computes: a file, folder or glob."""

    __assetflow_asset__ = True

    path: str
    name: str | None = None
    format: str = "path"
    read_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str | None = None
    group: str | None = None
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    freshness: str | None = None
    partitions: PartitionsDefinition | None = None  # one file per key: the path holds a {placeholder}
    file: str = "<unknown>"
    line: int = 0

    kind = "source"
    upstreams: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    io = None
    version = None
    owners: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


_declared: Recorder[AssetSpec | SourceSpec] = Recorder("assetflow_declared")


def recording_declarations() -> contextlib.AbstractContextManager[list[AssetSpec | SourceSpec]]:
    """Collect every asset and source declared inside the block (while a project is imported).

    A module's variables hold only the last definition of a name, so a second
    ``def orders`` silently replaces the first; the record still has both, and
    ``project.collect_specs`` reports them as duplicates.
    """
    return _declared.recording()


def _noted(spec: AssetSpec | SourceSpec) -> AssetSpec | SourceSpec:
    return _declared.note(spec)


def _duration(value: object, what: str) -> float:
    try:
        return parse_duration(value, what=what)
    except ValueError as exc:
        raise DefinitionError(str(exc)) from None


def _validate_pools(pool: object, asset_name: str, where: str) -> tuple[str, ...]:
    names = () if pool is None else (pool,) if isinstance(pool, str) else pool
    if not isinstance(names, Sequence) or not all(isinstance(n, str) and n for n in names):
        raise DefinitionError(
            f"Asset {asset_name!r} at {where}: pool must be a pool name or a list of them, "
            f"e.g. pool=\"warehouse\"; got {pool!r}."
        )
    return tuple(dict.fromkeys(names))


def _automation(value: object, asset_name: str, where: str) -> object:
    from assetflow.conditions import validate_automation

    return validate_automation(value, what=f"Asset {asset_name!r}", where=where)


def _resolve_dep(dep: object, where: str) -> str:
    if isinstance(dep, AssetSpec):
        return dep.name
    if isinstance(dep, SourceSpec):
        if dep.name is None:
            raise DefinitionError(
                f"deps at {where} names a source without a name; pass source(..., name='...') "
                f"or refer to it by its name as a string."
            )
        return dep.name
    if isinstance(dep, str):
        return dep
    raise DefinitionError(f"deps at {where} must hold asset names or assets; got {dep!r}.")


def _build_asset(
    fn: Callable[..., object],
    *,
    name: str | None,
    deps: Sequence[object],
    io: str | None,
    group: str | None,
    tags: Mapping[str, str] | None,
    version: str | None,
    description: str | None,
    owners: Sequence[str],
    metadata: Mapping[str, Any] | None,
    config: object | None,
    retries: int,
    freshness: str | None = None,
    timeout: str | float | datetime.timedelta | None = None,
    pool: str | Sequence[str] | None = None,
    retry_delay: str | float | datetime.timedelta = 1.0,
    partitions: PartitionsDefinition | None = None,
    mappings: Mapping[str, object] | None = None,
    partition_column: str | None = None,
    automation: object = None,
    checks: Sequence[object] | None = None,
) -> AssetSpec:
    from assetflow.checks.definitions import validate_checks  # here: a no-op run never loads the check kinds

    if not callable(fn) or not hasattr(fn, "__code__"):
        raise DefinitionError(f"@asset decorates plain functions; got {fn!r}.")
    file, line = _location(fn)
    where = f"{file}:{line}"
    asset_name = validate_name(name or fn.__name__, what="Asset", where=where)
    upstreams: list[str] = []
    wants_config = wants_partition = False
    for parameter, collects_rest in _parameters(fn):
        if collects_rest:
            raise DefinitionError(
                f"Asset {asset_name!r} at {where} takes *{parameter}; each parameter must "
                f"name one upstream asset. List them explicitly."
            )
        if parameter == CONFIG_PARAMETER:
            wants_config = True
            continue
        if parameter == PARTITION_PARAMETER:
            wants_partition = True
            continue
        upstreams.append(validate_name(parameter, what=f"Upstream of {asset_name!r}", where=where))
    if wants_config and config is None:
        raise DefinitionError(
            f"Asset {asset_name!r} at {where} takes a 'config' parameter but @asset got no "
            f"config=...; pass a configuration object, e.g. @asset(config=MyConfig())."
        )
    if config is not None and not dataclasses.is_dataclass(config):
        raise DefinitionError(
            f"Asset {asset_name!r} at {where}: config must be a dataclass instance (typed, "
            f"hashable into the recipe); got {type(config).__name__}."
        )
    if io is not None:
        validate_name(io, what=f"Storage (io) of {asset_name!r}", where=where)
    if version is not None and not isinstance(version, str):
        raise DefinitionError(f"Asset {asset_name!r} at {where}: version must be a string, e.g. version=\"2\".")
    if not isinstance(retries, int) or retries < 0:
        raise DefinitionError(f"Asset {asset_name!r} at {where}: retries must be a non-negative integer.")
    timeout_s = None if timeout is None else _duration(timeout, f"timeout of asset {asset_name!r} at {where}")
    delay_s = _duration(retry_delay, f"retry_delay of asset {asset_name!r} at {where}")
    _check_partitioning(asset_name, where, partitions, mappings, wants_partition, upstreams)
    if partition_column is not None and (partitions is None or not isinstance(partition_column, str)):
        raise DefinitionError(f"Asset {asset_name!r} at {where}: partition_column names a column of a partitioned "
                              f"asset (e.g. partition_column=\"day\" with partitions=daily(...)); got "
                              f"{partition_column!r}{'' if partitions is not None else ' without partitions'}.")
    dep_names = tuple(_resolve_dep(d, where) for d in deps)
    for dep in dep_names:
        validate_name(dep, what=f"Dependency of {asset_name!r}", where=where)
    doc = inspect.getdoc(fn)
    spec = AssetSpec(
        name=asset_name,
        fn=fn,
        upstreams=tuple(upstreams),
        deps=dep_names,
        io=io,
        group=validate_name(group, what="Group", where=where) if group else None,
        tags=_validate_tags(tags, where),
        version=version,
        description=description if description is not None else doc,
        owners=tuple(owners),
        metadata=dict(metadata or {}),
        config=config,
        retries=retries,
        freshness=validate_policy(freshness, what=f"Asset {asset_name!r}", where=where),
        timeout=timeout_s,
        pools=_validate_pools(pool, asset_name, where),
        retry_delay=delay_s,
        partitions=partitions,
        mappings=dict(mappings or {}),
        wants_partition=wants_partition,
        partition_column=partition_column,
        automation=_automation(automation, asset_name, where),
        checks=(*validate_checks(checks, asset_name, where), *_partition_column_check(partition_column, file, line)),
        file=file,
        line=line,
    )
    _noted(spec)
    return spec


def _partition_column_check(column: str | None, file: str, line: int) -> tuple[Any, ...]:
    """``partition_column`` as the check that judges versions made before it was declared (docs/partitions.md)."""
    if column is None:
        return ()
    from assetflow.checks.definitions import PartitionColumn

    return (PartitionColumn(column=column, file=file, line=line),)


@overload
def asset(fn: Callable[..., object], /) -> AssetSpec: ...


@overload
def asset(
    *,
    name: str | None = None,
    deps: Sequence[object] = (),
    io: str | None = None,
    group: str | None = None,
    tags: Mapping[str, str] | None = None,
    version: str | None = None,
    description: str | None = None,
    owners: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    config: object | None = None,
    retries: int = 0,
    freshness: str | None = None,
    timeout: str | float | datetime.timedelta | None = None,
    pool: str | Sequence[str] | None = None,
    retry_delay: str | float | datetime.timedelta = 1.0,
    partitions: PartitionsDefinition | None = None,
    mappings: Mapping[str, object] | None = None,
    partition_column: str | None = None,
    automation: object = None,
    checks: Sequence[object] | None = None,
) -> Callable[[Callable[..., object]], AssetSpec]: ...


def asset(
    fn: Callable[..., object] | None = None,
    /,
    *,
    name: str | None = None,
    deps: Sequence[object] = (),
    io: str | None = None,
    group: str | None = None,
    tags: Mapping[str, str] | None = None,
    version: str | None = None,
    description: str | None = None,
    owners: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    config: object | None = None,
    retries: int = 0,
    freshness: str | None = None,
    timeout: str | float | datetime.timedelta | None = None,
    pool: str | Sequence[str] | None = None,
    retry_delay: str | float | datetime.timedelta = 1.0,
    partitions: PartitionsDefinition | None = None,
    mappings: Mapping[str, object] | None = None,
    partition_column: str | None = None,
    automation: object = None,
    checks: Sequence[object] | None = None,
) -> AssetSpec | Callable[[Callable[..., object]], AssetSpec]:
    """Declare a function as an asset; its parameters name the assets it reads.

    Usable bare (``@asset``) or with options (``@asset(io="duckdb", group="marts")``).
    ``deps`` lists order-only upstreams whose data is not passed in. A parameter
    called ``config`` receives the ``config=`` dataclass instead of an upstream.
    ``freshness`` is a policy (``"1d"``, ``"cron:0 6 * * *"``) after which it is overdue.
    A failed attempt is retried ``retries`` times, waiting ``retry_delay`` (``"1s"``) and
    twice as long after each further failure; ``timeout`` (``"10m"``) stops an attempt that
    runs longer. ``pool`` names concurrency pools (``[tool.assetflow.pools]`` sets their
    limits) the asset holds a slot of while it runs. See docs/execution.md.
    ``partitions`` (``daily("2024-01-01")``, ``static([...])``, ...) splits it into partitions, each
    computed, stored and kept fresh on its own; ``mappings`` says which upstream partitions each
    one reads, by upstream name. A ``partition`` parameter receives the key; ``partition_column``
    names a column whose every value must belong to that partition. See docs/partitions.md.
    ``automation`` is a condition (``on_upstream_change() | on_cron("0 * * * *")``) on which
    ``assetflow daemon`` materializes it; see docs/automation.md.
    ``checks`` (``[not_null("id"), unique("id"), row_count(min=1)]``) judge each new version before it
    is made current: a failed blocking check keeps the previous version current; see docs/checks.md.
    """
    options = dict(
        name=name, deps=deps, io=io, group=group, tags=tags, version=version,
        description=description, owners=owners, metadata=metadata, config=config, retries=retries,
        freshness=freshness, timeout=timeout, pool=pool, retry_delay=retry_delay,
        partitions=partitions, mappings=mappings, partition_column=partition_column, automation=automation,
        checks=checks,
    )
    if fn is not None:
        return _build_asset(fn, **options)  # type: ignore[arg-type]

    def decorate(func: Callable[..., object]) -> AssetSpec:
        return _build_asset(func, **options)  # type: ignore[arg-type]

    return decorate


def _check_partitioning(name: str, where: str, partitions: object, mappings: Mapping[str, object] | None,
                        wants_partition: bool, upstreams: Sequence[str]) -> None:
    if partitions is not None and not isinstance(partitions, PartitionsDefinition):
        raise DefinitionError(f"Asset {name!r} at {where}: partitions must be a definition such as daily('2024-01-01'), "
                              f"static(['eu', 'us']) or dynamic('customers'); got {partitions!r}.")
    if wants_partition and partitions is None:
        raise DefinitionError(f"Asset {name!r} at {where} takes a 'partition' parameter but is not partitioned; pass "
                              f"partitions=... (e.g. daily('2024-01-01')), or rename the parameter.")
    if mappings is not None and not isinstance(mappings, Mapping):
        raise DefinitionError(f"Asset {name!r} at {where}: mappings must be a dict from upstream name to mapping, e.g. "
                              f"mappings={{'events': window(-6, 0)}}.")
    for up in mappings or {}:
        if up not in upstreams:
            raise DefinitionError(f"Asset {name!r} at {where} declares a partition mapping for {up!r}, which is not one "
                                  f"of its parameters ({', '.join(upstreams) or 'none'}). Fix the name.")


def _infer_format(path: str) -> str:
    suffix = Path(path.rstrip("/*")).suffix.lower()
    return {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json",
            ".ndjson": "ndjson", ".jsonl": "ndjson"}.get(suffix, "path")


def source(
    path: str,
    *,
    name: str | None = None,
    format: str | None = None,  # noqa: A002 - the word users expect
    description: str | None = None,
    group: str | None = None,
    tags: Mapping[str, str] | None = None,
    freshness: str | None = None,
    partitions: PartitionsDefinition | None = None,
    **read_options: Any,
) -> SourceSpec:
    """Declare external data: a file, a folder or a glob, relative to the project root.

    The name defaults to the variable the source is assigned to
    (``orders_raw = source("data/orders.csv")``). Its data version is the content hash
    of the files' bytes. Downstream assets receive a polars DataFrame for csv,
    parquet, json and ndjson (several files are concatenated), or the ``Path`` list
    for ``format="path"``. Extra keyword arguments go to the polars reader.
    With ``partitions=daily(...)`` the path holds one ``{placeholder}`` (``"data/events/{date}.csv"``):
    one file per key, each hashed on its own; a key whose file is absent has no data yet.
    """
    file, line = _caller_location()
    where = f"{file}:{line}"
    if not isinstance(path, str) or not path:
        raise DefinitionError(f"source() at {where} needs a path string, e.g. source('data/orders.csv').")
    if "\x00" in path:
        raise DefinitionError(f"source({path!r}) at {where}: the path contains a NUL character, which no file "
                              f"system allows. Fix the path.")
    if name is not None:
        validate_name(name, what="Source", where=where)
    fmt = format or _infer_format(path)
    if fmt not in SOURCE_FORMATS:
        raise DefinitionError(
            f"source({path!r}) at {where}: unknown format {fmt!r}; use one of {', '.join(SOURCE_FORMATS)}."
        )
    if partitions is not None:
        _check_source_partitions(path, where, partitions)
    spec = SourceSpec(
        path=path,
        name=name,
        format=fmt,
        read_options=dict(read_options),
        description=description,
        group=validate_name(group, what="Group", where=where) if group else None,
        tags=_validate_tags(tags, where),
        freshness=validate_policy(freshness, what=f"source({path!r})", where=where),
        partitions=partitions,
        file=file,
        line=line,
    )
    _noted(spec)
    return spec


def _check_source_partitions(path: str, where: str, partitions: object) -> None:
    if not isinstance(partitions, PartitionsDefinition):
        raise DefinitionError(f"source({path!r}) at {where}: partitions must be a definition such as "
                              f"daily('2024-01-01'); got {partitions!r}.")
    if len(re.findall(r"\{[a-z_]*\}", path)) != 1 or any(ch in path for ch in "*?["):
        raise DefinitionError(f"source({path!r}) at {where} is partitioned, so its path must hold exactly one "
                              f"{{placeholder}} for the key and no glob, e.g. 'data/events/{{date}}.csv'.")


_PLACEHOLDER = re.compile(r"\{[a-z_]*\}")  # where a partitioned source's path holds the key


def partition_path(spec: SourceSpec, key: str) -> str:
    """The file of one partition of a partitioned source (the key in place of its placeholder)."""
    return _PLACEHOLDER.sub(lambda _: key, spec.path, count=1)


def partition_glob(spec: SourceSpec) -> str:
    """A glob matching the file of every key of a partitioned source (what a watcher stats)."""
    import glob

    return _PLACEHOLDER.sub("*", glob.escape(spec.path), count=1)


Spec = AssetSpec | SourceSpec
