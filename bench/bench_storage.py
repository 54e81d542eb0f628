"""Benchmark every storage backend against the raw library call it wraps (issue 3, item 10).

Writes and reads a table of 10 million rows and 5 columns (int64, float64, int32, string,
timestamp) through each backend's ``store`` and ``load``, hashing included, and through the
raw call underneath:

| backend  | raw write                                  | raw read                              |
|----------|--------------------------------------------|---------------------------------------|
| parquet  | polars ``write_parquet`` (zstd)            | polars ``read_parquet``               |
| duckdb   | ``CREATE TABLE t AS SELECT * FROM arrow``  | ``SELECT *`` -> ``to_arrow_table``    |
| postgres | ADBC ``adbc_ingest`` (binary COPY), commit | ADBC ``SELECT *`` -> Arrow            |
| s3       | pyarrow Parquet to memory + obstore ``put``| obstore ``get`` + pyarrow Parquet     |

The goal is at most 1.2x the raw call. Also timed, for reference only: psycopg's text COPY
into PostgreSQL (the alternative to ADBC that was measured and not chosen), and polars
reading the Parquet backend's own file. PostgreSQL runs a CHECKPOINT (untimed) before each
timed operation, when the role may (``pg_checkpoint``), so no run pays for the dirty pages
of the one before. Each figure is the best of
``--repeat`` runs, raw and backend interleaved in alternating order; a version is deleted before each timed write
so every write is a first write.

Needs: ``ASSETFLOW_POSTGRES_DSN`` for postgres (``. .ci/services.sh``), moto for s3 (a
``moto.server`` process on 127.0.0.1), the duckdb backend for duckdb; a backend whose
prerequisite is missing is skipped and recorded as such. Writes bench/results/storage.json.
Usage: ``python bench/bench_storage.py [--rows N] [--repeat N] [--backends parquet,s3,...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assetflow.fingerprint.data import table_hash  # noqa: E402  # after the path fix, to bench this checkout
from assetflow.storage.base import Backends  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "storage.json"
BACKENDS = ("parquet", "duckdb", "postgres", "s3")
GOAL = 1.2


def make_table(rows: int) -> pa.Table:
    """Five columns, deterministic, as a polars user would produce them (large_string)."""
    i = pl.int_range(0, rows, dtype=pl.Int64)
    return pl.select(
        id=i,
        value=i.hash(1).cast(pl.Float64) / 1e19,
        category=(i.hash(2) % 100).cast(pl.Int32),
        label=pl.lit("label-") + (i.hash(3) % 1000).cast(pl.String).str.zfill(5),
        ts=(pl.lit(1_700_000_000_000_000) + (i.hash(4) % 10**12).cast(pl.Int64)).cast(pl.Datetime("us")),
    ).to_arrow()


def timed(run: Callable[[], object]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start
    finally:
        gc.enable()


class Case:
    """One backend's four timed operations, plus the set-up each write needs untimed."""

    def __init__(self, name: str, raw_call: str) -> None:
        self.name, self.raw_call = name, raw_call
        self.ops: dict[str, Callable[[], object]] = {}
        self.before: dict[str, Callable[[], object]] = {}
        self.references: dict[str, Callable[[], object]] = {}
        self.backend: Any = None

    def warm_up(self, table: pa.Table) -> None:
        """Open connections, create schemas and import modules before anything is timed."""
        stored = self.backend.store("warmup", table.slice(0, 100))
        self.backend.load("warmup", stored.location, "arrow")
        self.backend.check("warmup", stored.location, stored.data_hash, stored.token)

    def run(self, repeat: int) -> dict[str, Any]:
        best: dict[str, float] = {}
        runs: dict[str, list[float]] = {}
        for index in range(repeat):
            # Alternate which goes first, so neither always inherits the other's cache or
            # server state; references (not goals) run once.
            order = ("raw_write", "write", "raw_read", "read")
            if index % 2:
                order = ("write", "raw_write", "read", "raw_read")
            for op in (*order, *(self.references if index == 0 else ())):
                run = self.ops.get(op) or self.references[op]
                self.before.get(op, lambda: None)()
                seconds = timed(run)
                best[op] = min(best.get(op, seconds), seconds)
                runs.setdefault(op, []).append(round(seconds, 3))
                print(f"    {self.name:9} {op:22} {seconds:7.2f} s", flush=True)
        result: dict[str, Any] = {"raw_call": self.raw_call}
        for kind in ("write", "read"):
            result[kind] = {
                "assetflow_s": round(best[kind], 3),
                "raw_s": round(best[f"raw_{kind}"], 3),
                "ratio": round(best[kind] / best[f"raw_{kind}"], 3),
            }
        if self.references:
            result["references_s"] = {op: round(best[op], 3) for op in self.references}
        result["runs_s"] = runs
        return result


