"""The web page's server (issue 7): its API is the CLI's JSON, it follows the project, it is safe by default.

Driven through Starlette's test client against a real copy of the example project, with
the CLI run in subprocesses for the documents the API must equal.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from assetflow.ui import project_view
from assetflow.ui.app import create_app
from assetflow.ui.export import export_site
from assetflow.ui.project_view import ProjectView
from browser_support import eventually, materialized_example

LOCAL = "http://127.0.0.1:8765"
VOLATILE = {"age_s"}  # seconds since: differs between any two calls


def cli(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "assetflow", *args, "--project", str(root)], capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode not in (0, 1):
        raise AssertionError(f"assetflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc


def without(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


@pytest.fixture(scope="module")
def built_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, materialized once; tests copy it."""
    return materialized_example(tmp_path_factory.mktemp("built") / "example")


@pytest.fixture
def example(built_example: Path, tmp_path: Path) -> Path:
    root = tmp_path / "example"
    shutil.copytree(built_example, root)
    return root


@pytest.fixture(autouse=True)
def no_poll_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(project_view, "TOKEN_INTERVAL_S", 0.0)


@pytest.fixture
def client_for() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(root: Path, base_url: str = LOCAL, **options: Any) -> TestClient:
        client = TestClient(create_app(ProjectView(root), **options), base_url=base_url)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_every_document_equals_the_clis_json(example: Path, client_for: Callable[..., TestClient]) -> None:
    client = client_for(example)
    pairs = {
        "/api/status": ["status", "--json"],
        "/api/list": ["list", "--json"],
        "/api/list?select=%2Bdaily_revenue": ["list", "+daily_revenue", "--json"],
        "/api/show/order_lines": ["show", "order_lines", "--limit", "10", "--json"],
        "/api/show/category_share": ["show", "category_share", "--limit", "10", "--json"],
        "/api/why/order_lines": ["why", "order_lines", "--json"],
        "/api/lineage/revenue_summary?version=current": ["lineage", "revenue_summary", "--version", "current",
                                                         "--json"],
        "/api/history?limit=20": ["history", "--json"],
    }
    for url, args in pairs.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.text)
        expected = json.loads(cli(example, *args).stdout)
        assert without(response.json(), VOLATILE) == without(expected, VOLATILE), url
    share = client.get("/api/show/category_share").json()["assets"][0]  # a SQL mart: columns and their origins
    assert share["language"] == "sql" and share["columns"]["known"]
    revenue = next(c for c in share["columns"]["list"] if c["name"] == "revenue")
    assert revenue["origins"] == [{"asset": "category_revenue", "column": "revenue"}]
    status = client.get("/api/status").json()
    assert status["schema_version"] == 1 and status["command"] == "status"
    assert {a["state"] for a in status["assets"]} == {"fresh", "observed"}


def test_unknown_asset_and_bad_selection_are_clear_errors(example: Path, client_for: Callable[..., TestClient]) -> None:
    client = client_for(example)
    missing = client.get("/api/show/no_such_asset")
    assert missing.status_code == 404
    assert missing.json()["command"] == "error" and "no_such_asset" in missing.json()["error"]["message"]
    bad = client.get("/api/list", params={"select": "+orders (("})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "SelectionError" and "^" in bad.json()["error"]["message"]


def test_a_broken_project_is_shown_with_its_traceback_and_the_server_recovers(
        example: Path, client_for: Callable[..., TestClient]) -> None:
    client = client_for(example)
    assert client.get("/api/status").status_code == 200
    staging = example / "shop" / "staging.py"
    good = staging.read_text()
    staging.write_text(good + "\ndef broken(:\n")
    response = client.get("/api/status")
    assert response.status_code == 503
    error = response.json()["error"]
    assert "shop.staging" in error["message"] and "SyntaxError" in error["message"]
    assert "Traceback" in error["message"] or "line" in error["message"]
    assert client.get("/api/changes").json()["broken"] is True
    staging.write_text(good)
    recovered = client.get("/api/status")
    assert recovered.status_code == 200, recovered.text
    assert client.get("/api/changes").json()["broken"] is False


