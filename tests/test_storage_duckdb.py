"""The built-in DuckDB backend: a table per version, a view on the current one, hashes equal to Parquet's."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest

from assetflow.errors import StorageError
from assetflow.fingerprint.data import table_hash
from assetflow.storage import duckdb as duckdb_module
from assetflow.storage.duckdb import DuckDBBackend, quote_identifier, version_table
from assetflow.storage.parquet import ParquetBackend
from conftest import ProjectDir

ORDERS = pl.DataFrame({"id": [1, 2, 3], "amount": [10.5, None, 7.25], "who": ["ann", "bob", None]})


@pytest.fixture
def backend(tmp_path: Path) -> DuckDBBackend:
    """A backend that closes its connection after every operation, like a short-lived process."""
    return DuckDBBackend(tmp_path, {"keep_open": 0})


def sql(path: Path, query: str) -> list[tuple[Any, ...]]:
    """Run a query through a connection of the test's own, as another program would."""
    con = duckdb.connect(str(path))
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def tables(path: Path) -> list[str]:
    return sorted(r[0] for r in sql(path, "SELECT table_name FROM duckdb_tables()"))


def every_type() -> pl.DataFrame:
    utc = pl.Series([dt.datetime(2020, 1, 1), None, dt.datetime(2021, 6, 1, 12)]).dt.replace_time_zone("UTC")
    return pl.DataFrame({
        "i": [1, None, 3], "f": [-0.0, float("nan"), 1.5], "s": ["a", None, "ç€𝄞"], "empty": ["", "x", None],
        "b": [True, None, False], "d": [dt.date(2020, 1, 1), None, dt.date(1970, 1, 1)],
        "ts": [dt.datetime(2020, 1, 1, 1, 2, 3, 4), None, dt.datetime(1900, 1, 1)], "utc": utc,
        "ms": utc.dt.replace_time_zone(None).cast(pl.Datetime("ms")),
        "ns": utc.dt.replace_time_zone(None).cast(pl.Datetime("ns")),
        "l": [[1, 2], None, []], "st": [{"x": 1, "y": "a"}, None, {"x": None, "y": None}],
        "cat": pl.Series(["a", "b", "a"], dtype=pl.Categorical), "enum": pl.Series(["a", "b", "a"], dtype=pl.Enum(["a", "b"])),
        "u8": pl.Series([1, 2, 255], dtype=pl.UInt8), "i16": pl.Series([1, -2, 3], dtype=pl.Int16),
        "f32": pl.Series([1, 2, 3], dtype=pl.Float32),
        "dec": pl.Series([decimal.Decimal("1.10"), None, decimal.Decimal("2.25")], dtype=pl.Decimal(10, 2)),
        "tm": [dt.time(1, 2, 3), None, dt.time(0, 0)], "bin": [b"x", None, b""],
        "arr": pl.Series([[1, 2], [3, 4], None], dtype=pl.Array(pl.Int64, 2)),
    })


# -- storing and loading ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    pytest.param(ORDERS, id="small"),
    pytest.param(every_type(), id="every-type"),
    pytest.param(pl.DataFrame({"x": list(range(300_000)), "y": [str(i) for i in range(300_000)]}), id="row-groups"),
    pytest.param(pl.DataFrame({"x": pl.Series([], dtype=pl.Int64)}), id="empty"),
])
def test_hash_is_parquets_and_describes_what_load_returns(tmp_path: Path, backend: DuckDBBackend, value: pl.DataFrame) -> None:
    stored = backend.store("orders", value)
    parquet = ParquetBackend(tmp_path, {}).store("orders", value)
    assert stored.data_hash == parquet.data_hash == table_hash(value.to_arrow())
    assert stored.location == version_table("orders", stored.data_hash) == f"orders__{stored.data_hash[7:23]}"
    assert stored.rows == value.height and stored.schema == parquet.schema
    arrow = backend.load("orders", stored.location, "arrow")
    assert isinstance(arrow, pa.Table) and table_hash(arrow) == stored.data_hash
    loaded = backend.load("orders", stored.location, "polars")
    assert isinstance(loaded, pl.DataFrame) and loaded.equals(value)


