"""Soak (issue 6 item 10): alternating no-op and one-change runs in one process, via the Python API.

Open file descriptors must end no higher than after warm-up, and resident memory must stay
flat: live memory (RSS after ``malloc_trim``) grows under 10 MB after warm-up. 2,000 runs in
the full battery, 100 by default; ``bench/soak.py`` runs longer soaks and records the figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from reliability_harness import FULL

RUNS = 2000 if FULL else 100
SOAK_SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "soak.py"


def load_soak():  # noqa: ANN201 - the bench script, imported as a module
    spec = importlib.util.spec_from_file_location("assetflow_bench_soak", SOAK_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_memory_and_descriptors_stay_flat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSETFLOW_EXECUTOR", "inprocess")
    report = load_soak().soak(tmp_path / "project", RUNS, every=max(10, RUNS // 20), executor="inprocess")
    figures = {k: v for k, v in report.items() if k != "samples"}
    log = os.environ.get("ASSETFLOW_BATTERY_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps({"test": "soak", **figures}) + "\n")
    assert report["fds_end"] <= report["fds_after_warmup"], report["samples"]
    assert report["rss_growth_mb"] < 10, figures  # live memory (after malloc_trim), see bench/soak.py
