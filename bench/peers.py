"""assetflow side by side with a peer (doit) on the same generated projects, in the same run.

A figure copied from elsewhere says little on a shared 2-core machine; a ratio measured in the same run,
each pair of runs back to back on the same files, does. For each project (bench/generate.py) this writes,
next to the assetflow project, the equivalent doit project: a ``doitproj`` package with the very same
asset functions (the text of the generated modules, the ``@asset`` decorator made a no-op), and a
``dodo.py`` with one task per asset whose ``file_dep`` are its upstreams' files (the source CSVs, the
upstream Parquet files) and whose ``targets`` is its own Parquet file. A doit task loads its upstreams
with polars, calls the function and writes Parquet: the work an assetflow run does, without the
version store, the lineage records and the staleness of code. doit decides what is stale by file
checksums (mtime first, then MD5), so an upstream rewritten with the same bytes does not re-run its
downstream tasks, as assetflow's data fingerprint does not.

Cells (each a whole process timed from outside, assetflow then doit, the ratio taken pair by pair):

- ``cold``: no state, every asset runs (checked for both); median of ``--repeat-cold`` pairs, both tools
  wiped back to no state before each.
- ``noop_first``: the no-op right after a run (assetflow: files younger than its racy-clean window).
- ``noop``: the steady no-op, median of ``--repeat`` pairs (assetflow's fast path).
- ``identical``: a source rewritten with the same bytes before each run, median of ``--repeat`` pairs.
- ``changed``: one value of that source changed (checked: exactly its downstream cone ran, both); median
  of ``--repeat-cold`` pairs, a new value each time.
- ``cold_wide_jobs``: with ``--wide``, a cold run of the wide shape with ``--jobs J`` / ``doit -n J``.

Results go to bench/results/peers.json (``--quick``: N=100, to bench/results/tmp/peers-quick.json);
``--update-doc`` rewrites the side-by-side table in docs/benchmarks.md. Run it with the project's venv:
``.venv/bin/python bench/peers.py [--quick]``.
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


def write_doit_project(folder: Path, manifest: dict[str, Any]) -> None:
    """The doit twin of a generated project: same functions, same sources, one task per asset."""
    package = folder / PACKAGE
    twin = folder / DOIT_PACKAGE
    twin.mkdir()
    assets: dict[str, list[Any]] = {}
    for path in sorted(package.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        text = text.replace("from assetflow import asset\n", "\n\ndef asset(fn):\n    return fn\n\n")
        text = text.replace(f"from {PACKAGE} import", f"from {DOIT_PACKAGE} import")
        (twin / path.name).write_text(text, encoding="utf-8")
        for name in re.findall(r"^def (a\d+)\(", text, flags=re.M):
            assets[name] = [f"{DOIT_PACKAGE}.{path.stem}", manifest["edges"][name]]
    sources = {name: spec["path"] for name, spec in manifest["sources"].items()}
    (folder / TASKS).write_text(json.dumps({"sources": sources, "assets": assets}), encoding="utf-8")
    (folder / "dodo.py").write_text(_DODO.format(out=DOIT_OUT, tasks=TASKS), encoding="utf-8")


class Doit:
    """Runs doit on a project's twin and checks which tasks ran."""

    def __init__(self, folder: Path, doit: str, timeout: float, jobs: int | None = None) -> None:
        self.folder, self.doit, self.timeout, self.jobs = folder, doit, timeout, jobs

    def run(self, what: str) -> tuple[dict[str, Any], set[str]]:
        argv = [self.doit, "run"] + (["-n", str(self.jobs)] if self.jobs else [])
        run = run_child(argv, self.timeout, env=child_env(), cwd=self.folder)
        if run["timed_out"]:
            raise TimeoutError(f"doit {what}: no result after {self.timeout:.0f} s (killed)")
        if run["returncode"] != 0:
            raise Wrong(f"doit {what}: exit status {run['returncode']}\n{(run['stderr'] or run['stdout'])[-1500:]}")
        return run, doit_ran(run["stdout"])


def doit_ran(stdout: str) -> set[str]:
    """The assets whose task doit ran, from its output (``.  asset:NAME`` a task run)."""
    return {line[len(".  asset:"):].strip() for line in stdout.splitlines() if line.startswith(".  asset:")}


