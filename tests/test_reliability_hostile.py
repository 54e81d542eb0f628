"""Hostile names and paths (issue 6 item 8): refused with a clear error, nothing written outside.

Names become file names and SQL identifiers, so they are validated when declared
(``[a-z_][a-z0-9_]*``, at most 63 characters, no Windows device names): path tricks,
separators, NUL, over-long names and upper case (hence names differing only by case)
are refused. Sources may *read* outside the project (a relative ``../`` path or an
absolute one is the user's data); assetflow never *writes* outside its storage root, and a
symlink inside the root that points out of it is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assetflow import asset, source
from assetflow.errors import DefinitionError, StorageError
from assetflow.storage.files import confined
from reliability_harness import RAW_A, Project

HOSTILE_NAMES = [
    "../x", "../../etc/passwd", "/etc/passwd", "/abs", "a/b", "a\\b", "..\\x", "a\x00b", "\x00", "x" * 300,
    "x" * 64, "Orders", "ORDERS", "a b", "a.b", "a-b", "a;drop table x", "a'b", 'a"b', "é", "ﬁle", ".",
    "..", "_" * 64, "con", "nul", "lpt1", "1abc", "a\nb", "a\tb", "a\u202eb",
]


def plain() -> int:
    return 1


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_hostile_asset_name_is_refused(name: str) -> None:
    with pytest.raises(DefinitionError) as info:
        asset(name=name)(plain)
    message = str(info.value)
    assert repr(name) in message or "characters long" in message
    assert "test_reliability_hostile.py" in message  # where it was declared


@pytest.mark.parametrize("name", ["../x", "a/b", "a\x00b", "x" * 300, "Raw"], ids=repr)
def test_hostile_source_group_io_and_deps_names_are_refused(name: str) -> None:
    with pytest.raises(DefinitionError):
        source("data/raw.csv", name=name)
    with pytest.raises(DefinitionError):
        source("data/raw.csv", name="raw", group=name)
    with pytest.raises(DefinitionError):
        asset(io=name)(plain)
    with pytest.raises(DefinitionError):
        asset(deps=[name])(plain)


def test_names_differing_only_by_case_cannot_both_exist() -> None:
    assert asset(name="orders")(plain).name == "orders"
    with pytest.raises(DefinitionError, match="lower-case"):
        asset(name="Orders")(plain)


def test_hostile_parameter_name_is_refused() -> None:
    def Reads(Orders: int) -> int:  # noqa: N802, N803 - the point of the test
        return Orders

    with pytest.raises(DefinitionError):
        asset(Reads)
    with pytest.raises(DefinitionError):
        asset(name="reads")(Reads)


@pytest.mark.parametrize("path", ["", "data/\x00raw.csv"], ids=repr)
def test_impossible_source_path_is_refused(path: str) -> None:
    with pytest.raises(DefinitionError):
        source(path, name="raw")


def test_confined_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link").symlink_to(tmp_path / "outside")
    assert confined(root, "inside/x.parquet") == (root / "inside" / "x.parquet").resolve()
    for location in ("../outside/x", "/etc/passwd", "link/x.parquet", "inside/../../outside/x"):
        with pytest.raises(StorageError, match="outside the storage root"):
            confined(root, location)


SOURCES_OUTSIDE = '''
    import polars as pl
    from assetflow import asset, source

    shared = source("../shared/raw.csv")
    absolute = source("{absolute}")


    @asset
    def combined(shared: pl.DataFrame, absolute: pl.DataFrame) -> pl.DataFrame:
        return pl.concat([shared, absolute])
'''


def test_sources_may_read_outside_the_project(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "raw.csv"
    shared.parent.mkdir()
    shared.write_text(RAW_A)
    absolute = tmp_path / "elsewhere.csv"
    absolute.write_text(RAW_A)
    project = Project.create(tmp_path / "p", RAW_A, pipeline=SOURCES_OUTSIDE.replace("{absolute}", str(absolute)))
    payload = project.materialize()
    assert [a["outcome"] for a in payload["assets"]] == ["ran"]
    shared.write_text(RAW_A + "9,9\n")
    assert [a["outcome"] for a in project.materialize()["assets"]] == ["ran"]  # its changes are seen
    assert not list(tmp_path.glob("shared/.assetflow*")) and not (tmp_path / ".assetflow").exists()


HOSTILE_PROJECT = '''
    import polars as pl
    from assetflow import asset

    @asset(name="../escape")
    def escape() -> pl.DataFrame:
        return pl.DataFrame({"x": [1]})
'''


def test_hostile_name_in_a_project_is_a_clear_cli_error(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", RAW_A, pipeline=HOSTILE_PROJECT)
    proc = project.run("materialize")
    assert proc.returncode == 2
    assert "'../escape'" in proc.stderr and "is not allowed" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "escape").exists()


def test_symlink_escaping_the_storage_root_is_refused(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", RAW_A)
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = project.state / "data" / "parquet"
    folder.mkdir(parents=True)
    (folder / "clean").symlink_to(outside)  # the folder `clean` would be stored in leads out of the root
    proc = project.run("materialize", "--json")
    assert proc.returncode == 1
    results = {a["name"]: a for a in json.loads(proc.stdout)["assets"]}
    assert results["clean"]["outcome"] == "failed"
    assert "outside the storage root" in results["clean"]["error"]
    assert results["doubled"]["outcome"] == "skipped" and results["wide"]["outcome"] == "ran"
    assert list(outside.iterdir()) == []  # nothing written outside
    status = project.status()
    assert status["clean"]["state"] in ("missing", "failed")
    (folder / "clean").unlink()
    assert {a["name"] for a in project.materialize()["assets"] if a["outcome"] == "ran"} == {"clean", "doubled",
                                                                                             "total"}


def test_no_write_follows_a_symlinked_stored_file_out_of_the_root(tmp_path: Path) -> None:
    """Reading through such a link is harmless (the content is hashed); writing through it is refused."""
    project = Project.create(tmp_path / "p", RAW_A)
    project.materialize()
    folder = project.state / "data" / "parquet" / "count"
    (stored,) = folder.glob("*.parquet")
    outside = tmp_path / "outside.parquet"
    stored.rename(outside)
    stored.symlink_to(outside)
    before = outside.stat()
    proc = project.run("materialize", "--json", "--force", "count")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "outside the storage root" in proc.stdout + proc.stderr  # as a failed asset, or found while checking
    after = outside.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    gc = project.run("gc", "--keep", "0")
    assert "Traceback" not in gc.stderr and outside.exists()