def test_chunked_arrow_and_record_batches_store_like_one_table(backend: DuckDBBackend) -> None:
    table = ORDERS.to_arrow()
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=1))
    assert backend.store("a", chunked).data_hash == backend.store("a", table.to_batches()[0]).data_hash == table_hash(table)


def test_versions_are_tables_and_the_view_follows_activate(tmp_path: Path) -> None:
    backend = DuckDBBackend(tmp_path, {"path": "wh.duckdb", "schema": "marts", "keep_open": 0})
    first = backend.store("orders", ORDERS)
    backend.activate("orders", first.location)
    second = backend.store("orders", ORDERS.head(1))
    backend.activate("orders", second.location)
    path = tmp_path / "wh.duckdb"
    assert tables(path) == sorted([first.location, second.location])
    assert sql(path, "SELECT count(*) FROM marts.orders") == [(1,)]
    backend.activate("orders", first.location)  # a restore moves only the view
    assert sql(path, "SELECT count(*) FROM marts.orders") == [(3,)]
    assert sql(path, "SELECT comment FROM duckdb_views() WHERE view_name = 'orders'") == [(first.location,)]


def test_storing_the_same_content_again_is_harmless(backend: DuckDBBackend) -> None:
    first = backend.store("orders", ORDERS)
    backend.activate("orders", first.location)
    again = backend.store("orders", ORDERS.clone())
    assert again.location == first.location and again.data_hash == first.data_hash
    assert backend.check("orders", again.location, again.data_hash, again.token).status == "ok"
    assert tables(backend.path) == [first.location]


@pytest.mark.parametrize(("column", "complaint"), [
    pytest.param(pl.Series("took", [dt.timedelta(seconds=1)]), "duration[us] would come back as month_day_nano_interval",
                 id="duration"),
    pytest.param(pl.Series("at", [dt.datetime(2020, 1, 1)]).dt.replace_time_zone("Europe/Paris"), "tz=Europe/Paris",
                 id="time-zone"),
])
def test_a_type_duckdb_would_change_is_refused_before_writing(backend: DuckDBBackend, column: pl.Series, complaint: str) -> None:
    with pytest.raises(StorageError, match="Asset 'timing' cannot be stored in DuckDB unchanged") as info:
        backend.store("timing", pl.DataFrame([column]))
    assert complaint in str(info.value) and "io=\"parquet\"" in str(info.value)
    assert tables(backend.path) == []


def test_column_names_differing_only_in_case_are_refused(backend: DuckDBBackend) -> None:
    table = pa.table([pa.array([1]), pa.array([2])], names=["Total", "total"])
    with pytest.raises(StorageError, match="column 'total' would come back named 'total_1'"):
        backend.store("t", table)


def test_a_value_that_is_not_a_table_names_the_asset_and_the_opt_in_formats(backend: DuckDBBackend) -> None:
    with pytest.raises(StorageError) as info:
        backend.store("settings", {"threshold": 3})
    message = str(info.value)
    assert "Asset 'settings' returned a value of type builtins.dict" in message
    assert "io='duckdb' stores tables only" in message
    assert '@asset(io="json")' in message and '@asset(io="pickle")' in message


