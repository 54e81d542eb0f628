"""The no-op fast path: prove nothing changed without importing the user's code.

Importing a project (and polars with it) costs far more than checking it. Two records in
the state store let ``materialize`` and ``status`` skip the import while nothing changed:

- the *snapshot*, saved by the runner after a complete, successful run: the stat of every
  project Python file as it was before the file was read, of pyproject.toml and of every source
  file (and the list a glob or folder matched), what an import could find in the folders
  holding the code, and each asset's stored-data token; a file too young for its stat to
  vouch is recorded with the content that was read, and hashed again by the check. If
  every one of those is unchanged, every asset is still fresh: code fingerprints, the
  graph and source hashes are functions of exactly those files (``check_snapshot``).
- the *graph cache*, written by a full ``status``: the graph's shape (names, kinds, edges,
  groups, tags, io, freshness policies) with the stat of every project file it was read
  from; while those are unchanged the graph is the same (``load_graph_cache``).

With the snapshot alone, ``materialize`` knows there is nothing to do; with both,
``status`` is read from the state store (``fast_status``). A file whose stat moved is
hashed again, and only it: the same bytes (a touched file, a source rewritten unchanged)
still vouch. Any other difference falls back to the full check, which writes them afresh.

Not covered, by design: module-level code whose result depends on something other
than the files (environment variables, the clock, the network). Set
``ASSETFLOW_NO_FAST_PATH=1`` for such projects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assetflow.errors import PluginError, StorageError
from assetflow.graph import AssetGraph
from assetflow.hashing import code_bytes_digest, is_racy, stat_token, token_of
from assetflow.project import ProjectConfig
from assetflow.state.snapshot import GRAPH_KEY, SNAPSHOT_KEY, seal, unseal
from assetflow.version import __version__

if TYPE_CHECKING:  # status rows are built by ``fast_status`` alone: a no-op ``materialize`` needs none
    from assetflow.inspect.status import AssetStatus

__all__ = ["DISABLE_ENV", "GRAPH_KEY", "SNAPSHOT_KEY", "build_snapshot", "cache_graph_after_run", "check_snapshot",
           "fast_status", "fresh_without_import", "has_state", "last_durations_downstream", "load_graph_cache",
           "save_graph_cache",
           "verified_snapshot"]

SNAPSHOT_VERSION = 9  # 5: the content of every file whose bytes were read; 6: "young" names files of "contents";
# 7: "verdicts", the fingerprints of the verdicts each checked asset's current version was judged with; 8: none,
# but recipes of partitions that read their window in a non-UTC zone changed, and SQL fingerprints of unaliased
# result expressions, so one full check after upgrading; 9: none, but recipes of weekly partitions that read their
# window changed (they name their cadence)
GRAPH_CACHE_VERSION = 4  # 4: each asset's checks (name, severity, file:line)
DISABLE_ENV = "ASSETFLOW_NO_FAST_PATH"


# -- the snapshot: every asset fresh ---------------------------------------------------------------
def _token(path: str) -> str | None:
    try:
        return stat_token(path)
    except OSError:
        return None


def _identity(config: ProjectConfig) -> dict[str, object]:
    """What the snapshot is only valid for: this project, loaded this way, by this assetflow."""
    return {
        "snapshot": SNAPSHOT_VERSION,
        "assetflow": __version__,
        "python": sys.version,
        "root": str(config.root),
        "modules": list(config.modules),
        "files": list(config.files),
        "state": str(config.state_path),
    }


def build_snapshot(
    config: ProjectConfig,
    code_tokens: Mapping[str, str | None],
    sources: Mapping[str, tuple[str, Mapping[str, str]]],
    assets: Iterable[tuple[str, str, str, str, str, str | None]],
    loaded_at_ns: int,
    valid_until: float | None = None,
    contents: Mapping[str, tuple[str, str]] | None = None,
    partitions: Mapping[str, Mapping[str, list[str]]] | None = None,
    verdicts: Mapping[str, list[str]] | None = None,
) -> str | None:
    """Serialise a snapshot, or None when a file is too recent to vouch for what was read.

    ``code_tokens`` maps each code file to the stat token taken before it was read
    (``Workspace.code_tokens``). ``loaded_at_ns`` is when loading the project began: a code
    or source file whose mtime is that recent may have changed after it was read at the same
    stat token (the "racy clean" problem). Such a *young* file is vouched for by the content
    that was read, given in ``contents`` (file -> ("code", digest of the compiled bytes) or
    ("data", a source file's content hash)): the check hashes it again, and only it, instead
    of the next run checking everything in full. A young file without a known content means
    no snapshot. Every other file's content is kept too: one whose stat token later moves
    (touched, rewritten with the same bytes) is hashed again instead of failing the check.
    ``sources`` maps a source name to (its path pattern, {absolute file: stat token when it
    was hashed});
    ``assets`` holds (name, io, location, data hash, token, local file or None) of every
    current version; a local file's stat token is checked without loading any backend.
    ``valid_until`` (UTC seconds) is when the clock adds a partition key (a day ends): the
    snapshot vouches for nothing from then on (docs/partitions.md). ``partitions`` maps each
    partitioned asset and source to {"keys": every key of its definition, "missing": the keys
    without data}: what ``status`` shows of it while the snapshot holds (``fast_status``). ``verdicts`` maps each
    checked asset to the fingerprints of the verdicts the run judged its current version with: those ``status``
    shows (``_with_verdicts``).
    """
    stats, listings = _code_stats(config, code_tokens)
    tokens = {**stats, **{f: t for _, matched in sources.values() for f, t in matched.items()}}
    contents = dict(contents or {})
    if config.pyproject_read is not None:  # the bytes the configuration was parsed from
        contents[str(config.pyproject)] = ("code", config.pyproject_read[1])
    young: list[str] = []
    for path, token in tokens.items():
        if token is None:
            return None
        if is_racy(token, loaded_at_ns):
            if path not in contents:
                return None
            young.append(path)
    if not _listings_unchanged(listings):
        return None  # a module appeared or left during the run: what the import saw is no longer there
    body = json.dumps({
        **_identity(config),
        "stats": stats,
        "listings": listings,
        "young": young,
        "contents": {path: list(found) for path, found in contents.items() if path in tokens},
        "sources": {name: {"pattern": pattern, "files": dict(matched)} for name, (pattern, matched) in sources.items()},
        "assets": [list(a) for a in assets],
        "valid_until": valid_until,
        "partitions": dict(partitions or {}),
        "verdicts": dict(verdicts or {}),
    })
    return seal(body)  # sealed: a corrupted snapshot never vouches


def _content(path: str, kind: str) -> str | None:
    """A file's content hash now, as the snapshot recorded it (None: unreadable)."""
    try:
        if kind == "code":
            with open(path, "rb") as handle:
                return code_bytes_digest(handle.read())
        from assetflow.fingerprint.source import file_hash

        return file_hash(Path(path))
    except (OSError, ValueError):
        return None


def _code_stats(config: ProjectConfig,
                code_tokens: Mapping[str, str | None]) -> tuple[dict[str, str | None], dict[str, list[str] | None]]:
    """The tokens of the code files (as read) and pyproject.toml; the importable names of their folders.

    A folder vouches by what an import can find in it, listed before the import searched
    it (``imports.folder_listing``), not by its stat token: a module appearing in it later
    changes the listing, while assetflow's own writes there do not.
    """
    tokens = dict(code_tokens)
    if config.pyproject is not None:  # as it was before it was parsed, like every code file
        tokens.setdefault(str(config.pyproject),
                          config.pyproject_read[0] if config.pyproject_read else _token(str(config.pyproject)))
    from assetflow.fingerprint.imports import folder_listing

    folders = sorted({str(Path(f).parent) for f in tokens if not f.endswith(".sql") and not Path(f).is_dir()})
    return {f: tokens[f] for f in sorted(tokens)}, {d: folder_listing(d) for d in folders}


def _listings_unchanged(listings: Mapping[str, list[str] | None]) -> bool:
    from assetflow.fingerprint.listing import importable_names

    return all(importable_names(folder) == names for folder, names in listings.items())


def check_snapshot(config: ProjectConfig, text: str | None, missed: set[str] | None = None) -> list[str] | None:
    """The asset names (``name[key]`` for partitions) if the snapshot proves everything is fresh, else None
    (``missed``: as ``verified_snapshot``)."""
    snapshot = verified_snapshot(config, text, missed)
    return None if snapshot is None else [a[0] for a in snapshot["assets"]]


def verified_snapshot(config: ProjectConfig, text: str | None, missed: set[str] | None = None) -> dict[str, Any] | None:
    """The snapshot if it proves everything is fresh, else None.

    ``missed``, if given, gets the names of the sources whose data the snapshot found changed (a file's
    content moved, one appeared or went): the coming run computes what is downstream of them. It stays
    empty when the check stopped on something else first (the code, a stored version).
    """
    if text is None or os.environ.get(DISABLE_ENV):
        return None
    snapshot = unseal(text)
    if snapshot is None or any(snapshot.get(k) != v for k, v in _identity(config).items()):
        return None
    if snapshot.get("valid_until") is not None and time.time() >= snapshot["valid_until"]:
        return None  # a new partition key appeared with the clock
    kept = snapshot.get("contents", {})
    stats = snapshot["stats"]
    if not _same_files(stats, {path: _token(path) for path in stats}, kept):
        return None
    if not _listings_unchanged(snapshot["listings"]):
        return None
    for path in snapshot["young"]:
        if _content(path, kept[path][0]) != kept[path][1]:  # too young for its stat to vouch, and its content moved
            if missed is not None:
                missed.update(name for name, entry in snapshot["sources"].items() if path in entry["files"])
            return None
    for name, entry in snapshot["sources"].items():
        if not _same_files(entry["files"], _source_tokens(config, entry["pattern"]), kept):
            if missed is not None:
                missed.add(name)
            return None
    backends = None
    for name, io, location, data_hash, token, local_file in snapshot["assets"]:
        if local_file is not None:
            if _token(local_file) != token:
                return None
            continue
        if backends is None:
            from assetflow.storage.base import Backends

            backends = Backends(config.data_path, config.io_options)
        try:
            result = backends.get(io).check(name, location, data_hash, token)
        except (StorageError, PluginError):  # e.g. a damaged DuckDB file: the full path says which assets
            return None
        if result.status != "ok" or result.token != token:
            return None
    return snapshot


def _same_files(recorded: dict[str, str | None], now: Mapping[str, str | None],
                kept: Mapping[str, list[str]]) -> bool:
    """Whether the files are those recorded, each at its token or, where its stat moved, with the same bytes.

    A file whose bytes were read when the snapshot was taken is hashed again when its token
    moved (touched, rewritten unchanged): the check then costs the files that moved, not a
    full check of the project. The new token replaces the recorded one in ``recorded``, so
    what the snapshot reports (a source's newest file) is what is on disk.
    """
    if recorded.keys() != now.keys():
        return False
    for path, token in now.items():
        if token == recorded[path]:
            continue
        if token is None or path not in kept or _content(path, kept[path][0]) != kept[path][1]:
            return False
        recorded[path] = token
    return True


def _source_tokens(config: ProjectConfig, pattern: str) -> dict[str, str | None]:
    """The files a source's pattern matches now, each with its stat token (one stat a file:
    a partitioned source may have 10,000)."""
    import stat

    if not any(ch in pattern for ch in "*?["):
        from assetflow.fingerprint.source import pattern_files

        return {str(p): _token(str(p)) for p in pattern_files(pattern, config.root)}
    import glob

    found: dict[str, str | None] = {}
    base = str(Path(pattern) if os.path.isabs(pattern) else config.root / pattern)  # as source_files joins it
    for path in glob.glob(base, recursive=True):
        try:
            st = os.stat(path)
        except OSError:
            continue  # gone since the glob: as if not matched
        if stat.S_ISREG(st.st_mode):
            found[path] = token_of(st)
    return found


def has_state(project_dir: Path | None, modules: Iterable[str], files: Iterable[str]) -> bool:
    """Whether the project has a state store yet (True too when its configuration cannot be read: the run
    that follows says why). Without one, the coming run is its first and computes every asset."""
    try:
        return _config_with_state(project_dir, modules, files) is not None
    except Exception:  # noqa: BLE001 - only a hint: the run that follows reads the configuration and reports
        return True


@contextlib.contextmanager
def _opened_state(project_dir: Path | None, modules: Iterable[str],
                  files: Iterable[str]) -> Iterator[tuple[ProjectConfig, Any] | None]:
    """The project's config and its state store, closed on leaving; None if it has no state yet."""
    from assetflow.state.store import StateStore

    config = _config_with_state(project_dir, modules, files)
    if config is None:
        yield None
        return
    store = StateStore(config.state_path)
    try:
        yield config, store
    finally:
        store.close()


@contextlib.contextmanager
def _cached_graph(project_dir: Path | None, modules: Iterable[str],
                  files: Iterable[str]) -> Iterator[tuple[ProjectConfig, Any, AssetGraph] | None]:
    """The project's config, its state store and the graph cache's graph; None without a state or a valid cache."""
    with _opened_state(project_dir, modules, files) as opened:
        if opened is None:
            yield None
            return
        config, store = opened
        graph = load_graph_cache(config, store.get_meta(GRAPH_KEY))
        yield None if graph is None else (config, store, graph)


def _config_with_state(project_dir: Path | None, modules: Iterable[str], files: Iterable[str]) -> ProjectConfig | None:
    """The project's config if it has a state store yet, else None."""
    from assetflow.project import load_config
    from assetflow.state.store import STATE_FILE

    config = load_config(project_dir, tuple(modules), tuple(files))
    return config if (config.state_path / STATE_FILE).exists() else None


def fresh_without_import(project_dir: Path | None, modules: Iterable[str], files: Iterable[str],
                         with_hashes: bool = False, missed: set[str] | None = None) -> dict[str, str | None] | None:
    """Asset names (with their data hashes if asked) if the last complete run's snapshot proves
    nothing changed, without importing user code; None if it cannot (then run in full; ``missed``
    says why, as ``verified_snapshot`` does)."""
    with _opened_state(project_dir, modules, files) as opened:
        if opened is None:
            return None
        config, store = opened
        names = check_snapshot(config, store.get_meta(SNAPSHOT_KEY), missed)
        if names is None:
            return None
        summary = store.current_summary() if with_hashes else {}
        return {name: summary[name][0] if name in summary else None for name in names}


def last_durations_downstream(project_dir: Path | None, modules: Iterable[str], files: Iterable[str],
                              sources: Iterable[str]) -> list[float | None] | None:
    """How long each asset downstream of ``sources`` took at its last run (None: never run, or partitioned),
    from the graph cache and the state without importing the project; None without a valid graph cache.

    What a run after new data will compute, before it loads the project: enough to tell a run worth
    starting workers for from one that computes a few quick assets in process (``executors.small_work``).
    """
    with _cached_graph(project_dir, modules, files) as found:
        if found is None:
            return None
        _, store, graph = found
        known = [name for name in sources if name in graph.specs]
        if not known:
            return None
        cone = [name for name in graph.descendants(known) if graph.specs[name].kind == "asset"]
        took = store.durations_of(cone)
        return [took.get(name) for name in cone]


# -- the graph cache, and status from the state alone ----------------------------------------------


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
    checks: tuple[CachedCheck, ...] = ()  # assets: each check's name, severity and file:line


@dataclasses.dataclass(frozen=True)
class CachedCheck:
    """A declared check as the graph cache keeps it: enough to read its verdicts from the state."""

    name: str
    severity: str
    where: str


def _cache_identity(config: ProjectConfig) -> dict[str, Any]:
    return {"cache": GRAPH_CACHE_VERSION, "assetflow": __version__, "python": sys.version, "root": str(config.root),
            "modules": list(config.modules), "files": list(config.files), "state": str(config.state_path),
            "default_io": config.default_io}


def _stats(paths: Iterable[str]) -> dict[str, str | None]:
    return {path: _token(path) for path in paths}


def save_graph_cache(ws: Any) -> None:
    """Record the loaded graph's shape and the stats of the files it came from (skipped if any is too new).

    The files' tokens are those taken before they were read (``Workspace.code_tokens``), and
    none may be as recent as the load (the racy-clean rule), so the cache never vouches for
    bytes the graph was not built from.
    """
    config = ws.config
    stats, listings = _code_stats(config, ws.code_tokens())
    loaded_at = getattr(ws, "loaded_at_ns", None) or time.time_ns()
    if any(token is None or is_racy(token, loaded_at) for token in stats.values()) \
            or not _listings_unchanged(listings):
        return
    specs = []
    for name in ws.graph.order:
        spec = ws.graph.specs[name]
        extra = [i for i in spec.inputs if i not in spec.upstreams]
        checks = [[c.name, c.severity, c.where] for c in getattr(spec, "checks", ())]
        specs.append([name, spec.kind, spec.group, dict(spec.tags) or None, spec.io, list(spec.upstreams),
                      extra or None, spec.freshness, getattr(spec, "path", None) if spec.kind == "source" else None,
                      checks or None])
    text = json.dumps({"identity": _cache_identity(config), "stats": stats, "listings": listings, "specs": specs})
    if ws.store.get_meta(GRAPH_KEY) != text:
        with ws.store.cache_write():  # a full disk: the next status imports the project again, that is all
            ws.store.set_meta(GRAPH_KEY, text)


def cache_graph_after_run(ws: Any) -> None:
    """After a run that left a no-op snapshot, cache the graph so the next ``status`` need not import the project."""
    if ws.store.get_meta(SNAPSHOT_KEY) is not None:
        save_graph_cache(ws)


def load_graph_cache(config: ProjectConfig, text: str | None) -> AssetGraph | None:
    """The cached graph if every file it was read from is unchanged, else None."""
    if text is None:
        return None
    try:
        cache = json.loads(text)
        if cache.get("identity") != _cache_identity(config) or _stats(cache["stats"]) != cache["stats"] \
                or not _listings_unchanged(cache["listings"]):
            return None
        specs = {}
        for name, kind, group, tags, io, upstreams, extra, freshness, path, checks in cache["specs"]:
            ups = tuple(upstreams)
            specs[name] = CachedSpec(name, kind, group, tags or {}, io, ups, ups + tuple(extra) if extra else ups,
                                     freshness, path, checks=tuple(CachedCheck(*c) for c in checks or ()))
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
    """Status rows from the state alone, or None when the full check is needed.

    A partitioned asset or source is summarised from the snapshot's key lists: while the
    snapshot holds, every partition that can be built is fresh and the others have no data.
    """
    if os.environ.get(DISABLE_ENV):
        return None
    with _cached_graph(project_dir, modules, files) as found:
        if found is None:
            return None
        config, store, graph = found
        snapshot = verified_snapshot(config, store.get_meta(SNAPSHOT_KEY))
        if snapshot is None:
            return None
        partitioned: dict[str, dict[str, list[str]]] = snapshot.get("partitions") or {}
        fresh = {a[0] for a in snapshot["assets"]}
        assets = [n for n in graph.order if graph.specs[n].kind == "asset"]
        if any(n not in fresh and n not in partitioned for n in assets) \
                or any(n not in graph.specs for n in partitioned):
            return None
        current = store.current_summary()
        if any(n not in current for n in assets if n not in partitioned):
            return None
        from assetflow.state.partitions import current_partition_rows

        rows = _rows(config, current, store.source_versions(), graph, select, exclude,
                     _Partitioned(partitioned, current_partition_rows(store) if partitioned else {},
                                  snapshot["sources"]))
        return _with_verdicts(rows, graph, store, snapshot.get("verdicts") or {})


def _with_verdicts(rows: list[AssetStatus], graph: AssetGraph, store: Any,
                   in_effect: Mapping[str, list[str]]) -> list[AssetStatus] | None:
    """The verdicts on each checked asset's current version that stand, those the snapshot's run judged it with
    (``in_effect``: asset -> check fingerprints); None (the full path) if one failed, to say why, or is missing.

    Not the latest verdict of each check on that data: another version with the same data, judged with other
    upstream versions, may have a newer one (``checks.standing``)."""
    from assetflow.checks.report import verdicts_under

    found = []
    for row in rows:
        spec = graph.specs[row.name]
        checks = getattr(spec, "checks", ())
        if row.kind == "asset" and row.partitions is not None and checks:
            return None  # each partition's verdicts stand on its own inputs: the full path reads them
        if row.kind == "asset" and checks:
            fingerprints = in_effect.get(row.name)
            verdicts = [] if fingerprints is None or row.data_hash is None else \
                verdicts_under(store, checks, row.data_hash, fingerprints)
            if len(verdicts) != len(checks) or any(not v["passed"] for v in verdicts):
                return None
            row = dataclasses.replace(row, checks=verdicts)
        found.append(row)
    return found


@dataclasses.dataclass
class _Partitioned:
    """What the snapshot and the state say of partitioned assets and sources."""

    keys: dict[str, dict[str, list[str]]]  # name -> {"keys": [...], "missing": [...]}
    current: dict[str, dict[str, tuple[int | None, float]]]  # asset -> key -> (rows, finished_at)
    sources: dict[str, dict[str, Any]]  # the snapshot's sources: name -> {"pattern", "files": {path: token}}


def _rows(config: ProjectConfig, current: dict[str, tuple[str, int | None, float]], source_hashes: dict[str, str],
          graph: AssetGraph, select: Iterable[str], exclude: Iterable[str],
          partitioned: _Partitioned | None = None) -> list[AssetStatus]:
    from assetflow.inspect.status import state_map
    from assetflow.select import select as select_names

    now = time.time()
    rows: dict[str, AssetStatus] = {}

    def row(name: str) -> AssetStatus:
        found = rows.get(name)
        if found is None:
            spec = graph.specs[name]
            if partitioned is not None and name in partitioned.keys:
                found = _partitioned_row(config, spec, partitioned, now)  # type: ignore[arg-type]
            else:
                found = _row(config, spec, current, source_hashes, now)  # type: ignore[arg-type]
            rows[name] = found
        return found

    names = select_names(graph, list(select), list(exclude), default_io=config.default_io,
                         statuses=lambda: state_map(row(n) for n in graph.order))
    return [row(n) for n in names]


def _partitioned_row(config: ProjectConfig, spec: CachedSpec, partitioned: _Partitioned, now: float) -> AssetStatus:
    """A partitioned asset's or source's row as the full check would build it, from the snapshot."""
    from assetflow.inspect.status import overdue, status_row
    from assetflow.partitions.summary import snapshot_report

    entry = partitioned.keys[spec.name]
    missing = set(entry["missing"])
    report, reasons = snapshot_report(entry["keys"], missing, spec.kind == "source", entry.get("unmapped"))
    if spec.kind == "source":
        files = partitioned.sources.get(spec.name, {}).get("files", {})
        mtimes = [int(token.rsplit(":", 1)[1]) / 1e9 for token in files.values()]
        updated = max(mtimes) if mtimes else None
        by, why = overdue(spec.freshness, updated, now)
        return status_row(spec.name, "source", ["observed"] + (["overdue"] if by is not None else []),
                          reasons + ([why] if why else []), data_hash=None, rows=None, materialized_at=None,
                          group=spec.group, io=None, tags=dict(spec.tags), updated_at=updated,
                          freshness=spec.freshness, overdue_by=by, partitions=report)
    built = [v for k, v in partitioned.current.get(spec.name, {}).items() if k not in missing]
    finished = max((f for _, f in built), default=None)
    counts = [r for r, _ in built if r is not None]
    by, why = overdue(spec.freshness, finished, now) if spec.freshness else (None, None)
    state = "fresh" if len(missing) < len(entry["keys"]) else "missing"  # no partition can be built yet
    return status_row(spec.name, "asset", [state] + (["overdue"] if why else []), reasons + ([why] if why else []),
                      data_hash=None, rows=sum(counts) if built else None, materialized_at=finished,
                      group=spec.group, io=spec.io or config.default_io, tags=dict(spec.tags), updated_at=finished,
                      freshness=spec.freshness, overdue_by=by, partitions=report)


def _row(config: ProjectConfig, spec: CachedSpec, current: dict[str, tuple[str, int | None, float]],
         source_hashes: dict[str, str],
         now: float) -> AssetStatus:
    from assetflow.inspect.status import overdue, status_row

    if spec.kind == "source":
        updated = _newest_mtime(config, spec)
        by, why = overdue(spec.freshness, updated, now)
        return status_row(spec.name, "source", ["observed"] + (["overdue"] if why else []), [why] if why else [],
                          data_hash=source_hashes.get(spec.name), rows=None, materialized_at=None, group=spec.group,
                          io=None, tags=dict(spec.tags), updated_at=updated, freshness=spec.freshness, overdue_by=by)
    data_hash, count, finished_at = current[spec.name]
    by, why = overdue(spec.freshness, finished_at, now) if spec.freshness else (None, None)
    return status_row(spec.name, "asset", ["fresh"] + (["overdue"] if why else []), [why] if why else [],
                      data_hash=data_hash, rows=count, materialized_at=finished_at, group=spec.group,
                      io=spec.io or config.default_io, tags=dict(spec.tags), updated_at=finished_at,
                      freshness=spec.freshness, overdue_by=by)


def _newest_mtime(config: ProjectConfig, spec: CachedSpec) -> float | None:
    if spec.path is None:
        return None
    from assetflow.fingerprint.source import pattern_files

    mtimes = [p.stat().st_mtime_ns / 1e9 for p in pattern_files(spec.path, config.root)]
    return max(mtimes) if mtimes else None