def test_code_edits_and_runs_elsewhere_reach_the_api(example: Path, client_for: Callable[..., TestClient]) -> None:
    client = client_for(example)
    first = client.get("/api/changes").json()["token"]
    assert client.get("/api/changes").json()["token"] == first  # nothing changed: a stable token
    cleaning = example / "shop" / "cleaning.py"
    cleaning.write_text(cleaning.read_text().replace("VAT_RATE = 0.20", "VAT_RATE = 0.21"))
    second = client.get("/api/changes").json()["token"]
    assert second != first
    states = {a["name"]: a for a in client.get("/api/status").json()["assets"]}
    assert states["order_lines"]["state"] == "stale"
    assert any("VAT_RATE" in r for r in states["order_lines"]["reasons"])
    why = client.get("/api/why/order_lines").json()
    assert any("0.21" in c["diff"] for c in why["code"])
    cli(example, "materialize")  # another terminal's run
    assert client.get("/api/changes").json()["token"] != second
    after = {a["name"]: a["state"] for a in client.get("/api/status").json()["assets"]}
    assert after["order_lines"] == "fresh"
    runs = client.get("/api/history").json()["runs"]
    assert runs[0]["status"] == "succeeded" and any(a["asset"] == "order_lines" for a in runs[0]["assets"])


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "10.0.0.8"])
def test_foreign_host_headers_are_refused(example: Path, client_for: Callable[..., TestClient], host: str) -> None:
    client = client_for(example)
    response = client.get("/api/status", headers={"host": host})
    assert response.status_code == 400
    assert "--allowed-host" in response.text
    for ok in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765"):
        assert client.get("/api/changes", headers={"host": ok}).status_code == 200


def test_an_allowed_host_is_accepted(example: Path, client_for: Callable[..., TestClient]) -> None:
    client = client_for(example, extra_hosts=("assets.internal",))
    assert client.get("/api/changes", headers={"host": "assets.internal"}).status_code == 200
    assert client.get("/api/changes", headers={"host": "other.internal"}).status_code == 400


