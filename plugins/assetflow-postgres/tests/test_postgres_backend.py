"""The postgres backend against a real PostgreSQL server: round trips, versions, checks, secrets."""

from __future__ import annotations

import datetime
import decimal
import multiprocessing
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from pg_support import DSN, pg_schema, requires_postgres, sql

from assetflow.errors import StorageError
from assetflow.fingerprint.data import table_hash
from assetflow.storage.base import Backends
from assetflow.storage.parquet import ParquetBackend
from assetflow_postgres import PostgresBackend
from assetflow_postgres.backend import version_table
from assetflow_postgres.dsn import mask, resolve_dsn

__all__ = ["pg_schema"]  # the fixture, imported so pytest finds it

pytestmark = requires_postgres

TABLE = pa.table({"id": [1, 2, 3], "name": ["a", None, ""], "value": [1.5, None, -0.0]})


def backend(tmp_path: Path, schema: str, **options: object) -> PostgresBackend:
    return PostgresBackend(tmp_path, {"schema": schema, **options})


def view_rows(schema: str, asset: str) -> list[tuple[object, ...]]:
    return sql(f'select * from "{schema}"."{asset}" order by 1')


def test_discovered_through_the_entry_point(tmp_path: Path, pg_schema: str) -> None:
    found = Backends(tmp_path, {"postgres": {"schema": pg_schema}}).get("postgres")
    assert isinstance(found, PostgresBackend)


def test_round_trip_keeps_the_data_hash_of_the_parquet_backend(tmp_path: Path, pg_schema: str) -> None:
    pg = backend(tmp_path, pg_schema)
    stored = pg.store("orders", pl.from_arrow(TABLE))
    assert stored.data_hash == ParquetBackend(tmp_path, {}).store("orders", TABLE).data_hash
    assert stored.location == f"{pg_schema}.orders__{stored.data_hash[7:23]}"
    assert (stored.rows, stored.schema) == (3, [("id", "int64"), ("name", "large_string"), ("value", "double")])
    assert stored.bytes and stored.bytes > 0
    arrow = pg.load("orders", stored.location, "arrow")
    polars = pg.load("orders", stored.location, "polars")
    assert isinstance(arrow, pa.Table) and isinstance(polars, pl.DataFrame)
    assert table_hash(arrow) == table_hash(polars.to_arrow()) == stored.data_hash
    assert polars.equals(pl.from_arrow(TABLE))


EXACT_TYPES = {
    "int8": pa.array([1, None, -128], pa.int8()),
    "int16": pa.array([1, None, -3], pa.int16()),
    "uint8": pa.array([1, None, 255], pa.uint8()),
    "uint16": pa.array([1, None, 65535], pa.uint16()),
    "uint32": pa.array([1, None, 2**32 - 1], pa.uint32()),
    "uint64": pa.array([1, None, 2**63 - 1], pa.uint64()),
    "float16": pa.array([1.5, None, 2.0], pa.float32()).cast(pa.float16()),
    "float32": pa.array([1.5, None, float("nan")], pa.float32()),
    "float64": pa.array([-0.0, None, float("inf")], pa.float64()),
    "bool": pa.array([True, None, False]),
    "string": pa.array(["a", None, ""], pa.string()),
    "large_string": pa.array(["é", None, ""], pa.large_string()),
    "string_view": pa.array(["a", None, ""], pa.string_view()),
    "binary": pa.array([b"a\x00", None, b""], pa.binary()),
    "large_binary": pa.array([b"a", None, b""], pa.large_binary()),
    "date32": pa.array([datetime.date(2024, 1, 1), None, datetime.date(1, 1, 1)], pa.date32()),
    "date64": pa.array([0, None, 86_400_000], pa.date64()),
    "timestamp_s": pa.array([1, None, 2], pa.timestamp("s")),
    "timestamp_ms": pa.array([1, None, 2], pa.timestamp("ms")),
    "timestamp_us": pa.array([1, None, 2], pa.timestamp("us")),
    "timestamp_ns_whole_us": pa.array([1000, None, 2000], pa.timestamp("ns")),
    "timestamp_utc": pa.array([1, None, 2], pa.timestamp("us", tz="UTC")),
    "timestamp_berlin": pa.array([1, None, 2], pa.timestamp("ms", tz="Europe/Berlin")),
    "time32": pa.array([1, None, 2], pa.time32("ms")),
    "time64": pa.array([1, None, 2], pa.time64("us")),
    "duration": pa.array([1, None, -2], pa.duration("ns")),
    "decimal": pa.array([decimal.Decimal("1.23"), None, decimal.Decimal("-4.50")], pa.decimal128(10, 2)),
    "dictionary": pa.array(["a", None, "a"]).dictionary_encode(),
    "list": pa.array([[1, 2], None, []], pa.list_(pa.int64())),
    "list_int8": pa.array([[1], None, [None]], pa.list_(pa.int8())),
    "large_list_string": pa.array([["a"], None, []], pa.large_list(pa.string())),
    "fixed_size_list": pa.array([[1, 2], None, [3, 4]], pa.list_(pa.int64(), 2)),
    "null": pa.nulls(3),
}


