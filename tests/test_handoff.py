"""Upstream tables handed over in memory (issue 17, ``assetflow.execute.handoff``).

What an asset receives must not depend on whether its upstream ran in the same process: a kept
table is handed out only when it equals what the backend reads back, type for type, and each
consumer gets its own frame.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from assetflow import api
from assetflow.contracts import InputRef
from assetflow.execute import handoff
from assetflow.execute.policy import PoolLimits
from assetflow.storage.parquet import ParquetBackend

EXACT = {
    "i8": pa.array([1, None, -3], pa.int8()),
    "u64": pa.array([1, 2**63, None], pa.uint64()),
    "f32": pa.array([1.5, None, -0.0], pa.float32()),
    "f64": pa.array([float("nan"), None, 1e300]),
    "flag": pa.array([True, None, False]),
    "s": pa.array(["a", None, "é"], pa.string()),
    "ls": pa.array(["a", None, ""], pa.large_string()),
    "bin": pa.array([b"a", None, b""], pa.binary()),
    "day": pa.array([dt.date(2020, 1, 1), None, dt.date(1, 1, 1)], pa.date32()),
    "ms": pa.array([0, None, 1_700_000_000_000], pa.timestamp("ms")),
    "ns_paris": pa.array([0, None, 1], pa.timestamp("ns", "Europe/Paris")),
    "us_utc": pa.array([0, None, 1], pa.timestamp("us", "UTC")),
}
INEXACT = {
    "seconds": pa.table({"t": pa.array([0, 1], pa.timestamp("s"))}),  # Parquet reads it back in ms
    "dictionary": pa.table({"d": pa.array(["a", "b"]).dictionary_encode()}),
    "metadata": pa.table({"x": [1, 2]}).replace_schema_metadata({"k": "v"}),
    "struct": pa.table({"st": pa.array([{"a": 1}, None])}),
}


@pytest.fixture(autouse=True)
def _empty_store():
    handoff.clear()
    yield
    handoff.clear()


def _ref(stored, name: str = "up") -> InputRef:
    return InputRef(name, "parquet", stored.location, data_hash=stored.data_hash)


@pytest.mark.parametrize("column", sorted(EXACT))
def test_a_kept_table_is_what_the_backend_reads_back(tmp_path: Path, column: str) -> None:
    backend = ParquetBackend(tmp_path, {})
    stored = handoff.store(backend, "parquet", "up", pa.table({column: EXACT[column]}))
    assert handoff.kept_count() == 1
    ref = _ref(stored)
    read_arrow = backend.load("up", stored.location, "arrow")
    kept_arrow = handoff.take(ref, "arrow")
    assert kept_arrow.schema == read_arrow.schema
    assert_frame_equal(pl.from_arrow(kept_arrow), pl.from_arrow(read_arrow))  # NaN equals NaN here
    assert_frame_equal(handoff.take(ref, "polars"), backend.load("up", stored.location, "polars"))
    assert_frame_equal(handoff.take(ref, "lazy").collect(), backend.load("up", stored.location, "lazy").collect())


def test_a_polars_frame_is_handed_over_as_copies_that_read_like_the_file(tmp_path: Path) -> None:
    """The frame the asset returned is kept: neither the asset changing it afterwards nor a consumer
    changing what it was handed changes what the next consumer gets."""
    backend = ParquetBackend(tmp_path, {})
    frame = pl.DataFrame({"a": [3, 1, None], "s": ["x", None, "a string longer than twelve bytes"]})
    stored = handoff.store(backend, "parquet", "up", frame)
    frame.drop_in_place("a")  # the asset kept its frame and changes it later
    ref = _ref(stored)
    handed = handoff.take(ref, "polars")
    assert_frame_equal(handed, backend.load("up", stored.location, "polars"))
    handed.drop_in_place("s")
    handed.insert_column(0, pl.Series("b", [7, 8, 9]))
    assert_frame_equal(handoff.take(ref, "polars"), backend.load("up", stored.location, "polars"))
    assert_frame_equal(handoff.take(ref, "lazy").collect(), backend.load("up", stored.location, "polars"))
    arrow, read = handoff.take(ref, "arrow"), backend.load("up", stored.location, "arrow")
    assert arrow.schema == read.schema
    assert arrow.equals(read)


def test_a_frame_flagged_sorted_is_handed_over_without_the_flag(tmp_path: Path) -> None:
    """Polars trusts a sorted flag (``set_sorted`` may even be wrong); a file read back has none."""
    backend = ParquetBackend(tmp_path, {})
    frame = pl.DataFrame({"a": [1, 3, 2]}).with_columns(pl.col("a").set_sorted())
    stored = handoff.store(backend, "parquet", "up", frame)
    handed = handoff.take(_ref(stored), "polars")
    read = backend.load("up", stored.location, "polars")
    assert not read["a"].flags["SORTED_ASC"]
    assert handed["a"].flags == read["a"].flags
    assert handed["a"].max() == read["a"].max() == 3  # a flagged column's max would be its last value, 2


@pytest.mark.parametrize("kind", sorted(INEXACT))
def test_a_table_parquet_would_change_is_read_back_not_kept(tmp_path: Path, kind: str) -> None:
    stored = handoff.store(ParquetBackend(tmp_path, {}), "parquet", "up", INEXACT[kind])
    assert handoff.kept_count() == 0
    assert handoff.take(_ref(stored), "polars") is None


def test_only_the_very_version_is_handed_over(tmp_path: Path) -> None:
    stored = handoff.store(ParquetBackend(tmp_path, {}), "parquet", "up", pl.DataFrame({"x": [1]}))
    assert handoff.take(_ref(stored), "polars") is not None
    assert handoff.take(InputRef("up", "parquet", stored.location), "polars") is None  # no hash: not vouched for
    assert handoff.take(InputRef("up", "parquet", stored.location, data_hash="blake3:00"), "polars") is None
    assert handoff.take(InputRef("up", "duckdb", stored.location, data_hash=stored.data_hash), "polars") is None


def test_the_store_is_bounded_by_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = pa.table({"x": pa.array(range(1000), pa.int64())})  # 8,000 bytes
    monkeypatch.setattr(handoff, "BUDGET_BYTES", 4 * table.nbytes)
    backend = ParquetBackend(tmp_path, {})
    stored = [handoff.store(backend, "parquet", f"a{i}", table) for i in range(6)]
    assert handoff.kept_count() == 4
    assert handoff.take(_ref(stored[0], "a0"), "arrow") is None  # least recently used, out first
    assert handoff.take(_ref(stored[5], "a5"), "arrow") is not None
    big = pa.table({"x": pa.array(range(1001), pa.int64())})  # over a quarter of the budget
    handoff.store(backend, "parquet", "big", big)
    assert handoff.kept_count() == 4


PIPELINE = """
    import polars as pl
    import pyarrow as pa
    from assetflow import asset

    @asset
    def up() -> pl.DataFrame:
        return pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None]})

    @asset
    def changes_its_input_in_place(up: pl.DataFrame) -> pl.DataFrame:
        up.drop_in_place("a")
        return up

    @asset
    def reads_it_after(changes_its_input_in_place: pl.DataFrame, up: pl.DataFrame) -> pl.DataFrame:
        return up.with_columns(width=pl.lit(up.width))

    @asset
    def as_arrow(up: pa.Table) -> pa.Table:
        return up.append_column("kind", pa.array([type(up).__name__] * up.num_rows))

    @asset
    def lazily(up: pl.LazyFrame) -> pl.LazyFrame:
        return up.with_columns(kind=pl.lit(type(up).__name__))
