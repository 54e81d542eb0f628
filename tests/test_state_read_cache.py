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
