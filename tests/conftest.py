"""Shared fixtures: a throwaway project on disk, driven through the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ASSETFLOW = [sys.executable, "-m", "assetflow"]


class ProjectDir:
    """A project folder with helpers to write modules and data and to run assetflow on it."""

    def __init__(self, root: Path, modules: list[str]) -> None:
        self.root = root
        self.write("pyproject.toml", f"[tool.assetflow]\nmodules = {json.dumps(modules)}\n")

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*ASSETFLOW, *args], cwd=self.root, capture_output=True, text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}, timeout=300,
        )
        if check and proc.returncode not in (0, 1):
            raise AssertionError(f"assetflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def materialize(self, *args: str) -> dict[str, Any]:
        """Run ``materialize --json`` and return {asset: outcome} plus the raw payload under '_'."""
        proc = self.run("materialize", "--json", *args)
        payload = json.loads(proc.stdout)
        outcomes = {a["name"]: a["outcome"] for a in payload["assets"]}
        return {"_": payload, **outcomes}

    def ran(self, *args: str) -> set[str]:
        """The assets a materialize run actually computed."""
        result = self.materialize(*args)
        return {name for name, outcome in result.items() if outcome == "ran"}

    def status(self) -> dict[str, dict[str, Any]]:
        payload = json.loads(self.run("status", "--json").stdout)
        return {a["name"]: a for a in payload["assets"]}


@pytest.fixture
def project(tmp_path: Path) -> ProjectDir:
    return ProjectDir(tmp_path, ["pipeline"])
