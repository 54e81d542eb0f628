"""assetflow side by side with its peers (doit, Hamilton) on the same generated projects, in the same run.

A figure copied from elsewhere says little on a shared 2-core machine; a ratio measured in the same run,
each tool's runs back to back on the same files, does. For each project (bench/generate.py) this writes,
next to the assetflow project, a twin for each peer with the very same asset functions (the text of the
generated modules, the ``@asset`` decorator made a no-op):

- doit: a ``doitproj`` package and a ``dodo.py`` with one task per asset whose ``file_dep`` are its
  upstreams' files (the source CSVs, the upstream Parquet files) and whose ``targets`` is its own Parquet
  file. A doit task loads its upstreams with polars, calls the function and writes Parquet: the work an
  assetflow run does, without the version store, the lineage records and the staleness of code. doit
  decides what is stale by file checksums (mtime first, then MD5), so an upstream rewritten with the same
  bytes does not re-run its downstream tasks, as assetflow's data fingerprint does not.
- Hamilton: a ``hamiltonproj`` package whose functions are the nodes (a node's upstreams are its parameters,
  so the graph is the same), a loader node per source CSV read with polars, and ``hamilton_run.py``, which
  builds the driver with Hamilton's cache (``.with_cache``, in the project's ``.hamilton_cache``), requests
  every asset and prints which nodes it executed rather than took from the cache (the cache's own event
  log). Hamilton's cache skips a node whose code version (its function's source) and input data versions
  (hashes of the values) are unchanged; the loaders are ``recompute``, so each run re-reads the CSVs and an
  unchanged file's data leaves everything downstream cached: the same early cut-off as assetflow's. Results
  stay in Hamilton's own stores (a SQLite metadata store, one pickle per data version), not one Parquet file
  per node: that is how a Hamilton user gets incremental runs, so it is used as it comes. It runs its nodes
  in one process, so it has no counterpart of ``--jobs`` and no wide cell. Its extension autoloading is off
  (Hamilton's documented faster import): the twin needs none, and with it on every run would load seven
  (dask's among them: this venv has dask for assetflow's Dask plugin), ~0.35 s a run here.

Cells (each a whole process timed from outside, assetflow then each peer, each ratio taken run by run;
every run checked to have run exactly the assets expected, a Wrong if not):

- ``cold``: no state, every asset runs; median of ``--repeat-cold`` runs each, every tool wiped back to
  no state before each.
- ``noop_first``: the no-op right after a run (assetflow: files younger than its racy-clean window).
- ``noop``: the steady no-op, median of ``--repeat`` runs each (assetflow's fast path).
- ``identical``: a source rewritten with the same bytes before each run, median of ``--repeat`` runs each.
- ``changed``: one value of that source changed (exactly its downstream cone runs); median of
  ``--repeat-cold`` runs each, a new value each time.
- ``cold_wide_jobs``: with ``--wide``, a cold run of the wide shape with ``--jobs J`` / ``doit -n J``.

``--peers`` picks the peers (default ``doit,hamilton``). Results go to bench/results/peers.json (``--quick``:
N=100, to bench/results/tmp/peers-quick.json); results without Hamilton figures render as they did before
it was added. ``--update-doc`` rewrites the side-by-side table in docs/benchmarks.md. Run it with the
project's venv: ``.venv/bin/python bench/peers.py [--quick]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import PACKAGE, downstream_cone, generate  # noqa: E402
from run import (  # noqa: E402
    REPO, Project, Wrong, _expect, child_env, machine, run_child, versions,
)

RESULTS = REPO / "bench" / "results" / "peers.json"
QUICK_RESULTS = REPO / "bench" / "results" / "tmp" / "peers-quick.json"
DOC = REPO / "docs" / "benchmarks.md"
DOC_START, DOC_END = "<!-- bench:peers:start -->", "<!-- bench:peers:end -->"
DOIT_PACKAGE = "doitproj"
DOIT_OUT = "doit-out"
TASKS = "doit-tasks.json"
HAMILTON_PACKAGE = "hamiltonproj"
HAMILTON_SPEC = "hamilton-nodes.json"
HAMILTON_RUN = "hamilton_run.py"
HAMILTON_CACHE = ".hamilton_cache"
PEERS = ("doit", "hamilton")

# The issue's figures (one run on a quiet 16-core machine, wall seconds), kept as the "old" column.
ISSUE_FIGURES = {
    ("layered", 1000, "cold"): (5.13, 6.75), ("layered", 1000, "noop_first"): (2.75, 0.45),
    ("layered", 1000, "noop"): (0.12, 0.40), ("layered", 1000, "identical"): (2.62, 0.31),
    ("layered", 1000, "changed"): (3.77, 3.03),
    ("layered", 10000, "cold"): (22.9, 58.2), ("layered", 10000, "noop_first"): (11.7, 1.43),
    ("layered", 10000, "identical"): (11.0, 1.33), ("layered", 10000, "changed"): (17.4, 17.7),
}
CELL_LABELS = {
    "cold": "cold", "noop_first": "no-op right after a run", "noop": "no-op, fast path",
    "identical": "same bytes rewritten", "changed": "one source changed",
    "cold_wide_jobs": "cold, wide",
}
TOOL_NAMES = {"assetflow": "assetflow", "doit": "doit", "hamilton": "Hamilton"}

_DODO = '''"""doit tasks equivalent to the assetflow project next to it (written by bench/peers.py)."""

import importlib
import json
from pathlib import Path

OUT = "{out}"
_SPEC = json.loads(Path(__file__).with_name("{tasks}").read_text(encoding="utf-8"))


def _materialize(name, module, ups, target):
    import polars as pl  # imported by the tasks that run, as assetflow's workers do

    fn = getattr(importlib.import_module(module), name)
    args = [pl.read_csv(_SPEC["sources"][u]) if u in _SPEC["sources"] else pl.read_parquet(f"{{OUT}}/{{u}}.parquet")
            for u in ups]
    fn(*args).write_parquet(target)


def task_asset():
    Path(OUT).mkdir(exist_ok=True)
    for name, (module, ups) in _SPEC["assets"].items():
        target = f"{{OUT}}/{{name}}.parquet"
        deps = [_SPEC["sources"][u] if u in _SPEC["sources"] else f"{{OUT}}/{{u}}.parquet" for u in ups]
        yield {{"name": name, "actions": [(_materialize, [name, module, ups, target])],
               "file_dep": deps, "targets": [target]}}
'''

# The twins' @asset: the function itself. Hamilton takes every public function of a module for a node, so the
# decorator's own function has a private name.
_NO_OP_ASSET = "\n\ndef _asset(fn):\n    return fn\n\n\nasset = _asset\n\n"

_HAMILTON_SOURCES = '''"""Hamilton loaders: a node per source CSV of the assetflow project (written by bench/peers.py).

