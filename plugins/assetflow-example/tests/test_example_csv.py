"""The example plugin's own tests: the backend class alone, then registered with assetflow.

Run with ``pytest plugins/assetflow-example``. The end-to-end test through the entry point
and the command line lives in assetflow's suite (tests/test_plugins.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

import assetflow_example
from assetflow import StorageError
from assetflow.fingerprint.data import table_hash
from assetflow.plugins import plugin_manager
from assetflow.storage.base import Backends
from assetflow.storage.parquet import ParquetBackend
from assetflow_example import CsvBackend

CITIES = pl.DataFrame({"city": ["Lyon", None, ""], "population": [522_000, 709_000, None], "big": [True, True, None]})


@pytest.fixture
def backend(tmp_path: Path) -> CsvBackend:
    return CsvBackend(tmp_path, {})


def test_round_trip_with_the_hash_parquet_would_give(tmp_path: Path, backend: CsvBackend) -> None:
    stored = backend.store("cities", CITIES)
    assert stored.data_hash == ParquetBackend(tmp_path, {}).store("cities", CITIES).data_hash
    assert (tmp_path / "csv" / stored.location).is_file()
    assert table_hash(backend.load("cities", stored.location, "arrow")) == stored.data_hash  # type: ignore[arg-type]
    assert backend.load("cities", stored.location, "polars").equals(CITIES)  # type: ignore[attr-defined]


def test_a_table_csv_cannot_hold_is_refused_naming_the_column(backend: CsvBackend) -> None:
    with pytest.raises(StorageError, match=r"column\(s\) 'code' \(large_string\) read back differently"):
        backend.store("codes", pl.DataFrame({"code": ["007", "042"], "n": [1, 2]}))


def test_check_ok_modified_missing(tmp_path: Path, backend: CsvBackend) -> None:
    stored = backend.store("cities", CITIES)
    assert backend.check("cities", stored.location, stored.data_hash, stored.token).status == "ok"
    path = tmp_path / "csv" / stored.location
    path.write_text(path.read_text().replace("Lyon", "Nice"))
    assert backend.check("cities", stored.location, stored.data_hash, stored.token).status == "modified"
    backend.delete("cities", stored.location)
    backend.delete("cities", stored.location)
    assert backend.check("cities", stored.location, stored.data_hash, stored.token).status == "missing"


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path, backend: CsvBackend) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    backend.root.mkdir(parents=True)
    (backend.root / "cities").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match="outside the storage root"):
        backend.store("cities", CITIES)


def test_a_non_table_value_gets_the_opt_in_hint(backend: CsvBackend) -> None:
    with pytest.raises(StorageError, match='@asset\\(io="json"\\)'):
        backend.store("cities", {"Lyon": 522_000})


@pytest.fixture
def registered() -> Iterator[None]:
    """The plugin in assetflow's plugin manager, as the entry point would register it."""
    manager = plugin_manager()
    if manager.is_registered(assetflow_example):
        yield
        return
    manager.register(assetflow_example, name="example")
    try:
        yield
    finally:
        manager.unregister(assetflow_example)


def test_assetflow_finds_the_backend_by_name(registered: None, tmp_path: Path) -> None:
    backend = Backends(tmp_path, {"csv": {"folder": "tables"}}).get("csv")
    assert isinstance(backend, CsvBackend) and backend.root == tmp_path / "tables"
