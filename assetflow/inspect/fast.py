"""``status`` without importing the project, when nothing can have changed.

Two facts make this sound. The no-op snapshot (``assetflow.fastpath``), valid only while
no project file, source file or stored object has changed since a complete successful
run, proves every asset fresh. The *graph cache*, written by a full ``status``, records
the graph's shape (names, kinds, edges, groups, tags, io, freshness policies) with the
stat of every project file it was read from; while those are unchanged the graph is the
same. With both, status is read from the state store. Anything else, even a touched
file, takes the full path, which writes a new graph cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assetflow.graph import AssetGraph
from assetflow.inspect.status import AssetStatus, overdue, state_map
from assetflow.project import ProjectConfig

GRAPH_KEY = "graph_cache"
GRAPH_CACHE_VERSION = 2


@dataclasses.dataclass(eq=False)
class CachedSpec:
    """The part of a declaration that status and selection need, as the graph cache keeps it."""

    name: str
    kind: str
    group: str | None
    tags: dict[str, str]
    io: str | None
    upstreams: tuple[str, ...]
    inputs: tuple[str, ...]
    freshness: str | None
    path: str | None  # sources: the pattern they read
    where: str = "(cached)"


def _identity(config: ProjectConfig) -> dict[str, Any]:
    from assetflow import __version__

    return {"cache": GRAPH_CACHE_VERSION, "assetflow": __version__, "python": sys.version, "root": str(config.root),
            "modules": list(config.modules), "files": list(config.files), "state": str(config.state_path),
            "default_io": config.default_io}


def _stats(paths: Iterable[str]) -> dict[str, str | None]:
    from assetflow.hashing import stat_token

    tokens: dict[str, str | None] = {}
    for path in paths:
        try:
            tokens[path] = stat_token(path)
        except OSError:
            tokens[path] = None
    return tokens


def save_graph_cache(ws: Any) -> None:
    """Record the loaded graph's shape and the stats of the files it came from (skipped if any is too new)."""
    from assetflow.hashing import is_racy

    config = ws.config
    files = sorted(set(ws.code_files()) | ({str(config.pyproject)} if config.pyproject else set()))
    stats = _stats([*files, *sorted({str(Path(f).parent) for f in files})])
    loaded_at = getattr(ws, "loaded_at_ns", None) or time.time_ns()
    if any(stats[f] is None or is_racy(stats[f], loaded_at) for f in files):  # type: ignore[arg-type]
        return
    specs = []
    for name in ws.graph.order:
        spec = ws.graph.specs[name]
        extra = [i for i in spec.inputs if i not in spec.upstreams]
        specs.append([name, spec.kind, spec.group, dict(spec.tags) or None, spec.io, list(spec.upstreams),
                      extra or None, spec.freshness, getattr(spec, "path", None) if spec.kind == "source" else None])
    text = json.dumps({"identity": _identity(config), "stats": stats, "specs": specs})
    if ws.store.get_meta(GRAPH_KEY) != text:
        with ws.store.cache_write():  # a full disk: the next status imports the project again, that is all
            ws.store.set_meta(GRAPH_KEY, text)


def load_graph_cache(config: ProjectConfig, text: str | None) -> AssetGraph | None:
    """The cached graph if every file it was read from is unchanged, else None."""
    if text is None:
        return None
    try:
        cache = json.loads(text)
        if cache.get("identity") != _identity(config) or _stats(cache["stats"]) != cache["stats"]:
            return None
        specs = {}
        for name, kind, group, tags, io, upstreams, extra, freshness, path in cache["specs"]:
            ups = tuple(upstreams)
            specs[name] = CachedSpec(name, kind, group, tags or {}, io, ups, ups + tuple(extra) if extra else ups,
                                     freshness, path)
        return CachedGraph(specs)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # a damaged cache (e.g. in a corrupt state store) is never used: the full path rebuilds it