@pytest.mark.parametrize("column", sorted(EXACT_TYPES))
def test_every_supported_type_round_trips_exactly(tmp_path: Path, pg_schema: str, column: str) -> None:
    table = pa.table({column: EXACT_TYPES[column], "n": [1, 2, 3]})
    pg = backend(tmp_path, pg_schema)
    stored = pg.store("typed", table)
    loaded = pg.load("typed", stored.location, "arrow")
    assert isinstance(loaded, pa.Table)
    assert loaded.schema == table.schema
    assert table_hash(loaded) == stored.data_hash == table_hash(table)
    assert pg.check("typed", stored.location, stored.data_hash, "").status == "ok"  # a full rehash agrees


@pytest.mark.parametrize(
    ("column", "words"),
    [
        pytest.param(pa.array([2**63], pa.uint64()), "without changing its values", id="uint64-overflow"),
        pytest.param(pa.array([1001], pa.timestamp("ns")), "without changing its values", id="nanoseconds"),
        pytest.param(pa.array([{"x": 1}], pa.struct([("x", pa.int64())])), "cannot store", id="struct"),
        pytest.param(pa.array([[[1]]], pa.list_(pa.list_(pa.int64()))), "nested lists", id="nested-list"),
    ],
)
def test_values_postgres_cannot_hold_exactly_are_refused(
    tmp_path: Path, pg_schema: str, column: pa.Array, words: str
) -> None:
    with pytest.raises(StorageError, match=words) as info:
        backend(tmp_path, pg_schema).store("lossy", pa.table({"c": column}))
    assert "'c'" in str(info.value)


@pytest.mark.parametrize(
    ("table", "words"),
    [
        pytest.param(pa.table({"x" * 64: [1]}), "1 to 63 bytes", id="long-column-name"),
        pytest.param(pa.table({}), "no columns", id="no-columns"),
    ],
)
def test_tables_postgres_would_change_are_refused(tmp_path: Path, pg_schema: str, table: pa.Table, words: str) -> None:
    with pytest.raises(StorageError, match=words):
        backend(tmp_path, pg_schema).store("odd", table)


def test_a_value_that_is_not_a_table_is_refused_naming_the_asset(tmp_path: Path, pg_schema: str) -> None:
    with pytest.raises(StorageError, match=r"Asset 'orders'.*io='postgres' stores tables"):
        backend(tmp_path, pg_schema).store("orders", {"not": "a table"})


def test_odd_column_names_are_quoted(tmp_path: Path, pg_schema: str) -> None:
    table = pa.table({'Select "x"; drop table y': [1], "Größe": ["z"], "a b": [None]})
    pg = backend(tmp_path, pg_schema)
    stored = pg.store("odd", table)
    assert table_hash(pg.load("odd", stored.location, "arrow")) == stored.data_hash


def test_activate_points_the_view_at_the_current_version(tmp_path: Path, pg_schema: str) -> None:
    pg = backend(tmp_path, pg_schema)
    first = pg.store("orders", TABLE)
    second = pg.store("orders", TABLE.slice(0, 1))
    assert first.location != second.location
    pg.activate("orders", first.location)
    assert len(view_rows(pg_schema, "orders")) == 3
    pg.activate("orders", second.location)  # a restore only moves the view
    assert view_rows(pg_schema, "orders") == [(1, "a", 1.5)]
    other_columns = pg.store("orders", pa.table({"other": ["x", "y"]}))
    pg.activate("orders", other_columns.location)  # columns changed: the view is rebuilt
    assert view_rows(pg_schema, "orders") == [("x",), ("y",)]
    # every version stays addressable
    assert table_hash(pg.load("orders", first.location, "arrow")) == first.data_hash


