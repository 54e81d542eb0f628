"""The execution engine's benchmark: overhead per asset, parallel speed-up, scale (issue 5, docs/concepts.md, "Performance budgets").

Four measurements, each in fresh child processes (``python bench/bench_engine.py`` with the
project's venv; ``--quick`` for a smoke run):

- ``overhead``: the engine's marginal cost per executed trivial asset, per executor. A project
  of N independent assets that each return a one-row table is materialized cold at N = 100 and
  N = 400; the slope of the run time over N, minus the slope of the assets' own time (load,
  call, store, as the workers measure it), is what the engine adds per asset: deciding,
  scheduling, moving the task and result between processes, recording. Start-up (importing
  the project, starting workers) falls out of the slope and is reported separately.
- ``round_trip``: one trivial task to a warm pool worker and its result back, serially: the most
  that batching tasks could save per asset.
- ``speedup``: a wide graph of 16 CPU-bound assets (pure-Python loops of ~0.8 s, GIL-bound, so
  only processes can overlap them) run with the process pool at ``--jobs 1`` and ``--jobs 2``.
- ``scale``: generated layered projects (bench/generate.py) at N = 1,000 and 10,000: a cold
  ``assetflow materialize`` and a no-op one (fast path, and full check with the fast path off),
  whole-process wall time and the coordinator's peak RSS. Larger N: see ``planning``.
- ``planning``: the engine's planning alone on synthetic graphs of N = 1,000, 10,000 and 100,000
  assets (layered edges from bench/generate.py): building the graph, and ``Run.plan()`` on an
  empty state (cold) and on a state where every asset is current (no-op, full check), with code
  fingerprints precomputed and a storage backend that answers at once, so only the engine's own
  work is timed: it must grow linearly with assets plus edges.

Results go to bench/results/engine.json; ``--update-doc`` rewrites the tables in docs/execution.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "engine.json"
QUICK_RESULTS = REPO / "bench" / "results" / "tmp" / "engine-quick.json"
DOC = REPO / "docs" / "execution.md"
DOC_START, DOC_END = "<!-- bench:engine:start -->", "<!-- bench:engine:end -->"
PYTHON = sys.executable
sys.path.insert(0, str(REPO / "bench"))

# -- child processes ---------------------------------------------------------------------------


def child(code: str, *, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object last. Adds the child's peak RSS."""
    proc = subprocess.Popen([PYTHON, "-c", textwrap.dedent(code)], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return {"error": f"timed out after {timeout}s"}
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: {err[-2000:]}"}
    return json.loads(out.strip().splitlines()[-1])


def whole_process(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 3600) -> dict[str, Any]:
    """Wall time and peak RSS of one assetflow command, timed from outside."""
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: a full pipe would block the child
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors,
                                env={**os.environ, **(env or {})})
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                return {"error": f"timed out after {timeout}s"}
            time.sleep(0.01)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read().decode(errors="replace")
    if code != 0:
        return {"error": f"exit {code}: {err[-2000:]}", "wall_s": round(wall, 3)}
    return {"wall_s": round(wall, 3), "maxrss_mb": round(usage.ru_maxrss / 1024, 1)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- overhead ----------------------------------------------------------------------------------

TRIVIAL_RUN = '''
    import json, sys, time
    t0 = time.perf_counter()
    from assetflow import api
    from assetflow.workspace import Workspace
    ws = Workspace.load({root!r})
    t1 = time.perf_counter()
    result = api.materialize(project=ws, executor={executor!r}, jobs={jobs!r})
    t2 = time.perf_counter()
    durations = [r.duration or 0.0 for r in result.results.values()]
    assert result.counts()["ran"] == {n}, result.counts()
    current = ws.store.current().values()
    window = max(m.finished_at for m in current) - min(m.started_at for m in current)
    print(json.dumps({{"load_s": t1 - t0, "run_s": t2 - t1, "task_s": sum(durations), "window_s": window}}))
'''


def trivial_project(folder: Path, n: int) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    body = "".join(f"\n\n@asset\ndef t{i:05d}() -> pl.DataFrame:\n    return pl.DataFrame({{'x': [{i}]}})\n"
                   for i in range(n))
    (folder / "trivial_assets.py").write_text("import polars as pl\nfrom assetflow import asset\n" + body)
    (folder / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["trivial_assets"]\n')


def bench_overhead(work: Path, sizes: tuple[int, int], executors: list[tuple[str, int | None]]) -> list[dict[str, Any]]:
    rows = []
    for executor, jobs in executors:
        runs = {}
        for n in sizes:
            folder = work / f"trivial-{n}"
            trivial_project(folder, n)
            result = child(TRIVIAL_RUN.format(root=str(folder), executor=executor, jobs=jobs, n=n), cwd=folder)
            if "error" in result:
                rows.append({"executor": executor, "jobs": jobs, "error": result["error"]})
                break
            runs[n] = result
        else:
            small, large = sizes
            span = large - small
            run_slope = (runs[large]["run_s"] - runs[small]["run_s"]) / span
            task_slope = (runs[large]["task_s"] - runs[small]["task_s"]) / span
            parallel = jobs or os.cpu_count() or 1
            rows.append({
                "executor": executor, "jobs": jobs,
                "run_ms_per_asset": round(run_slope * 1000, 3),
                "task_ms_per_asset": round(task_slope * 1000, 3),
                "overhead_ms_per_asset": round((run_slope - (task_slope / parallel if executor != "inprocess" else task_slope)) * 1000, 3),
                "startup_s": round(runs[small]["run_s"] - small * run_slope, 3),
                "runs": {str(n): {k: round(v, 3) for k, v in r.items()} for n, r in runs.items()},
                "load_avg": load_average(),
            })
        print("overhead", rows[-1], flush=True)
    return rows


# -- the pool's round trip -----------------------------------------------------------------------

ROUND_TRIP = '''
    import json, os, time
    from assetflow.execute.pool import ProcessExecutor
    executor = ProcessExecutor(jobs=1)
    executor.wait_any([executor.submit(os.getpid, None)])  # start the worker
    rounds = {rounds}
    start = time.perf_counter()
    for _ in range(rounds):
        executor.wait_any([executor.submit(abs, -1)])
    took = time.perf_counter() - start
    executor.shutdown()
    print(json.dumps({{"round_trip_ms": took / rounds * 1000}}))
'''


def bench_round_trip(rounds: int) -> dict[str, Any]:
    """One task to a warm worker and its result back, serially: what batching could save per asset."""
    result = child(ROUND_TRIP.format(rounds=rounds))
    row = {"rounds": rounds, **{k: round(v, 4) for k, v in result.items() if isinstance(v, float)}, "load_avg": load_average()}
    if "error" in result:
        row["error"] = result["error"]
    print("round_trip", row, flush=True)
    return row


# -- speed-up ----------------------------------------------------------------------------------

CPU_ASSETS = 16


def cpu_project(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    body = "".join(textwrap.dedent(f'''

        @asset
        def burn_{i:02d}() -> pl.DataFrame:
            total = 0
            for k in range(LOOPS):
                total += (k * {i + 3}) % 7
            return pl.DataFrame({{"total": [total]}})
    ''') for i in range(CPU_ASSETS))
    (folder / "cpu_assets.py").write_text("import polars as pl\nfrom assetflow import asset\n\nLOOPS = 8_000_000\n" + body)
    (folder / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["cpu_assets"]\n')


MACHINE_CEILING = '''
    import json, multiprocessing, time

    def burn(_):
        total = 0
        for k in range(8_000_000):
            total += (k * 3) % 7
        return total

    if __name__ == "__main__":
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            pool.map(burn, [0, 0])  # started and warm
            start = time.perf_counter()
            for i in range({n}):
                burn(i)
            serial = time.perf_counter() - start
            start = time.perf_counter()
            pool.map(burn, range({n}), chunksize=1)
            parallel = time.perf_counter() - start
        print(json.dumps({{"serial_s": serial, "parallel_s": parallel}}))
'''


def machine_ceiling(work: Path) -> dict[str, float]:
    """The same loops with no assetflow at all: serially, then in a plain 2-process pool. What the machine gives."""
    script = work / "ceiling.py"
    script.write_text(textwrap.dedent(MACHINE_CEILING.format(n=CPU_ASSETS)))
    proc = subprocess.run([PYTHON, str(script)], capture_output=True, text=True, timeout=600)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**{k: round(v, 3) for k, v in result.items()}, "speedup": round(result["serial_s"] / result["parallel_s"], 2)}


def bench_speedup(work: Path, repeat: int) -> dict[str, Any]:
    folder = work / "cpu"
    cpu_project(folder)
    ceilings = [machine_ceiling(work) for _ in range(repeat)]
    walls: dict[str, list[float]] = {"1": [], "2": []}
    windows: dict[str, list[float]] = {"1": [], "2": []}
    occupancy: dict[str, list[float]] = {"1": [], "2": []}
    for _ in range(repeat):
        for jobs in (1, 2):
            shutil.rmtree(folder / ".assetflow", ignore_errors=True)
            result = child(TRIVIAL_RUN.format(root=str(folder), executor="processes", jobs=jobs, n=CPU_ASSETS), cwd=folder)
            if "error" in result:
                return {"error": result["error"]}
            walls[str(jobs)].append(result["run_s"])
            windows[str(jobs)].append(result["window_s"])
            occupancy[str(jobs)].append(result["task_s"] / (jobs * result["window_s"]))
    best = {k: min(v) for k, v in walls.items()}
    best_window = {k: min(v) for k, v in windows.items()}
    row = {"assets": CPU_ASSETS, "runs_s": {k: [round(x, 3) for x in v] for k, v in walls.items()},
           "windows_s": {k: [round(x, 3) for x in v] for k, v in windows.items()},
           "best_s": {k: round(v, 3) for k, v in best.items()}, "speedup": round(best["1"] / best["2"], 2),
           "best_window_s": {k: round(v, 3) for k, v in best_window.items()},
           "speedup_compute": round(best_window["1"] / best_window["2"], 2),
           "occupancy": {k: round(max(v), 3) for k, v in occupancy.items()},
           "machine_ceiling": max(ceilings, key=lambda c: c["speedup"]), "load_avg": load_average()}
    print("speedup", row, flush=True)
    return row


# -- scale (whole process) ---------------------------------------------------------------------


def bench_scale(work: Path, sizes: list[int]) -> list[dict[str, Any]]:
    from generate import generate

    assetflow = str(Path(PYTHON).parent / "assetflow")
    rows = []
    for n in sizes:
        folder = work / f"layered-{n}"
        generate(folder, "layered", n)
        row: dict[str, Any] = {"shape": "layered", "n": n}
        row["cold"] = whole_process([assetflow, "materialize"], folder)
        row["noop"] = whole_process([assetflow, "materialize"], folder)
        row["noop_full"] = whole_process([assetflow, "materialize"], folder, env={"ASSETFLOW_NO_FAST_PATH": "1"})
        row["load_avg"] = load_average()
        rows.append(row)
        print("scale", row, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


# -- planning (synthetic, in process) ----------------------------------------------------------

PLANNING = '''
    import json, resource, sys, time
    from pathlib import Path
    sys.path.insert(0, {bench!r})
    from generate import build_edges, source_rows
    import random

    from assetflow.declare import AssetSpec, SourceSpec
    from assetflow.execute.runner import Run
    from assetflow.fingerprint.code import CodeFingerprint
    from assetflow.graph import AssetGraph
    from assetflow.hookspecs import hookimpl
    from assetflow.plugins import plugin_manager
    from assetflow.project import ProjectConfig
    from assetflow.state.store import Materialization
    from assetflow.contracts import CheckResult
    from assetflow.workspace import Workspace

    class InstantBackend:
        """Answers every check at once: only the engine's own work is timed."""
        name = "instant"
        format = "instant"
        def __init__(self, root, options): pass
        def check(self, asset, location, data_hash, token): return CheckResult("ok", token)

    class Plugin:
        @hookimpl
        def assetflow_io_backends(self): return [InstantBackend]

    plugin_manager().register(Plugin(), name="bench-instant")
    n, root = {n}, Path({root!r})
    (root / "data").mkdir(parents=True, exist_ok=True)
    for k in range(4):
        (root / f"data/src_{{k}}.csv").write_text(source_rows(k, 10))

    def fn():
        return None

    t0 = time.perf_counter()
    edges = build_edges("layered", n, 4, random.Random(1))
    specs = {{f"src_{{k}}": SourceSpec(path=f"data/src_{{k}}.csv", name=f"src_{{k}}", format="csv") for k in range(4)}}
    for name, ups in edges.items():
        specs[name] = AssetSpec(name=name, fn=fn, upstreams=tuple(ups))
    t1 = time.perf_counter()
    graph = AssetGraph(specs)
    t2 = time.perf_counter()
    config = ProjectConfig(root=root, modules=("none",), default_io="instant")
    ws = Workspace(config, graph)
    stub = CodeFingerprint("blake3:" + "0" * 64, {{}}, {{}})
    for name in edges:
        ws._code[name] = stub
    cold = Run(ws, graph.order)
    t3 = time.perf_counter()
    plan = cold.plan()
    t4 = time.perf_counter()
    assert plan.counts()["ran"] == n, plan.counts()
    # Make every asset current: one materialization each, made from exactly the recipe it has now.
    hashes = {{s: v.data_hash for s, v in ws.observe_sources([f"src_{{k}}" for k in range(4)]).items()}}
    store = ws.store
    with store.transaction() as db:
        for name in graph.order:
            spec = specs[name]
            if isinstance(spec, SourceSpec):
                continue
            recipe = ws.recipe(spec, hashes)
            data_hash = "blake3:" + format(hash(name) & (2**64 - 1), "064x")
            hashes[name] = data_hash
            store.record(db, Materialization(
                asset=name, run_id="bench", recipe_key=recipe.key, data_hash=data_hash, code_fingerprint=stub.digest,
                config=recipe.config, upstream=dict(recipe.upstream), deps=recipe.deps, io="instant",
                location=name, token="t", rows=1, schema=[], bytes=1, libraries={{}}, started_at=0.0, finished_at=0.0))
    t5 = time.perf_counter()
    noop = Run(ws, graph.order).plan()
    t6 = time.perf_counter()
    assert noop.counts()["fresh"] == n, noop.counts()
    print(json.dumps({{
        "n": n, "edges": sum(len(u) for u in edges.values()),
        "specs_s": t1 - t0, "graph_s": t2 - t1, "plan_cold_s": t4 - t3, "seed_state_s": t5 - t4,
        "plan_noop_s": t6 - t5, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }}))
'''


def bench_planning(work: Path, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        folder = work / f"plan-{n}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        result = child(PLANNING.format(bench=str(REPO / "bench"), n=n, root=str(folder)))
        row = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}
        if "error" not in row:
            for key in ("graph_s", "plan_cold_s", "plan_noop_s"):
                row[key.replace("_s", "_us_per_asset")] = round(result[key] / n * 1e6, 2)
        row["load_avg"] = load_average()
        rows.append(row)
        print("planning", row, flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


# -- report ------------------------------------------------------------------------------------


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {"python": platform.python_version()}
    for dist in ("assetflow", "polars", "pyarrow", "distributed"):
        try:
            from importlib.metadata import version

            out[dist] = version(dist)
        except Exception:  # noqa: BLE001 - not installed
            out[dist] = None
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    out["git_commit"] = commit
    return out


def render(results: dict[str, Any]) -> str:
    lines = [f"Measured {results['date'][:10]} on {results['machine']['cores']} cores ({results['machine']['cpu']}); "
             f"load average during the runs is recorded with each row in bench/results/engine.json.", ""]
    lines += ["| executor | jobs | engine overhead per asset | asset's own time | run time per asset | start-up |",
              "|---|---|---|---|---|---|"]
    for row in results.get("overhead", []):
        if "error" in row:
            lines.append(f"| {row['executor']} | {row['jobs'] or 'default'} | error: {row['error'][:80]} | | | |")
            continue
        lines.append(f"| {row['executor']} | {row['jobs'] or 'default'} | {row['overhead_ms_per_asset']:.2f} ms | "
                     f"{row['task_ms_per_asset']:.2f} ms | {row['run_ms_per_asset']:.2f} ms | {row['startup_s']:.2f} s |")
    trip = results.get("round_trip") or {}
    if "round_trip_ms" in trip:
        lines += ["", f"Process pool round trip (a trivial task to a warm worker and its result back, serially, "
                      f"{trip['rounds']} times): **{trip['round_trip_ms']:.3f} ms** per task."]
    speed = results.get("speedup") or {}
    if "speedup" in speed:
        lines += ["", f"Speed-up, {speed['assets']} CPU-bound assets, process pool, best of {len(speed['runs_s']['1'])}: "
                      f"run (workers' start included) --jobs 1 {speed['best_s']['1']:.2f} s, --jobs 2 "
                      f"{speed['best_s']['2']:.2f} s: **{speed['speedup']:.2f}x**; compute (first asset's start to "
                      f"last one's end) {speed['best_window_s']['1']:.2f} s vs {speed['best_window_s']['2']:.2f} s: "
                      f"**{speed['speedup_compute']:.2f}x** (goal ≥ 1.8x). Load average then: {speed['load_avg']}. "
                      f"Worker occupancy at --jobs 2 (assets' time / (2 x compute window), 1.0 = both workers "
                      f"always busy with assets, whatever else loads the machine): "
                      f"**{speed.get('occupancy', {}).get('2', float('nan')):.2f}**."]
        ceiling = speed.get("machine_ceiling")
        if ceiling:
            lines += ["", f"The machine's own ceiling, the same loops with no assetflow (serially, then in a plain "
                          f"2-process `multiprocessing` pool): {ceiling['serial_s']:.2f} s vs {ceiling['parallel_s']:.2f} s, "
                          f"**{ceiling['speedup']:.2f}x**. assetflow reaches "
                          f"**{speed['speedup_compute'] / ceiling['speedup']:.0%}** of what this machine gives."]
    lines += ["", "| N (layered) | cold | no-op (fast path) | no-op (full check) | peak RSS (coordinator, no-op full) |",
              "|---|---|---|---|---|"]
    for row in results.get("scale", []):
        def cell(key: str) -> str:
            value = row.get(key) or {}
            return f"{value['wall_s']:.2f} s" if "wall_s" in value and "error" not in value else f"error: {value.get('error', '?')[:60]}"
        rss = (row.get("noop_full") or {}).get("maxrss_mb")
        lines.append(f"| {row['n']:,} | {cell('cold')} | {cell('noop')} | {cell('noop_full')} | {rss} MB |")
    lines += ["", "| N (synthetic, layered) | edges | build graph | plan, cold | plan, no-op | µs per asset (graph / cold / no-op) | peak RSS |",
              "|---|---|---|---|---|---|---|"]
    for row in results.get("planning", []):
        if "error" in row:
            lines.append(f"| {row.get('n')} | error: {row['error'][:80]} | | | | | |")
            continue
        lines.append(f"| {row['n']:,} | {row['edges']:,} | {row['graph_s']:.2f} s | {row['plan_cold_s']:.2f} s | "
                     f"{row['plan_noop_s']:.2f} s | {row['graph_us_per_asset']:.0f} / {row['plan_cold_us_per_asset']:.0f} / "
                     f"{row['plan_noop_us_per_asset']:.0f} | {row['maxrss_mb']:.0f} MB |")
    for note in results.get("not_run", []):
        lines.append(f"\nNot run: {note}")
    return "\n".join(lines)


def update_doc(results: dict[str, Any]) -> None:
    from run import write_between_markers  # bench/run.py, on the path set above

    write_between_markers(DOC, DOC_START, DOC_END, render(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small sizes, results to bench/results/tmp/.")
    parser.add_argument("--only", choices=("overhead", "round_trip", "speedup", "scale", "planning"), action="append")
    parser.add_argument("--scale-sizes", default="1000,10000")
    parser.add_argument("--planning-sizes", default="1000,10000,100000")
    parser.add_argument("--update-doc", action="store_true", help="Rewrite the tables in docs/execution.md.")
    parser.add_argument("--report-only", action="store_true", help="Only rewrite the doc from the saved results.")
    args = parser.parse_args()
    target = QUICK_RESULTS if args.quick else RESULTS
    if args.report_only:
        update_doc(json.loads(RESULTS.read_text()))
        return
    results: dict[str, Any] = json.loads(target.read_text()) if target.exists() else {}
    results.update({
        "schema_version": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count()},
        "versions": versions(),
    })
    wanted = set(args.only or ("overhead", "round_trip", "speedup", "scale", "planning"))
    executors: list[tuple[str, int | None]] = [("inprocess", None), ("processes", 1), ("processes", 2)]
    try:
        import assetflow_dask  # noqa: F401

        executors.append(("dask", 2))
    except ImportError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after each section, so an interrupted run keeps what it measured
        target.write_text(json.dumps(results, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="assetflow-engine-") as tmp:
        work = Path(tmp)
        if "overhead" in wanted:
            results["overhead"] = bench_overhead(work, (20, 60) if args.quick else (100, 400), executors)
            save()
        if "round_trip" in wanted:
            results["round_trip"] = bench_round_trip(200 if args.quick else 2000)
            save()
        if "speedup" in wanted:
            results["speedup"] = bench_speedup(work, 1 if args.quick else 3)
            save()
        if "scale" in wanted:
            results["scale"] = bench_scale(work, [100] if args.quick else [int(x) for x in args.scale_sizes.split(",")])
            save()
        if "planning" in wanted:
            sizes = [1000] if args.quick else [int(x) for x in args.planning_sizes.split(",")]
            results["planning"] = bench_planning(work, sizes)
            save()
    print(render(results))
    if args.update_doc and not args.quick:
        update_doc(results)


if __name__ == "__main__":
    main()