class CachedGraph(AssetGraph):
    """An ``AssetGraph`` rebuilt from the cache: validated when it was saved, so not checked again."""

    def __init__(self, specs: dict[str, CachedSpec]) -> None:  # noqa: D107 - the cache is in topological order
        self.specs = specs  # type: ignore[assignment]
        self.upstream = {n: s.inputs for n, s in specs.items()}
        downstream: dict[str, list[str]] = {n: [] for n in specs}
        for name, ups in self.upstream.items():
            for up in ups:
                downstream[up].append(name)
        self.downstream = {n: tuple(sorted(d)) for n, d in downstream.items()}
        self.order = tuple(specs)


def fast_status(project_dir: Path | None, modules: Iterable[str], files: Iterable[str], select: Iterable[str],
                exclude: Iterable[str]) -> list[AssetStatus] | None:
    """Status rows from the state alone, or None when the full check is needed."""
    from assetflow.fastpath import DISABLE_ENV, SNAPSHOT_KEY, check_snapshot
    from assetflow.project import load_config
    from assetflow.state.store import STATE_FILE, StateStore

    if os.environ.get(DISABLE_ENV):
        return None
    config = load_config(project_dir, tuple(modules), tuple(files))
    if not (config.state_path / STATE_FILE).exists():
        return None
    store = StateStore(config.state_path)
    try:
        graph = load_graph_cache(config, store.get_meta(GRAPH_KEY))
        if graph is None:
            return None
        fresh = check_snapshot(config, store.get_meta(SNAPSHOT_KEY))
        assets = [n for n in graph.order if graph.specs[n].kind == "asset"]
        if fresh is None or set(fresh) != set(assets):
            return None
        current = store.current_summary()
        if any(n not in current for n in assets):
            return None
        return _rows(config, current, store.source_versions(), graph, select, exclude)
    finally:
        store.close()


def _rows(config: ProjectConfig, current: dict[str, tuple[str, int | None, float]], source_hashes: dict[str, str], graph: AssetGraph,
          select: Iterable[str], exclude: Iterable[str]) -> list[AssetStatus]:
    from assetflow.select import select as select_names

    now = time.time()
    rows: dict[str, AssetStatus] = {}

    def row(name: str) -> AssetStatus:
        found = rows.get(name)
        if found is None:
            found = rows[name] = _row(config, graph.specs[name], current, source_hashes, now)  # type: ignore[arg-type]
        return found

    names = select_names(graph, list(select), list(exclude), default_io=config.default_io,
                         statuses=lambda: state_map(row(n) for n in graph.order))
    return [row(n) for n in names]


def _row(config: ProjectConfig, spec: CachedSpec, current: dict[str, tuple[str, int | None, float]],
         source_hashes: dict[str, str],
         now: float) -> AssetStatus:
    if spec.kind == "source":
        updated = _newest_mtime(config, spec)
        by, why = overdue(spec.freshness, updated, now)
        return AssetStatus(spec.name, "source", "overdue" if why else "observed", [why] if why else [],
                           source_hashes.get(spec.name), None, None, spec.group, None,
                           ("observed", "overdue") if why else ("observed",), dict(spec.tags), updated,
                           spec.freshness, by)
    data_hash, count, finished_at = current[spec.name]
    by, why = overdue(spec.freshness, finished_at, now) if spec.freshness else (None, None)
    return AssetStatus(spec.name, "asset", "overdue" if why else "fresh", [why] if why else [], data_hash,
                       count, finished_at, spec.group, spec.io or config.default_io,
                       ("overdue", "fresh") if why else ("fresh",), spec.tags, finished_at, spec.freshness, by)


def _newest_mtime(config: ProjectConfig, spec: CachedSpec) -> float | None:
    if spec.path is None:
        return None
    from assetflow.declare import SourceSpec
    from assetflow.fingerprint.source import source_files

    mtimes = [p.stat().st_mtime_ns / 1e9 for p in source_files(SourceSpec(path=spec.path, name=spec.name), config.root)]
    return max(mtimes) if mtimes else None
