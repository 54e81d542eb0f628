"""A stored file or folder that is a symbolic link (a deduplication tool makes them) is never written through."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from assetflow import api
from assetflow.cli import main
from assetflow.errors import StorageError
from assetflow.storage.parquet import ParquetBackend
from conftest import ProjectDir

A = pl.DataFrame({"a": [1, 2]})
B = pl.DataFrame({"b": [3]})


def test_a_stored_file_linked_to_another_assets_version_is_replaced_not_written_through(tmp_path: Path) -> None:
    backend = ParquetBackend(tmp_path, {})
    a, b = backend.store("a", A), backend.store("b", B)
    a_file, b_file = backend.root / a.location, backend.root / b.location
    before = b_file.read_bytes()
    a_file.unlink()
    a_file.symlink_to(b_file)  # a dedup tool, or a hand, linked a's version to b's file
    assert backend.check("a", a.location, a.data_hash, a.token).status == "modified"
    assert backend.store("a", A).location == a.location  # a is rebuilt...
    assert b_file.read_bytes() == before  # ...without overwriting b's intact version
    assert not a_file.is_symlink() and backend.load("a", a.location, "polars").equals(A)
    assert backend.check("b", b.location, b.data_hash, b.token).status == "ok"
    a_file.unlink()
    a_file.symlink_to(b_file)
    backend.delete("a", a.location)  # gc: only the link goes
    assert not a_file.exists() and b_file.read_bytes() == before


def test_a_linked_asset_folder_is_refused_for_writes_and_deletes(tmp_path: Path) -> None:
    backend = ParquetBackend(tmp_path, {})
    b = backend.store("b", B)
    (backend.root / "a").symlink_to(backend.root / "b", target_is_directory=True)
    with pytest.raises(StorageError, match=r"is a symbolic link .*never writes or deletes through a link"):
        backend.store("a", B)  # same content, same file name: it would be b's very file
    with pytest.raises(StorageError, match="symbolic link"):
        backend.delete("a", b.location.replace("b/", "a/"))
    assert backend.load("b", b.location, "polars").equals(B)


PIPELINE = '''
    import polars as pl
    from assetflow import asset

    @asset
    def a() -> pl.DataFrame:
        return pl.DataFrame({"a": [1, 2]})

    @asset
    def b() -> pl.DataFrame:
        return pl.DataFrame({"b": [3]})
'''


def test_materialize_and_doctor_with_a_link_in_the_store(project: ProjectDir) -> None:
    """materialize used to overwrite b through a's link, exit 0, and leave the two stale by turns."""
    project.write("pipeline.py", PIPELINE)
    assert api.materialize(project=project.root, executor="inprocess").ok
    store = project.root / ".assetflow" / "data" / "parquet"
    (a_file,), (b_file,) = (store / "a").glob("*.parquet"), (store / "b").glob("*.parquet")
    before = b_file.read_bytes()
    a_file.unlink()
    a_file.symlink_to(os.path.relpath(b_file, a_file.parent))
    args = ["--project", str(project.root), "--json"]
    found = CliRunner().invoke(main, ["doctor", "--no-verify-data", *args])
    assert found.exit_code == 1
    links = [f for f in json.loads(found.output)["findings"] if f["kind"] == "symlink"]
    assert [(f["asset"], f["path"], f["repaired"]) for f in links] == [("a", str(a_file), False)]
    result = api.materialize(project=project.root, executor="inprocess")
    assert {n: r.outcome for n, r in result.results.items()} == {"a": "ran", "b": "fresh"}
    assert b_file.read_bytes() == before and not a_file.is_symlink()
    outcomes = api.materialize(project=project.root, executor="inprocess").results
    assert {r.outcome for r in outcomes.values()} == {"fresh"}  # no turns of staleness

    (b_copy := store / "b" / "copy.parquet").write_bytes(before)
    a_file.unlink()
    a_file.symlink_to(b_copy)
    (store / "c").symlink_to(store / "b", target_is_directory=True)
    repaired = CliRunner().invoke(main, ["doctor", "--repair", "--no-verify-data", *args])
    assert repaired.exit_code == 0, repaired.output
    assert {f["path"] for f in json.loads(repaired.output)["findings"] if f["repaired"]} == {
        str(a_file), str(store / "c")}
    assert not a_file.is_symlink() and a_file.read_bytes() == before
    assert (store / "c").is_dir() and not (store / "c").is_symlink()
    assert CliRunner().invoke(main, ["doctor", "--no-verify-data", *args]).exit_code == 0


