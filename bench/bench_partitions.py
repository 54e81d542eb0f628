"""Partitions at scale: one asset with N daily partitions over a source of N files.

    .venv/bin/python bench/bench_partitions.py --n 10000          # results in bench/results/partitions.json
    .venv/bin/python bench/bench_partitions.py --n 1000 --jobs 2  # also the backfill speed-up

Scenarios, each a separate ``assetflow`` process timed from outside: cold (every partition
runs, in process), no-op ``materialize`` (median of 3, plain output: the budgeted figure; and
``--json``, which prints a row per partition), ``status`` (median of 3), one source file changed
(exactly one partition and its downstream run); ``status`` is timed plain (budgeted) and with
``--json`` (a state per key of every partitioned asset and source). The per-partition engine overhead is measured as
``bench_engine.py`` measures it per asset: fresh projects of 500 and 2,000 days materialized cold
in process (``api.materialize``, in-process executor), the slope of the run time over the number
of partitions minus the slope of the partitions' own time (load, call, store, as the task measures
it): what deciding, scheduling and recording add to each partition. ``cold_per_partition_ms``
(cold time minus the no-op, over 2N) is kept for comparison: it includes each partition's own work.
With ``--jobs 2`` a backfill of N partitions with 1 and 2 jobs, next to the machine's own parallel
ceiling (two CPU-bound processes against one).
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETFLOW = [sys.executable, "-m", "assetflow"]

PROJECT = '''
import polars as pl
from assetflow import asset, source
from assetflow.partitions import daily

DAYS = daily("{start}", end="{end}")
events = source("data/events/{{date}}.csv", partitions=DAYS)


@asset(partitions=DAYS)
def daily_events(events: pl.DataFrame) -> pl.DataFrame:
    return events.with_columns((pl.col("amount") * 2).alias("doubled"))


@asset(partitions=DAYS)
def daily_total(daily_events: pl.DataFrame) -> pl.DataFrame:
    return daily_events.select(pl.col("doubled").sum())
'''


def generate(root: Path, n: int) -> list[str]:
    start = datetime.date(1990, 1, 1)  # 10,000 days end in 2017: every one of them is over
    days = [(start + datetime.timedelta(days=i)).isoformat() for i in range(n)]
    (root / "data" / "events").mkdir(parents=True)
    for i, day in enumerate(days):
        (root / "data" / "events" / f"{day}.csv").write_text(f"user,amount\na,{i}\nb,{i % 7}\n")
    (root / "pipe.py").write_text(PROJECT.format(start=days[0], end=days[-1]))
    (root / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    return days


CPU: dict[str, list[float]] = {}  # command -> CPU seconds (user + system) of each run: the machine is shared


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(root: Path, *args: str) -> tuple[float, dict]:
    cpu_before = _children_cpu()
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as users run it: .pyc cached
    proc = subprocess.run([*ASSETFLOW, *args, "--project", str(root)], capture_output=True, text=True, cwd=root,
                          env=env)
    took = time.perf_counter() - started
    CPU.setdefault(" ".join(args), []).append(_children_cpu() - cpu_before)
    if proc.returncode != 0:
        raise SystemExit(f"assetflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return took, json.loads(proc.stdout) if "--json" in args else {}


OVERHEAD_RUN = '''
import json, time
from assetflow import api
from assetflow.workspace import Workspace
ws = Workspace.load({root!r})
started = time.perf_counter()
result = api.materialize(project=ws, executor="inprocess")
run_s = time.perf_counter() - started
assert result.counts()["ran"] == {units}, result.counts()
print(json.dumps({{"run_s": run_s, "task_s": sum(r.duration or 0.0 for r in result.results.values())}}))
'''


def engine_overhead(work: Path, sizes: tuple[int, int] = (500, 2000)) -> dict[str, float]:
    """ms per partition the engine adds (run slope minus the partitions' own time's slope)."""
    runs = {}
    for n in sizes:
        root = work / f"overhead-{n}"
        generate(root, n)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        proc = subprocess.run([sys.executable, "-c", OVERHEAD_RUN.format(root=str(root), units=2 * n)],
                              capture_output=True, text=True, cwd=root, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"overhead run failed:\n{proc.stderr[-3000:]}")
        runs[n] = json.loads(proc.stdout.strip().splitlines()[-1])
    small, large = sizes
    units = 2 * (large - small)
    run_slope = (runs[large]["run_s"] - runs[small]["run_s"]) / units
    task_slope = (runs[large]["task_s"] - runs[small]["task_s"]) / units
    return {"engine_overhead_per_partition_ms": round((run_slope - task_slope) * 1000, 3),
            "partition_own_time_ms": round(task_slope * 1000, 3),
            "run_time_per_partition_ms": round(run_slope * 1000, 3),
            "overhead_runs": {str(n): {k: round(v, 3) for k, v in r.items()} for n, r in runs.items()}}


def ran(payload: dict) -> list[str]:
    return [a["name"] for a in payload["assets"] if a["outcome"] == "ran"]


def burn(_: int) -> int:
    total = 0
    for i in range(3_000_000):
        total += i * i % 7
    return total


def parallel_ceiling() -> float:
    started = time.perf_counter()
    burn(0)
    burn(0)
    one = time.perf_counter() - started
    with multiprocessing.Pool(2) as pool:
        started = time.perf_counter()
        pool.map(burn, [0, 0])
        two = time.perf_counter() - started
    return one / two


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=1, help="also time a backfill with this many jobs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "partitions.json")
    options = parser.parse_args()
    results: dict[str, object] = {"n": options.n, "machine_cores": multiprocessing.cpu_count()}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        days = generate(root, options.n)
        cold, payload = timed(root, "materialize", "--json", "--executor", "inprocess")
        assert len(ran(payload)) == 2 * options.n, "every partition of both assets runs cold"
        results["cold_s"] = round(cold, 2)
        noops, noops_json = [], []
        for _ in range(3):
            noops.append(timed(root, "materialize")[0])
            took, payload = timed(root, "materialize", "--json")
            assert not ran(payload) and payload.get("fast_path"), "a no-op runs nothing, from the snapshot"
            noops_json.append(took)
        results["noop_materialize_s"] = round(statistics.median(noops), 3)
        results["noop_materialize_json_s"] = round(statistics.median(noops_json), 3)
        statuses, statuses_json = [], []
        for _ in range(3):
            statuses.append(timed(root, "status")[0])
            took, payload = timed(root, "status", "--json")
            assert payload["fast_path"], "nothing changed: status reads the snapshot"
            statuses_json.append(took)
        results["status_s"] = round(statistics.median(statuses), 3)
        results["status_json_s"] = round(statistics.median(statuses_json), 3)  # a state per key: 30,000 entries
        changed = root / "data" / "events" / f"{days[len(days) // 2]}.csv"
        changed.write_text("user,amount\na,5\nb,7\n")
        took, payload = timed(root, "materialize", "--json")
        assert sorted(ran(payload)) == sorted(f"{a}[{days[len(days) // 2]}]" for a in ("daily_events", "daily_total"))
        results["one_file_changed_s"] = round(took, 3)
        results["cold_per_partition_ms"] = round((cold - results["noop_materialize_s"]) / (2 * options.n)
                                                 * 1000, 2)  # type: ignore[operator]
        with tempfile.TemporaryDirectory() as work:
            results.update(engine_overhead(Path(work)))
        if options.jobs > 1:
            times = {}
            for jobs in (1, options.jobs):
                shutil.rmtree(root / ".assetflow")
                times[jobs], _ = timed(root, "materialize", "--json", "--jobs", str(jobs))
            results["backfill_s"] = {str(j): round(t, 2) for j, t in times.items()}
            results["backfill_speedup"] = round(times[1] / times[options.jobs], 2)
            results["parallel_ceiling"] = round(parallel_ceiling(), 2)
    results["cpu_s_median"] = {command: round(statistics.median(runs), 3) for command, runs in CPU.items()}
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
