"""The state store parses its current records once while the database is unchanged, never after a change."""

from __future__ import annotations

from pathlib import Path

from assetflow.state.store import Materialization, StateStore


def _version(asset: str, data_hash: str) -> Materialization:
    return Materialization(asset=asset, run_id="r", recipe_key="k-" + data_hash, data_hash=data_hash,
                           code_fingerprint="c", config="", upstream={}, deps=(), io="parquet",
                           location=f"{asset}/{data_hash}.parquet", token="t", rows=1, schema=[], bytes=1,
                           libraries={}, started_at=0.0, finished_at=0.0)


def test_current_records_follow_every_write_of_this_or_another_connection(tmp_path: Path) -> None:
    reader, writer = StateStore(tmp_path), StateStore(tmp_path)
    try:
        assert reader.current() == {}
        with writer.transaction() as db:  # another connection (a run in another process) commits
            writer.record(db, _version("a", "h1"))
        assert reader.current()["a"].data_hash == "h1"
        assert reader.current() is not reader.current()  # a copy each time: callers may change theirs
        with reader.transaction() as db:  # this connection writes: its own change is seen too
            reader.record(db, _version("a", "h2"))
        assert reader.current()["a"].data_hash == "h2"
        with writer.transaction() as db:
            writer.record(db, _version("b", "h3"))
        assert {n: m.data_hash for n, m in reader.current().items()} == {"a": "h2", "b": "h3"}
        assert set(reader.current_of(["b"])) == {"b"} and set(reader.current_of(["a"])) == {"a"}
    finally:
        reader.close()
        writer.close()


def test_a_changed_database_parses_again_only_the_records_that_moved(tmp_path: Path, monkeypatch) -> None:
    """After a run moved a few pointers of many, only those records are parsed again; a record whose stat
    token was refreshed is read again too, and the rows equal what a new connection reads."""
    import assetflow.state.store as store_module

    reader, writer = StateStore(tmp_path), StateStore(tmp_path)
    parsed: list[str] = []
    parse = store_module.row_to_materialization
    monkeypatch.setattr(store_module, "row_to_materialization", lambda row: parsed.append(row[1]) or parse(row))
    try:
        with writer.transaction() as db:
            for i in range(50):
                writer.record(db, _version(f"a{i:02d}", "h1"))
        first = reader.current()
        assert len(first) == 50 and len(parsed) == 50
        parsed.clear()
        with writer.transaction() as db:
            writer.record(db, _version("a07", "h2"))  # a run moved one pointer
        writer.update_token(first["a06"].id, "t2")  # ...and a check refreshed another record's token
        current = reader.current()
        assert sorted(parsed) == ["a06", "a07"]
        assert current["a07"].data_hash == "h2" and current["a06"].token == "t2"
        fresh = StateStore(tmp_path)
        try:
            assert current == fresh.current() and list(current) == list(fresh.current())  # same rows, same order
        finally:
            fresh.close()
    finally:
        reader.close()
        writer.close()