def test_storing_the_same_content_again_replaces_that_version_under_the_view(tmp_path: Path, pg_schema: str) -> None:
    pg = backend(tmp_path, pg_schema)
    first = pg.store("orders", TABLE)
    pg.activate("orders", first.location)
    table = first.location.split(".")[1]
    sql(f'update "{pg_schema}"."{table}" set name = \'tampered\' where id = 1')
    again = pg.store("orders", TABLE)  # e.g. a rerun after tampering: same hash, same table name
    assert again.location == first.location and again.token != first.token
    assert pg.check("orders", again.location, again.data_hash, again.token).status == "ok"
    assert view_rows(pg_schema, "orders")[0] == (1, "a", 1.5)


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, pg_schema: str) -> None:
    pg = backend(tmp_path, pg_schema)
    good = pg.store("orders", TABLE)
    bad = pa.table({"id": [1], "name": ["NUL \x00 is not allowed in text"], "value": [1.0]})
    with pytest.raises(StorageError, match="store asset 'orders'"):
        pg.store("orders", bad)
    tables = [r[0] for r in sql("select tablename from pg_tables where schemaname = %s order by 1", pg_schema)]
    assert tables == ["assetflow$versions", good.location.split(".")[1]]
    # the backend recovered: the same instance keeps working
    assert pg.check("orders", good.location, good.data_hash, good.token).status == "ok"
    assert pg.store("orders", TABLE.slice(1)).rows == 2


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param("update {t} set value = 2.5 where id = 3", id="update"),
        pytest.param("update {t} set value = value where id = 3", id="update-same-value"),
        pytest.param("delete from {t} where id = 2", id="delete"),
        pytest.param("insert into {t} values (4, 'd', 4.0)", id="insert"),
        pytest.param("truncate {t}", id="truncate"),
        pytest.param("alter table {t} rename column name to label", id="rename-column"),
        pytest.param("alter table {t} add column extra int", id="add-column"),
        pytest.param("alter table {t} alter column value type integer", id="change-type"),
        pytest.param("alter table {t} alter column value type real", id="change-type-losslessly"),
    ],
)
def test_check_sees_tampering(tmp_path: Path, pg_schema: str, tamper: str) -> None:
    pg = backend(tmp_path, pg_schema)
    stored = pg.store("orders", TABLE)
    assert pg.check("orders", stored.location, stored.data_hash, stored.token).status == "ok"
    sql(tamper.format(t=f'"{pg_schema}"."{stored.location.split(".")[1]}"'))
    result = pg.check("orders", stored.location, stored.data_hash, stored.token)
    # The same values after all (rewritten in place, or in a type that holds them exactly): the
    # token moved, and the rehash finds the content unchanged.
    expected = "ok" if tamper.endswith(("set value = value where id = 3", "type real")) else "modified"
    assert result.status == expected
    assert result.token != stored.token


def test_check_rehashes_a_rewritten_but_equal_table_and_refreshes_the_token(tmp_path: Path, pg_schema: str) -> None:
    pg = backend(tmp_path, pg_schema)
    stored = pg.store("orders", TABLE)
    sql(f'vacuum full "{pg_schema}"."{stored.location.split(".")[1]}"')  # a new file node, same rows
    result = pg.check("orders", stored.location, stored.data_hash, stored.token)
    assert result.status == "ok" and result.token != stored.token
    assert pg.check("orders", stored.location, stored.data_hash, result.token) == result


def test_missing_and_delete(tmp_path: Path, pg_schema: str) -> None:
    pg = backend(tmp_path, pg_schema)
    stored = pg.store("orders", TABLE)
    pg.activate("orders", stored.location)
    pg.delete("orders", stored.location)  # the view showed it: the view goes too
    assert pg.check("orders", stored.location, stored.data_hash, stored.token).status == "missing"
    left = "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = %s"
    assert sql(f"{left} and c.relname in ('orders', %s)", pg_schema, stored.location.split(".")[1]) == [(0,)]
    assert sql(f'select count(*) from "{pg_schema}"."assetflow$versions"') == [(0,)]
    pg.delete("orders", stored.location)  # missing data is not an error
    with pytest.raises(StorageError, match=r"missing: PostgreSQL table .* does not exist.*materialize orders"):
        pg.load("orders", stored.location, "polars")


def test_a_long_asset_name_gets_a_table_name_postgres_keeps(tmp_path: Path, pg_schema: str) -> None:
    long_a, long_b = "a" * 60 + "_x1", "a" * 60 + "_x2"
    digest = "blake3:" + "0123456789abcdef" * 4
    names = {version_table(long_a, digest), version_table(long_b, digest)}
    assert len(names) == 2 and all(len(n) <= 63 and n.endswith("__0123456789abcdef") for n in names)
    pg = backend(tmp_path, pg_schema)
    stored = pg.store(long_a, TABLE)
    pg.activate(long_a, stored.location)
    assert len(view_rows(pg_schema, long_a)) == 3


