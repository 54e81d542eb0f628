"""Issue 11, item 18: the code fingerprint is what the code computes, not where it lives.

Moving an asset or a helper byte for byte to another module, or renaming a module, made the
asset stale ("the asset's own code in m0.py (no longer used); ... in m1.py (new)") and rerun
it. Now nothing is stale after such a move, while a real edit after it still is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ProjectDir

ASSET = '''
@asset
def totals(numbers: pl.DataFrame) -> pl.DataFrame:
    return numbers.select(scaled(pl.col("n")).sum().alias("total"))
'''

NUMBERS = '''
@asset
def numbers() -> pl.DataFrame:
    return pl.DataFrame({"n": [1, 2, 3]})
'''

HELPER = '''
FACTOR = 3


def scaled(column):
    return column * FACTOR
'''

HEADER = "import polars as pl\nfrom assetflow import asset\n"


@pytest.fixture
def moved(tmp_path: Path) -> ProjectDir:
    project = ProjectDir(tmp_path, ["m0", "m1"])
    project.write("m0.py", HEADER + HELPER + NUMBERS + ASSET)
    project.write("m1.py", HEADER)
    assert project.ran() == {"numbers", "totals"}
    return project


def test_moving_an_asset_and_its_helper_to_another_module_changes_nothing(moved: ProjectDir) -> None:
    moved.write("m0.py", HEADER + NUMBERS)
    moved.write("m1.py", HEADER + HELPER + ASSET)
    assert moved.ran() == set()
    assert {n: a["state"] for n, a in moved.status().items()} == {"numbers": "fresh", "totals": "fresh"}
    proc = moved.run("why", "totals")
    assert "code changed" not in proc.stdout and "no longer used" not in proc.stdout, proc.stdout


def test_a_helper_reached_through_a_renamed_module_changes_nothing(tmp_path: Path) -> None:
    project = ProjectDir(tmp_path, ["pipeline"])
    asset = ASSET.replace("scaled(", "tools.scaled(")
    project.write("helpers.py", HELPER)
    project.write("pipeline.py", HEADER + "import helpers as tools\n" + NUMBERS + asset)
    assert project.ran() == {"numbers", "totals"}
    (project.root / "helpers.py").rename(project.root / "utilities.py")  # renamed, imported under the same alias
    project.write("pipeline.py", HEADER + "import utilities as tools\n" + NUMBERS + asset)
    assert project.ran() == set()


def test_a_helper_imported_by_name_can_move_to_another_module(tmp_path: Path) -> None:
    project = ProjectDir(tmp_path, ["pipeline"])
    project.write("helpers.py", HELPER)
    project.write("pipeline.py", HEADER + "from helpers import scaled\n" + NUMBERS + ASSET)
    assert project.ran() == {"numbers", "totals"}
    (project.root / "helpers.py").unlink()
    project.write("tools/__init__.py", "")
    project.write("tools/columns.py", HELPER)
    project.write("pipeline.py", HEADER + "from tools.columns import scaled\n" + NUMBERS + ASSET)
    assert project.ran() == set()


def test_an_edit_after_a_move_still_reruns_and_the_old_code_is_restored(moved: ProjectDir) -> None:
    moved.write("m0.py", HEADER + NUMBERS)
    moved.write("m1.py", HEADER + HELPER.replace("FACTOR = 3", "FACTOR = 4") + ASSET)
    assert moved.ran() == {"totals"}
    moved.write("m1.py", HEADER + HELPER + ASSET)  # back to the first code, in its new place
    assert moved.materialize()["totals"] == "restored"