def test_a_token_guards_every_request(example: Path, client_for: Callable[..., TestClient]) -> None:
    client = client_for(example, token="s3cret-token")
    assert client.get("/api/status").status_code == 401
    assert client.get("/").status_code == 401
    assert client.get("/api/status", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/status", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    login = client.get("/?token=s3cret-token", follow_redirects=False)
    assert login.status_code == 303 and "token=" not in login.headers["location"]
    assert "httponly" in login.headers["set-cookie"].lower()
    assert client.get("/api/status").status_code == 200  # the cookie now carries it


def test_listening_beyond_loopback_needs_a_token(example: Path) -> None:
    proc = cli(example, "ui", "--host", "0.0.0.0", "--port", "0", check=False)
    assert proc.returncode == 2
    assert "without a token" in proc.stderr and "--token" in proc.stderr


def test_read_only_unless_allowed(example: Path, client_for: Callable[..., TestClient]) -> None:
    client = client_for(example)
    response = client.post("/api/materialize", json={})
    assert response.status_code == 403 and "--allow-run" in response.json()["error"]["message"]
    assert 'name="assetflow-allow-run" content="0"' in client.get("/").text


def test_launching_a_run_needs_the_pages_csrf_token(example: Path, client_for: Callable[..., TestClient]) -> None:
    client = client_for(example, allow_run=True)
    page = client.get("/").text
    csrf = re.search(r'name="assetflow-csrf" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/api/materialize", json={}).status_code == 403
    assert client.post("/api/materialize", json={}, headers={"x-csrf-token": "guess"}).status_code == 403
    foreign = client.post("/api/materialize", json={}, headers={"x-csrf-token": csrf, "origin": "http://evil.example"})
    assert foreign.status_code == 403
    (example / "shop" / "cleaning.py").write_text(
        (example / "shop" / "cleaning.py").read_text().replace("VAT_RATE = 0.20", "VAT_RATE = 0.22"))
    started = client.post("/api/materialize", json={"select": "+order_lines"},
                          headers={"x-csrf-token": csrf, "origin": LOCAL})
    assert started.status_code == 200 and started.json()["started"] is True, started.text

    def finished() -> dict[str, Any] | None:
        launch = client.get("/api/changes").json()["launch"]
        return launch if not launch["running"] else None

    launch = eventually(finished, timeout=120)
    assert launch and launch["exit_code"] == 0, launch
    states = {a["name"]: a["state"] for a in client.get("/api/status").json()["assets"]}
    assert states["order_lines"] == "fresh"
    assert states["daily_revenue"] == "stale"  # outside the selection: left for a later run


def test_export_writes_the_same_documents(example: Path, tmp_path: Path) -> None:
    view = ProjectView(example)
    target = tmp_path / "site"
    counts = export_site(view, target)
    names = [a["name"] for a in view.get("list")["assets"]]
    view.close()
    assert counts["documents"] == 3 + 3 * len(names)
    status = json.loads((target / "data" / "status.json").read_text())
    expected = json.loads(cli(example, "status", "--json").stdout)
    assert without(status, VOLATILE) == without(expected, VOLATILE)
    show = json.loads((target / "data" / "show" / "order_lines.json").read_text())
    assert show["assets"][0]["current"]["schema"]
    assert 'content="export"' in (target / "index.html").read_text()
    assert (target / "static" / "app.js").is_file() and (target / "static" / "vendor" / "cytoscape.min.js").is_file()
    proc = cli(example, "ui", "--export", str(tmp_path / "site2"))
    assert proc.returncode == 0 and (tmp_path / "site2" / "data" / "list.json").is_file()


def test_the_pages_own_documents_follow_the_documented_schema(example: Path,
                                                              client_for: Callable[..., TestClient]) -> None:
    from test_json_schema import documented, paths

    client = client_for(example, allow_run=True)
    csrf = re.search(r'name="assetflow-csrf" content="([^"]+)"', client.get("/").text).group(1)  # type: ignore[union-attr]
    launched = client.post("/api/materialize", json={}, headers={"x-csrf-token": csrf})
    eventually(lambda: not client.get("/api/changes").json()["launch"]["running"], timeout=120)
    samples = [client.get("/api/changes").json(), launched.json(), client.get("/api/show/nope").json(),
               client.post("/api/materialize", json={}).json()]
    sections = documented()
    for sample in samples:
        keys, types = sections[sample["command"]]
        body = {k: v for k, v in sample.items() if k not in ("schema_version", "command")}
        assert paths(body, types) <= keys, (sample["command"], paths(body, types) - keys)
        required = {k for k in keys if "." not in k} - {"reason"}  # only when a launch is refused
        assert required <= set(body), (sample["command"], required - set(body))


def test_a_slow_status_is_rebuilt_at_most_once_per_build_time_while_a_run_writes(example: Path) -> None:
    """A run writing the state changes the token on every write; for a project whose status takes
    seconds to build, the view sees state changes at most once per build time. Code changes: at once."""
    view = ProjectView(example)
    view.get("status")
    view.status_cost = 3600.0  # as if building status took an hour
    cleaning = example / "shop" / "cleaning.py"
    cleaning.write_text(cleaning.read_text().replace("VAT_RATE = 0.20", "VAT_RATE = 0.24"))
    view.token()
    first = view.token()  # a code change is seen whatever the cost
    assert {a["name"]: a["state"] for a in view.get("status")["assets"]}["order_lines"] == "stale"
    view.token()  # the build's own writes to the state (source versions, graph cache)
    view.status_cost, view._state_quiet_until = 3600.0, 0.0
    cli(example, "materialize")
    second = view.token()  # the run's first write is seen, and opens an hour's quiet window
    assert second != first
    cli(example, "materialize", "--force", "order_lines")
    assert view.token() == second  # within the window further writes wait
    view._state_quiet_until = 0.0  # the window has passed
    assert view.token() != second
    assert {a["name"]: a["state"] for a in view.get("status")["assets"]}["order_lines"] == "fresh"
    view.close()


def test_the_lineage_of_a_partition_version_equals_the_clis(tmp_path: Path, client_for: Callable[..., TestClient]) -> None:
    """GET /api/lineage/NAME?version=V answered {"version": null} for every partitioned asset."""
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["tree"]\n')
    (tmp_path / "tree.py").write_text(
        "import polars as pl\nfrom assetflow import asset\nfrom assetflow.partitions import static\n\n"
        "@asset(partitions=static(['a', 'b']))\ndef up(partition) -> pl.DataFrame:\n"
        "    return pl.DataFrame({'k': [partition.key]})\n")
    cli(tmp_path, "materialize")
    [version] = [m["id"] for m in json.loads(cli(tmp_path, "show", "up", "--json").stdout)["assets"][0]
                 ["materializations"] if m["partition"] == "b"]
    client = client_for(tmp_path)
    response = client.get(f"/api/lineage/up?version={version}")
    assert response.status_code == 200, response.text
    expected = json.loads(cli(tmp_path, "lineage", "up", "--version", str(version), "--json").stdout)
    assert response.json() == expected and response.json()["version"]["name"] == "up[b]"
    assert client.get("/api/lineage/up").json()["version"] is None  # no one current version: one per partition


def test_why_of_one_partition_equals_the_clis(tmp_path: Path, client_for: Callable[..., TestClient]) -> None:
    """GET /api/why/NAME?partition=K ignored partition and explained the whole asset, as `why NAME` does."""
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["tree"]\n')
    module = tmp_path / "tree.py"
    module.write_text(
        "import polars as pl\nfrom assetflow import asset\nfrom assetflow.partitions import static\n\n"
        "@asset(partitions=static(['a', 'b']))\ndef up(partition) -> pl.DataFrame:\n"
        "    return pl.DataFrame({'k': [partition.key]})\n")
    cli(tmp_path, "materialize")
    module.write_text(module.read_text().replace("[partition.key]", "[partition.key * 2]"))
    client = client_for(tmp_path)
    for url, args in {"/api/why/up?partition=b": ["why", "up", "--partition", "b", "--json"],
                      "/api/why/up": ["why", "up", "--json"]}.items():
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert without(response.json(), VOLATILE) == without(json.loads(cli(tmp_path, *args).stdout), VOLATILE), url
    assert client.get("/api/why/up?partition=b").json() != client.get("/api/why/up").json()
    assert client.get("/api/why/up?partition=zz").status_code >= 400