@pytest.mark.parametrize(
    "location",
    [
        "orders", "public.orders", "x.orders__0123", 'a.b__0123456789abcdef"; drop table x; --',
        "../x.y__0123456789abcdef", "x.customers__0123456789abcdef",
    ],
)
def test_malformed_locations_are_refused(tmp_path: Path, pg_schema: str, location: str) -> None:
    with pytest.raises(StorageError, match="not a postgres version table"):
        backend(tmp_path, pg_schema).load("orders", location, "arrow")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        pytest.param({"schema": "Bad-Schema"}, "must match", id="schema"),
        pytest.param({"schema": "ok", "password": "x"}, "Unknown option", id="unknown"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, options: dict[str, object], words: str) -> None:
    with pytest.raises(StorageError, match=words):
        PostgresBackend(tmp_path, options)


def test_the_dsn_comes_from_the_named_variable_or_the_option() -> None:
    assert resolve_dsn({}, {"ASSETFLOW_POSTGRES_DSN": "postgresql://a@b/c"}) == "postgresql://a@b/c"
    assert resolve_dsn({"dsn_env": "MY_DB"}, {"MY_DB": "host=x"}) == "host=x"
    assert resolve_dsn({"dsn": "host=y"}, {}) == "host=y"
    with pytest.raises(StorageError, match="MY_DB is not set"):
        resolve_dsn({"dsn_env": "MY_DB"}, {})


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://assetflow:s3cr%40t-pw@127.0.0.1:1/assetflow",
        "host=127.0.0.1 port=1 user=assetflow password=s3cr@t-pw dbname=assetflow",
        "host=127.0.0.1 port=1 user=assetflow password='s3cr@t-pw' dbname=assetflow",
    ],
)
def test_errors_never_show_the_password(tmp_path: Path, pg_schema: str, dsn: str) -> None:
    pg = backend(tmp_path, pg_schema, dsn=dsn)
    with pytest.raises(StorageError) as info:
        pg.store("orders", TABLE)
    message = str(info.value)
    assert "s3cr" not in message and dsn not in message
    assert "127.0.0.1:1/assetflow" in message  # where it failed is still said
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained driver error


def test_mask_covers_uri_and_keyword_forms() -> None:
    text = "could not connect: postgresql://u:hunter22@h/db and password=hunter22 or password='hunter 22'"
    masked = mask(text)
    assert "hunter" not in masked and masked.count("***") == 3


def test_a_wrong_password_is_reported_without_it(tmp_path: Path, pg_schema: str) -> None:
    wrong = DSN.replace("assetflow-test@", "not-the-password-42@")
    assert wrong != DSN
    with pytest.raises(StorageError, match="password authentication failed") as info:
        backend(tmp_path, pg_schema, dsn=wrong).check("orders", f"{pg_schema}.orders__0123456789abcdef", "x", "")
    assert "not-the-password-42" not in str(info.value)


def _use_in_child(queue: multiprocessing.Queue, pg: PostgresBackend, location: str, data_hash: str) -> None:
    queue.put(table_hash(pg.load("orders", location, "arrow")) == data_hash)


def test_a_forked_worker_opens_its_own_connections(tmp_path: Path, pg_schema: str) -> None:
    pg = backend(tmp_path, pg_schema)
    stored = pg.store("orders", TABLE)
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(
        target=_use_in_child, args=(queue, pg, stored.location, stored.data_hash)
    )
    child.start()
    child.join(60)
    assert queue.get(timeout=5) is True
    # the parent's connections were neither used nor closed by the child
    assert pg.check("orders", stored.location, stored.data_hash, stored.token).status == "ok"
    assert table_hash(pg.load("orders", stored.location, "arrow")) == stored.data_hash


def _store_in_child(queue: multiprocessing.Queue, root: Path, schema: str, asset: str, rows: int) -> None:
    try:
        stored = PostgresBackend(root, {"schema": schema}).store(asset, TABLE.slice(0, rows))
        queue.put(stored.location)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(f"error: {exc}")


def test_parallel_workers_create_the_schema_and_write_the_same_version_safely(tmp_path: Path, pg_schema: str) -> None:
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = context.Queue()
    jobs = [("orders", 3), ("orders", 3), ("customers", 2), ("orders", 3)]
    children = [context.Process(target=_store_in_child, args=(queue, tmp_path, pg_schema, *job)) for job in jobs]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
    results = sorted(queue.get(timeout=10) for _ in jobs)
    assert not [r for r in results if r.startswith("error")], results
    assert len(set(results)) == 2
    pg = backend(tmp_path, pg_schema)
    for location in set(results):
        asset = location.split(".")[1].split("__")[0]
        assert pg.load(asset, location, "arrow").num_rows == (3 if asset == "orders" else 2)


