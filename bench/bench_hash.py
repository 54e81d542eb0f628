"""Benchmark the data hash against the raw hash function (docs/concepts.md, "Performance budgets": at least 80% of its speed).

Builds a table of int64, float64, string, bool and timestamp columns (10 million rows by
default) in the forms the stores produce, times ``table_hash`` on each, and compares with
blake3 (one thread) and xxh3-128 over one contiguous buffer. Writes bench/results/hash.json
and prints a summary. Usage: ``python bench/bench_hash.py [--rows N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import blake3
import polars as pl
import pyarrow as pa
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assetflow import hashing  # noqa: E402  # after the path fix, to bench this checkout
from assetflow.fingerprint import data  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "hash.json"
GB = 1e9


class _CountingHasher:
    """Wraps a hasher to count the bytes the canonical form feeds it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.count = inner, 0

    def update(self, view: Any) -> None:
        self.count += memoryview(view).nbytes
        self.inner.update(view)

    def hexdigest(self) -> str:
        return str(self.inner.hexdigest())


def best_time(run: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` runs, with the garbage collector off while timing."""
    times = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        gc.enable()
    return min(times)


def make_tables(rows: int) -> dict[str, pa.Table]:
    """The bench table as polars exports it, as pyarrow/DuckDB build it, rechunked, and with nulls."""
    i = pl.col("i")
    columns = {
        "id": (i * 2_654_435_761) % 1_000_000_007,
        "amount": i.cast(pl.Float64) * 0.37,
        "user": pl.format("user_{}", i % 100_003),
        "active": i % 3 == 0,
        "at": (i * 1_000_000 + 1_577_836_800_000_000).cast(pl.Datetime("us")),
    }
    frame = pl.DataFrame({"i": pl.int_range(0, rows, dtype=pl.Int64, eager=True)})
    plain = frame.select(**columns)
    nulls = frame.select(**{name: pl.when(i % 100 == 0).then(None).otherwise(e) for name, e in columns.items()})

    def as_string(table: pa.Table) -> pa.Table:  # what pyarrow and DuckDB produce
        return table.cast(table.schema.set(2, pa.field("user", pa.string())))

    pyarrow_form = as_string(plain.to_arrow()).combine_chunks()
    return {
        "polars to_arrow (large_string)": plain.to_arrow().combine_chunks(),
        "pyarrow/duckdb (string)": pyarrow_form,
        "16 chunks (string)": pa.Table.from_batches(pyarrow_form.to_batches(max_chunksize=-(-rows // 16))),
        "1% nulls (string)": as_string(nulls.to_arrow()).combine_chunks(),
    }


def raw_speed(factory: Callable[[], Any], buffer: memoryview, repeat: int) -> float:
    def run() -> None:
        hasher = factory()
        hasher.update(buffer)
        hasher.digest()

    return buffer.nbytes / best_time(run, repeat) / GB


def table_speed(table: pa.Table, factory: Callable[[], Any], repeat: int) -> dict[str, float]:
    """table_hash timed with ``factory`` as Digest's hash function; GB/s of the bytes it hashes."""
    counted: list[_CountingHasher] = []

    def counting() -> _CountingHasher:
        counted.append(_CountingHasher(factory()))
        return counted[-1]

    original = hashing.blake3
    try:  # Digest calls blake3.blake3(): swap the function, keep the framing code as it is
        hashing.blake3 = SimpleNamespace(blake3=counting)  # type: ignore[assignment]
        data.table_hash(table)
        hashing.blake3 = SimpleNamespace(blake3=factory)  # type: ignore[assignment]
        seconds = best_time(lambda: data.table_hash(table), repeat)
    finally:
        hashing.blake3 = original
    hashed = counted[0].count
    return {
        "arrow_bytes": table.nbytes,
        "hashed_bytes": hashed,
        "seconds": round(seconds, 4),
        "gb_per_s_hashed": round(hashed / seconds / GB, 3),
        "gb_per_s_arrow": round(table.nbytes / seconds / GB, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    tables = make_tables(args.rows)
    size = max(t.nbytes for t in tables.values())
    buffer = memoryview(bytearray(os.urandom(1 << 20)) * (size >> 20 or 1))
    functions: dict[str, Callable[[], Any]] = {
        "blake3": lambda: blake3.blake3(max_threads=1),
        "xxh3_128": xxhash.xxh3_128,
    }
    raw = {name: round(raw_speed(f, buffer, args.repeat), 3) for name, f in functions.items()}
    raw["blake3 (all cores, for reference)"] = round(
        raw_speed(lambda: blake3.blake3(max_threads=blake3.blake3.AUTO), buffer, args.repeat), 3
    )
    results: dict[str, Any] = {
        "rows": args.rows,
        "raw_gb_per_s": raw,
        "table_hash": {},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "pyarrow": pa.__version__,
            "polars": pl.__version__,
        },
    }
    for function in functions:
        for name, table in tables.items():
            measured = table_speed(table, functions[function], args.repeat)
            measured["share_of_raw"] = round(measured["gb_per_s_hashed"] / raw[function], 3)
            results["table_hash"].setdefault(function, {})[name] = measured

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{args.rows:,} rows; raw single-thread: " + ", ".join(f"{k} {v} GB/s" for k, v in raw.items()))
    for function, by_table in results["table_hash"].items():
        for name, m in by_table.items():
            print(
                f"  {function:9} {name:31} {m['seconds']:7.3f} s  {m['gb_per_s_hashed']:6.2f} GB/s hashed "
                f"({m['share_of_raw']:.0%} of raw)  {m['gb_per_s_arrow']:6.2f} GB/s of Arrow bytes"
            )
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
