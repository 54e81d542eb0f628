"""Results that settle together are recorded in one state transaction (docs/execution.md, "Batched recording").

A real run on a real project and state store; the executor is a small one of the kind a plugin
registers: it computes each task here when it is submitted but reports it done only when the
runner waits, so the four assets of the project settle in one batch, as results do that arrive
together from a pool's workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from assetflow import api, hookimpl
from assetflow.plugins import plugin_manager
from assetflow.state.store import StateStore
from assetflow.storage.parquet import ParquetBackend
from conftest import ProjectDir

T = TypeVar("T")


class Together:
    """Computes at submit, reports at wait: every result in flight settles in the same batch."""

    name: ClassVar[str] = "together"
    capacity = 4
    shares_host: ClassVar[bool] = True

    def submit(self, fn: Callable[[T], object], arg: T, *, timeout: float | None = None) -> Future[object]:
        future: Future[object] = Future()
        try:
            future.set_result(fn(arg))
        except Exception as exc:  # noqa: BLE001 - handed to the runner through the future
            future.set_exception(exc)
        return future

    def wait_any(self, futures: Iterable[Future[object]], timeout: float | None = None) -> set[Future[object]]:
        return set(futures)

    def shutdown(self, cancel: bool = False) -> None:
        return None


@pytest.fixture
def refusing_backend(tmp_path: Path) -> Iterator[Path]:
    """A Parquet backend named ``refusing`` whose ``activate`` fails while the returned file exists."""
    broken = tmp_path / "view-broken"

    class Refusing(ParquetBackend):
        name: ClassVar[str] = "refusing"

        def activate(self, asset: str, location: str) -> None:
            if broken.exists():
                raise OSError("the warehouse refused the view switch")

    class RefusingPlugin:
        @hookimpl
        def assetflow_io_backends(self) -> list[type[Refusing]]:
            return [Refusing]

    plugin = RefusingPlugin()
    plugin_manager().register(plugin)
    yield broken
    plugin_manager().unregister(plugin)


def test_a_batch_is_one_transaction_and_a_refused_version_fails_alone(tmp_path: Path, refusing_backend: Path) -> None:
    project = ProjectDir(tmp_path / "p", ["pipeline"])
    project.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset

        @asset(io="refusing")
        def served() -> pl.DataFrame:
            return pl.DataFrame({"n": [1]})

        @asset
        def first() -> pl.DataFrame:
            return pl.DataFrame({"k": [1]})

        @asset
        def second() -> pl.DataFrame:
            return pl.DataFrame({"k": [2]})

        @asset
        def third(first: pl.DataFrame) -> pl.DataFrame:
            return first.with_columns(k=pl.col("k") * 3)
    ''')
    refusing_backend.touch()
    result = api.materialize(project=project.root, executor=Together())
    outcomes = {name: r.outcome for name, r in result.results.items()}
    assert outcomes == {"served": "failed", "first": "ran", "second": "ran", "third": "ran"}
    assert "could not make this version of `served` current" in (result.results["served"].error or "")

    store = StateStore(project.root / ".assetflow")
    try:
        ran = [e for e in store.events(runs=[result.run_id]) if e["outcome"] == "ran"]
        batches: dict[Any, set[str]] = {}
        for event in ran:
            batches.setdefault(event["at"], set()).add(str(event["asset"]))
        # first and second settled together; third was decided only after their commit, so it ran later.
        assert sorted(map(sorted, batches.values())) == [["first", "second"], ["third"]]
        assert set(store.current()) == {"first", "second", "third"}  # the refused version is not recorded
    finally:
        store.close()
    assert api.load("third", project=project.root)["k"].to_list() == [3]

    refusing_backend.unlink()
    again = api.materialize(project=project.root, executor=Together())
    assert {name: r.outcome for name, r in again.results.items()} == {
        "served": "ran", "first": "fresh", "second": "fresh", "third": "fresh"}
