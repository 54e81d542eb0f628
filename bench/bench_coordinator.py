"""The coordinating process's own CPU per task, assetflow against doit: the serial cost that bounds a pool.

On a machine with few cores the wall time of a run with 16 workers says little about 16 cores; the
CPU the coordinating process spends per task does. While it handles one result and sends the next
task, it gives no worker work, so the workers it can keep busy are at most a worker's time per task
divided by its own. This makes cold runs of the wide shape (one source, N independent assets; the
doit twin of bench/peers.py) at two sizes, each tool's main process reporting its own CPU
(``RUSAGE_SELF``) as it exits, and takes the slope between the sizes: the marginal CPU per task, the
start-up (imports, loading the project) removed. assetflow: ``assetflow materialize --jobs J``; doit:
``doit run -n J`` (its main process hands tasks to forked worker processes). Both checked: every asset
ran.

Results: bench/results/coordinator.json; ``--update-doc`` rewrites its table in docs/benchmarks.md.
Run with the project's venv: ``.venv/bin/python bench/bench_coordinator.py`` (~3 min here).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate  # noqa: E402
from peers import doit_ran, write_doit_project  # noqa: E402
from run import REPO, Wrong, child_env, machine, run_child, versions, write_between_markers  # noqa: E402

RESULTS = REPO / "bench" / "results" / "coordinator.json"
DOC = REPO / "docs" / "benchmarks.md"
DOC_START, DOC_END = "<!-- bench:coordinator:start -->", "<!-- bench:coordinator:end -->"
SELF_CPU_ENV = "BENCH_SELF_CPU"

# Each tool's main process, started through this wrapper, writes its own CPU (not its workers') at exit.
_REPORT = """
import atexit, os, resource, sys
def _report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ[{env!r}], "w") as handle:
        handle.write(repr(usage.ru_utime + usage.ru_stime))
atexit.register(_report)
""".format(env=SELF_CPU_ENV)
_ASSETFLOW = _REPORT + "from assetflow.cli import main\nsys.argv = ['assetflow', *sys.argv[1:]]\nmain()\n"
_DOIT = _REPORT + "from doit.__main__ import main\nsys.argv = ['doit', *sys.argv[1:]]\nsys.exit(main())\n"


def _timed(argv: list[str], folder: Path, timeout: float, what: str) -> dict[str, Any]:
    """One run: its wall time, its main process's CPU and the whole tree's (``run_child``)."""
    with tempfile.NamedTemporaryFile(suffix=".cpu", delete=False) as handle:
        report = Path(handle.name)
    try:
        run = run_child(argv, timeout, env={**child_env(), SELF_CPU_ENV: str(report)}, cwd=folder)
        if run["timed_out"] or run["returncode"] != 0:
            raise Wrong(f"{what}: exit {run['returncode']} (timed out: {run['timed_out']}): {run['stderr'][-800:]}")
        run["self_cpu_s"] = float(report.read_text() or "nan")
    finally:
        report.unlink(missing_ok=True)
    return run


def _assetflow(folder: Path, jobs: int, args: argparse.Namespace, everything: set[str]) -> dict[str, Any]:
    argv = [sys.executable, "-c", _ASSETFLOW, "materialize", "--project", str(folder), "--json", "--jobs", str(jobs)]
    run = _timed(argv, folder, args.timeout, f"assetflow --jobs {jobs}")
    ran = {a["name"] for a in json.loads(run["stdout"])["assets"] if a["outcome"] == "ran"}
    if ran != everything:
        raise Wrong(f"assetflow --jobs {jobs}: {len(ran)} assets ran, expected {len(everything)}")
    return run


def _doit(folder: Path, jobs: int, args: argparse.Namespace, everything: set[str]) -> dict[str, Any]:
    run = _timed([sys.executable, "-c", _DOIT, "run", "-n", str(jobs)], folder, args.timeout, f"doit -n {jobs}")
    ran = doit_ran(run["stdout"])
    if ran != everything:
        raise Wrong(f"doit -n {jobs}: {len(ran)} tasks ran, expected {len(everything)}")
    return run


def measure(jobs: int, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Both tools at both sizes, ``args.repeat`` cold runs each, assetflow and doit back to back."""
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {"assetflow": {}, "doit": {}}
    for n in args.sizes:
        folder = workdir / f"wide-{n}-j{jobs}"
        for _ in range(args.repeat):
            manifest = generate(folder, "wide", n, seed=args.seed, rows=args.rows)  # a new cold project
            write_doit_project(folder, manifest)
            everything = set(manifest["edges"])
            runs["assetflow"].setdefault(n, []).append(_assetflow(folder, jobs, args, everything))
            runs["doit"].setdefault(n, []).append(_doit(folder, jobs, args, everything))
        shutil.rmtree(folder, ignore_errors=True)
    small, large = args.sizes
    entry: dict[str, Any] = {"jobs": jobs}
    for tool, by_size in runs.items():
        own = {n: statistics.median(r["self_cpu_s"] for r in by_size[n]) for n in by_size}
        tree = {n: statistics.median(r["cpu_s"] for r in by_size[n]) for n in by_size}
        per_task = (own[large] - own[small]) / (large - small)
        # The workers' CPU the same way: the slope, without their start-up (16 imports of polars, ~4 s here).
        workers = ((tree[large] - own[large]) - (tree[small] - own[small])) / (large - small)
        entry[tool] = {
            "self_cpu_s": {str(n): round(v, 4) for n, v in own.items()},
            "tree_cpu_s": {str(n): round(v, 4) for n, v in tree.items()},
            "wall_s": {str(n): round(statistics.median(r["wall_s"] for r in by_size[n]), 4) for n in by_size},
            "coordinator_ms_per_task": round(per_task * 1000, 4),
            "workers_ms_per_task": round(workers * 1000, 4),
        }
        print(f"  [--jobs {jobs}] {tool}: coordinator {per_task * 1000:.3f} ms a task, workers "
              f"{workers * 1000:.2f} ms a task", file=sys.stderr, flush=True)
    return entry