"""


def test_a_run_hands_over_the_same_values_as_files_would(project, monkeypatch: pytest.MonkeyPatch) -> None:
    """In one process, with and without the handoff: the same data hash for every asset, and an asset
    that changes its input in place changes nothing another asset receives."""
    project.write("pipeline.py", PIPELINE)
    hashes = {}
    handed: list[str] = []
    take = handoff.take

    def counted(ref: InputRef, kind: str) -> object:
        value = take(ref, kind)  # type: ignore[arg-type]
        if value is not None:
            handed.append(ref.name)
        return value

    monkeypatch.setattr(handoff, "take", counted)
    for budget in (handoff.BUDGET_BYTES, 0):
        monkeypatch.setattr(handoff, "BUDGET_BYTES", budget)
        result = api.materialize(project=project.root, executor="inprocess", force=True)
        assert {r.outcome for r in result.results.values()} == {"ran"}
        hashes[budget] = {name: r.data_hash for name, r in result.results.items()}
    assert sorted(handed) == ["changes_its_input_in_place", *["up"] * 4]  # the first run's, all from memory
    assert hashes[max(hashes)] == hashes[0]
    after = api.load("reads_it_after", project=project.root)
    assert after["width"].to_list() == [2, 2, 2]  # `a` and `b`: the in-place drop stayed in its own frame
    assert api.load("as_arrow", project=project.root)["kind"][0] == "Table"
    assert api.load("lazily", project=project.root)["kind"][0] == "LazyFrame"


def test_a_source_of_several_files_reaches_its_assets_in_one_chunk(project) -> None:
    """Each chunk would be carried through every asset's work, its hash and its Parquet file."""
    project.write("parts/a.csv", "n\n1\n2\n")
    project.write("parts/b.csv", "n\n3\n")
    project.write("pipeline.py", """
        import polars as pl
        from assetflow import asset, source

        parts = source("parts/*.csv")

        @asset
        def chunks(parts: pl.DataFrame) -> pl.DataFrame:
            return pl.DataFrame({"chunks": [parts.n_chunks()], "total": [parts["n"].sum()]})
    """)
    assert pl.concat([pl.read_csv(project.root / "parts" / f) for f in ("a.csv", "b.csv")]).n_chunks() == 2
    api.materialize(project=project.root, executor="inprocess")
    assert api.load("chunks", project=project.root).row(0) == (1, 6)