def test_a_partitioned_asset_gets_one_view_over_its_current_partitions(tmp_path: Path, pg_schema: str) -> None:
    """Each partition is its own version table; the view switches to their union, in key order, at once."""
    store = backend(tmp_path, pg_schema)
    parts = {key: store.store("sales", pa.table({"region": [key], "amount": [n]}))
             for n, key in enumerate(["eu", "us", "apac"])}
    store.activate_partitions("sales", [parts[k].location for k in ("eu", "us", "apac")])
    assert sql(f'select region from "{pg_schema}"."sales"') == [("eu",), ("us",), ("apac",)]
    changed = store.store("sales", pa.table({"region": ["us"], "amount": [10]}))
    store.activate_partitions("sales", [parts["eu"].location, changed.location, parts["apac"].location])
    assert sql(f'select amount from "{pg_schema}"."sales"') == [(0,), (10,), (2,)]
    tables = {r[0] for r in sql("select table_name from information_schema.tables where table_schema = %s "
                                "and table_type = 'BASE TABLE'", pg_schema)}
    assert len({t for t in tables if t.startswith("sales__")}) == 4  # writing one partition never rewrote the others


def test_the_partition_view_matches_columns_by_name(tmp_path: Path, pg_schema: str) -> None:
    """As load() and DuckDB's UNION ALL BY NAME: another column order, a missing or an extra column, a wider type."""
    store = backend(tmp_path, pg_schema)
    parts = [
        store.store("ev", pa.table({"user": ["u1"], "n": [1], "day": ["d1"]})),
        store.store("ev", pa.table({"day": ["d2"], "n": [2], "user": ["u2"]})),  # same columns, another order
        store.store("ev", pa.table({"user": ["u3"], "day": ["d3"], "extra": [1.5]})),  # no n, one more column
        store.store("ev", pa.table({"user": ["u4"], "n": [4.5], "day": ["d4"]})),  # n a double here
        store.store("ev", pa.table({"user": ["u5"], "n": ["five"], "day": ["d5"]})),  # and text there
    ]
    store.activate_partitions("ev", [p.location for p in parts[:4]])
    assert sql(f'select "user", n, day, extra from "{pg_schema}"."ev"') == [
        ("u1", 1.0, "d1", None), ("u2", 2.0, "d2", None), ("u3", None, "d3", 1.5), ("u4", 4.5, "d4", None)]
    store.activate_partitions("ev", [parts[0].location, parts[4].location])
    assert sql(f'select "user", n from "{pg_schema}"."ev"') == [("u1", "1"), ("u5", "five")]


def test_writing_a_partition_version_again_keeps_the_whole_union_in_the_view(tmp_path: Path, pg_schema: str) -> None:
    """A rerun writing an existing version table (same content, or one tampered with) never narrows the view."""
    store = backend(tmp_path, pg_schema)
    tables = {key: pa.table({"region": [key], "amount": [n]}) for n, key in enumerate(["eu", "us", "apac"])}
    tables["apac"] = tables["eu"]  # two partitions with equal data share one table
    parts = {key: store.store("sales", table) for key, table in tables.items()}
    store.activate_partitions("sales", [parts[k].location for k in ("eu", "us", "apac")])
    sql(f'update "{pg_schema}"."{parts["us"].location.split(".")[1]}" set amount = 99')
    for key in ("us", "eu"):
        assert store.store("sales", tables[key]).location == parts[key].location
        assert sql(f'select region, amount from "{pg_schema}"."sales"') == [("eu", 0), ("us", 1), ("eu", 0)]


def test_a_partitioned_asset_with_no_partition_left_has_no_view(tmp_path: Path, pg_schema: str) -> None:
    """Its removed keys' rows were served until gc dropped their tables."""
    store = backend(tmp_path, pg_schema)
    store.activate_partitions("cleaned", [])  # nothing stored yet, not even the schema: nothing to do
    part = store.store("cleaned", pa.table({"v": [1], "cust": ["acme"]}))
    store.activate_partitions("cleaned", [part.location])
    assert view_rows(pg_schema, "cleaned") == [(1, "acme")]
    store.activate_partitions("cleaned", [])
    assert sql("select 1 from information_schema.views where table_schema = %s", pg_schema) == []
    assert table_hash(store.load("cleaned", part.location, "arrow")) == part.data_hash  # the version stays for gc
