"""The page's guards, in process (issue 11, item 17): strict Host parsing, a CSRF Origin that must
match scheme, host and port, and bad query parameters answered 400 with a message."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from assetflow.ui.app import create_app
from assetflow.ui.project_view import ProjectView
from assetflow.ui.security import parse_host, same_origin
from conftest import ProjectDir

LOCAL = "http://127.0.0.1:8765"


@pytest.fixture
def client(project: ProjectDir) -> Iterator[TestClient]:
    project.write("pipeline.py", """
        import polars as pl
        from assetflow import asset

        @asset
        def numbers() -> pl.DataFrame:
            return pl.DataFrame({"n": [1, 2, 3]})
    """)
    with TestClient(create_app(ProjectView(project.root), allow_run=True), base_url=LOCAL) as test_client:
        yield test_client


@pytest.mark.parametrize("header, parsed", [
    ("127.0.0.1:8765", ("127.0.0.1", 8765)), ("LocalHost", ("localhost", None)), ("[::1]:8765", ("::1", 8765)),
    ("[::1]", ("::1", None)), ("[::1]attacker.example", None), ("[::1]:8765.attacker.example", None),
    ("[evil]:80", None), ("a:b:c", None), ("127.0.0.1:99999", None), ("127.0.0.1:", None), ("", None),
    ("host name", None), ("a.b/c", None),
])
def test_host_headers_are_parsed_strictly(header: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_host(header) == parsed


@pytest.mark.parametrize("host", ["[::1]attacker.example", "[::1]:8765attacker", "127.0.0.1:80:80", "a b"])
def test_malformed_host_headers_are_refused(client: TestClient, host: str) -> None:
    response = client.get("/api/changes", headers={"host": host})
    assert response.status_code == 400
    assert "Host header" in response.text


@pytest.mark.parametrize("origin, same", [
    (LOCAL, True), ("http://127.0.0.1:8766", False), ("https://127.0.0.1:8765", False),
    ("http://localhost:8765", False), ("http://127.0.0.1", False), ("null", False),
    ("http://127.0.0.1:8765/path", False),
])
def test_origin_must_match_scheme_host_and_port(origin: str, same: bool) -> None:
    assert same_origin(origin, "http", "127.0.0.1:8765") is same


def test_default_ports_count_as_given() -> None:
    assert same_origin("http://assets.example", "http", "assets.example:80")
    assert same_origin("https://assets.example:443", "https", "assets.example")
    assert not same_origin("http://assets.example", "http", "assets.example:8080")


def test_a_launch_from_another_port_is_refused(client: TestClient) -> None:
    csrf = re.search(r'name="assetflow-csrf" content="([^"]+)"', client.get("/").text).group(1)  # type: ignore[union-attr]
    for origin in ("http://127.0.0.1:9999", "https://127.0.0.1:8765"):
        refused = client.post("/api/materialize", json={"select": "nothing_here"},
                              headers={"x-csrf-token": csrf, "origin": origin})
        assert refused.status_code == 403, origin
        assert refused.json()["error"]["type"] == "CSRF"


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=-3", "limit=1.5"])
def test_bad_query_parameters_answer_400_with_a_message(client: TestClient, query: str) -> None:
    response = client.get(f"/api/history?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "ParameterError" and "limit" in error["message"] and error["traceback"] is None
    assert client.get("/api/history?limit=3").status_code == 200