def parquet_case(table: pa.Table, folder: Path) -> Case:
    backend = Backends(folder / "state", {}).get("parquet")
    frame = pl.from_arrow(table)
    raw_path = folder / "raw.parquet"
    case = Case("parquet", "polars write_parquet (zstd) / read_parquet")
    case.backend = backend
    stored: dict[str, Any] = {}

    def write() -> None:
        stored["v"] = backend.store("bench", table)

    case.before["write"] = lambda: stored and backend.delete("bench", stored["v"].location)
    case.ops["write"] = write
    case.ops["raw_write"] = lambda: frame.write_parquet(raw_path)
    case.ops["read"] = lambda: backend.load("bench", stored["v"].location, "polars")
    case.ops["raw_read"] = lambda: pl.read_parquet(raw_path)
    # Reference: the raw call on the backend's own file (written by pyarrow, not polars).
    case.references["polars read_parquet of the backend's file"] = lambda: pl.read_parquet(
        backend.root / stored["v"].location
    )
    return case


def duckdb_case(table: pa.Table, folder: Path) -> Case | str:
    backends = Backends(folder / "state", {})
    if "duckdb" not in backends.classes():
        return "no duckdb storage backend installed"
    import duckdb

    backend = backends.get("duckdb")
    con = duckdb.connect(str(folder / "raw.duckdb"))
    case = Case("duckdb", "CREATE TABLE AS SELECT * FROM an Arrow table / SELECT * -> to_arrow_table")
    case.backend = backend
    stored: dict[str, Any] = {}

    def raw_write() -> None:
        con.register("incoming", table)
        con.execute("create table t as select * from incoming")
        con.unregister("incoming")

    def write() -> None:
        stored["v"] = backend.store("bench", table)

    case.before["raw_write"] = lambda: con.execute("drop table if exists t")
    case.before["write"] = lambda: stored and backend.delete("bench", stored["v"].location)
    case.ops["write"] = write
    case.ops["raw_write"] = raw_write
    case.ops["read"] = lambda: backend.load("bench", stored["v"].location, "arrow")
    case.ops["raw_read"] = lambda: con.sql("select * from t").to_arrow_table()
    return case