def test_the_next_free_slot_goes_to_the_task_whose_inputs_are_there() -> None:
    limits = PoolLimits({})
    for name in ("first", "second", "third"):
        limits.push(name, frozenset())
    held = {"second": 2, "third": 2}
    assert limits.pop_startable(lambda name: held.get(name, 0)) == ("second", frozenset())  # first of the best
    assert limits.pop_startable() == ("first", frozenset())  # no score: the longest waiting


CHAIN = """
    import os
    import polars as pl
    from assetflow import asset

    def ran_here(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return pl.concat([frame, pl.DataFrame({"asset": [name], "pid": [os.getpid()]})])

    @asset
    def a() -> pl.DataFrame:
        return ran_here(pl.DataFrame(schema={"asset": pl.String, "pid": pl.Int64}), "a")

    @asset
    def b(a: pl.DataFrame) -> pl.DataFrame:
        return ran_here(a, "b")

    @asset
    def c(b: pl.DataFrame) -> pl.DataFrame:
        return ran_here(b, "c")

    @asset
    def d(c: pl.DataFrame) -> pl.DataFrame:
        return ran_here(c, "d")
"""


def test_a_pool_runs_each_task_where_its_input_was_made(project) -> None:
    """Two workers, a chain: every link runs in the worker that made (and keeps) its upstream.

    End to end through real workers; which free worker is chosen, and why, is pinned without
    processes by the next test (here the worker that just finished is also the last free one)."""
    project.write("pipeline.py", CHAIN)
    assert project.ran("--jobs", "2") == {"a", "b", "c", "d"}
    trail = api.load("d", project=project.root)
    assert trail["asset"].to_list() == ["a", "b", "c", "d"]
    assert trail["pid"].n_unique() == 1, trail


def test_the_free_worker_that_made_a_tasks_inputs_gets_it() -> None:
    """Scoring without processes: the pool's choice among its free workers, and the score the runner sees."""
    from collections import deque
    from types import SimpleNamespace

    from assetflow.execute.pool import ProcessExecutor

    pool = ProcessExecutor(jobs=3)
    made_a, made_b, made_none = ({"a/1.parquet": None}, {"b/2.parquet": None, "c/3.parquet": None}, {})
    workers = [SimpleNamespace(made=m, jobs=deque()) for m in (made_a, made_b, made_none)]
    pool._ready = workers  # type: ignore[assignment]
    reads_b_c = SimpleNamespace(reads=("b/2.parquet", "c/3.parquet"))
    assert pool.affinity(reads_b_c) == 2
    assert pool.affinity(SimpleNamespace(reads=())) == 0  # reads only sources: no worker holds any of it
    assert pool._best_free(reads_b_c, pool._free()) is workers[1]
    assert pool._best_free(SimpleNamespace(reads=("a/1.parquet",)), pool._free()) is workers[0]
    assert pool._best_free(SimpleNamespace(reads=()), pool._free()) is workers[2]  # nothing held: the last free one

    # A worker with nothing to compute is given work before another is sent a second task to hold.
    workers[1].jobs.append("computing")
    pool._free_now = None  # what the pool's own calls do when its workers change (next test)
    assert pool._free() == [workers[0], workers[2]]
    assert pool.affinity(reads_b_c) == 0  # the worker holding b and c is busy: no free worker scores
    for worker in (workers[0], workers[2]):
        worker.jobs.append("computing")
    assert pool._best_free(reads_b_c, pool._free()) is workers[1]  # all busy: it holds b and c's next task
    for worker in workers:
        worker.jobs.append("next")
    pool._free_now = None
    assert pool._free() == [] and pool.affinity(reads_b_c) == 0  # every worker holds two: none takes more


def test_scoring_waiting_tasks_finds_the_free_workers_once_between_two_calls_of_the_pool() -> None:
    """The runner scores up to 32 waiting tasks for each one it sends: the free workers are the
    same for all of them (only the pool's own calls change them), and found again after such a call."""
    from collections import deque
    from types import SimpleNamespace

    from assetflow.execute.pool import ProcessExecutor

    pool = ProcessExecutor(jobs=2)
    holding_b = SimpleNamespace(made={"b/2.parquet": None}, jobs=deque(["computing"]))
    workers = [SimpleNamespace(made={}, jobs=deque()), holding_b]
    pool._ready = workers  # type: ignore[assignment]
    found = []
    free = pool._free
    pool._free = lambda: found.append(1) or free()  # type: ignore[method-assign]
    reads_b = SimpleNamespace(reads=("b/2.parquet",))
    assert [pool.affinity(reads_b) for _ in range(32)] == [0] * 32  # the worker that made b is busy
    assert len(found) == 1

    holding_b.jobs.clear()  # its task finished: the next call of the pool sees it free
    assert pool.wait_any([], timeout=0) == set()
    assert pool.affinity(reads_b) == 1
    assert len(found) == 2