def _fig(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    return {"median_s": round(statistics.median(walls), 4), "runs_s": walls,
            "cpu_median_s": round(statistics.median(r["cpu_s"] for r in runs), 4),
            "maxrss_mb": max(r["maxrss_mb"] for r in runs)}


def _cell(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    ratios = [a["wall_s"] / b["wall_s"] for a, b in pairs]
    return {"assetflow": _fig([a for a, _ in pairs]), "doit": _fig([b for _, b in pairs]),
            "ratio_median": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios]}


def bench_pair(shape: str, n: int, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Both tools through every cell on one generated project; never raises for a slow or wrong run."""
    started = time.perf_counter()
    folder = workdir / f"{shape}-{n}"
    manifest = generate(folder, shape, n, seed=args.seed, rows=args.rows)
    write_doit_project(folder, manifest)
    changed_source = sorted(manifest["sources"])[-1]
    cone = downstream_cone(manifest["edges"], changed_source)
    entry: dict[str, Any] = {"shape": shape, "n": n, "cone": len(cone), "status": "ok", "cells": {}}
    af = Project(folder, args.assetflow, args.timeout, True, None)
    doit = Doit(folder, args.doit, args.timeout)
    everything = set(manifest["edges"])

    def say(text: str) -> None:
        print(f"  [{shape} N={n}] {text}", file=sys.stderr, flush=True)

    def pair(what: str, ran: set[str], before: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        if before:
            before()
        a = af.materialize(what, as_json=True)
        _expect(what, af.outcomes(what, a), ran)
        if before:
            before()
        b, doit_ran = doit.run(what)
        if doit_ran != ran:
            raise Wrong(f"doit {what}: {len(doit_ran)} tasks ran, expected {len(ran)} "
                        f"(e.g. unexpected {sorted(doit_ran - ran)[:5]}, missing {sorted(ran - doit_ran)[:5]})")
        return a, b

    def start_over() -> None:
        """Both tools back to no state at all, for another cold pair."""
        shutil.rmtree(folder / ".assetflow", ignore_errors=True)
        shutil.rmtree(folder / DOIT_OUT, ignore_errors=True)
        for db in folder.glob(".doit.db*"):
            db.unlink()

    def cold_pair(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        if index:
            start_over()
        return pair("cold run", everything)

    def changed_pair(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        af.write_source(changed_source, bump=index + 1)  # a new value each time: the cone runs again
        return pair(f"one value of {changed_source} changed", cone)

    cells = entry["cells"]
    try:
        cells["cold"] = _cell([cold_pair(i) for i in range(args.repeat_cold)])
        cells["noop_first"] = _cell([pair("no-op right after a run", set())])
        cells["noop"] = _cell([pair("no-op", set()) for _ in range(args.repeat)])
        cells["identical"] = _cell([pair("same bytes rewritten", set(),
                                         lambda: af.write_source(changed_source, identical=True))
                                    for _ in range(args.repeat)])
        cells["changed"] = {**_cell([changed_pair(i) for i in range(args.repeat_cold)]), "ran": len(cone)}
        for key, cell in cells.items():
            say(f"{key}: assetflow {cell['assetflow']['median_s']:.3f} s, doit {cell['doit']['median_s']:.3f} s, "
                f"ratio {cell['ratio_median']:.2f}")
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
    pairs = []
    try:
        for _ in range(args.repeat_cold):
            manifest = generate(folder, "wide", n, seed=args.seed, rows=args.rows)
            write_doit_project(folder, manifest)
            everything = set(manifest["edges"])
            argv = [args.assetflow, "materialize", "--project", str(folder), "--json", "--jobs", str(jobs)]
            a = run_child(argv, args.timeout, env=child_env(), cwd=folder)
            if a["returncode"] != 0:
                raise Wrong(f"assetflow wide --jobs {jobs}: exit {a['returncode']}: {a['stderr'][-800:]}")
            b, ran = Doit(folder, args.doit, args.timeout, jobs).run(f"wide -n {jobs}")
            if ran != everything:
                raise Wrong(f"doit wide -n {jobs}: {len(ran)} tasks ran, expected {len(everything)}")
            pairs.append((a, b))
        entry["cells"]["cold_wide_jobs"] = _cell(pairs)
        cell = entry["cells"]["cold_wide_jobs"]
        print(f"  [wide N={n} jobs {jobs}] assetflow {cell['assetflow']['median_s']:.2f} s, doit "
              f"{cell['doit']['median_s']:.2f} s, ratio {cell['ratio_median']:.2f}", file=sys.stderr, flush=True)
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


def render_markdown(results: dict[str, Any]) -> str:
    """The side-by-side table: the issue's figures (old) and this run's (new), ratio assetflow / doit."""
    base = results.get("baseline") or {}
    base_cells = {(e["shape"], e["n"], k): c for e in base.get("projects", []) for k, c in e.get("cells", {}).items()}
    base_commit = base.get("versions", {}).get("git_commit", "")[:10]
    lines = ["| cell | N | old: assetflow / doit (s) | old ratio | "
             + (f"first same-run ratio (commit {base_commit}) | " if base else "")
             + "new: assetflow / doit (s), median | new ratio (median of pairs) | CPU assetflow / doit (s) |",
             "|---|---|---|---|" + ("---|" if base else "") + "---|---|---|"]
    for e in results.get("projects", []):
        n, shape = e["n"], e["shape"]
        if e["status"] != "ok" and not e["cells"]:
            lines.append(f"| {shape} | {n:,} | - | - | {e['status'].upper()}: {e.get('problem', '')[:120]} | - | - |")
            continue
        for key, cell in e["cells"].items():
            label = CELL_LABELS[key] if key == "cold_wide_jobs" else f"{CELL_LABELS[key]}, {shape}"
            if key == "changed":
                label += f" ({cell['ran']:,} ran)"
            if key == "cold_wide_jobs":
                label += f" (`--jobs {e['jobs']}` / `doit -n {e['jobs']}`)"
            old = ISSUE_FIGURES.get((shape, n, key))
            old_s = f"{_s(old[0])} / {_s(old[1])}" if old else "-"
            old_r = f"{old[0] / old[1]:.2f}" if old else "-"
            a, b = cell["assetflow"], cell["doit"]
            if base:
                first = base_cells.get((shape, n, key))
                old_r += f" | {first['ratio_median']:.2f}" if first else " | -"
            lines.append(f"| {label} | {n:,} | {old_s} | {old_r} | {_s(a['median_s'])} / {_s(b['median_s'])} | "
                         f"{cell['ratio_median']:.2f} | {_s(a['cpu_median_s'])} / {_s(b['cpu_median_s'])} |")
        if e["status"] != "ok":
            lines.append(f"| rest, {shape} | {n:,} | - | - | {e['status'].upper()}: {e.get('problem', '')[:120]} "
                         f"| - | - |")
    m, v = results["machine"], results["versions"]
    for e in results.get("projects", []):
        if "run" in e:  # a project measured in a later run (e.g. N=10,000), merged into these results
            run = e["run"]
            lines += ["", f"{e['shape']} N={e['n']:,}: measured in its own run, {run['date']}, commit "
                      f"{run['git_commit'][:10]}, medians of {run['repeat']} pairs for the no-op and the rewrite, "
                      f"{_pairs(run.get('repeat_cold', 1))} for cold and one source changed."]
    lines += ["", f"Old: the issue's figures (one run, a quiet 16-core machine). New: run {results['date']} on "
              f"{m['cpu']} ({m['cores']} cores, shared), assetflow commit {v.get('git_commit', '')[:10]}, "
              f"doit {results.get('doit_version', '?')}, polars {v.get('polars')}; medians of "
              f"{results['settings']['repeat']} pairs for the no-op and the rewrite, "
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
        text = text.rstrip("\n") + "\n\n## Side by side with doit\n\n" + block + "\n"
    DOC.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    venv_bin = REPO / ".venv" / "bin"
    parser.add_argument("--quick", action="store_true", help="N=100 layered only, 3 pairs; a smoke test.")
    parser.add_argument("--sizes", default="1000", help="Comma-separated N for the layered shape.")
    parser.add_argument("--wide", default="1000:2", help="N:JOBS for the wide cold runs ('' to skip).")
    parser.add_argument("--repeat", type=int, default=5, help="Pairs for the no-op and the rewrite cells.")
    parser.add_argument("--repeat-cold", type=int, default=1, help="Pairs for the cold and one-source-changed cells (each a new cold project or a new value).")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument("--keep", action="store_true", help="Keep the generated projects.")
    parser.add_argument("--assetflow", default=str(venv_bin / "assetflow"))
    parser.add_argument("--doit", default=str(venv_bin / "doit"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--update-doc", action="store_true", help="Rewrite the table in docs/benchmarks.md.")
    parser.add_argument("--baseline", type=Path, default=None, help="An earlier peers.json whose ratios are "
                        "shown beside this run's (kept in the results as 'baseline').")
    parser.add_argument("--report-only", action="store_true", help="Only print (and --update-doc) from --out.")
    args = parser.parse_args()
    args.out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    if args.report_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        sizes = [100] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
        wide = [] if args.quick or not args.wide else [tuple(int(x) for x in w.split(":")) for w in args.wide.split(",")]
        if args.quick:
            args.repeat = min(args.repeat, 3)
        found = run_child([args.doit, "--version"], 60)
        results = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine(), "versions": versions(args.assetflow),
            "doit_version": found["stdout"].split()[0] if found["stdout"] else "?",
            "settings": {"repeat": args.repeat, "repeat_cold": args.repeat_cold, "rows": args.rows, "seed": args.seed}, "projects": [],
        }
        python = str(Path(args.assetflow).with_name("python"))
        for warm in ([args.assetflow, "--help"], [python, "-c", "import polars, pyarrow, assetflow.cli"]):
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
