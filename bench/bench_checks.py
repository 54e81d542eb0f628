"""Checks over a 10M-row table: every built-in at once vs one polars scan of the columns they read.

The goal (docs/checks.md, "One pass over the data"): all built-ins of one asset, fused by
``assetflow.checks.evaluate.run_builtins`` into one ``select``, take at most 1.5x the time of one
plain polars scan that reads the same columns from the same Parquet file. For contrast, the same
checks are also run one scan per check, as a tool without fusion would.

The table is the example's kind (order lines): ``order_id`` (unique, increasing), ``customer_id`` (every value
in a 100,000-row customers column), ``status`` (paid/refunded), ``amount`` (>= 0), written once as
Parquet (zstd) to a temporary folder. A second round (``unordered_key``) judges ``shuffled_id``,
the same keys in random order, where ``unique`` must hash every key (a second pass). Each figure is the best of ``--repeat`` runs, taken in turns
(baseline, fused, per-check) so a load spike from other processes hits all three alike.

Usage: ``python bench/bench_checks.py [--rows 10000000] [--repeat 5] [--json bench/results/checks.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def make_table(path: Path, rows: int) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(7)
    frame = pl.DataFrame({
        "order_id": np.arange(rows, dtype=np.int64),
        "shuffled_id": rng.permutation(rows).astype(np.int64),
        "customer_id": rng.integers(0, 100_000, rows, dtype=np.int64),
        "status": pl.Series(rng.choice(["paid", "refunded"], rows, p=[0.9, 0.1])).cast(pl.String),
        "amount": rng.random(rows) * 500,
    })
    frame.write_parquet(path, compression="zstd")


def checks(key: str = "order_id") -> list[object]:
    import polars as pl

    from assetflow.checks.definitions import accepted_values, expr, not_null, relationship, row_count, schema, unique

    return [not_null(key), unique(key), not_null("customer_id"),
            accepted_values("status", ["paid", "refunded"]), row_count(min=1), expr(pl.col("amount") >= 0),
            schema({"order_id": pl.Int64, "amount": pl.Float64}),
            relationship("customer_id", to="customers.customer_id")]


COLUMNS = ["order_id", "customer_id", "status", "amount"]


def run(path: Path, repeat: int, key: str = "order_id") -> dict[str, object]:
    """``key``: the column unique() and the first not_null() judge (``shuffled_id``: a key in no order)."""
    import polars as pl

    from assetflow.checks.evaluate import run_builtins

    others = {"customers": pl.Series("customer_id", range(100_000), dtype=pl.Int64)}
    declared = checks(key)
    columns = [key, *COLUMNS[1:]]
    times: dict[str, list[float]] = {"scan": [], "fused": [], "one_scan_per_check": []}
    for _ in range(repeat):
        started = time.perf_counter()
        scanned = pl.scan_parquet(path).select(columns).collect()
        times["scan"].append(time.perf_counter() - started)
        assert scanned.height > 0
        del scanned
        started = time.perf_counter()
        verdicts = run_builtins(declared, pl.scan_parquet(path), "orders", others)
        times["fused"].append(time.perf_counter() - started)
        assert all(v.passed for v in verdicts), [(v.check.name, v.summary) for v in verdicts if not v.passed]
        started = time.perf_counter()
        for chk in declared:
            run_builtins([chk], pl.scan_parquet(path), "orders", others)
        times["one_scan_per_check"].append(time.perf_counter() - started)
    best = {k: min(v) for k, v in times.items()}
    return {"checks": [c.name for c in declared], "columns": columns, "best_s": best, "runs_s": times,
            "fused_over_scan": best["fused"] / best["scan"],
            "per_check_over_scan": best["one_scan_per_check"] / best["scan"], "target_ratio": 1.5,
            "ok": best["fused"] / best["scan"] <= 1.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    import polars as pl

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "orders.parquet"
        started = time.perf_counter()
        make_table(path, args.rows)
        made = time.perf_counter() - started
        result = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                              "cpus": os.cpu_count(), "polars": pl.__version__,
                              "load_average_at_start": os.getloadavg()[0]},
                  "rows": args.rows, "file_mb": round(path.stat().st_size / 2**20, 1), "make_table_s": made,
                  "repeat": args.repeat, **run(path, args.repeat),
                  "unordered_key": run(path, max(2, args.repeat // 2), key="shuffled_id")}
        result["machine"]["load_average_at_end"] = os.getloadavg()[0]  # type: ignore[index]
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