def postgres_case(table: pa.Table, folder: Path) -> Case | str:
    dsn = os.environ.get("ASSETFLOW_POSTGRES_DSN")
    if not dsn:
        return "ASSETFLOW_POSTGRES_DSN is not set (. .ci/services.sh)"
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg

    schema = "bench_storage"
    backend = Backends(folder / "state", {"postgres": {"schema": schema}}).get("postgres")
    conn = adbc.connect(dsn)
    text = psycopg.connect(dsn)
    with conn.cursor() as cur:
        cur.execute(f"drop schema if exists {schema} cascade")
        cur.execute(f"create schema {schema}")
    conn.commit()
    case = Case("postgres", "ADBC adbc_ingest (binary COPY) + commit / ADBC SELECT * -> Arrow")
    case.backend = backend
    stored: dict[str, Any] = {}

    def raw_write() -> None:
        with conn.cursor() as cur:
            cur.adbc_ingest("raw", table, mode="create", db_schema_name=schema)
        conn.commit()

    def raw_read() -> pa.Table:
        with conn.cursor() as cur:
            cur.execute(f"select * from {schema}.raw")
            data = cur.fetch_arrow_table()
        conn.rollback()
        return data

    def drop(name: str) -> None:
        with conn.cursor() as cur:
            cur.execute(f"drop table if exists {schema}.{name}")
        conn.commit()

    def write() -> None:
        stored["v"] = backend.store("bench", table)

    def psycopg_text_copy() -> None:  # reference: CSV from Arrow, COPY FROM STDIN
        import pyarrow.csv as pacsv

        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
        data = buffer.getbuffer()
        columns = "id bigint, value float8, category int, label text, ts timestamp"
        text.execute(f"create table {schema}.text_copy ({columns})")
        with text.cursor().copy(f"copy {schema}.text_copy from stdin (format csv)") as copy:
            for start in range(0, len(data), 1 << 20):
                copy.write(data[start : start + (1 << 20)])
        text.commit()

    def checkpoint() -> None:
        """Flush the previous run's dirty pages now, so no run pays for another's checkpoint."""
        with contextlib.suppress(psycopg.Error):
            text.execute("checkpoint")
        text.rollback()

    def before_write(drop_previous: Callable[[], object]) -> Callable[[], None]:
        return lambda: (drop_previous(), checkpoint())

    case.before["raw_write"] = before_write(lambda: drop("raw"))
    case.before["write"] = before_write(lambda: stored and backend.delete("bench", stored["v"].location))
    case.before["psycopg text COPY write"] = before_write(lambda: drop("text_copy"))
    case.before["raw_read"] = case.before["read"] = checkpoint
    case.ops["write"] = write
    case.ops["raw_write"] = raw_write
    case.ops["read"] = lambda: backend.load("bench", stored["v"].location, "arrow")
    case.ops["raw_read"] = raw_read
    case.references["psycopg text COPY write"] = psycopg_text_copy
    return case


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in its own process on 127.0.0.1 (not a thread: it must not share our GIL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def s3_case(table: pa.Table, folder: Path, endpoint: str) -> Case:
    import boto3
    import obstore
    from obstore.store import S3Store

    bucket = "bench-storage"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    options = {"bucket": bucket, "endpoint_url": endpoint, "region": "us-east-1"}
    backend = Backends(folder / "state", {"s3": options}).get("s3")
    store = S3Store(bucket, config={"endpoint": endpoint, "region": "us-east-1"}, client_options={"allow_http": True})
    case = Case("s3", "pyarrow write_table (zstd) to memory + obstore put / obstore get + pyarrow read_table")
    case.backend = backend
    stored: dict[str, Any] = {}

    def raw_write() -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        obstore.put(store, "raw/bench.parquet", memoryview(sink.getvalue()).cast("B"), chunk_size=16 * 2**20)

    def raw_read() -> pa.Table:
        return pq.read_table(pa.BufferReader(pa.py_buffer(obstore.get(store, "raw/bench.parquet").bytes())))

    def write() -> None:
        stored["v"] = backend.store("bench", table)

    case.before["write"] = lambda: stored and backend.delete("bench", stored["v"].location)
    case.ops["write"] = write
    case.ops["raw_write"] = raw_write
    case.ops["read"] = lambda: backend.load("bench", stored["v"].location, "arrow")
    case.ops["raw_read"] = raw_read
    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    for env, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_EC2_METADATA_DISABLED": "true"}.items():  # fmt: skip
        os.environ.setdefault(env, value)

    table = make_table(args.rows)
    hash_seconds = min(timed(lambda: table_hash(table)) for _ in range(args.repeat))
    print(f"{args.rows:,} rows, {table.nbytes / 1e6:.0f} MB in Arrow; table_hash {hash_seconds:.3f} s", flush=True)
    results: dict[str, Any] = {
        "rows": args.rows,
        "columns": [f"{f.name}: {f.type}" for f in table.schema],
        "arrow_bytes": table.nbytes,
        "table_hash_s": round(hash_seconds, 3),
        "goal_ratio": GOAL,
        "repeat": args.repeat,
        "backends": {},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "pyarrow": pa.__version__,
            "polars": pl.__version__,
            "note": "a shared 2-core machine: other work ran beside this benchmark",
        },
    }
    folder = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        with contextlib.ExitStack() as stack:
            for name in wanted:
                if name == "parquet":
                    case: Case | str = parquet_case(table, folder)
                elif name == "duckdb":
                    case = duckdb_case(table, folder)
                elif name == "postgres":
                    case = postgres_case(table, folder)
                elif name == "s3":
                    try:
                        endpoint = stack.enter_context(moto_server())
                        case = s3_case(table, folder, endpoint)
                    except ImportError as exc:
                        case = f"moto or obstore is not installed ({exc})"
                else:
                    raise SystemExit(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
                if isinstance(case, str):
                    print(f"  {name}: skipped: {case}", flush=True)
                    results["backends"][name] = {"skipped": case}
                    continue
                print(f"  {name}: {case.raw_call}", flush=True)
                case.warm_up(table)
                results["backends"][name] = case.run(args.repeat)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'backend':9} {'write s':>8} {'raw s':>7} {'ratio':>6}   {'read s':>7} {'raw s':>7} {'ratio':>6}")
    for name, r in results["backends"].items():
        if "skipped" in r:
            print(f"{name:9} skipped: {r['skipped']}")
            continue
        w, rd = r["write"], r["read"]
        print(f"{name:9} {w['assetflow_s']:8.2f} {w['raw_s']:7.2f} {w['ratio']:6.2f}   "
              f"{rd['assetflow_s']:7.2f} {rd['raw_s']:7.2f} {rd['ratio']:6.2f}")  # fmt: skip
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
