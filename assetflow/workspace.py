"""A loaded project: its graph, state store, storage backends and fingerprints, together.

Everything above this layer (status, materialize, load, the CLI) works through a
``Workspace`` so that code and source fingerprints are computed once per process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from assetflow.contracts import CheckResult
from assetflow.declare import AssetSpec, SourceSpec
from assetflow.graph import AssetGraph
from assetflow.plan import Assessment, Recipe, assess, canonical_config
from assetflow.project import ProjectConfig, load_config, load_specs
from assetflow.state.snapshot import CODE_CACHE_KEY
from assetflow.state.store import Materialization, StateStore
from assetflow.storage.base import Backends

if TYPE_CHECKING:
    from assetflow.checks.standing import CheckFingerprints
    from assetflow.fingerprint.code import CodeFingerprint
    from assetflow.fingerprint.source import SourceVersion
    from assetflow.partitions.units import PartitionPlan



class Workspace:
    """The project as loaded in this process."""

    def __init__(self, config: ProjectConfig, graph: AssetGraph, loaded_at_ns: int | None = None) -> None:
        self.config = config
        self.loaded_at_ns = time.time_ns() if loaded_at_ns is None else loaded_at_ns  # when the code was read
        self.graph = graph
        self.root = config.root
        self.backends = Backends(config.data_path, config.io_options)
        self._code: dict[str, CodeFingerprint] = {}
        self._cached_code: dict[str, str] | None = None  # asset -> code digest from an earlier run, same code
        self._sources: dict[str, SourceVersion] = {}
        self._source_partitions: dict[str, dict[str, SourceVersion]] = {}
        # (io, location, data hash) -> token checked ok, during one assessment (``assess_all`` empties it)
        self._verified: dict[tuple[str, str, str], str] = {}
        self.now: float | None = None  # the instant partition keys are listed at (None: the clock); tests set it
        self.key_clock: object | None = None  # the partition keys listed once per load (partitions.keys.key_clock)
        # Set by a caller that decides itself when the files are looked at again (the CLI for its one command,
        # the page that watches them): API calls then keep what was observed (``start_call``).
        self.keep_observations = False
        # The schedules and sensors declared while the project was imported, when the loader recorded
        # them (``api.workspace`` does): the daemon's listings read them from here.
        self.automation: list[object] = []

    @classmethod
    def load(
        cls, project_dir: Path | str | None = None, modules: Iterable[str] = (), files: Iterable[str] = ()
    ) -> Workspace:
        """Find the project, import its modules and validate its graph."""
        loaded_at_ns = time.time_ns()  # before anything is read: pyproject.toml, modules, SQL files
        config = load_config(Path(project_dir) if project_dir else None, tuple(modules), tuple(files))
        specs = load_specs(config)
        return cls(config, AssetGraph(specs), loaded_at_ns)

    @cached_property
    def store(self) -> StateStore:
        return StateStore(self.config.state_path)

    def source_paths(self) -> list[Path]:
        """Every source's matching files and the folder they are looked for in:
        what a watcher (the page) stats to notice new or changed data without hashing it."""
        from assetflow.fingerprint.source import source_files

        paths: list[Path] = []
        for spec in self.graph.specs.values():
            if isinstance(spec, SourceSpec):
                paths += [(self.root / spec.path).parent, *source_files(spec, self.root)]
        return paths

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
            del self.__dict__["store"]

    # -- fingerprints -----------------------------------------------------------------------

    def io_of(self, spec: AssetSpec) -> str:
        return spec.io or self.config.default_io

    def code(self, spec: AssetSpec) -> CodeFingerprint:
        found = self._code.get(spec.name)
        if found is None and getattr(spec, "language", None) == "sql":
            from assetflow.sql.fingerprint import fingerprint_sql

            found = fingerprint_sql(spec)  # type: ignore[arg-type]
            self._code[spec.name] = found
        elif found is None:
            from assetflow.fingerprint.code import fingerprint_function

            found = fingerprint_function(spec.fn, project_root=self.root, version=spec.version)
            self._code[spec.name] = found
        return found

    def learn_code(self, name: str, found: CodeFingerprint) -> None:
        """Take the fingerprint a worker walked for asset ``name`` as this process's own.

        The worker ran the code this process loaded (``ComputeTask.code_token``), so it is the
        same; kept like one walked here, it is recorded and saved in the code cache (``save_code_cache``).
        """
        self._code.setdefault(name, found)

    def code_digest(self, spec: AssetSpec) -> str:
        """The digest of ``code(spec)``, from the code-fingerprint cache when the project's code is unchanged.

        Walking an asset's code costs more than anything else the full check does; the
        digests of the last assessment are kept in the state store under the digest of every
        project module's compiled bytes (``code_cache_key``), so a full check that follows a
        touched source or data file does not walk the code again. Switched off with
        ``ASSETFLOW_NO_FAST_PATH``, as the fast path is: module-level code whose values depend
        on more than the files (the environment, the clock) is fingerprinted afresh then.
        """
        found = self._code.get(spec.name)
        if found is None and getattr(spec, "language", None) != "sql":
            cached = self._code_cache().get(spec.name)
            if cached is not None:
                return cached
        return self.code(spec).digest

    def code_to_record(self, spec: AssetSpec, previous: Materialization | None) -> CodeFingerprint:
        """The code fingerprint a new materialization of ``spec`` records, walking its code only if needed.

        When its digest came from the code cache and ``previous`` was recorded under that same
        digest, the code is the one walked then: its sources are stored already (``sources`` is
        left empty) and it uses the same libraries, recorded at the versions installed now. A run
        after a source changed would otherwise walk every asset it ran at its record (0.4 of
        0.7 s of coordinator CPU for 612 assets of the layered bench project).
        """
        digest = self.code_digest(spec)  # from the cache, or walked now (then ``code`` has it)
        if spec.name not in self._code and previous is not None and digest == previous.code_fingerprint:
            from assetflow.fingerprint.code import CodeFingerprint, installed_versions

            return CodeFingerprint(digest, {}, installed_versions(previous.libraries))
        return self.code(spec)

    @cached_property
    def check_fingerprints(self) -> CheckFingerprints:
        """What each check's verdicts depend on besides the data (``checks.standing``): the gate judges with
        these, ``status`` and ``show`` read the verdicts that stand with them."""
        from assetflow.checks.standing import CheckFingerprints
        from assetflow.fingerprint.code import fingerprint_function

        def partition_inputs(spec: AssetSpec, key: str, current: Mapping[str, Materialization]) -> dict[str, str]:
            from assetflow.partitions.run import unit_upstream

            return unit_upstream(self, spec, key, {}, current)[0]

        return CheckFingerprints(self.graph.specs, lambda name: self.observe_sources([name])[name].data_hash,
                                 lambda fn: fingerprint_function(fn, project_root=self.root).digest, partition_inputs)

    def verdicts_in_effect(self, spec: AssetSpec, mat: Materialization,
                           current: Mapping[str, Materialization] | None = None) -> list[dict[str, object]]:
        """The verdicts of ``spec``'s checks on version ``mat`` that stand: under the checks as defined now and the
        upstream versions ``mat`` was made from (``CheckFingerprints.standing``); ``current``: ``current_units``,
        when the caller has read them already."""
        return self.check_fingerprints.standing(self.store, spec, mat, self.current_units() if current is None else current)

    def current_units(self) -> dict[str, Materialization]:
        """The current version of every asset, and of every partition (``asset[key]``) in a partitioned project:
        what a run schedules against."""
        from assetflow.partitions.units import is_partitioned

        if not is_partitioned(self.graph):
            return self.store.current()
        from assetflow.partitions.run import current_units

        return current_units(self)

    @cached_property
    def code_cache_key(self) -> str | None:
        """What the code-fingerprint cache is valid for: this assetflow and Python, and these exact module bytes."""
        if os.environ.get("ASSETFLOW_NO_FAST_PATH"):  # fastpath.DISABLE_ENV
            return None
        from assetflow.fingerprint.code import FINGERPRINT_SCHEME
        from assetflow.fingerprint.imports import code_digests
        from assetflow.hashing import hash_fields
        from assetflow.version import __version__

        digests = sorted(f"{path}:{digest}" for path, digest in code_digests(self.root).items())
        return hash_fields("code-cache", __version__, str(FINGERPRINT_SCHEME), sys.version, *digests)

    def _code_cache(self) -> dict[str, str]:
        if self._cached_code is None:
            self._cached_code = {}
            key = self.code_cache_key
            text = self.store.get_meta(CODE_CACHE_KEY) if key is not None else None
            if text:
                try:
                    cache = json.loads(text)
                    if cache.get("key") == key and isinstance(cache.get("digests"), dict):
                        self._cached_code = {k: v for k, v in cache["digests"].items() if isinstance(v, str)}
                except (ValueError, AttributeError):
                    pass  # a damaged cache is never used
        return self._cached_code

    def save_code_cache(self) -> None:
        """Keep the code digests computed here for the next run, while the project's code stays the same."""
        key = self.code_cache_key
        if key is None:
            return
        known = self._code_cache()
        computed = {n: f.digest for n, f in self._code.items()
                    if getattr(self.graph.specs.get(n), "language", None) != "sql"}
        if all(known.get(n) == d for n, d in computed.items()):
            return
        digests = {**known, **computed}
        with self.store.cache_write():  # a full disk only costs the next run the walk
            self.store.set_meta(CODE_CACHE_KEY, json.dumps({"key": key, "digests": digests}, sort_keys=True))
        self._cached_code = digests

    def observe_sources(self, names: Iterable[str]) -> dict[str, SourceVersion]:
        """Current versions of these sources; files with an unchanged stat are not re-read."""
        from assetflow.fingerprint.source import observe_source

        wanted = [n for n in names if n not in self._sources]
        if wanted:
            cache = self.store.stat_cache()
            updates: dict[str, tuple[str, str]] = {}
            for name in wanted:
                spec = self.graph.specs[name]
                assert isinstance(spec, SourceSpec)
                self._sources[name] = observe_source(spec, self.root, cache, updates)
            with self.store.cache_write(), self.store.transaction() as db:
                if updates:
                    self.store.save_stat_cache(db, updates)
                self.store.save_source_versions(db, {n: self._sources[n].data_hash for n in wanted})
        return {n: self._sources[n] for n in names}

    def code_files(self) -> list[str]:
        """Every imported Python file that is the project's own code, its SQL files and their folders."""
        from assetflow.fingerprint.code import is_project_file

        files = self.sql_files()
        for module in list(sys.modules.values()):
            filename = getattr(module, "__file__", None)
            if filename and filename.endswith(".py") and is_project_file(filename, self.root):
                files.append(str(Path(filename).resolve()))
        return sorted(files)

    def code_tokens(self) -> dict[str, str | None]:
        """``code_files`` with the stat token that vouches for what this process read of each (None: gone).

        For a module the project loader imported, the token taken *before* its bytes were
        read: a file edited after the read then never matches the token recorded for it,
        whatever instant the edit landed at. Other files are stat'ed now; a cache must
        still refuse any token too recent to vouch (``hashing.is_racy``).
        """
        from assetflow.fingerprint.code import is_project_file
        from assetflow.fingerprint.imports import module_source
        from assetflow.hashing import stat_token

        def now(path: str) -> str | None:
            try:
                return stat_token(path)
            except OSError:
                return None

        tokens = {path: now(path) for path in self.sql_files()}
        for module in list(sys.modules.values()):
            filename = getattr(module, "__file__", None)
            if filename and filename.endswith(".py") and is_project_file(filename, self.root):
                loaded = module_source(module)
                tokens[str(Path(filename).resolve())] = loaded.token if loaded is not None else now(filename)
        return dict(sorted(tokens.items()))

    def code_contents(self) -> dict[str, str]:
        """Each project module's file -> the digest of the bytes it was compiled from (loader-imported ones only).

        Lets the no-op snapshot vouch for a file too young for its stat token: by its content.
        """
        from assetflow.fingerprint.imports import module_source

        found = {}
        for module in list(sys.modules.values()):
            loaded = module_source(module)
            if loaded is not None:
                found[str(Path(loaded.path).resolve())] = loaded.digest
        return found

    def sql_files(self) -> list[str]:
        """The ``.sql`` files and the folders searched for them: what the SQL part of the graph is read from."""
        if not self.config.sql:
            return []
        from assetflow.sql.resolve import sql_files

        found, folders = sql_files(self.root, self.config.sql)
        return [str(p) for p in (*found, *folders)]

    def start_call(self) -> None:
        """An API call starts with this workspace: look at the sources' files and the partition keys again.

        A workspace reused between calls (a notebook) must see a changed file or a new day's file as a
        new process would; what is cheap to keep stays (the code, the graph, the code digests), and
        the stat cache keeps re-observing an unchanged file cheap. Not with ``keep_observations``.
        """
        if not self.keep_observations:
            self._sources.clear()
            self._source_partitions.clear()
            self.forget_partition_keys()

    def forget_source(self, name: str) -> None:
        self._sources.pop(name, None)
        self._source_partitions.pop(name, None)
        self.__dict__.pop("partition_plan", None)

    def forget_partition_keys(self) -> None:
        """Keys were added or removed: list them again, and plan the partitions again, when next asked."""
        self.key_clock = None
        self.__dict__.pop("partition_plan", None)  # how functools.cached_property is reset

    @cached_property
    def partition_plan(self) -> PartitionPlan:
        """Every partitioned asset's keys, mapped inputs and available partitions (docs/partitions.md)."""
        from assetflow.partitions.keys import build_plan

        return build_plan(self)

    def source_partitions(self, name: str) -> dict[str, SourceVersion]:
        """A partitioned source's version per key whose file exists (hashed behind the stat cache)."""
        found = self._source_partitions.get(name)
        if found is None:
            from assetflow.partitions.keys import observe_source_partitions

            found = self._source_partitions[name] = observe_source_partitions(self, name)
        return found

    def recipe(self, spec: AssetSpec, upstream_hashes: Mapping[str, str], partition: str = "") -> Recipe:
        return Recipe(
            code=self.code_digest(spec),
            config=canonical_config(spec.config),
            io=self.io_of(spec),
            upstream={u: upstream_hashes[u] for u in spec.upstreams},
            deps=tuple(d for d in spec.deps if d not in spec.upstreams),
            partition=_partition_in_recipe(spec, partition),
        )

    def check(self, mat: Materialization) -> CheckResult:
        """Is the stored data of a materialization still there and intact? Refreshes its token.

        Data a backend cannot even look at (a damaged DuckDB file) reads as missing, with the
        backend's words: that fails only the assets stored there, not the whole command.
        """
        from assetflow.errors import PluginError, StorageError

        # Partitions with equal data share one content-addressed location: once one of them is verified
        # under the location's current token, the others are checked against that token, not rehashed.
        verified = self._verified.get((mat.io, mat.location, mat.data_hash), mat.token)
        try:
            result = self.backends.get(mat.io).check(mat.asset, mat.location, mat.data_hash, verified)
        except PluginError:
            raise  # no backend of that name: the whole project is misconfigured, say so
        except StorageError as exc:
            return CheckResult("missing", detail=str(exc))
        if result.status == "ok" and result.token:
            self._verified[(mat.io, mat.location, mat.data_hash)] = result.token
        if result.status == "ok" and result.token and result.token != mat.token and mat.id is not None:
            self.store.update_token(mat.id, result.token)
        return result

    def assess_one(
        self, spec: AssetSpec, upstream_hashes: Mapping[str, str], current: Materialization | None,
        partition: str = "", *, walk_code: bool = True,
    ) -> Assessment:
        """``spec``'s verdict. Without ``walk_code``, an asset with no current version is judged
        without its recipe (``recipe`` None): a run whose state holds no version at all has its
        workers walk the code of what they compute (``Run``), and needs nothing else to know it is missing."""
        if current is None and not walk_code:
            return assess(spec.name, None, None, None)
        recipe = self.recipe(spec, upstream_hashes, partition)
        check = self.check(current) if current is not None else None
        old_code = new_code = None
        if current is not None and current.code_fingerprint != recipe.code:
            old_code = self.store.code_sources(current.code_fingerprint)
            new_code = self.code(spec).sources
        source_names = frozenset()  # named only in the reason for an upstream that changed
        if current is not None and current.upstream != recipe.upstream:
            source_names = frozenset(u for u in spec.upstreams if isinstance(self.graph.specs[u], SourceSpec))
        verdict = assess(spec.name, recipe, current, check, sources=source_names, old_code=old_code, new_code=new_code)
        if current is None and not partition and spec.partitions is None:
            verdict.reasons = self._was_partitioned(spec.name) or verdict.reasons
        return verdict

    def _was_partitioned(self, name: str) -> list[str]:
        """Why an unpartitioned asset whose partitions are current has no current version (its view shows them)."""
        count = len(self.store.current_partitions(asset=name))
        if not count:
            return []
        return [f"partitioned until now: its {count} current partitions are what its storage shows; "
                f"its definition has no partitions= any more"]

    def assess_all(self, names: Iterable[str] | None = None, *, walk_code: bool = True) -> dict[str, Assessment]:
        """Predict every asset's state from the state store as it is now (no side effects on data).

        An asset whose upstream is stale or missing is stale too, with that reason,
        since the upstream will be recomputed before it. ``walk_code``: as ``assess_one`` (partitioned
        assets are always walked).
        """
        # Tokens verified by an earlier assessment may be older than the records now: a run since
        # rewrote that location (``--force``), and a long-lived process would keep every one.
        self._verified.clear()
        from assetflow.partitions.units import is_partitioned

        if is_partitioned(self.graph):
            from assetflow.partitions.assess import assess_units

            units = assess_units(self, names)
            self.save_code_cache()
            return units
        wanted = set(self.graph.order if names is None else names)
        needed = wanted | self.graph.ancestors(wanted)
        order = [n for n in self.graph.order if n in needed]
        sources = self.observe_sources([n for n in order if isinstance(self.graph.specs[n], SourceSpec)])
        current = self.store.current()
        verdicts: dict[str, Assessment] = {}
        hashes: dict[str, str] = {n: v.data_hash for n, v in sources.items()}
        for name in order:
            spec = self.graph.specs[name]
            if isinstance(spec, SourceSpec):
                continue
            missing_ups = [u for u in spec.upstreams if u not in hashes]
            if missing_ups:
                verdict = Assessment(name, "stale" if name in current else "missing",
                                     [f"upstream `{u}` is missing" for u in missing_ups], None, current.get(name))
            else:
                verdict = self.assess_one(spec, hashes, current.get(name), walk_code=walk_code)
            for up in spec.inputs:
                upstream_verdict = verdicts.get(up)
                if upstream_verdict is not None and not upstream_verdict.fresh and up not in missing_ups:
                    if verdict.state == "fresh":
                        verdict.state = "stale"
                    verdict.reasons.append(f"upstream `{up}` is {upstream_verdict.state}")
            verdicts[name] = verdict
            if verdict.current is not None and verdict.state != "missing":
                hashes[name] = verdict.current.data_hash
        self.save_code_cache()
        return {n: v for n, v in verdicts.items() if n in wanted}


def _partition_in_recipe(spec: AssetSpec, key: str) -> str:
    """A partition's part of its recipe: its key, and what else fixes its window when the asset reads it (a
    ``partition`` parameter, ``partition_column``), so that the same key as another window is another recipe.

    Most keys name their window with the definition's zone: hourly, daily and monthly keys are spelled apart
    (an hourly key holds its minute). A weekly key is spelled as a daily one (its Monday), so a weekly
    definition names each time dimension's cadence and zone. Otherwise only the zones other than UTC, the
    default, are added, so that recipes made before any of this counted stay as they were.
    """
    if not key or not (spec.wants_partition or spec.partition_column is not None):
        return key
    from assetflow.partitioning import ProductPartitions, TimePartitions

    definition = spec.partitions
    dimensions = definition.dimensions if isinstance(definition, ProductPartitions) else (definition,)
    times = [d for d in dimensions if isinstance(d, TimePartitions)]
    if any(d.cadence == "weekly" for d in times):
        return f"{key}@{','.join(f'{d.cadence} {d.timezone}' for d in times)}"
    zones = [d.timezone for d in times if d.timezone != "UTC"]
    return f"{key}@{','.join(zones)}" if zones else key
