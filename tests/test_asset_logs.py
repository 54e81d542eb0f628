"""Each asset's prints and log records are captured per run and asset (issue 11, item 1).

They never reach the CLI's stdout (``materialize --json`` stays one JSON document), they are
kept in ``<state>/logs/<run>/<asset>.log``, shown by ``assetflow logs``, ``history --logs``
and the page, and collected by ``gc`` with their runs.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from assetflow.cli import main
from assetflow.execute.capture import LogSink, captured
from conftest import ProjectDir

CHATTY = """
    import logging
    import sys
    import polars as pl
    from assetflow import asset

    print("importing the project")

    @asset
    def chatty() -> pl.DataFrame:
        print("hello from chatty")
        print("a warning on stderr", file=sys.stderr)
        logging.getLogger("shop.chatty").info("an info record")
        return pl.DataFrame({"n": [1, 2]})

    @asset
    def quiet(chatty: pl.DataFrame) -> pl.DataFrame:
        return chatty

    @asset
    def noisy_failure() -> pl.DataFrame:
        print("about to fail")
        raise ValueError("boom")
"""


@pytest.fixture
def chatty(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> ProjectDir:
    project.write("pipeline.py", CHATTY)
    monkeypatch.chdir(project.root)
    return project


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_prints_never_corrupt_materialize_json(chatty: ProjectDir) -> None:
    outcome = cli("materialize", "--json", "--executor", "inprocess")
    assert outcome.exit_code == 1  # noisy_failure failed
    payload = json.loads(outcome.stdout)  # one document, nothing before or after it
    assert {a["name"]: a["outcome"] for a in payload["assets"]} == {
        "chatty": "ran", "quiet": "ran", "noisy_failure": "failed"}
    assert "hello from chatty" not in outcome.stdout and "importing the project" not in outcome.stdout
    assert "importing the project" in outcome.stderr  # import-time output: for people, on stderr
    logs = sorted(p.relative_to(chatty.root / ".assetflow" / "logs") for p in
                  (chatty.root / ".assetflow" / "logs").rglob("*.log"))
    run_id = payload["run_id"]
    assert logs == [Path(run_id, "chatty.log"), Path(run_id, "noisy_failure.log")]  # quiet printed nothing
    text = (chatty.root / ".assetflow" / "logs" / run_id / "chatty.log").read_text()
    assert "hello from chatty\n" in text and "a warning on stderr\n" in text
    assert "INFO shop.chatty: an info record" in text


def test_logs_command_and_history_show_the_output(chatty: ProjectDir) -> None:
    first = json.loads(cli("materialize", "--json", "--executor", "inprocess").stdout)["run_id"]
    shown = cli("logs", "chatty")
    assert shown.exit_code == 0 and shown.stdout.startswith("hello from chatty\n")
    assert first in shown.stderr
    doc = json.loads(cli("logs", "noisy_failure", "--run", first, "--json").stdout)
    assert doc["command"] == "logs" and doc["run_id"] == first and doc["log"] == "about to fail\n"
    assert doc["runs"] == [first]
    nothing = json.loads(cli("logs", "quiet", "--json").stdout)
    assert nothing["log"] is None and nothing["runs"] == []
    assert "printed and logged nothing" in cli("logs", "quiet").stderr
    history = json.loads(cli("history", "chatty", "--logs", "--json").stdout)
    event = history["runs"][0]["assets"][0]
    assert event["asset"] == "chatty" and "hello from chatty" in event["log"]
    assert "log" not in json.loads(cli("history", "--json").stdout)["runs"][0]["assets"][0]
    text = cli("history", "--logs").stdout
    assert "output:" in text and "about to fail" in text
    assert cli("logs", "../../etc/passwd").exit_code == 2


def test_retried_attempts_keep_each_attempts_output(project: ProjectDir, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    project.write("pipeline.py", f"""
        import pathlib
        import polars as pl
        from assetflow import asset

        @asset(retries=1, retry_delay=0.01)
        def flaky() -> pl.DataFrame:
            marker = pathlib.Path({str(marker)!r})
            print("trying", "again" if marker.exists() else "first")
            if not marker.exists():
                marker.touch()
                raise RuntimeError("first attempt fails")
            return pl.DataFrame({{"n": [1]}})
    """)
    monkeypatch.chdir(project.root)
    assert cli("materialize", "--executor", "inprocess").exit_code == 0
    log = cli("logs", "flaky").stdout
    assert "--- attempt 1 of 2 ---\ntrying first\n" in log and "--- attempt 2 of 2 ---\ntrying again\n" in log


def test_one_partitions_output_is_shown_alone(project: ProjectDir, monkeypatch: pytest.MonkeyPatch) -> None:
    project.write("pipeline.py", """
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import static

        @asset(partitions=static(["fr", "de", "it"]))
        def regions(partition) -> pl.DataFrame:
            print(f"computing {partition.key}")
            return pl.DataFrame({"region": [partition.key]})
    """)
    monkeypatch.chdir(project.root)
    assert cli("materialize").exit_code == 0
    whole = cli("logs", "regions").output
    assert all(f"--- partition {key} ---\ncomputing {key}\n" in whole for key in ("fr", "de", "it"))
    one = json.loads(cli("logs", "regions", "--partition", "de", "--json").output)
    assert one["log"] == "computing de\n" and one["partition"] == "de" and one["run_id"]
    none = cli("logs", "regions", "--partition", "es")
    assert "No output of `regions` partition es" in none.output


def test_gc_collects_logs_with_their_runs(chatty: ProjectDir) -> None:
    runs = [json.loads(cli("materialize", "--json", "--force", "chatty", "--executor", "inprocess").stdout)["run_id"]
            for _ in range(3)]
    logs = chatty.root / ".assetflow" / "logs"
    assert {p.name for p in logs.iterdir()} == set(runs)
    outcome = cli("gc", "--keep", "1")
    assert outcome.exit_code == 0 and "1 asset logs" in outcome.stdout
    assert {p.name for p in logs.iterdir()} == set(runs[1:])  # the current run and one more
    assert json.loads(cli("logs", "chatty", "--run", runs[0], "--json").stdout)["log"] is None


def test_the_page_shows_an_assets_output(chatty: ProjectDir) -> None:
    from assetflow.ui.app import create_app
    from assetflow.ui.project_view import ProjectView

    run_id = json.loads(cli("materialize", "--json", "--executor", "inprocess").stdout)["run_id"]
    with TestClient(create_app(ProjectView(chatty.root)), base_url="http://127.0.0.1:8765") as client:
        doc = client.get("/api/logs/chatty").json()
        assert doc == json.loads(cli("logs", "chatty", "--json").stdout)
        assert doc["run_id"] == run_id and "hello from chatty" in doc["log"]
        assert client.get(f"/api/logs/chatty?run={run_id}").json()["log"] == doc["log"]
        assert client.get("/api/logs/chatty?run=../x").status_code == 400
        assert client.get("/api/logs/No-Such").status_code == 404


def test_capture_is_per_thread() -> None:
    """Another thread's writes (the progress display, a second asset) are not captured into this asset's log."""
    other_done = threading.Event()
    seen: list[str] = []

    def other() -> None:
        with captured() as sink:
            print("the other asset")
            other_done.wait(5)
        seen.append(sink.text())

    thread = threading.Thread(target=other)
    with captured() as mine:
        thread.start()
        print("this asset")
        other_done.set()
        thread.join()
    assert mine.text() == "this asset\n" and seen == ["the other asset\n"]
    assert sys.stdout.__class__.__name__ != "_Router"  # streams are put back


def test_a_huge_output_keeps_its_beginning_and_end() -> None:
    sink = LogSink(limit=100)
    for i in range(1000):
        sink.write(f"line {i}\n")
    text = sink.text()
    assert text.startswith("line 0\n") and text.endswith("line 999\n") and "characters of output left out" in text
    assert len(text) < 200


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "inprocess", "threads", "dask"])
def test_prints_in_worker_processes_and_child_processes_stay_off_stdout(project: ProjectDir, executor: str) -> None:
    if executor == "dask":
        pytest.importorskip("distributed")
        pytest.importorskip("assetflow_dask")
    project.write("pipeline.py", CHATTY.replace(
        'print("hello from chatty")',
        'print("hello from chatty"); import subprocess; subprocess.run(["echo", "from a child process"])'))
    proc = project.run("materialize", "--json", "--executor", executor)
    payload = json.loads(proc.stdout)
    assert payload["counts"]["ran"] == 2
    assert "from a child process" in proc.stderr  # descriptor 1 pointed at stderr: not captured, not on stdout
    assert "hello from chatty" in project.run("logs", "chatty").stdout
