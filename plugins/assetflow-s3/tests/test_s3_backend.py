"""The s3 backend against an S3-compatible server on loopback: versions, checks, atomicity, secrets."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from s3_support import s3_bucket, s3_client, s3_endpoint, s3_env

from assetflow.errors import StorageError
from assetflow.fingerprint.data import table_hash
from assetflow.storage.base import Backends
from assetflow.storage.parquet import ParquetBackend
from assetflow_s3 import S3Backend

__all__ = ["s3_bucket", "s3_endpoint", "s3_env"]  # fixtures, imported so pytest finds them

TABLE = pa.table({"id": [1, 2, 3], "name": ["a", None, ""], "value": [1.5, None, -0.0]})


@pytest.fixture
def s3(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> S3Backend:
    return S3Backend(tmp_path, {"bucket": s3_bucket, "endpoint_url": s3_endpoint, "prefix": "team/flows"})


def put(endpoint: str, location: str, body: bytes) -> None:
    bucket, key = location.removeprefix("s3://").split("/", 1)
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=body)


def keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listing.get("Contents", [])]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_discovered_through_the_entry_point(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    found = Backends(tmp_path, {"s3": {"bucket": s3_bucket, "endpoint_url": s3_endpoint}}).get("s3")
    assert isinstance(found, S3Backend)


def test_round_trip_addressed_by_content(tmp_path: Path, s3: S3Backend, s3_bucket: str, s3_endpoint: str) -> None:
    stored = s3.store("orders", pl.from_arrow(TABLE))
    digest = stored.data_hash.split(":")[1]
    assert stored.data_hash == ParquetBackend(tmp_path, {}).store("orders", TABLE).data_hash
    assert stored.location == f"s3://{s3_bucket}/team/flows/orders/{digest}.parquet"
    assert stored.rows == 3
    head = s3_client(s3_endpoint).head_object(Bucket=s3_bucket, Key=stored.location.split("/", 3)[3])
    assert stored.bytes == head["ContentLength"] and stored.token == f"{head['ETag'].strip(chr(34))}:{stored.bytes}"
    arrow = s3.load("orders", stored.location, "arrow")
    polars = s3.load("orders", stored.location, "polars")
    assert isinstance(arrow, pa.Table) and isinstance(polars, pl.DataFrame)
    assert table_hash(arrow) == table_hash(polars.to_arrow()) == stored.data_hash
    other = s3.store("orders", TABLE.slice(1))
    assert other.location != stored.location  # every version stays addressable
    assert table_hash(s3.load("orders", stored.location, "arrow")) == stored.data_hash


def test_without_a_prefix_keys_start_at_the_asset(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    backend = S3Backend(tmp_path, {"bucket": s3_bucket, "endpoint_url": s3_endpoint, "prefix": ""})
    stored = backend.store("orders", TABLE)
    assert stored.location.startswith(f"s3://{s3_bucket}/orders/")
    assert backend.check("orders", stored.location, stored.data_hash, stored.token).status == "ok"


def test_check_uses_the_etag_and_rehashes_only_when_it_moved(s3: S3Backend, s3_endpoint: str) -> None:
    stored = s3.store("orders", TABLE)
    assert s3.check("orders", stored.location, stored.data_hash, stored.token).status == "ok"
    # Same content, written by another Parquet writer: the token moves, the rehash finds it intact.
    put(s3_endpoint, stored.location, parquet_bytes(TABLE.replace_schema_metadata({"writer": "someone else"})))
    result = s3.check("orders", stored.location, stored.data_hash, stored.token)
    assert result.status == "ok" and result.token != stored.token
    assert s3.check("orders", stored.location, stored.data_hash, result.token) == result


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda: parquet_bytes(TABLE.slice(1)), id="other-data"),
        pytest.param(lambda: b"not parquet", id="garbage"),
        pytest.param(lambda: parquet_bytes(TABLE)[:-20], id="truncated"),
    ],
)
def test_check_sees_tampering(s3: S3Backend, s3_endpoint: str, body: Any) -> None:
    stored = s3.store("orders", TABLE)
    put(s3_endpoint, stored.location, body())
    result = s3.check("orders", stored.location, stored.data_hash, stored.token)
    assert result.status == "modified" and result.token != stored.token


def test_a_value_that_is_not_a_table_is_refused_naming_the_asset(s3: S3Backend) -> None:
    with pytest.raises(StorageError, match=r"Asset 'orders'.*io='s3' stores tables"):
        s3.store("orders", [1, 2, 3])


def test_missing_and_delete(s3: S3Backend) -> None:
    stored = s3.store("orders", TABLE)
    s3.delete("orders", stored.location)
    assert s3.check("orders", stored.location, stored.data_hash, stored.token).status == "missing"
    s3.delete("orders", stored.location)  # missing data is not an error
    with pytest.raises(StorageError, match=r"missing: s3://.*materialize orders"):
        s3.load("orders", stored.location, "polars")


def test_a_failed_upload_leaves_no_version(s3: S3Backend, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import obstore

    def broken_upload(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("connection reset mid-upload")

    with monkeypatch.context() as patch:
        patch.setattr(obstore, "put", broken_upload)
        with pytest.raises(StorageError, match="store asset 'orders'.*connection reset"):
            s3.store("orders", TABLE)
    assert keys(s3_endpoint, s3.bucket) == []


def test_a_large_table_goes_up_in_parts_and_is_one_object(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    backend = S3Backend(tmp_path, {"bucket": s3_bucket, "endpoint_url": s3_endpoint, "compression": "none"})
    backend.part_size = 5 * 2**20  # S3's smallest part: a 12 MB object goes up in three parts
    table = pa.table({"x": pa.array(range(1_500_000), pa.int64())})
    stored = backend.store("big", table)
    assert stored.bytes is not None and stored.bytes > 2 * backend.part_size
    assert "-" in stored.token.split(":")[0]  # a multipart ETag: parts, then one atomic completion
    assert table_hash(backend.load("big", stored.location, "arrow")) == stored.data_hash


@pytest.mark.parametrize(
    "location",
    [
        "orders/abc.parquet",
        "s3://bucket/orders/0123.parquet",
        "s3://bucket/other/" + "0" * 64 + ".parquet",
        "s3://bucket/../orders/" + "0" * 64 + ".parquet",
        "s3://Bucket/orders/" + "0" * 64 + ".parquet",
    ],
)
def test_malformed_locations_are_refused(s3: S3Backend, location: str) -> None:
    with pytest.raises(StorageError, match="not an s3 version"):
        s3.load("orders", location, "arrow")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        pytest.param({}, "bucket", id="no-bucket"),
        pytest.param({"bucket": "Not_A_Bucket"}, "bucket", id="bad-bucket"),
        pytest.param({"bucket": "ok-bucket", "prefix": "a/../b"}, "prefix", id="dotdot-prefix"),
        pytest.param({"bucket": "ok-bucket", "secret": "x"}, "Unknown option", id="unknown"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, object], words: str) -> None:
    with pytest.raises(StorageError, match=words):
        S3Backend(tmp_path, options)


def test_secret_options_never_appear_in_results_or_errors(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    secret = "wJalrXUtnFEMI-not-a-real-secret"
    options = {"bucket": s3_bucket, "endpoint_url": s3_endpoint, "access_key_id": "AKIATESTKEY123",
               "secret_access_key": secret, "region": "us-east-1"}  # fmt: skip
    stored = S3Backend(tmp_path, options).store("orders", TABLE)
    assert secret not in repr(stored) and "AKIATESTKEY123" not in repr(stored)
    missing = S3Backend(tmp_path, {**options, "bucket": "no-such-bucket"})
    with pytest.raises(StorageError) as info:
        missing.store("orders", TABLE)
    assert secret not in str(info.value) and "AKIATESTKEY123" not in str(info.value)
    assert info.value.__suppress_context__


PIPELINE = '''
    import polars as pl
    from assetflow import asset, source

    raw = source("data/raw.csv")


    @asset(io="s3")
    def clean(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.filter(pl.col("value") > 0)


    @asset
    def total(clean: pl.DataFrame) -> pl.DataFrame:
        return clean.select(pl.col("value").sum())
'''


def assetflow(root: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "assetflow", *args, "--json"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode in (0, 1), proc.stderr
    return {a["name"]: a for a in json.loads(proc.stdout)["assets"]}


def test_a_project_on_s3_through_the_cli(tmp_path: Path, s3_bucket: str, s3_endpoint: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.assetflow]\nmodules = ["pipeline"]\n[tool.assetflow.io.s3]\n'
        f'bucket = "{s3_bucket}"\nendpoint_url = "{s3_endpoint}"\nregion = "us-east-1"\n'
    )
    import textwrap

    (tmp_path / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.csv").write_text("id,value\n1,10\n2,-5\n3,7\n")
    ran = assetflow(tmp_path, "materialize")
    assert {n: a["outcome"] for n, a in ran.items()} == {"clean": "ran", "total": "ran"}
    again = assetflow(tmp_path, "materialize")
    assert {n: a["outcome"] for n, a in again.items()} == {"clean": "fresh", "total": "fresh"}
    [key] = keys(s3_endpoint, s3_bucket, "assetflow/clean/")
    put(s3_endpoint, f"s3://{s3_bucket}/{key}", parquet_bytes(pa.table({"id": [1], "value": [999]})))
    status = assetflow(tmp_path, "status")
    assert "stored data changed outside assetflow (hash mismatch)" in status["clean"]["reasons"]
    rerun = assetflow(tmp_path, "materialize")
    assert (rerun["clean"]["outcome"], rerun["total"]["outcome"]) == ("ran", "cutoff")
    for path in (tmp_path / ".assetflow").rglob("*"):
        if path.is_file():
            assert b"assetflow-test-secret" not in path.read_bytes()