def _bound(entries: list[dict[str, Any]]) -> None:
    """Each entry's workers a coordinator can keep busy: a worker's time per task divided by the
    coordinator's. The worker's time is the one measured with the fewest workers: with more workers
    than cores they share them, and each task's CPU grows with the switching (16 on 2 cores: x2)."""
    for tool in ("assetflow", "doit"):
        worker_ms = entries[0][tool]["workers_ms_per_task"]
        for entry in entries:
            coordinator_ms = entry[tool]["coordinator_ms_per_task"]
            entry[tool]["busy_workers_bound"] = round(worker_ms / coordinator_ms, 1) if coordinator_ms > 0 else None


def render_markdown(results: dict[str, Any]) -> str:
    small, large = results["settings"]["sizes"]
    lines = [
        f"| tool | jobs | main process CPU, N={small:,} / {large:,} (s) | marginal, a task (ms) | "
        f"workers' CPU a task, marginal (ms) | workers it can keep busy |",
        "|---|---|---|---|---|---|",
    ]
    for entry in results["entries"]:
        for tool in ("assetflow", "doit"):
            f = entry[tool]
            own = f["self_cpu_s"]
            lines.append(f"| {tool} | {entry['jobs']} | {own[str(small)]:.2f} / {own[str(large)]:.2f} | "
                         f"{f['coordinator_ms_per_task']:.3f} | {f['workers_ms_per_task']:.2f} | "
                         f"{f['busy_workers_bound']} |")
    v = results["versions"]
    lines += ["", f"Workers it can keep busy: the workers' CPU a task with {results['entries'][0]['jobs']} workers "
              f"(with more workers than cores they share them and each task costs more) divided by the "
              f"coordinator's. Cold runs of the wide shape, medians of {results['settings']['repeat']} runs a cell; run "
              f"{results['date']} on {results['machine']['cpu']} ({results['machine']['cores']} cores, shared), "
              f"assetflow commit {v.get('git_commit', '?')[:10]}, doit {results['doit_version']}. Raw figures: "
              f"`bench/results/coordinator.json`."]
    return "\n".join(lines)


def update_doc(results: dict[str, Any]) -> None:
    write_between_markers(DOC, DOC_START, DOC_END, render_markdown(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="2,16", help="Comma-separated worker counts.")
    parser.add_argument("--sizes", default="200,1000", help="The two N whose difference gives the slope.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--update-doc", action="store_true")
    parser.add_argument("--report-only", action="store_true", help="Only print (and --update-doc) from --out.")
    args = parser.parse_args()
    args.sizes = sorted(int(n) for n in args.sizes.split(","))
    if len(args.sizes) != 2:
        parser.error("--sizes takes two sizes")
    if args.report_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        from importlib import metadata

        with tempfile.TemporaryDirectory(prefix="assetflow-coordinator-") as tmp:
            entries = [measure(int(j), Path(tmp), args) for j in sorted(int(j) for j in args.jobs.split(","))]
        _bound(entries)
        results = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                   "machine": machine(), "versions": versions(str(Path(sys.executable).with_name("assetflow"))),
                   "doit_version": metadata.version("doit"),
                   "settings": {"sizes": args.sizes, "repeat": args.repeat, "rows": args.rows, "seed": args.seed},
                   "entries": entries}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(render_markdown(results))
    if args.update_doc:
        update_doc(results)


if __name__ == "__main__":
    main()