def test_a_failed_write_leaves_no_table_behind(backend: DuckDBBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """The version table is created inside a transaction: a failure before COMMIT rolls it back."""
    real_open = duckdb_module._Connection._open

    class FailingCommit:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self._con = con

        def execute(self, query: str, *args: Any) -> Any:
            if query == "COMMIT":
                raise duckdb.IOException("disk full (simulated)")
            return self._con.execute(query, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._con, name)

    def failing_open(self: Any, write: bool, lock_timeout: float) -> tuple[Any, bool]:
        con, writable = real_open(self, write, lock_timeout)
        return FailingCommit(con), writable

    monkeypatch.setattr(duckdb_module._Connection, "_open", failing_open)
    with pytest.raises(StorageError, match="DuckDB could not store asset 'orders'.*disk full"):
        backend.store("orders", ORDERS)
    monkeypatch.undo()
    assert tables(backend.path) == []
    stored = backend.store("orders", ORDERS)  # the file is still usable
    assert tables(backend.path) == [stored.location]


def test_killed_mid_write_leaves_the_version_complete_or_absent(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import polars as pl, sys
        from pathlib import Path
        from assetflow.storage.duckdb import DuckDBBackend
        value = pl.DataFrame({{"x": range(6_000_000), "y": [str(i % 977) for i in range(6_000_000)]}})
        print("writing", flush=True)
        DuckDBBackend(Path({str(tmp_path)!r}), {{}}).store("big", value)
        print("done", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    backend = DuckDBBackend(tmp_path, {"keep_open": 0})
    found = tables(backend.path) if backend.path.exists() else []
    expected = pl.DataFrame({"x": range(6_000_000), "y": [str(i % 977) for i in range(6_000_000)]})
    data_hash = table_hash(expected.to_arrow())
    if found:  # it committed before the kill: then it is complete
        assert found == [version_table("big", data_hash)]
        assert table_hash(backend.load("big", found[0], "arrow")) == data_hash
    assert backend.store("big", expected).data_hash == data_hash  # and the next run repairs it


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ['a"b', "A", "a b", "a;drop table x", "", "1a", "a-b", "é"])
def test_identifiers_are_validated(name: str) -> None:
    with pytest.raises(StorageError, match="is not allowed"):
        quote_identifier(name)


def test_identifiers_are_quoted() -> None:
    assert quote_identifier("select") == '"select"'


@pytest.mark.parametrize("location", [
    "orders__0123", "other__0123456789abcdef", 'orders__0123456789abcdef"; DROP TABLE x; --', "../orders__0123456789abcdef",
    "orders__0123456789ABCDEF",
])
def test_a_location_that_is_not_a_version_of_the_asset_is_refused(backend: DuckDBBackend, location: str) -> None:
    for call in (lambda: backend.load("orders", location, "arrow"), lambda: backend.delete("orders", location),
                 lambda: backend.check("orders", location, "blake3:00", ""), lambda: backend.activate("orders", location)):
        with pytest.raises(StorageError, match="is not a DuckDB version table of asset 'orders'"):
            call()


def test_an_asset_named_like_a_version_table_is_refused(backend: DuckDBBackend) -> None:
    with pytest.raises(StorageError, match="has the shape of a version table"):
        backend.store("orders__0123456789abcdef", ORDERS)


@pytest.mark.parametrize(("options", "message"), [
    ({"schema": "Marts"}, "DuckDB schema 'Marts' is not allowed"),
    ({"schema": "a.b"}, "DuckDB schema 'a.b' is not allowed"),
    ({"shema": "marts"}, "unknown option\\(s\\) 'shema'"),
    ({"path": "../outside.duckdb"}, "outside the storage root"),
    ({"lock_timeout": "soon"}, "lock_timeout must be a number of seconds"),
])
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(StorageError, match=message):
        DuckDBBackend(tmp_path / "root", options)


def test_a_symlinked_database_file_pointing_outside_the_root_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "warehouse.duckdb").symlink_to(outside / "warehouse.duckdb")
    with pytest.raises(StorageError, match="outside the storage root"):
        DuckDBBackend(root, {})
    assert not (outside / "warehouse.duckdb").exists()


def test_an_absolute_path_option_is_the_users_choice(tmp_path: Path) -> None:
    backend = DuckDBBackend(tmp_path / "root", {"path": str(tmp_path / "elsewhere" / "wh.duckdb"), "keep_open": 0})
    backend.store("orders", ORDERS)
    assert (tmp_path / "elsewhere" / "wh.duckdb").is_file()


# -- check ------------------------------------------------------------------------------------


def test_check_reports_missing_file_and_missing_table(tmp_path: Path, backend: DuckDBBackend) -> None:
    assert backend.check("orders", "orders__0123456789abcdef", "blake3:00", "").status == "missing"
    stored = backend.store("orders", ORDERS)
    assert backend.check("orders", "orders__0123456789abcdef", "blake3:00", "").status == "missing"
    sql(backend.path, f'DROP TABLE "{stored.location}"')
    assert backend.check("orders", stored.location, stored.data_hash, stored.token).status == "missing"


@pytest.mark.parametrize("tamper", [
    "UPDATE {t} SET amount = 11.5 WHERE id = 1",
    "UPDATE {t} SET who = 'ann' WHERE id = 1",  # same value: still flagged, then the rehash clears it
    "DELETE FROM {t} WHERE id = 2",
    "INSERT INTO {t} VALUES (4, 1.0, 'dan')",
    "ALTER TABLE {t} RENAME COLUMN who TO whom",
    "ALTER TABLE {t} ALTER amount TYPE VARCHAR",
    "CREATE OR REPLACE TABLE {t} AS SELECT id, amount + 0 AS amount, who FROM {t}",
])
def test_tampering_through_another_connection_is_detected(backend: DuckDBBackend, tamper: str) -> None:
    stored = backend.store("orders", ORDERS)
    assert backend.check("orders", stored.location, stored.data_hash, stored.token).status == "ok"
    sql(backend.path, tamper.format(t=f'"{stored.location}"'))
    result = backend.check("orders", stored.location, stored.data_hash, stored.token)
    unchanged = "'ann' WHERE" in tamper or "amount + 0" in tamper
    assert result.status == ("ok" if unchanged else "modified")
    assert result.token != stored.token


def test_writing_other_tables_keeps_the_storage_token(backend: DuckDBBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another asset's write moves the file's stat, but the table's metadata still vouches: no rehash."""
    stored = backend.store("orders", ORDERS)
    backend.store("other", ORDERS.head(2))
    import assetflow.fingerprint.data as data

    monkeypatch.setattr(data, "table_hash", lambda table: pytest.fail("rehashed although the table is untouched"))
    result = backend.check("orders", stored.location, stored.data_hash, stored.token)
    assert result.status == "ok" and result.token != stored.token


def test_an_old_unchanged_file_is_checked_without_opening_duckdb(backend: DuckDBBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = backend.store("orders", ORDERS)
    old = time.time_ns() - 60 * 10**9
    os.utime(backend.path, ns=(old, old))
    refreshed = backend.check("orders", stored.location, stored.data_hash, stored.token)
    assert refreshed.status == "ok"
    monkeypatch.setattr(duckdb_module._Connection, "use", lambda *a: pytest.fail("opened DuckDB"))
    assert backend.check("orders", stored.location, stored.data_hash, refreshed.token) == refreshed


def test_a_fresh_file_stat_does_not_vouch_racy_clean(backend: DuckDBBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Right after a write, a same-size rewrite in the same timestamp tick could keep the stat."""
    stored = backend.store("orders", ORDERS)
    opened = []
    real_use = duckdb_module._Connection.use
    monkeypatch.setattr(duckdb_module._Connection, "use", lambda *a: opened.append(1) or real_use(*a))
    assert backend.check("orders", stored.location, stored.data_hash, stored.token).status == "ok"
    assert opened


# -- delete -----------------------------------------------------------------------------------


def test_delete_drops_the_version_and_a_view_pointing_at_it(backend: DuckDBBackend) -> None:
    old = backend.store("orders", ORDERS)
    new = backend.store("orders", ORDERS.head(1))
    backend.activate("orders", new.location)
    backend.delete("orders", old.location)
    assert tables(backend.path) == [new.location]
    assert sql(backend.path, "SELECT count(*) FROM orders") == [(1,)]
    backend.delete("orders", new.location)  # e.g. the asset moved to another backend, gc drops its last version
    assert tables(backend.path) == []
    assert sql(backend.path, "SELECT count(*) FROM duckdb_views() WHERE view_name = 'orders'") == [(0,)]
    backend.delete("orders", new.location)  # missing is not an error


# -- connections ------------------------------------------------------------------------------


def other_process_opens(path: Path) -> subprocess.CompletedProcess[str]:
    code = f"import duckdb; duckdb.connect({str(path)!r}).execute('CREATE OR REPLACE TABLE probe AS SELECT 1').close()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_file_is_released_once_idle(tmp_path: Path) -> None:
    backend = DuckDBBackend(tmp_path, {"keep_open": 0.2})
    stored = backend.store("orders", ORDERS)
    backend.load("orders", stored.location, "polars")
    time.sleep(1.0)
    proc = other_process_opens(backend.path)
    assert proc.returncode == 0, proc.stderr


def test_a_file_held_by_another_process_is_waited_for_then_reported(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
                               f"time.sleep(float(input()))"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    try:
        with pytest.raises(StorageError, match="held by another process and stayed so for 0.3 s.*PID"):
            DuckDBBackend(tmp_path, {"lock_timeout": 0.3, "keep_open": 0}).store("orders", ORDERS)
        holder.stdin.write("1.0\n")
        holder.stdin.flush()
        stored = DuckDBBackend(tmp_path, {"lock_timeout": 30, "keep_open": 0}).store("orders", ORDERS)
        assert stored.rows == 3
    finally:
        holder.kill()
        holder.wait()


def test_backends_of_one_process_share_the_connection(tmp_path: Path) -> None:
    first = DuckDBBackend(tmp_path, {"keep_open": 5})
    second = DuckDBBackend(tmp_path, {"keep_open": 5})
    stored = first.store("orders", ORDERS)  # leaves a read-write connection open...
    assert table_hash(second.load("orders", stored.location, "arrow")) == stored.data_hash  # ...which this reuses
    duckdb_module._close_all()


# -- through the command line -----------------------------------------------------------------

PIPELINE = '''
    import polars as pl
    from assetflow import asset, source

    raw = source("data/raw.csv")


    @asset{clean_io}
    def clean(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.filter(pl.col("value") > 0)


    @asset
    def total(clean: pl.DataFrame) -> pl.DataFrame:
        return clean.select(pl.col("value").sum())
'''
RAW = "id,value\n1,10\n2,-5\n3,7\n"


def write_project(project: ProjectDir, clean_io: str = "", options: str = "") -> None:
    project.write("pipeline.py", PIPELINE.format(clean_io=clean_io))
    project.write("data/raw.csv", RAW)
    if options:
        project.write("pyproject.toml", '[tool.assetflow]\nmodules = ["pipeline"]\n' + textwrap.dedent(options))


def hashes(project: ProjectDir) -> dict[str, str]:
    return {name: row["data_hash"] for name, row in project.status().items()}


def test_moving_an_asset_to_duckdb_reruns_it_alone_and_cuts_off_its_downstream(project: ProjectDir) -> None:
    write_project(project)
    assert project.ran() == {"clean", "total"}
    before = hashes(project)
    write_project(project, clean_io='(io="duckdb")')
    status = project.status()
    assert "storage changed: parquet -> duckdb" in status["clean"]["reasons"]
    result = project.materialize()
    assert (result["clean"], result["total"]) == ("ran", "cutoff")
    assert hashes(project) == before
    warehouse = project.root / ".assetflow" / "data" / "warehouse.duckdb"
    assert sql(warehouse, "SELECT id, value FROM clean ORDER BY id") == [(1, 10), (3, 7)]
    write_project(project)  # and back: the Parquet version is restored, not recomputed
    assert project.materialize()["clean"] == "restored"


def test_project_default_and_options(project: ProjectDir) -> None:
    write_project(project)
    assert project.ran() == {"clean", "total"}
    parquet_hashes = hashes(project)
    write_project(project, options='''
        default_io = "duckdb"

        [tool.assetflow.io.duckdb]
        path = "tables/wh.duckdb"
        schema = "marts"
    ''')
    assert project.ran() == {"clean", "total"}
    assert hashes(project) == parquet_hashes
    warehouse = project.root / ".assetflow" / "data" / "tables" / "wh.duckdb"
    assert sql(warehouse, "SELECT * FROM marts.total") == [(17,)]
    assert project.ran() == set()


def test_gc_says_a_duckdb_tables_size_is_unknown_rather_than_0_bytes(project: ProjectDir) -> None:
    write_project(project, clean_io='(io="duckdb")')  # clean in DuckDB, total in Parquet
    assert project.ran() == {"clean", "total"}
    project.write("data/raw.csv", RAW + "4,1\n")
    assert project.ran() == {"clean", "total"}
    gc = project.run("gc", "--keep", "0").stdout
    assert ("Deleted 2 versions (2 stored objects, " in gc and " bytes and 1 of unknown size: their backend records no "
            "size (a DuckDB table shares its file's blocks)); kept 2" in gc), gc
    assert " 0 bytes and" not in gc  # the Parquet file's size is counted


def test_tampered_table_is_stale_and_rerun(project: ProjectDir) -> None:
    write_project(project, clean_io='(io="duckdb")')
    assert project.ran() == {"clean", "total"}
    warehouse = project.root / ".assetflow" / "data" / "warehouse.duckdb"
    (version,) = (r[0] for r in sql(warehouse, "SELECT table_name FROM duckdb_tables()"))
    sql(warehouse, f'UPDATE "{version}" SET value = 99 WHERE id = 3')
    status = project.status()
    assert status["clean"]["state"] == "stale"
    assert "stored data changed outside assetflow (hash mismatch)" in status["clean"]["reasons"]
    result = project.materialize()
    assert (result["clean"], result["total"]) == ("ran", "cutoff")  # rebuilt to what it was: total is unaffected
    assert sql(warehouse, "SELECT value FROM clean WHERE id = 3") == [(7,)]
    assert project.ran() == set()


def test_dropped_table_is_missing_and_code_revert_restores_the_view(project: ProjectDir) -> None:
    write_project(project, clean_io='(io="duckdb")')
    assert project.ran() == {"clean", "total"}
    warehouse = project.root / ".assetflow" / "data" / "warehouse.duckdb"
    pipeline = project.root / "pipeline.py"
    original = pipeline.read_text()
    pipeline.write_text(original.replace('pl.col("value") > 0', 'pl.col("value") > 8'))
    assert project.ran() == {"clean", "total"}
    assert sql(warehouse, "SELECT count(*) FROM clean") == [(1,)]
    pipeline.write_text(original)
    result = project.materialize()
    assert (result["clean"], result["total"]) == ("restored", "restored")
    assert sql(warehouse, "SELECT count(*) FROM clean") == [(2,)]
    current = sql(warehouse, "SELECT comment FROM duckdb_views() WHERE view_name = 'clean'")[0][0]
    sql(warehouse, f'DROP TABLE "{current}"')
    assert project.status()["clean"]["state"] == "missing"
    assert project.ran() == {"clean"}


# -- SQL assets (docs/sql.md): read upstreams where they are stored, store like any table ----------------

SQL_PIPELINE = '''
    import polars as pl
    from assetflow import asset, source, sql_asset

    raw = source("data/raw.csv")


    @asset(io="duckdb")
    def in_duckdb(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.filter(pl.col("value") > 0)


    @asset
    def in_parquet(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.with_columns(tenfold=pl.col("value") * 10)


    @asset(io="csv")
    def in_csv(raw: pl.DataFrame) -> pl.DataFrame:
        return raw.select("id", label=pl.format("#{}", pl.col("id")))


    joined = sql_asset("joined", """
        select d.id, d.value, p.tenfold, c.label
        from in_duckdb d join in_parquet p using (id) join in_csv c using (id)
        order by d.id
    """, io="{io}")
'''


def sql_project(project: ProjectDir, io: str) -> None:
    project.write("pipeline.py", SQL_PIPELINE.replace("{io}", io))
    project.write("data/raw.csv", RAW)


def test_a_sql_asset_scans_parquet_in_place_reads_duckdb_tables_directly_and_other_backends_as_arrow(
        project: ProjectDir) -> None:
    from assetflow import api
    from assetflow.execute.task import InputRef
    from assetflow.sql.run import _Plan

    sql_project(project, "duckdb")
    result = api.materialize(project=project.root, executor="inprocess")
    assert result.ok, {n: r.error for n, r in result.results.items()}
    expected = [{"id": 1, "value": 10, "tenfold": 100, "label": "#1"}, {"id": 3, "value": 7, "tenfold": 70, "label": "#3"}]
    assert api.load("joined", project=project.root).to_dicts() == expected
    warehouse = project.root / ".assetflow" / "data" / "warehouse.duckdb"
    duckdb_module._close_all()  # this process's shared connection, so another "program" may open the file
    assert sql(warehouse, "SELECT id, label FROM joined ORDER BY id") == [(1, "#1"), (3, "#3")]  # the view

    ws = api._workspace(project.root)
    current = ws.store.current()
    inputs = [InputRef(up, current[up].io, current[up].location) for up in ws.graph.specs["joined"].upstreams]
    plan = _Plan(ws, ws.graph.specs["joined"], inputs)
    stored_parquet = current["in_parquet"].location
    assert f"READ_PARQUET(['{ws.backends.get('parquet').local_file(stored_parquet)}'])" in plan.query.sql  # in place
    assert f'"main"."{current["in_duckdb"].location}"' in plan.query.sql  # the version table itself
    assert set(plan.arrow) == {"in_csv"} and plan.duckdb_backend is not None  # only the CSV plugin's is loaded


def test_a_sql_result_has_the_same_hash_in_every_backend_and_moving_it_cuts_off(project: ProjectDir) -> None:
    from assetflow import api

    sql_project(project, "duckdb")
    api.materialize(project=project.root, executor="inprocess")
    in_duckdb = {r.name: r.data_hash for r in api.status(project=project.root)}["joined"]
    sql_project(project, "parquet")
    rows = {r.name: r for r in api.status(project=project.root)}
    assert rows["joined"].reasons == ["storage changed: duckdb -> parquet"]
    assert api.materialize(project=project.root, executor="inprocess").results["joined"].outcome == "ran"
    assert {r.name: r.data_hash for r in api.status(project=project.root)}["joined"] == in_duckdb


def test_a_tampered_duckdb_upstream_makes_the_sql_asset_rerun_on_the_repaired_data(project: ProjectDir) -> None:
    from assetflow import api

    sql_project(project, "parquet")
    api.materialize(project=project.root, executor="inprocess")
    warehouse = project.root / ".assetflow" / "data" / "warehouse.duckdb"
    duckdb_module._close_all()
    (version,) = (r[0] for r in sql(warehouse, "SELECT table_name FROM duckdb_tables()"))
    sql(warehouse, f'UPDATE "{version}" SET value = 99 WHERE id = 3')
    outcomes = {n: r.outcome for n, r in api.materialize(project=project.root, executor="inprocess").results.items()}
    assert outcomes["in_duckdb"] == "ran" and outcomes["joined"] == "cutoff"
    assert api.load("joined", project=project.root)["value"].to_list() == [10, 7]