def test_resolved_folders_cached_for_reads_give_the_same_paths_and_refusals(tmp_path: Path) -> None:
    """A backend checking thousands of partitions resolves each folder once: the path returned, and every
    link that leads out of the root, must be what resolving the whole path gives."""
    from assetflow.storage.files import confined

    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "v1.parquet").write_bytes(b"x")
    (outside / "v2.parquet").write_bytes(b"y")
    (root / "a" / "v2.parquet").symlink_to(outside / "v2.parquet")  # a file link out of the root
    (root / "b").symlink_to(outside, target_is_directory=True)  # a folder link out of the root
    (root / "c").symlink_to(root / "a", target_is_directory=True)  # a folder link inside it
    folders: dict[Path, Path] = {}
    for location in ("a/v1.parquet", "a/missing.parquet", "c/v1.parquet", "a/../a/v1.parquet"):
        assert confined(root, location, folders=folders) == confined(root, location), location
    for location in ("a/v2.parquet", "b/v2.parquet"):
        for cache in (folders, None):
            with pytest.raises(StorageError, match="outside the storage root"):
                confined(root, location, folders=cache)


def test_a_check_in_a_folder_already_checked_still_sees_links_edits_and_removals(tmp_path: Path) -> None:
    """Checks after the first in a folder take one lstat (issue 17); they must see what the first one would."""
    backend = ParquetBackend(tmp_path / "data", {})
    kept = backend.store("a", pl.DataFrame({"x": [1, 2]}))
    other = backend.store("a", pl.DataFrame({"x": [3]}))
    assert backend.check("a", kept.location, kept.data_hash, kept.token).status == "ok"  # the folder is now known
    assert backend.check("a", other.location, other.data_hash, other.token).status == "ok"

    path = backend.root / other.location
    path.unlink()
    assert backend.check("a", other.location, other.data_hash, other.token).status == "missing"

    outside = tmp_path / "outside.parquet"
    (backend.root / kept.location).rename(outside)
    (backend.root / kept.location).symlink_to(outside)  # a link out of the root, where a version was
    with pytest.raises(StorageError, match="outside the storage root"):
        backend.check("a", kept.location, kept.data_hash, kept.token)

    (backend.root / kept.location).unlink()
    pl.DataFrame({"x": [9, 9]}).write_parquet(backend.root / kept.location)  # edited outside assetflow
    found = backend.check("a", kept.location, kept.data_hash, kept.token)
    assert found.status == "modified" and found.token != kept.token


def test_a_checked_folder_that_is_a_link_is_resolved_and_confined(tmp_path: Path) -> None:
    """Only real folders take the one-lstat way; a linked folder is resolved (and refused out of the root)."""
    first = ParquetBackend(tmp_path / "data", {})
    stored = first.store("a", A)
    folder = first.root / "a"
    moved = first.root / "elsewhere"
    folder.rename(moved)
    folder.symlink_to(moved)  # a link inside the root: read through it
    assert ParquetBackend(tmp_path / "data", {}).check("a", stored.location, stored.data_hash, stored.token).status == "ok"

    outside = tmp_path / "outside"
    folder.unlink()
    moved.rename(outside)
    folder.symlink_to(outside)  # a link out of the root
    with pytest.raises(StorageError, match="outside the storage root"):
        ParquetBackend(tmp_path / "data", {}).check("a", stored.location, stored.data_hash, stored.token)


def test_the_snapshots_local_file_is_the_confined_path(tmp_path: Path) -> None:
    """``local_file`` (what the no-op snapshot stats) gives what ``confined`` gives, links included."""
    backend = ParquetBackend(tmp_path / "data", {})
    a, b = backend.store("a", A), backend.store("b", B)
    root = backend.root.resolve()
    assert backend.local_file(a.location) == str(root / a.location)  # text, as the snapshot keeps it
    (root / a.location).unlink()
    (root / a.location).symlink_to(root / b.location)  # a link inside the root: the link, not its target
    assert ParquetBackend(tmp_path / "data", {}).local_file(a.location) == str(root / a.location)
    (root / a.location).unlink()
    (root / a.location).symlink_to(tmp_path)  # out of the root: refused
    with pytest.raises(StorageError, match="outside the storage root"):
        ParquetBackend(tmp_path / "data", {}).local_file(a.location)
