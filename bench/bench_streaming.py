"""Streaming: a 3-asset polars LazyFrame chain over a large CSV, against the same chain collected.

Each asset returns a ``pl.LazyFrame`` (the first scans the CSV, the next two receive their upstream
as a LazyFrame over its Parquet file), so the Parquet backend writes each with polars' streaming
sink and hashes the file a column at a time. The eager twin collects each step. Each variant runs
as its own ``assetflow materialize --executor inprocess`` process (one process: its peak RSS is
the run's); the bench reports wall time, peak RSS, and checks that every asset's data hash is
the same in both (the streamed hash equals the in-memory path's).

Results: bench/results/streaming.json (``--quick``: a 20 MB CSV, to bench/results/tmp/). Usage:
``.venv/bin/python bench/bench_streaming.py [--mb 500] [--quick] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import REPO, child_env, machine, run_child, versions  # noqa: E402

RESULTS = REPO / "bench" / "results" / "streaming.json"
QUICK_RESULTS = REPO / "bench" / "results" / "tmp" / "streaming-quick.json"

PIPELINE = '''
import polars as pl
from assetflow import asset, source

raw = source("data/big.csv", format="path")


@asset
def parsed(raw) -> pl.LazyFrame:
    return {start}pl.scan_csv(raw).with_columns(total=pl.col("v") * pl.col("w"), name=pl.col("name").str.to_uppercase()){end}


@asset
def kept(parsed: pl.LazyFrame) -> pl.LazyFrame:
    return {start}parsed.filter(pl.col("w") < 0.9){end}


@asset
def shaped(kept: pl.LazyFrame) -> pl.LazyFrame:
    return {start}kept.select("id", "name", "total", (pl.col("v") + 1).alias("v1")){end}
'''


def write_csv(path: Path, megabytes: float) -> int:
    """A CSV of about ``megabytes`` MB (id, name, v, w), written in slices; returns its row count."""
    import polars as pl

    rows_per_slice = 500_000
    written, rows = 0, 0
    with open(path, "wb") as handle:
        while written < megabytes * 1e6:
            ids = pl.int_range(rows, rows + rows_per_slice, eager=True)
            frame = pl.DataFrame({"id": ids, "name": (ids % 1013).cast(pl.String).str.pad_start(8, "n"),
                                  "v": (ids * 7919 % 100_003).cast(pl.Float64) / 7.0,
                                  "w": (ids * 104_729 % 1_000).cast(pl.Float64) / 1000.0})
            frame.write_csv(handle, include_header=rows == 0)
            written, rows = handle.tell(), rows + rows_per_slice
    return rows


def project(folder: Path, csv: Path, eager: bool) -> Path:
    folder.mkdir(parents=True)
    (folder / "data").mkdir()
    (folder / "data" / "big.csv").symlink_to(csv)
    (folder / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n', encoding="utf-8")
    start, end = ("(", ").collect()") if eager else ("", "")
    (folder / "pipeline.py").write_text(PIPELINE.format(start=start, end=end), encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=500.0, help="CSV size in MB.")
    parser.add_argument("--quick", action="store_true", help="A 20 MB CSV; results to bench/results/tmp/.")
    parser.add_argument("--assetflow", default=str(REPO / ".venv" / "bin" / "assetflow"))
    parser.add_argument("--out", type=Path, help="Results file (default: bench/results/streaming.json).")
    args = parser.parse_args()
    megabytes = 20.0 if args.quick else args.mb
    out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    work = Path(tempfile.mkdtemp(prefix="assetflow-streaming-"))
    try:
        csv = work / "big.csv"
        rows = write_csv(csv, megabytes)
        figures: dict[str, dict[str, object]] = {}
        for variant in ("streamed", "collected"):
            folder = project(work / variant, csv, eager=variant == "collected")
            run = run_child([args.assetflow, "materialize", "--json", "--executor", "inprocess"], 3600,
                            env=child_env(), cwd=folder)
            if run["returncode"] != 0:
                sys.exit(f"{variant}: exit {run['returncode']}: {run['stderr'][-2000:]}")
            hashes = {a["name"]: a["data_hash"] for a in json.loads(run["stdout"])["assets"]}
            figures[variant] = {"wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "maxrss_mb": run["maxrss_mb"],
                                "hashes": hashes}
            print(f"{variant}: {run['wall_s']:.2f} s, peak RSS {run['maxrss_mb']:.0f} MB", file=sys.stderr)
        same = figures["streamed"]["hashes"] == figures["collected"]["hashes"]
        results = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                   "machine": machine(), "versions": versions(args.assetflow),
                   "csv_mb": round(csv.stat().st_size / 1e6, 1), "rows": rows, "hashes_equal": same,
                   "figures": figures}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        print(json.dumps({k: v for k, v in results.items() if k not in ("machine", "versions")}, indent=1))
        if not same:
            sys.exit("!!! the streamed and collected chains gave different data hashes")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
