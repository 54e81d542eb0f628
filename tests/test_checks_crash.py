"""Between "stored" and "published": a SIGKILL there never leaves an unchecked version current.

Real subprocesses killed at the gate's failpoints (``before_publish``: the new version is
recorded, not yet judged; ``after_checks``: judged, not yet activated nor pointed at) and in
the middle of a slow ``@check``; for Parquet and for DuckDB, whose view must not move either.
The next run then completes: it publishes good data and refuses bad data, from the verdicts
it already has where it can.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assetflow import api
from assetflow.workspace import Workspace

pytestmark = pytest.mark.slow

PIPELINE = '''
    import os
    import time
    import polars as pl
    from pathlib import Path
    from assetflow import asset, check, not_null, source

    raw = source("raw.csv")

    @asset(io="{io}", checks=[not_null("id")])
    def orders(raw: pl.DataFrame) -> pl.DataFrame:
        return raw

    @check(asset="orders")
    def slow_when_asked(orders: pl.DataFrame) -> bool:
        here = Path(__file__).parent
        if (here / "slow").exists():
            (here / "checking").write_text(str(os.getpid()))
            time.sleep(60)
        return True

    @asset
    def report(orders: pl.DataFrame) -> pl.DataFrame:
        return orders.select(pl.len())
'''

GOOD = "id,amount\n1,10\n2,20\n"
GOOD_TOO = "id,amount\n1,10\n2,20\n3,30\n"
BAD = "id,amount\n1,10\n,20\n"


def _project(root: Path, io: str) -> Path:
    (root / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (root / "pipe.py").write_text(textwrap.dedent(PIPELINE).replace("{io}", io))
    (root / "raw.csv").write_text(GOOD)
    return root


def _env(failpoint: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("ASSETFLOW_FAILPOINT", None)
    if failpoint:
        env["ASSETFLOW_FAILPOINT"] = failpoint
    return env


def _materialize(root: Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assetflow", "materialize", "--project", str(root)],
                          capture_output=True, text=True, env=_env(failpoint), timeout=300)


def _published(root: Path, io: str) -> list[int | None]:
    """The ids of the current version (the pointer), and for DuckDB those its view shows too."""
    ws = Workspace.load(root)
    try:
        ids = api.load("orders", project=ws)["id"].to_list()
        if io == "duckdb":
            import duckdb

            with duckdb.connect(str(ws.backends.get("duckdb").path), read_only=True) as con:  # type: ignore[attr-defined]
                view = [r[0] for r in con.sql('SELECT id FROM main."orders" ORDER BY ALL').fetchall()]
            assert view == sorted(ids, key=lambda v: (v is None, v)), "the view shows another version than the pointer"
        return ids  # type: ignore[no-any-return]
    finally:
        ws.close()


@pytest.mark.parametrize("io", ["parquet", "duckdb"])
@pytest.mark.parametrize("failpoint", ["before_publish", "after_checks"])
def test_killed_between_stored_and_published(tmp_path: Path, io: str, failpoint: str) -> None:
    root = _project(tmp_path, io)
    assert _materialize(root).returncode == 0
    # Bad data, killed in the window: the good version stays current, then the next run refuses the bad one.
    (root / "raw.csv").write_text(BAD)
    assert _materialize(root, f"{failpoint}:1").returncode == -signal.SIGKILL
    assert _published(root, io) == [1, 2]
    refused = _materialize(root)
    assert refused.returncode == 1 and "check not_null(id): 1 null row, e.g. row 1" in refused.stdout + refused.stderr
    assert _published(root, io) == [1, 2]
    # Good data, killed in the window: still the old version; the next run publishes the new one.
    (root / "raw.csv").write_text(GOOD_TOO)
    assert _materialize(root, f"{failpoint}:1").returncode == -signal.SIGKILL
    assert _published(root, io) == [1, 2]
    done = _materialize(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _published(root, io) == [1, 2, 3]
    assert api.load("report", project=root)["len"].to_list() == [3]


@pytest.mark.parametrize("io", ["parquet", "duckdb"])
def test_killed_while_a_check_runs(tmp_path: Path, io: str) -> None:
    root = _project(tmp_path, io)
    assert _materialize(root).returncode == 0
    (root / "raw.csv").write_text(GOOD_TOO)
    (root / "slow").write_text("")
    proc = subprocess.Popen([sys.executable, "-m", "assetflow", "materialize", "--project", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(None))
    try:
        deadline = time.monotonic() + 120
        while not (root / "checking").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the check never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert _published(root, io) == [1, 2]  # the version being checked was never made current
    (root / "slow").unlink()
    done = _materialize(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _published(root, io) == [1, 2, 3]
