"""Soak: many alternating no-op and one-change runs in one process; memory and descriptors must stay flat.

    python bench/soak.py                      # 20,000 runs, results in bench/results/soak.json
    python bench/soak.py --runs 2000 --every 100 --executor inprocess
    python bench/soak.py --runs 2000 --every 100 --no-trim --out bench/results/soak-untrimmed.json

Each odd run first appends a row to the project's source (a real change: four assets
rerun); each even run changes nothing. Runs go through ``assetflow.materialize(project=...)``
exactly as a long-lived service would call it. Every ``--every`` runs it records the
resident set size (``/proc/self/statm``) and the open file descriptors
(``/proc/self/fd``), after a ``gc.collect()``; the resident size both as it is and after
``malloc_trim(0)``: glibc keeps freed memory in its arenas, so fragmentation makes the raw RSS
creep though nothing leaks, and what the trim leaves is live memory. The verdict compares
the end with the end of the warm-up (the first quarter of the runs: caches, lazily started
pools and the like), on the trimmed figure. With trimming, each raw sample still benefits
from the trims of the samples before it; ``--no-trim`` never trims, so its raw figures show
the creep a process that never trims sees (the verdict is then on them).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

PIPELINE = '''
    import polars as pl
    from assetflow import asset, source

    raw = source("data/raw.csv")


    @asset
    def clean(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.filter(pl.col("value") > 0)


    @asset
    def doubled(clean: pl.DataFrame) -> pl.DataFrame:
        return clean.with_columns(pl.col("value") * 2)


    @asset
    def total(doubled: pl.DataFrame) -> pl.DataFrame:
        return doubled.select(pl.col("value").sum())


    @asset
    def count(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.select(pl.len().alias("rows"))


    @asset
    def constant() -> pl.DataFrame:
        return pl.DataFrame({"k": ["a", "b", "c"]})
'''
CHANGED = {"clean", "doubled", "total", "count"}
MODULE = "soakpipe"


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def trimmed_rss_bytes() -> int:
    """RSS after asking glibc to return freed heap memory to the system (where glibc is the allocator).

    glibc keeps freed memory in its arenas, so the raw RSS of a long-lived process creeps up
    with fragmentation even when nothing leaks; after ``malloc_trim(0)`` what remains is live.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return rss_bytes()


def make_project(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[tool.assetflow]\nmodules = ["{MODULE}"]\n')
    (root / f"{MODULE}.py").write_text(textwrap.dedent(PIPELINE))
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "raw.csv").write_text("id,value\n1,10\n2,-5\n")
    stamp = time.time_ns() - 30_000_000_000  # out of the racy-clean window
    for path in (root / "pyproject.toml", root / f"{MODULE}.py"):
        os.utime(path, ns=(stamp, stamp))


def soak(root: Path, runs: int, every: int, executor: str, progress: bool = False,
         trim: bool = True) -> dict[str, Any]:
    """Run the soak; returns the samples and the verdict figures (on trimmed RSS unless ``trim`` is off)."""
    os.environ["ASSETFLOW_EXECUTOR"] = executor
    import assetflow

    make_project(root)
    raw = root / "data" / "raw.csv"
    samples: list[dict[str, float]] = []
    started = time.perf_counter()
    for number in range(runs):
        change = number % 2 == 1
        if change:
            with open(raw, "a") as handle:
                handle.write(f"{number + 2},{number}\n")
        result = assetflow.materialize(project=root)
        ran = {r.name for r in result.results.values() if r.outcome == "ran"}
        if not result.ok:
            raise AssertionError(f"run {number} failed: {result.counts()}")
        if number > 0 and ran != (CHANGED if change else set()):
            raise AssertionError(f"run {number} ({'change' if change else 'no-op'}) ran {sorted(ran)}")
        if (number + 1) % every == 0 or number == 0:
            gc.collect()
            sample = {"run": number + 1, "rss_mb": round(rss_bytes() / 2**20, 2)}
            if trim:
                sample["rss_trimmed_mb"] = round(trimmed_rss_bytes() / 2**20, 2)
            sample.update(fds=open_fds(), seconds=round(time.perf_counter() - started, 2))
            samples.append(sample)
            if progress:
                print(json.dumps(samples[-1]), file=sys.stderr)
    warm = next(s for s in samples if s["run"] >= max(1, runs // 4))
    end = samples[-1]
    rss = "rss_trimmed_mb" if trim else "rss_mb"
    return {
        "runs": runs,
        "executor": executor,
        "trim": trim,
        "seconds": end["seconds"],
        "ms_per_run": round(1000 * end["seconds"] / runs, 1),
        "rss_mb_after_warmup": warm[rss],
        "rss_mb_end": end[rss],
        "rss_growth_mb": round(end[rss] - warm[rss], 2),
        "rss_mb_max": max(s[rss] for s in samples),
        "raw_rss_mb_after_warmup": warm["rss_mb"],
        "raw_rss_mb_end": end["rss_mb"],
        "raw_rss_growth_mb": round(end["rss_mb"] - warm["rss_mb"], 2),
        "fds_after_warmup": warm["fds"],
        "fds_end": end["fds"],
        "fds_max": max(s["fds"] for s in samples),
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=500, help="Sample memory and descriptors every N runs.")
    parser.add_argument("--executor", default="inprocess")
    parser.add_argument("--no-trim", dest="trim", action="store_false",
                        help="Never call malloc_trim: raw RSS only, the verdict on it.")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "soak.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="assetflow-soak-") as folder:
        report = soak(Path(folder) / "project", args.runs, args.every, args.executor, progress=True,
                      trim=args.trim)
    report["python"] = sys.version.split()[0]
    report["date"] = time.strftime("%Y-%m-%d")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: v for k, v in report.items() if k != "samples"}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
