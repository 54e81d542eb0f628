"""Opt-in formats for non-table values (io="json", io="pickle"), and the storage safety rules
every file backend shares: names refused at declaration, paths confined to the root."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from assetflow import asset, source
from assetflow.errors import DefinitionError, StorageError
from assetflow.storage.formats import JsonBackend, PickleBackend
from assetflow.storage.table import require_table
from assetflow.storage.parquet import ParquetBackend
from conftest import ProjectDir


@dataclasses.dataclass
class Model:
    weights: list[float]
    name: str = "m"


@pytest.fixture
def json_backend(tmp_path: Path) -> JsonBackend:
    return JsonBackend(tmp_path, {})


@pytest.fixture
def pickle_backend(tmp_path: Path) -> PickleBackend:
    return PickleBackend(tmp_path, {})


# -- json -------------------------------------------------------------------------------------


def test_json_round_trip_and_canonical_hash(tmp_path: Path, json_backend: JsonBackend) -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "ç", "y": -0.0}, "t": (1, 2)}
    stored = json_backend.store("settings", value)
    assert stored.location.startswith("settings/") and stored.location.endswith(".json")
    assert (tmp_path / "json" / stored.location).is_file()
    assert json_backend.load("settings", stored.location, "polars") == {**value, "t": [1, 2]}
    reordered = {"t": [1, 2], "a": {"y": -0.0, "z": "ç"}, "b": [1, 2.5, None, True]}
    assert json_backend.store("settings", reordered).data_hash == stored.data_hash
    assert json_backend.store("settings", {**value, "b": [1, 2.5, None, 1]}).data_hash != stored.data_hash
    assert json_backend.store("settings", {**value, "b": [1.0, 2.5, None, True]}).data_hash != stored.data_hash


@pytest.mark.parametrize(("value", "problem"), [
    pytest.param({1: "a"}, "value has the key 1 of type int (JSON keys are strings)", id="int-key"),
    pytest.param({"a": [1, {2, 3}]}, "value['a'][1] is of type builtins.set", id="set"),
    pytest.param({"a": float("nan")}, "value['a'] is nan, which JSON cannot represent", id="nan"),
    pytest.param([Model([1.0])], "value[0] is of type test_storage_formats.Model", id="object"),
    pytest.param(pl.DataFrame({"a": [1]}), "value is of type polars.dataframe.frame.DataFrame", id="table"),
])
def test_json_refuses_what_would_not_come_back_naming_where(json_backend: JsonBackend, value: object, problem: str) -> None:
    with pytest.raises(StorageError) as info:
        json_backend.store("settings", value)
    assert str(info.value).startswith(f"Asset 'settings' uses io='json', but {problem}.")
    assert 'io="pickle"' in str(info.value)


def test_json_refuses_a_reference_cycle(json_backend: JsonBackend) -> None:
    value: dict[str, Any] = {"a": []}
    value["a"].append(value)
    with pytest.raises(StorageError, match=r"value\['a'\]\[0\] contains itself"):
        json_backend.store("settings", value)
    shared = [1]
    assert json_backend.store("settings", {"x": shared, "y": shared})  # shared, not cyclic: fine


def test_json_check_ignores_reformatting_and_catches_edits(tmp_path: Path, json_backend: JsonBackend) -> None:
    stored = json_backend.store("settings", {"a": 1, "b": [1, 2]})
    path = tmp_path / "json" / stored.location
    assert json_backend.check("settings", stored.location, stored.data_hash, stored.token).status == "ok"
    path.write_text(json.dumps({"b": [1, 2], "a": 1}, indent=4))
    reformatted = json_backend.check("settings", stored.location, stored.data_hash, stored.token)
    assert reformatted.status == "ok" and reformatted.token != stored.token
    path.write_text('{"a": 2, "b": [1, 2]}')
    assert json_backend.check("settings", stored.location, stored.data_hash, stored.token).status == "modified"
    path.write_text('{"a": ')
    assert json_backend.check("settings", stored.location, stored.data_hash, stored.token).status == "modified"
    path.unlink()
    assert json_backend.check("settings", stored.location, stored.data_hash, stored.token).status == "missing"
    with pytest.raises(StorageError, match="Stored data of asset 'settings' is missing"):
        json_backend.load("settings", stored.location, "polars")
    json_backend.delete("settings", stored.location)  # missing is not an error


# -- pickle -----------------------------------------------------------------------------------


def test_pickle_round_trip(tmp_path: Path, pickle_backend: PickleBackend) -> None:
    stored = pickle_backend.store("model", Model([0.5, 1.5]))
    assert (tmp_path / "pickle" / stored.location).is_file() and stored.location.endswith(".pkl")
    assert pickle_backend.load("model", stored.location, "arrow") == Model([0.5, 1.5])
    assert pickle_backend.local_file(stored.location) == tmp_path / "pickle" / stored.location
    assert pickle_backend.store("model", Model([0.5, 1.5])).data_hash == stored.data_hash
    assert pickle_backend.store("model", Model([0.5, 2.5])).data_hash != stored.data_hash


def test_pickle_refuses_unpicklable_values_naming_the_asset(pickle_backend: PickleBackend) -> None:
    with pytest.raises(StorageError, match="Asset 'model' uses io='pickle', but its value of type builtins.function "
                                           "cannot be pickled"):
        pickle_backend.store("model", lambda x: x)


def test_pickle_check_never_unpickles(tmp_path: Path, pickle_backend: PickleBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = pickle_backend.store("model", Model([1.0]))
    path = tmp_path / "pickle" / stored.location
    monkeypatch.setattr(pickle, "loads", lambda data: pytest.fail("check ran the pickle"))
    path.write_bytes(pickle.dumps(Model([2.0]), protocol=5))
    assert pickle_backend.check("model", stored.location, stored.data_hash, stored.token).status == "modified"
    path.write_bytes(pickle.dumps(Model([1.0]), protocol=5))
    assert pickle_backend.check("model", stored.location, stored.data_hash, stored.token).status == "ok"


# -- never pickle by default -------------------------------------------------------------------


@pytest.mark.parametrize(("value", "hint"), [
    pytest.param({"a": 1}, '@asset(io="json")', id="dict"),
    pytest.param([1, 2], '@asset(io="pickle")', id="list"),
])
def test_a_table_backend_refuses_other_values_clearly(value: object, hint: str) -> None:
    with pytest.raises(StorageError) as info:
        require_table("report", value, "parquet")
    assert str(info.value).startswith("Asset 'report' returned a value of type ")
    assert "io='parquet' stores tables only" in str(info.value) and hint in str(info.value)


PIPELINE = '''
    import polars as pl
    from assetflow import asset, source
    from model import Model

    raw = source("data/raw.csv")


    @asset(io="json")
    def settings() -> dict:
        return {"min": 0, "labels": ["low", "high"]}


    @asset(io="pickle")
    def model(settings: dict) -> Model:
        return Model(threshold=settings["min"])


    @asset
    def clean(raw: pl.DataFrame, settings: dict, model: Model) -> pl.DataFrame:
        assert isinstance(settings, dict) and isinstance(model, Model)
        return raw.filter(pl.col("value") > model.threshold)


    @asset
    def report(clean: pl.DataFrame) -> dict:
        return {"rows": clean.height}
'''
MODEL = '''
    import dataclasses


    @dataclasses.dataclass
    class Model:
        threshold: int
'''


def test_downstream_receives_json_and_pickle_values_and_a_dict_for_parquet_fails(project: ProjectDir) -> None:
    project.write("pipeline.py", PIPELINE)
    project.write("model.py", MODEL)
    project.write("data/raw.csv", "id,value\n1,10\n2,-5\n")
    result = project.materialize()
    assert {n: result[n] for n in ("settings", "model", "clean")} == dict.fromkeys(("settings", "model", "clean"), "ran")
    assert result["report"] == "failed"
    error = next(a["error"] for a in result["_"]["assets"] if a["name"] == "report")
    assert "Asset 'report' returned a value of type builtins.dict, but its storage io='parquet' stores tables only" in error
    assert '@asset(io="json")' in error
    assert "TypeError" not in error  # the engine's error, not a hashing detail
    assert "(`report` is declared at pipeline.py:" in error  # where to fix it, relative to the project (444ed68)
    path = project.root / "pipeline.py"
    path.write_text(path.read_text().replace("@asset\ndef report", '@asset(io="json")\ndef report'))
    assert project.ran() == {"report"}
    # Same JSON content written with its keys in another order: the settings rerun, nothing else does.
    path.write_text(path.read_text().replace('{"min": 0, "labels": ["low", "high"]}', '{"labels": ["low", "high"], "min": 0}'))
    result = project.materialize()
    assert result["settings"] == "ran" and result["model"] == result["clean"] == result["report"] == "cutoff"


# -- safety: names refused at declaration -------------------------------------------------------


HOSTILE = [
    pytest.param("../x", id="parent"),
    pytest.param("/abs", id="absolute"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a" * 300, id="300-chars"),
    pytest.param("Upper", id="upper-case"),
    pytest.param("a.b", id="dot"),
    pytest.param('a"; drop table x; --', id="sql"),
    pytest.param("", id="empty"),
    pytest.param("con", id="windows-device"),
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_asset_names_are_refused_at_declaration(name: str) -> None:
    with pytest.raises(DefinitionError, match=r"Asset name .* (is not allowed|characters long|reserved device)") as info:
        asset(name=name)(lambda: None)
    assert "safe as file names and SQL identifiers" in str(info.value) or "limit is 63" in str(info.value) \
        or "device name" in str(info.value)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_source_and_storage_names_are_refused_at_declaration(name: str) -> None:
    with pytest.raises(DefinitionError, match="Source name"):
        source("data/x.csv", name=name)
    with pytest.raises(DefinitionError, match=r"Storage \(io\) of 'ok'"):
        asset(name="ok", io=name)(lambda: None)


def test_hostile_name_in_a_project_fails_the_command_with_its_location(project: ProjectDir) -> None:
    project.write("pipeline.py", '''
        from assetflow import asset

        @asset(name="../escape")
        def escape():
            return None
    ''')
    proc = project.run("status", check=False)
    assert proc.returncode == 2
    assert "Asset name '../escape'" in proc.stderr and "pipeline.py" in proc.stderr


# -- safety: paths confined to the storage root --------------------------------------------------


FILE_BACKENDS = [
    pytest.param(ParquetBackend, pl.DataFrame({"a": [1]}), id="parquet"),
    pytest.param(JsonBackend, {"a": 1}, id="json"),
    pytest.param(PickleBackend, Model([1.0]), id="pickle"),
]


@pytest.mark.parametrize(("cls", "value"), FILE_BACKENDS)
def test_a_symlinked_asset_folder_pointing_outside_is_refused(tmp_path: Path, cls: Any, value: object) -> None:
    backend = cls(tmp_path / "root", {})
    outside = tmp_path / "outside"
    outside.mkdir()
    backend.root.mkdir(parents=True)
    (backend.root / "orders").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError, match="outside the storage root"):
        backend.store("orders", value)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(("cls", "value"), FILE_BACKENDS)
def test_a_symlinked_version_file_pointing_outside_is_not_followed(tmp_path: Path, cls: Any, value: object) -> None:
    backend = cls(tmp_path / "root", {})
    stored = backend.store("orders", value)
    secret = tmp_path / "secret"
    secret.write_bytes((backend.root / stored.location).read_bytes())
    (backend.root / stored.location).unlink()
    (backend.root / stored.location).symlink_to(secret)
    for call in (lambda: backend.load("orders", stored.location, "polars"),
                 lambda: backend.check("orders", stored.location, stored.data_hash, stored.token),
                 lambda: backend.delete("orders", stored.location)):
        with pytest.raises(StorageError, match="outside the storage root"):
            call()
    assert secret.exists()


@pytest.mark.parametrize(("cls", "value"), FILE_BACKENDS)
def test_a_location_escaping_the_root_is_refused(tmp_path: Path, cls: Any, value: object) -> None:
    backend = cls(tmp_path / "root", {})
    (tmp_path / "victim").write_text("keep me")
    with pytest.raises(StorageError, match="outside the storage root"):
        backend.delete("orders", "../../victim")
    with pytest.raises(StorageError, match="outside the storage root"):
        backend.load("orders", "/etc/passwd", "polars")
    assert (tmp_path / "victim").read_text() == "keep me"


def test_symlink_in_the_parquet_root_through_the_cli(project: ProjectDir, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    project.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset

        @asset
        def orders() -> pl.DataFrame:
            return pl.DataFrame({"a": [1]})
    ''')
    parquet_root = project.root / ".assetflow" / "data" / "parquet"
    parquet_root.mkdir(parents=True)
    (parquet_root / "orders").symlink_to(outside, target_is_directory=True)
    result = project.materialize()
    assert result["orders"] == "failed"
    error = next(a["error"] for a in result["_"]["assets"] if a["name"] == "orders")
    assert "outside the storage root" in error and "Remove the symlink" in error
    assert list(outside.iterdir()) == []


def test_unknown_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"\[tool.assetflow.io.json\] has unknown option\(s\) 'folder'"):
        JsonBackend(tmp_path, {"folder": "x"})
    # The Parquet backend ignored them: a misspelt compression wrote the default codec without a word.
    from assetflow.storage.parquet import ParquetBackend

    with pytest.raises(StorageError, match=r"io.parquet\] has unknown option\(s\) 'compresion'.*path, compression"):
        ParquetBackend(tmp_path, {"compresion": "gzip"})
    assert ParquetBackend(tmp_path, {"compression": "gzip"}).compression == "gzip"