Each reads its file with polars, as assetflow reads a csv source. Hamilton would cache a loader like any node, by its
code and inputs, which do not change when the file does; ``recompute`` reads the file on every run and versions what
it read, and a node downstream comes from the cache when the data versions it reads are unchanged.
"""

import polars as pl
from hamilton.function_modifiers import cache
'''

_HAMILTON_LOADER = '''

@cache(behavior="recompute")
def {name}() -> pl.DataFrame:
    return pl.read_csv("{path}")
'''

_HAMILTON_RUN = '''"""Runs the Hamilton twin once, every asset a final var, with its cache (written by bench/peers.py).

Prints, as JSON on its last line, the nodes it executed and those it took from the cache.
"""

import importlib
import json
from pathlib import Path

from hamilton import registry

registry.disable_autoload()  # Hamilton's documented faster import: the cache versions polars frames without extensions

from hamilton import driver
from hamilton.caching.adapter import CachingEventType

SPEC = json.loads(Path(__file__).with_name("{spec}").read_text(encoding="utf-8"))


def main():
    modules = [importlib.import_module(name) for name in SPEC["modules"]]
    dr = driver.Builder().with_modules(*modules).with_cache(path=str(Path(__file__).with_name("{cache}"))).build()
    dr.execute(SPEC["assets"])
    logs = dr.cache.logs(run_id=dr.cache.last_run_id, level="info")
    print(json.dumps({{kind: sorted(node for node, events in logs.items() if any(e.event_type == event for e in events))
                      for kind, event in (("executed", CachingEventType.EXECUTE_NODE),
                                          ("retrieved", CachingEventType.GET_RESULT))}}))


if __name__ == "__main__":
    main()
'''


def write_twin_package(folder: Path, twin: str) -> dict[str, str]:
    """Copy the generated asset modules into package ``twin``; return each asset's module.

    The very same functions (the modules' text), ``@asset`` made a no-op and the package's imports pointing at the
    twin, so a peer runs the code assetflow runs. The generated ``sources`` module (assetflow's ``source(...)``) is
    left out: each peer reads the CSVs its own way.
    """
    (folder / twin).mkdir()
    modules: dict[str, str] = {}
    for path in sorted((folder / PACKAGE).glob("*.py")):
        if path.stem == "sources":
            continue
        text = path.read_text(encoding="utf-8").replace("from assetflow import asset\n", _NO_OP_ASSET)
        (folder / twin / path.name).write_text(text.replace(f"from {PACKAGE} import", f"from {twin} import"),
                                               encoding="utf-8")
        modules.update((name, f"{twin}.{path.stem}") for name in re.findall(r"^def (a\d+)\(", text, flags=re.MULTILINE))
    return modules


def write_doit_project(folder: Path, manifest: dict[str, Any]) -> None:
    """The doit twin of a generated project: same functions, same sources, one task per asset."""
    modules = write_twin_package(folder, DOIT_PACKAGE)
    assets = {name: [module, manifest["edges"][name]] for name, module in modules.items()}
    sources = {name: spec["path"] for name, spec in manifest["sources"].items()}
    (folder / TASKS).write_text(json.dumps({"sources": sources, "assets": assets}), encoding="utf-8")
    (folder / "dodo.py").write_text(_DODO.format(out=DOIT_OUT, tasks=TASKS), encoding="utf-8")


def write_hamilton_project(folder: Path, manifest: dict[str, Any]) -> None:
    """The Hamilton twin: the same functions as nodes, a loader node per source, a runner using Hamilton's cache.

    A node's name is its function's, its upstreams its parameters', as in the assetflow project, so the graph is the
    same. Results stay in Hamilton's cache (its metadata store and result store, one pickle per data version), not in
    one Parquet file per node: that is how a Hamilton user gets incremental runs, so it is used as it comes.
    """
    modules = write_twin_package(folder, HAMILTON_PACKAGE)
    (folder / HAMILTON_PACKAGE / "sources.py").write_text(
        _HAMILTON_SOURCES + "".join(_HAMILTON_LOADER.format(name=name, path=spec["path"])
                                    for name, spec in sorted(manifest["sources"].items())), encoding="utf-8")
    spec = {"modules": [f"{HAMILTON_PACKAGE}.sources", *sorted(set(modules.values()))], "assets": sorted(modules)}
    (folder / HAMILTON_SPEC).write_text(json.dumps(spec), encoding="utf-8")
    (folder / HAMILTON_RUN).write_text(_HAMILTON_RUN.format(spec=HAMILTON_SPEC, cache=HAMILTON_CACHE), encoding="utf-8")


class Peer:
    """One peer's runs on a project's twin: a whole process timed from outside, then which assets it ran."""

    name = ""

    def __init__(self, folder: Path, timeout: float) -> None:
        self.folder, self.timeout = folder, timeout

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ran(self, run: dict[str, Any], what: str) -> set[str]:
        """The assets the run executed (not its loaders, not what it found up to date)."""
        raise NotImplementedError

    def start_over(self) -> None:
        """Back to no state at all, for another cold run."""
        raise NotImplementedError

    def run(self, what: str) -> tuple[dict[str, Any], set[str]]:
        run = run_child(self.argv(), self.timeout, env=child_env(), cwd=self.folder)
        if run["timed_out"]:
            raise TimeoutError(f"{self.name} {what}: no result after {self.timeout:.0f} s (killed)")
        if run["returncode"] != 0:
            raise Wrong(f"{self.name} {what}: exit status {run['returncode']}\n"
                        f"{(run['stderr'] or run['stdout'])[-1500:]}")
        return run, self.ran(run, what)

    def check(self, what: str, expected: set[str]) -> dict[str, Any]:
        """A run that must have run exactly ``expected``; a Wrong if not."""
        run, ran = self.run(what)
        if ran != expected:
            raise Wrong(f"{self.name} {what}: {len(ran)} assets ran, expected {len(expected)} "
                        f"(e.g. unexpected {sorted(ran - expected)[:5]}, missing {sorted(expected - ran)[:5]})")
        return run


class Doit(Peer):
    """``doit run`` (``-n J`` with ``jobs``) on the doit twin."""

    name = "doit"

    def __init__(self, folder: Path, doit: str, timeout: float, jobs: int | None = None) -> None:
        super().__init__(folder, timeout)
        self.doit, self.jobs = doit, jobs

    def argv(self) -> list[str]:
        return [self.doit, "run"] + (["-n", str(self.jobs)] if self.jobs else [])

    def ran(self, run: dict[str, Any], what: str) -> set[str]:
        return doit_ran(run["stdout"])

    def start_over(self) -> None:
        shutil.rmtree(self.folder / DOIT_OUT, ignore_errors=True)
        for db in self.folder.glob(".doit.db*"):
            db.unlink()


class Hamilton(Peer):
    """The Hamilton twin's runner: one process, every asset requested, its cache in the project."""

    name = "hamilton"

    def __init__(self, folder: Path, python: str, timeout: float) -> None:
        super().__init__(folder, timeout)
        self.python = python
        self.assets = set(json.loads((folder / HAMILTON_SPEC).read_text(encoding="utf-8"))["assets"])

    def argv(self) -> list[str]:
        return [self.python, HAMILTON_RUN]

    def ran(self, run: dict[str, Any], what: str) -> set[str]:
        try:
            nodes = json.loads(run["stdout"].strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError) as exc:
            raise Wrong(f"hamilton {what}: no report of its nodes ({exc}): {run['stdout'][-300:]!r}") from exc
        executed, retrieved = set(nodes["executed"]), set(nodes["retrieved"])
        if unaccounted := self.assets - executed - retrieved:
            raise Wrong(f"hamilton {what}: {len(unaccounted)} assets neither executed nor retrieved, "
                        f"e.g. {sorted(unaccounted)[:5]}")
        return executed & self.assets

    def start_over(self) -> None:
        shutil.rmtree(self.folder / HAMILTON_CACHE, ignore_errors=True)


def doit_ran(stdout: str) -> set[str]:
    """The assets whose task doit ran, from its output (``.  asset:NAME`` a task run)."""
    return {line[len(".  asset:"):].strip() for line in stdout.splitlines() if line.startswith(".  asset:")}


def twins(folder: Path, manifest: dict[str, Any], args: argparse.Namespace, jobs: int | None = None) -> list[Peer]:
    """The selected peers' twins written next to a generated project, and their runners, in ``--peers`` order."""
    peers: list[Peer] = []
    for name in args.peers:
        if name == "doit":
            write_doit_project(folder, manifest)
            peers.append(Doit(folder, args.doit, args.timeout, jobs))
        elif jobs is None:  # Hamilton runs its nodes in one process: no --jobs counterpart
            write_hamilton_project(folder, manifest)
            peers.append(Hamilton(folder, args.python, args.timeout))
    return peers


def _fig(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    return {"median_s": round(statistics.median(walls), 4), "runs_s": walls,
            "cpu_median_s": round(statistics.median(r["cpu_s"] for r in runs), 4),
            "maxrss_mb": max(r["maxrss_mb"] for r in runs)}


def _ratio_keys(peer: str) -> tuple[str, str]:
    """A cell's keys for the ratios assetflow / ``peer``: doit's keep their names from before Hamilton."""
    return ("ratio_median", "ratios") if peer == "doit" else (f"ratio_median_{peer}", f"ratios_{peer}")


def _cell(runs: list[tuple[dict[str, Any], ...]], peers: list[str]) -> dict[str, Any]:
    """Each tool's figures, and per peer the ratio assetflow / peer taken run by run (``runs``: assetflow first)."""
    cell = {"assetflow": _fig([r[0] for r in runs])}
    for i, peer in enumerate(peers, 1):
        ratios = [r[0]["wall_s"] / r[i]["wall_s"] for r in runs]
        median_key, ratios_key = _ratio_keys(peer)
        cell |= {peer: _fig([r[i] for r in runs]), median_key: round(statistics.median(ratios), 3),
                 ratios_key: [round(x, 3) for x in ratios]}
    return cell


def _said(cell: dict[str, Any], digits: int = 3) -> str:
    """One cell in a line of progress: each tool's median and each ratio."""
    text = f"assetflow {cell['assetflow']['median_s']:.{digits}f} s"
    for peer in PEERS:
        if peer in cell:
            text += f", {peer} {cell[peer]['median_s']:.{digits}f} s (ratio {cell[_ratio_keys(peer)[0]]:.2f})"
    return text


def bench_pair(shape: str, n: int, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """assetflow and each peer through every cell on one generated project; never raises for a slow or wrong run."""
    started = time.perf_counter()
    folder = workdir / f"{shape}-{n}"
    manifest = generate(folder, shape, n, seed=args.seed, rows=args.rows)
    peers = twins(folder, manifest, args)
    names = [peer.name for peer in peers]
    changed_source = sorted(manifest["sources"])[-1]
    cone = downstream_cone(manifest["edges"], changed_source)
    entry: dict[str, Any] = {"shape": shape, "n": n, "cone": len(cone), "status": "ok", "cells": {}}
    af = Project(folder, args.assetflow, args.timeout, True, None)
    everything = set(manifest["edges"])

    def say(text: str) -> None:
        print(f"  [{shape} N={n}] {text}", file=sys.stderr, flush=True)

    def runs(what: str, ran: set[str], before: Any = None) -> tuple[dict[str, Any], ...]:
        """assetflow, then each peer, each checked to have run exactly ``ran`` (``before`` before each)."""
        if before:
            before()
        a = af.materialize(what, as_json=True)
        _expect(what, af.outcomes(what, a), ran)
        found = [a]
        for peer in peers:
            if before:
                before()
            found.append(peer.check(what, ran))
        return tuple(found)

    def start_over() -> None:
        """Every tool back to no state at all, for another cold run."""
        shutil.rmtree(folder / ".assetflow", ignore_errors=True)
        for peer in peers:
            peer.start_over()

    def cold(index: int) -> tuple[dict[str, Any], ...]:
        if index:
            start_over()
        return runs("cold run", everything)

    def changed(index: int) -> tuple[dict[str, Any], ...]:
        af.write_source(changed_source, bump=index + 1)  # a new value each time: the cone runs again
        return runs(f"one value of {changed_source} changed", cone)

    cells = entry["cells"]
    try:
        cells["cold"] = _cell([cold(i) for i in range(args.repeat_cold)], names)
        cells["noop_first"] = _cell([runs("no-op right after a run", set())], names)
        cells["noop"] = _cell([runs("no-op", set()) for _ in range(args.repeat)], names)
        cells["identical"] = _cell([runs("same bytes rewritten", set(),
                                         lambda: af.write_source(changed_source, identical=True))
                                    for _ in range(args.repeat)], names)
        cells["changed"] = {**_cell([changed(i) for i in range(args.repeat_cold)], names), "ran": len(cone)}
        for key, cell in cells.items():
            say(f"{key}: {_said(cell)}")
    except TimeoutError as exc:
        entry["status"], entry["problem"] = "timeout", str(exc)
    except Wrong as exc:
        entry["status"], entry["problem"] = "wrong", str(exc)
        print(f"\n!!! WRONG RESULT [{shape} N={n}] {exc}\n", file=sys.stderr, flush=True)
    entry["elapsed_s"] = round(time.perf_counter() - started, 1)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return entry


def bench_wide_jobs(n: int, jobs: int, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Cold runs of the wide shape, ``--jobs J`` against ``doit -n J``: how the pools scale."""
    folder = workdir / f"wide-{n}-j{jobs}"
    entry: dict[str, Any] = {"shape": "wide", "n": n, "jobs": jobs, "status": "ok", "cells": {}}
    found = []
    try:
        for _ in range(args.repeat_cold):
            manifest = generate(folder, "wide", n, seed=args.seed, rows=args.rows)
            peers = twins(folder, manifest, args, jobs)
            everything = set(manifest["edges"])
            argv = [args.assetflow, "materialize", "--project", str(folder), "--json", "--jobs", str(jobs)]
            a = run_child(argv, args.timeout, env=child_env(), cwd=folder)
            if a["returncode"] != 0:
                raise Wrong(f"assetflow wide --jobs {jobs}: exit {a['returncode']}: {a['stderr'][-800:]}")
            found.append((a, *(peer.check(f"wide -n {jobs}", everything) for peer in peers)))
        entry["cells"]["cold_wide_jobs"] = _cell(found, [peer.name for peer in peers])
        print(f"  [wide N={n} jobs {jobs}] {_said(entry['cells']['cold_wide_jobs'], 2)}", file=sys.stderr, flush=True)
    except (Wrong, TimeoutError) as exc:
        entry["status"], entry["problem"] = "wrong", str(exc)
    shutil.rmtree(folder, ignore_errors=True)
    return entry


# -- report -----------------------------------------------------------------------------------

def _pairs(count: int) -> str:
    return "one pair" if count == 1 else f"medians of {count} pairs"


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _ratio(cell: dict[str, Any], peer: str) -> str:
    key = _ratio_keys(peer)[0]
    return f"{cell[key]:.2f}" if key in cell else "-"


def _tools(cell: dict[str, Any], tools: list[str], key: str) -> str:
    """``key`` of each tool's figures, e.g. ``2.32 / 4.03``; ``-`` for a tool the cell has none of."""
    return " / ".join(_s(cell[tool][key] if tool in cell else None) for tool in tools)


def render_markdown(results: dict[str, Any]) -> str:
    """The side-by-side table: the issue's figures (old) and this run's (new), ratio assetflow / doit.

    A run with Hamilton figures gets two more columns (its median, the ratio assetflow / Hamilton) and its CPU time;
    a run without them renders as it did before Hamilton was added.
    """
    base = results.get("baseline") or {}
    base_cells = {(e["shape"], e["n"], k): c for e in base.get("projects", []) for k, c in e.get("cells", {}).items()}
    base_commit = base.get("versions", {}).get("git_commit", "")[:10]
    hamilton = any("hamilton" in c for e in results.get("projects", []) for c in e.get("cells", {}).values())
    tools = ["assetflow", "doit"] + (["hamilton"] if hamilton else [])
    head = (["cell", "N", "old: assetflow / doit (s)", "old ratio"]
            + ([f"first same-run ratio (commit {base_commit})"] if base else [])
            + ["new: assetflow / doit (s), median", "new ratio (median of pairs)"]
            + (["Hamilton (s), median", "ratio assetflow / Hamilton (median of pairs)"] if hamilton else [])
            + [f"CPU {' / '.join(TOOL_NAMES[t] for t in tools)} (s)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def problem(label: str, e: dict[str, Any]) -> str:
        row = [label, f"{e['n']:,}", "-", "-", f"{e['status'].upper()}: {e.get('problem', '')[:120]}"]
        return "| " + " | ".join(row + ["-"] * (len(head) - len(row))) + " |"

    for e in results.get("projects", []):
        n, shape = e["n"], e["shape"]
        if e["status"] != "ok" and not e["cells"]:
            lines.append(problem(shape, e))
            continue
        for key, cell in e["cells"].items():
            label = CELL_LABELS[key] if key == "cold_wide_jobs" else f"{CELL_LABELS[key]}, {shape}"
            if key == "changed":
                label += f" ({cell['ran']:,} ran)"
            if key == "cold_wide_jobs":
                label += f" (`--jobs {e['jobs']}` / `doit -n {e['jobs']}`)"
            old = ISSUE_FIGURES.get((shape, n, key))
            row = [label, f"{n:,}", f"{_s(old[0])} / {_s(old[1])}" if old else "-",
                   f"{old[0] / old[1]:.2f}" if old else "-"]
            if base:
                first = base_cells.get((shape, n, key))
                row.append(f"{first['ratio_median']:.2f}" if first else "-")
            row += [_tools(cell, ["assetflow", "doit"], "median_s"), _ratio(cell, "doit")]
            if hamilton:
                row += [_tools(cell, ["hamilton"], "median_s"), _ratio(cell, "hamilton")]
            lines.append("| " + " | ".join(row + [_tools(cell, tools, "cpu_median_s")]) + " |")
        if e["status"] != "ok":
            lines.append(problem(f"rest, {shape}", e))
    m, v = results["machine"], results["versions"]
    for e in results.get("projects", []):
        if "run" in e:  # a project measured in a later run (e.g. N=10,000), merged into these results
            run = e["run"]
            lines += ["", f"{e['shape']} N={e['n']:,}: measured in its own run, {run['date']}, commit "
                      f"{run['git_commit'][:10]}, medians of {run['repeat']} pairs for the no-op and the rewrite, "
                      f"{_pairs(run.get('repeat_cold', 1))} for cold and one source changed."]
    peer_versions = "".join(f"{TOOL_NAMES[p]} {results[f'{p}_version']}, " for p in PEERS if f"{p}_version" in results)
    lines += ["", f"Old: the issue's figures (one run, a quiet 16-core machine). New: run {results['date']} on "
              f"{m['cpu']} ({m['cores']} cores, shared), assetflow commit {v.get('git_commit', '')[:10]}, "
              f"{peer_versions}polars {v.get('polars')}; "
              f"{_pairs(results['settings']['repeat'])} for the no-op and the rewrite, "
              f"{_pairs(results['settings'].get('repeat_cold', 1))} for cold, one source changed and wide. "
              "Raw figures: `bench/results/peers.json`."]
    return "\n".join(lines) + "\n"


def update_doc(results: dict[str, Any]) -> None:
    text = DOC.read_text(encoding="utf-8")
    block = f"{DOC_START}\n{render_markdown(results)}{DOC_END}"
    if DOC_START in text:
        head, rest = text.split(DOC_START, 1)
        text = head + block + rest.split(DOC_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Side by side with doit and Hamilton\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    venv_bin = REPO / ".venv" / "bin"
    parser.add_argument("--quick", action="store_true", help="N=100 layered only, 3 pairs; a smoke test.")
    parser.add_argument("--sizes", default="1000", help="Comma-separated N for the layered shape.")
    parser.add_argument("--wide", default="1000:2", help="N:JOBS for the wide cold runs ('' to skip).")
    parser.add_argument("--repeat", type=int, default=5, help="Runs of each tool for the no-op and the rewrite cells.")
    parser.add_argument("--repeat-cold", type=int, default=1, help="Runs of each tool for the cold and "
                        "one-source-changed cells (each from no state or with a new value).")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument("--keep", action="store_true", help="Keep the generated projects.")
    parser.add_argument("--assetflow", default=str(venv_bin / "assetflow"))
    parser.add_argument("--doit", default=str(venv_bin / "doit"))
    parser.add_argument("--python", default=str(venv_bin / "python"), help="The Python that runs the Hamilton twin.")
    parser.add_argument("--peers", default=",".join(PEERS), help="Comma-separated peers to run beside assetflow "
                        f"(of {', '.join(PEERS)}); the wide --jobs cell needs doit.")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--update-doc", action="store_true", help="Rewrite the table in docs/benchmarks.md.")
    parser.add_argument("--baseline", type=Path, default=None, help="An earlier peers.json whose ratios are "
                        "shown beside this run's (kept in the results as 'baseline').")
    parser.add_argument("--report-only", action="store_true", help="Only print (and --update-doc) from --out.")
    args = parser.parse_args()
    args.out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    args.peers = [p for p in args.peers.split(",") if p]
    if unknown := set(args.peers) - set(PEERS):
        parser.error(f"unknown peers {sorted(unknown)}; choose from {', '.join(PEERS)}")
    if args.report_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        sizes = [100] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
        wide = [tuple(int(x) for x in w.split(":")) for w in args.wide.split(",") if w]
        if args.quick or "doit" not in args.peers:
            wide = []  # --jobs has no Hamilton counterpart
        if args.quick:
            args.repeat = min(args.repeat, 3)
        results = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine(), "versions": versions(args.assetflow),
            "settings": {"repeat": args.repeat, "repeat_cold": args.repeat_cold, "rows": args.rows, "seed": args.seed,
                         "peers": args.peers}, "projects": [],
        }
        warm_up = [[args.assetflow, "--help"], [args.python, "-c", "import polars, pyarrow, assetflow.cli"]]
        if "doit" in args.peers:
            found = run_child([args.doit, "--version"], 60)
            results["doit_version"] = found["stdout"].split()[0] if found["stdout"] else "?"
        if "hamilton" in args.peers:
            found = run_child([args.python, "-c", "import hamilton.version as v; print(*v.VERSION, sep='.')"], 60)
            results["hamilton_version"] = found["stdout"].strip() or "?"
            warm_up.append([args.python, "-c", ("import hamilton.registry as r; r.disable_autoload(); "
                                                "import hamilton.driver, hamilton.caching.adapter")])
        for warm in warm_up:
            run_child(warm, 120, env=child_env())  # fills the bytecode cache, so no cell pays for compiling
        workdir = Path(tempfile.mkdtemp(prefix="assetflow-peers-"))
        try:
            for n in sizes:
                print(f"layered N={n}...", file=sys.stderr, flush=True)
                results["projects"].append(bench_pair("layered", n, workdir, args))
            for n, jobs in wide:
                print(f"wide N={n} --jobs {jobs}...", file=sys.stderr, flush=True)
                results["projects"].append(bench_wide_jobs(n, jobs, workdir, args))
        finally:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.baseline:
        earlier = json.loads(args.baseline.read_text(encoding="utf-8"))
        results["baseline"] = {k: earlier[k] for k in ("date", "versions", "projects")}
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(render_markdown(results))
    if args.update_doc:
        update_doc(results)
    if any(e["status"] != "ok" for e in results["projects"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
