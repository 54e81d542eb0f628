"""The daemon's cost: one tick with nothing due, idle CPU, and memory/fds over thousands of ticks.

- **tick**: a generated project of ``--n`` assets (default 10,000, ``bench/generate.py`` layered)
  plus ``--schedules`` schedules (default 1,000, daily at spread-out times) and 100 assets with
  ``automation=on_upstream_change()`` is loaded by a ``Daemon`` with an injected clock; after the first evaluation
  (which records first sightings and evaluates every condition), each further tick steps the clock
  5 s with nothing due. Reported: open time, first tick, median and max of the idle ticks.
- **little changed**: the project materialized once, then the staleness assessment a due tick runs
  (a schedule over one asset's cone, and over the whole project) and the conditions' evaluation,
  when nothing changed, when a source was rewritten with the same bytes, when one value changed,
  after the partial run that brought that value's downstream cone up to date (no snapshot then),
  and after a run of one asset (``--force``: what a schedule over a few assets leaves).
- **idle CPU**: the same daemon serving in real time at ``--interval`` (default 5 s) for
  ``--idle-seconds``; CPU seconds of the process over wall seconds.
- **soak**: a small project (20 assets, 20 schedules every 5-30 minutes with ``force``, a sensor, an
  eager asset) ticked ``--soak-ticks`` times with a clock stepping 60 s (so schedules, the sensor and
  conditions really run); RSS and open file descriptors sampled along the way, the daemon's and those
  of the workers it keeps between runs; once with runs in process, once in the kept workers.
- **kept workers**: the daemon's runs of one source's downstream cone (``--workers-n`` assets, default
  1,000) with the pool's workers started for each run, and kept between runs (the default).

Usage: ``python bench/bench_automation.py [--n 10000] [--schedules 1000] [--soak-ticks 3000] [--json OUT]
[--skip tick idle little latency soak workers]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAKE_NOW = 1_796_400_000.0  # 2026-12-04 17:20 UTC: the injected clock's start


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def generate_layered(folder: Path, n: int) -> None:
    """A layered project of ``n`` generated assets (bench/generate.py)."""
    subprocess.run([sys.executable, str(HERE / "generate.py"), str(folder), "--shape", "layered", "--n", str(n)],
                   check=True, stdout=subprocess.DEVNULL)


def generate(folder: Path, n: int, schedules: int) -> None:
    generate_layered(folder, n)
    rng = random.Random(7)
    package = folder / "benchproj"
    names = sorted(p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "helpers"))
    lines = ['"""Schedules and automated assets for the automation bench."""',
             "from assetflow import asset", "from assetflow.automation import eager, schedule", ""]
    # "Nothing due": no schedule's hour is the injected clock's, or the real clock's (idle CPU runs in real time).
    import datetime
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    busy = {datetime.datetime.fromtimestamp(t, paris).hour % 24 for t in (FAKE_NOW, FAKE_NOW + 3600)}
    busy |= {(datetime.datetime.now(paris).hour + k) % 24 for k in (0, 1)}
    hours = [h for h in range(24) if h not in busy]
    for i in range(schedules):
        lines.append(f'schedule("s{i:04d}", cron="{rng.randrange(60)} {rng.choice(hours)} * * *", '
                     f'select="a{rng.randrange(n):05d}", timezone="Europe/Paris")')
    add_module(folder, "automation_bench", "\n".join(lines) + "\n")
    # 100 automated assets: flip the first 100 generated @asset decorators to @asset(automation=eager()).
    flipped = 0
    for module in names:
        path = package / f"{module}.py"
        code = path.read_text()
        if "@asset\n" not in code:
            continue
        code = code.replace("from assetflow import asset", "from assetflow import asset\nfrom assetflow.automation import on_upstream_change", 1)
        while flipped < 100 and "@asset\n" in code:
            code = code.replace("@asset\n", "@asset(automation=on_upstream_change())\n", 1)
            flipped += 1
        path.write_text(code)
        if flipped >= 100:
            break


def add_module(folder: Path, name: str, code: str) -> None:
    """Write ``benchproj.<name>`` into a generated project and list it in its ``modules``."""
    (folder / "benchproj" / f"{name}.py").write_text(code)
    pyproject = folder / "pyproject.toml"
    text = pyproject.read_text()
    start = text.index("modules")
    end = text.index("]", start) + 1
    modules = [*json.loads(text[text.index("[", start):end]), f"benchproj.{name}"]
    pyproject.write_text(text[:start] + f"modules = {json.dumps(modules)}" + text[end:])


def bench_kept_workers(folder: Path, n: int, rounds: int, jobs: int) -> dict[str, object]:
    """The daemon's runs when one source value changed, with the pool's workers started for each run
    (``keep_workers=0``) and kept between runs (the default): a schedule over the whole project is due
    every minute of the injected clock, and each tick runs that source's downstream cone. Blocks of
    ``rounds`` ticks alternate, started, kept, started, kept; a kept block's first run, which starts its
    pool, is reported apart."""
    from assetflow import api
    from assetflow.automation.daemon import Daemon

    generate_layered(folder, n)
    add_module(folder, "automation_bench", 'from assetflow.automation import schedule\n\n'
                                           'schedule("everything", cron="* * * * *", timezone="UTC")\n')
    sys.path.insert(0, str(HERE))
    from generate import source_rows

    manifest = json.loads((folder / "bench-manifest.json").read_text())
    source = manifest["sources"][sorted(manifest["sources"])[-1]]
    api.materialize(project=folder, jobs=jobs)
    clock = [FAKE_NOW]
    times: dict[str, list[float]] = {"started": [], "kept": []}
    first_kept, ran, bump = [], set(), 0
    for mode in ("started", "kept", "started", "kept"):
        daemon = Daemon(folder, clock=lambda: clock[0], jobs=jobs, keep_workers=300.0 if mode == "kept" else 0.0)
        daemon.open()
        for i in range(rounds + (mode == "kept")):
            bump += 1
            (folder / source["path"]).write_text(source_rows(source["index"], manifest["rows"], bump))
            clock[0] += 60
            report = daemon.tick()
            assert report.runs, f"tick {i} of a {mode} block ran nothing"
            (first_kept if mode == "kept" and i == 0 else times[mode]).append(report.seconds)
        ran.add(api.history(project=folder, limit=1)["runs"][0]["counts"].get("ran", 0))
        daemon.close()
    started, kept = statistics.median(times["started"]), statistics.median(times["kept"])
    return {"workers_n": n, "workers_jobs": jobs, "workers_ran": sorted(ran), "workers_rounds": len(times["kept"]),
            "run_workers_started_s": round(started, 3), "run_workers_kept_s": round(kept, 3),
            "run_kept_over_started": round(kept / started, 3),
            "run_kept_first_s": [round(t, 3) for t in first_kept], "workers_runs_s": times}


def bench_tick(folder: Path, ticks: int) -> dict[str, float]:
    from assetflow.automation.daemon import Daemon

    clock = [FAKE_NOW]
    started = time.perf_counter()
    daemon = Daemon(folder, clock=lambda: clock[0], executor="inprocess").open()
    opened = time.perf_counter() - started
    first = daemon.tick()
    durations = []
    claimed = 0
    for _ in range(ticks):
        clock[0] += 5
        report = daemon.tick()
        claimed += len(report.claimed)
        durations.append(report.seconds)
    daemon.close()
    return {"open_s": opened, "first_tick_s": first.seconds, "idle_tick_median_s": statistics.median(durations),
            "idle_tick_max_s": max(durations), "idle_ticks": ticks, "claimed_while_idle": claimed,
            "schedules": len(daemon.schedules), "automated_assets": len(daemon.automated)}


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - started


def bench_little_changed(folder: Path, jobs: int) -> dict[str, object]:
    """A tick that must assess staleness, on the materialized project, when little or nothing changed.

    A due schedule's tick asks which of its selection is stale before it runs anything
    (``Daemon._not_fresh``, the full assessment of issue 17); a changed source makes the daemon
    re-evaluate every automated asset's condition (``evaluate_conditions``). Both are timed as the
    tick runs them, on three states of the project: right after a complete run (nothing changed),
    after one source rewritten with the same bytes (new mtime and inode), and after one value of
    that source changed (its downstream cone is stale). Selections: one asset of the last layer with
    its upstream cone (``+aLAST``), and the whole project (a schedule without ``select``).
    """
    from assetflow.automation.daemon import Daemon

    manifest = json.loads((folder / "bench-manifest.json").read_text())

    def materialize(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "assetflow", "materialize", "--project", str(folder), *args],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    cold_started = time.perf_counter()
    materialize("--jobs", str(jobs))
    cold = time.perf_counter() - cold_started
    last = f"a{manifest['n'] - 1:05d}"
    source = folder / manifest["sources"]["src_0"]["path"]
    original = source.read_bytes()
    results: dict[str, object] = {"little_cold_run_s": cold, "little_jobs": jobs}
    clock = [time.time()]
    daemon = Daemon(folder, clock=lambda: clock[0], executor="inprocess").open(readonly=True)
    everything = daemon._selected([])
    cone = daemon._selected([f"+{last}"])
    results["little_cone_assets"] = len(cone)
    results["little_project_assets"] = len(everything)
    _, results["little_first_assessment_s"] = _timed(daemon._not_fresh, everything)  # warm-up: imports, caches

    def measure(state: str) -> None:
        clock[0] = time.time()
        daemon._sources_changed()  # what the tick does first: stat sources, forget those that moved
        stale_cone, seconds = _timed(daemon._not_fresh, cone)
        results[f"little_{state}_cone_s"] = seconds
        results[f"little_{state}_cone_stale"] = len(stale_cone)
        stale_all, seconds = _timed(daemon._not_fresh, everything)
        results[f"little_{state}_project_s"] = seconds
        results[f"little_{state}_project_stale"] = len(stale_all)
        _, seconds = _timed(daemon.evaluate_conditions, clock[0])
        results[f"little_{state}_conditions_s"] = seconds
        print(state, {k: v for k, v in results.items() if state in k}, file=sys.stderr, flush=True)

    measure("nothing_changed")
    source.unlink()
    source.write_bytes(original)  # same bytes, new inode and mtime
    measure("same_bytes")
    lines = original.decode().splitlines()
    header, first = lines[0].split(","), lines[1].split(",")
    first[header.index("tag")] = str(int(first[header.index("tag")]) + 1)
    source.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    measure("one_value")
    # What a daemon's run leaves: a partial run (the changed source's downstream cone), so no snapshot.
    materialize("src_0+")
    measure("after_partial_run")
    # The most common daemon state: a schedule's run of a few assets since the last assessment.
    materialize("--force", last)
    measure("after_one_asset_run")
    source.write_bytes(original)
    daemon.close()
    return results


def bench_idle_cpu(folder: Path, seconds: float, interval: float) -> dict[str, float]:
    from assetflow.automation.daemon import Daemon

    daemon = Daemon(folder, interval=interval, executor="inprocess").open()
    daemon.tick()
    stop = threading.Event()
    before = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    daemon.serve(stop)
    after = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - wall
    daemon.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"idle_wall_s": wall, "idle_cpu_s": cpu, "idle_cpu_percent_of_core": 100 * cpu / wall,
            "interval_s": interval}


SOAK = '''
import polars as pl
from assetflow import asset, source
from assetflow.automation import eager, schedule, sensor, RunRequest, SkipReason

raw = source("data/raw.csv")

@asset(automation=eager())
def base(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.with_columns(y=pl.col("x") * 2)
'''


def kept_workers(daemon: object) -> tuple[int, float, int]:
    """How many workers the daemon keeps, their resident memory (MB) and open descriptors, summed."""
    pool = getattr(daemon, "_pool", None)
    pids = [worker.process.pid for worker in pool._ready] if pool is not None else []  # noqa: SLF001
    return len(pids), round(sum(rss_mb(pid) for pid in pids), 1), sum(open_fds(pid) for pid in pids)


def bench_soak(folder: Path, ticks: int, executor: str = "inprocess") -> dict[str, object]:
    """``executor`` "inprocess": runs compute in the daemon's process; "processes": in the workers it keeps."""
    from assetflow.automation.daemon import Daemon

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "raw.csv").write_text("x\n1\n2\n")
    code = [SOAK]
    for i in range(20):
        code.append(f"@asset\ndef t{i}(base: pl.DataFrame) -> pl.DataFrame:\n    return base.head({i + 1})\n")
        code.append(f'schedule("every_{i}", cron="*/{5 + i % 26} * * * *", select="t{i}", force={i % 4 == 0}, '
                    f'timezone="UTC")')
    code.append('@sensor(interval="5m")\ndef poke(context):\n    n = int(context.cursor or 0)\n'
                '    context.update_cursor(str(n + 1))\n    return RunRequest(select="t0") if n % 7 == 0 else '
                'SkipReason("not now")\n')
    (folder / "soak.py").write_text("\n".join(code))
    (folder / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["soak"]\n')
    clock = [1_796_400_000.0]
    daemon = Daemon(folder, clock=lambda: clock[0], executor=executor).open()
    samples = []
    runs = 0
    started = time.perf_counter()
    for i in range(ticks):
        clock[0] += 60
        if i % 500 == 250:  # new data now and then: the eager asset reruns, downstream schedules find work
            (folder / "data" / "raw.csv").write_text(f"x\n1\n{i}\n")
        runs += len(daemon.tick().runs)
        if i % max(1, ticks // 10) == 0 or i == ticks - 1:
            gc.collect()
            workers, workers_rss, workers_fds = kept_workers(daemon)
            samples.append({"tick": i, "rss_mb": round(rss_mb(), 1), "fds": open_fds(),
                            "threads": threading.active_count(), "workers": workers,
                            "workers_rss_mb": workers_rss, "workers_fds": workers_fds})
    elapsed = time.perf_counter() - started
    ticks_recorded = len(daemon.ticks.ticks(limit=1_000_000))
    daemon.close()
    second_half = samples[len(samples) // 2:]
    return {"soak_executor": executor, "soak_ticks": ticks, "soak_runs": runs, "soak_ticks_recorded": ticks_recorded,
            "soak_seconds": elapsed, "samples": samples,
            "rss_growth_second_half_mb": round(second_half[-1]["rss_mb"] - second_half[0]["rss_mb"], 1),
            "fd_growth": samples[-1]["fds"] - samples[1]["fds"],
            "workers_rss_growth_second_half_mb": round(second_half[-1]["workers_rss_mb"]
                                                       - second_half[0]["workers_rss_mb"], 1)}


def bench_source_latency(folder: Path, interval: float, rounds: int) -> dict[str, object]:
    """Real time: a source file changes; how long until the daemon claims the eager asset's tick."""
    import sqlite3

    from assetflow.automation.daemon import Daemon

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "raw.csv").write_text("x\n1\n")
    (folder / "latency.py").write_text(SOAK)
    (folder / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["latency"]\n')
    stop, ready = threading.Event(), threading.Event()

    def serve() -> None:  # the daemon's SQLite connection belongs to the thread that opens it
        daemon = Daemon(folder, interval=interval, executor="inprocess").open()
        daemon.tick()  # the first build
        ready.set()
        daemon.serve(stop)
        daemon.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait()
    db = sqlite3.connect(folder / ".assetflow" / "state.db")
    latencies = []
    for i in range(rounds):
        time.sleep(interval * 1.37)  # a change lands at an arbitrary point of the loop
        before = db.execute("SELECT count(*) FROM ticks WHERE origin = 'condition:base'").fetchone()[0]
        (folder / "data" / "raw.csv").write_text(f"x\n1\n{i + 2}\n")
        changed = time.time()
        while db.execute("SELECT count(*) FROM ticks WHERE origin = 'condition:base'").fetchone()[0] == before:
            time.sleep(0.01)
        claimed = db.execute("SELECT max(claimed_at) FROM ticks WHERE origin = 'condition:base'").fetchone()[0]
        latencies.append(claimed - changed)
        while db.execute("SELECT count(*) FROM ticks WHERE status IN ('claimed', 'started')").fetchone()[0]:
            time.sleep(0.01)  # its run finished: the next change starts from a quiet daemon
    stop.set()
    thread.join()
    return {"source_change_to_claim_max_s": max(latencies), "source_change_to_claim_median_s": statistics.median(latencies),
            "source_change_rounds": rounds, "source_change_interval_s": interval}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--soak-ticks", type=int, default=3000)
    parser.add_argument("--latency-rounds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2, help="Workers of the cold runs and of the kept-workers runs.")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["tick", "idle", "soak", "latency", "little", "workers"])
    parser.add_argument("--soak-executors", default="inprocess,processes",
                        help="Soak with runs in the daemon's process, and in the workers it keeps between runs.")
    parser.add_argument("--workers-n", type=int, default=1000, help="Assets of the kept-workers project.")
    parser.add_argument("--workers-rounds", type=int, default=5, help="Ticks per block of the kept-workers runs.")
    parser.add_argument("--json", type=Path, default=None, help="Write the results here too.")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="A project this script generated before (kept, not regenerated; for --skip tick idle).")
    args = parser.parse_args()
    from assetflow.cli_base import tune_collector

    tune_collector()  # what the `assetflow` command does for its process, the daemon's included
    results: dict[str, object] = {"n": args.n, "machine_cores": os.cpu_count(), "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        project = args.reuse or Path(tmp) / "project"
        if {"tick", "idle", "little"} - set(args.skip) and args.reuse is None:
            generate(project, args.n, args.schedules)
        if "tick" not in args.skip:
            results.update(bench_tick(project, args.ticks))
            print(json.dumps(results), file=sys.stderr, flush=True)
        if "idle" not in args.skip:
            results.update(bench_idle_cpu(project, args.idle_seconds, args.interval))
            print(json.dumps(results), file=sys.stderr, flush=True)
        if "little" not in args.skip:
            results.update(bench_little_changed(project, args.jobs))
            print(json.dumps(results), file=sys.stderr, flush=True)
        if "workers" not in args.skip:
            results.update(bench_kept_workers(Path(tmp) / "workers", args.workers_n, args.workers_rounds, args.jobs))
            print(json.dumps(results), file=sys.stderr, flush=True)
        if "latency" not in args.skip:
            results.update(bench_source_latency(Path(tmp) / "latency", args.interval, args.latency_rounds))
            print(json.dumps(results), file=sys.stderr, flush=True)
        if "soak" not in args.skip:
            results["soaks"] = [bench_soak(Path(tmp) / f"soak-{executor}", args.soak_ticks, executor)
                                for executor in args.soak_executors.split(",")]
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
