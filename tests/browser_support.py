"""The example project, a real headless Chromium (Debian's) driven by Playwright, and a real ``assetflow ui`` server.

Shared by the page's end-to-end tests and ``bench/bench_ui.py``. Playwright's own browser
download is never used: it launches the system Chromium (``$ASSETFLOW_CHROMIUM``, default
``/usr/bin/chromium``; ``.ci/run`` installs Debian's package). Without it the tests skip,
except under CI, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
CHROMIUM = os.environ.get("ASSETFLOW_CHROMIUM", "/usr/bin/chromium")
# Headless as root, and quiet: no sandbox (root), no GPU, and none of the background connections
# that a closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def materialized_example(root: Path) -> Path:
    """A copy of the example project at ``root``, materialized by the real CLI."""
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".assetflow", "__pycache__"))
    subprocess.run([sys.executable, "-m", "assetflow", "materialize", "--project", str(root)], check=True,
                   capture_output=True, timeout=300)
    return root


def have_chromium() -> bool:
    return os.access(CHROMIUM, os.X_OK)


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched browser; the caller opens pages on it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def ui_server(project: Path, *options: str, timeout: float = 120.0) -> Iterator[str]:
    """``assetflow ui --port 0`` on a project, in a subprocess; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-m", "assetflow", "ui", "--project", str(project), "--port", "0",
                             *options], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + timeout
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while "assetflow ui:" not in line:
            if not line and proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"assetflow ui did not start (exit {proc.poll()}): {line}{proc.stderr.read()}")
            line = proc.stderr.readline()
        match = re.search(r"(http://\S+/)", line)
        assert match, line
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def eventually(check: Any, timeout: float = 30.0, every: float = 0.2) -> Any:
    """Call ``check`` until it returns something truthy or ``timeout`` passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(every)
