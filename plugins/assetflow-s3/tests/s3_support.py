"""Fixtures for the S3 tests: a real S3-compatible server on loopback, started by the tests.

The server is moto's standalone server (``moto[s3]`` with flask: a real HTTP endpoint that
speaks the S3 protocol, buckets held in memory) bound to 127.0.0.1 on a free port. No
other S3-compatible server installs from this machine's registries (MinIO ships no PyPI
or Debian package). A helper module, not a conftest: see pg_support.py in the postgres
plugin's tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "assetflow-test-key",
    "AWS_SECRET_ACCESS_KEY": "assetflow-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance-metadata address for credentials
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of an S3-compatible server on 127.0.0.1, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Test credentials in the environment (inherited by assetflow subprocesses)."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return CREDENTIALS


def s3_client(endpoint: str) -> Any:
    """A boto3 client for the test server: how the tests look at and tamper with objects."""
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip


@pytest.fixture
def s3_bucket(s3_endpoint: str, s3_env: dict[str, str]) -> str:
    """A new, empty bucket for one test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=name)
    return name
