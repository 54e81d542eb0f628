"""Partitions: definitions, the range grammar, mappings, and the engine per partition (in process)."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import textwrap
from pathlib import Path

import polars as pl
import pytest

from assetflow import api
from assetflow.errors import DefinitionError, PartitionKeyError
from assetflow.partitions import all_partitions, daily, dynamic, hourly, identity, latest, monthly, static, weekly, window
from assetflow.partitions.mappings import resolve
from assetflow.partitions.ranges import select_keys
from assetflow.workspace import Workspace


class Clock:
    def __init__(self, now: datetime.datetime, dynamic_keys: dict[str, list[str]] | None = None) -> None:
        self.now = now
        self._dynamic = dynamic_keys or {}

    def dynamic_keys(self, name: str) -> list[str]:
        return self._dynamic.get(name, [])


JAN_10 = Clock(datetime.datetime(2024, 1, 10, tzinfo=datetime.UTC))


# -- definitions -----------------------------------------------------------------------------

def test_time_definitions_list_the_windows_that_have_ended() -> None:
    assert daily("2024-01-01").keys(JAN_10)[-1] == "2024-01-09"  # the 10th is not over yet
    assert daily("2024-01-01", end="2024-01-03").keys(JAN_10) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert monthly("2023-11-01").keys(JAN_10) == ["2023-11", "2023-12"]
    assert weekly("2023-12-18").keys(JAN_10) == ["2023-12-18", "2023-12-25", "2024-01-01"]
    assert hourly("2024-01-09-22:00").keys(JAN_10) == ["2024-01-09-22:00", "2024-01-09-23:00"]


def test_a_timezone_moves_the_end_of_the_day() -> None:
    # 23:30 UTC on the 9th is already the 10th in Paris: the 9th is over there, not in UTC.
    late = Clock(datetime.datetime(2024, 1, 9, 23, 30, tzinfo=datetime.UTC))
    assert daily("2024-01-01").keys(late)[-1] == "2024-01-08"
    assert daily("2024-01-01", timezone="Europe/Paris").keys(late)[-1] == "2024-01-09"
    window_of = daily("2024-01-01", timezone="Europe/Paris").partition("2024-01-05")
    assert window_of.start.isoformat() == "2024-01-05T00:00:00+01:00" and window_of.end.day == 6


def test_time_windows_follow_real_time_across_daylight_saving() -> None:
    later = Clock(datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    # spring forward in Paris: 02:00 never happens, so it is no key (it would wait for data forever)
    spring = hourly("2024-03-31-00:00", end="2024-03-31-04:00", timezone="Europe/Paris")
    assert spring.keys(later) == ["2024-03-31-00:00", "2024-03-31-01:00", "2024-03-31-03:00", "2024-03-31-04:00"]
    # fall back: 02:00 happens twice; the second carries its offset, every other key reads as before
    fall = hourly("2024-10-27-01:00", end="2024-10-27-03:00", timezone="Europe/Paris")
    assert fall.keys(later) == ["2024-10-27-01:00", "2024-10-27-02:00", "2024-10-27-02:00+0100", "2024-10-27-03:00"]
    windows = [fall.partition(k) for k in fall.keys(later)]
    assert [(w.start.astimezone(datetime.UTC).hour, w.end - w.start) for w in windows] == \
        [(h, datetime.timedelta(hours=1)) for h in (23, 0, 1, 2)]
    utc = [(w.start.astimezone(datetime.UTC), w.end.astimezone(datetime.UTC)) for w in windows]
    assert all(end == after for (_, end), (after, _) in zip(utc, utc[1:]))  # by instant: == on a repeated hour is not
    lengths = {key: daily("2024-01-01", timezone="Europe/Paris").partition(key) for key in ("2024-03-31", "2024-10-27")}
    assert {k: p.end - p.start for k, p in lengths.items()} == \
        {"2024-03-31": datetime.timedelta(hours=23), "2024-10-27": datetime.timedelta(hours=25)}
    march = monthly("2024-01", timezone="Europe/Paris").partition("2024-03")
    assert march.end - march.start == datetime.timedelta(days=31, hours=-1)


def test_window_ends_compare_as_instants_across_a_repeated_hour() -> None:
    """At fall-back, key 2024-10-27-02:00 ends at 02:00+01:00 where the repeated hour starts: ``end == next.start``
    was False (and neither < nor >: PEP 495 makes an ambiguous time unequal to every time of another tzinfo), so a
    user's contiguity check or sort of windows broke on that day. They compare, sort, hash and subtract as instants,
    and stay datetimes in the definition's zone (polars reads them as Europe/Paris)."""
    later = Clock(datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    fall = hourly("2024-10-27-01:00", end="2024-10-27-03:00", timezone="Europe/Paris")
    windows = [fall.partition(k) for k in fall.keys(later)]
    assert all(w.end == after.start and not w.end < after.start for w, after in zip(windows, windows[1:]))
    assert all(w.start < w.end and w.end - w.start == datetime.timedelta(hours=1) for w in windows)
    assert sorted(w.start for w in reversed(windows)) == [w.start for w in windows]
    assert len({w.end for w in windows[:-1]} | {w.start for w in windows[1:]}) == 3
    assert windows[1].end == datetime.datetime(2024, 10, 27, 1, tzinfo=datetime.UTC)
    assert windows[2].start + datetime.timedelta(hours=1) == windows[2].end
    assert str(windows[2].start.tzinfo) == "Europe/Paris"
    assert pl.DataFrame({"t": [windows[2].start]})["t"].dtype == pl.Datetime("us", "Europe/Paris")


def test_hours_that_start_off_the_hour_are_allowed_and_mapped_by_time() -> None:
    """As Dagster's minute_offset: data landing at :30 is read in hours from :30; only key-by-key mappings to
    on-the-hour keys are refused (test_wrong_mappings_name_both_assets)."""
    half = hourly("2024-01-01-00:30", end="2024-01-01-02:30")
    assert half.keys(JAN_10) == ["2024-01-01-00:30", "2024-01-01-01:30", "2024-01-01-02:30"]
    assert resolve("d", half, "u", hourly("2024-01-01-00:00"), all_partitions()) == all_partitions()
    assert resolve("d", half, "u", hourly("2023-12-31-23:30"), None) == identity()


def test_static_dynamic_and_product() -> None:
    assert static(["eu", "us"]).keys(JAN_10) == ["eu", "us"]
    assert dynamic("customers").keys(Clock(JAN_10.now, {"customers": ["acme", "beta"]})) == ["acme", "beta"]
    both = daily("2024-01-01", end="2024-01-02") * static(["eu", "us"])
    assert both.keys(JAN_10) == ["2024-01-01|eu", "2024-01-01|us", "2024-01-02|eu", "2024-01-02|us"]
    part = both.partition("2024-01-02|us")
    assert part.parts == ("2024-01-02", "us") and part.start is not None and part.start.day == 2


@pytest.mark.parametrize(("make", "words"), [
    (lambda: daily("01/01/2024"), "not a daily key"),
    (lambda: daily("2024-01-01", timezone="Mars/Olympus"), "unknown time zone"),
    (lambda: weekly("2024-01-03"), "starts on a Monday"),
    (lambda: static([]), "non-empty list"),
    (lambda: static(["eu", "eu"]), "appear twice"),
    (lambda: static(["a,b"]), "not allowed"),
    (lambda: dynamic("Bad Name"), "not allowed"),
    (lambda: daily("2024-01-05", end="2024-01-01"), "end is before start"),
])
def test_bad_definitions_say_what_to_do(make: object, words: str) -> None:
    with pytest.raises(DefinitionError, match=words):
        make()  # type: ignore[operator]


# -- the range grammar -----------------------------------------------------------------------

DAYS = daily("2024-01-01")
KEYS = DAYS.keys(JAN_10)


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-02..2024-01-04", ["2024-01-02", "2024-01-03", "2024-01-04"]),
    ("2024-01-08..", ["2024-01-08", "2024-01-09"]),
    ("..2024-01-01", ["2024-01-01"]),
    ("latest", ["2024-01-09"]),
    ("2024-01-05, 2024-01-01,latest", ["2024-01-01", "2024-01-05", "2024-01-09"]),
    ("all", KEYS),
])
def test_ranges_select_keys_in_definition_order(text: str, expected: list[str]) -> None:
    assert select_keys(text, DAYS, KEYS, "daily_events") == expected


@pytest.mark.parametrize(("text", "words", "caret"), [
    ("2023-12-31..2024-01-03", "outside daily", 0),
    ("2024-01-01..2024-13-01", "not a key of that form", 12),
    ("2024-01-05..2024-01-02", "runs backwards", 0),
    ("2024-01-01,,2024-01-02", "empty item", 11),
    ("2024-01-01..2024-01-02..2024-01-03", "one '..'", 22),
])
def test_bad_ranges_name_the_asset_and_point_at_the_key(text: str, words: str, caret: int) -> None:
    with pytest.raises(PartitionKeyError, match=words) as info:
        select_keys(text, DAYS, KEYS, "daily_events")
    assert info.value.asset == "daily_events" and "'daily_events'" in str(info.value)
    assert info.value.position == caret and "^" in str(info.value)


GRID = daily("2024-01-01", end="2024-01-03") * static(["fr", "de"])
GRID_KEYS = GRID.keys(JAN_10)


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-01-02", ["2024-01-02|fr", "2024-01-02|de"]),
    ("2024-01-02..2024-01-03", ["2024-01-02|fr", "2024-01-02|de", "2024-01-03|fr", "2024-01-03|de"]),
    ("de", ["2024-01-01|de", "2024-01-02|de", "2024-01-03|de"]),
    ("2024-01-01|de,2024-01-03", ["2024-01-01|de", "2024-01-03|fr", "2024-01-03|de"]),
])
def test_a_key_of_one_dimension_selects_the_product_keys_that_have_it(text: str, expected: list[str]) -> None:
    """It was refused ('not a key of that form'): one day of a daily * static asset needed '2024-01-02|fr..2024-01-02|de'."""
    assert select_keys(text, GRID, GRID_KEYS, "grid") == expected


def test_a_key_of_a_product_that_is_in_both_dimensions_or_neither_is_refused() -> None:
    square = static(["a", "b"]) * static(["a", "c"])
    with pytest.raises(PartitionKeyError, match="could be a key of either dimension"):
        select_keys("a", square, square.keys(JAN_10), "square")
    assert select_keys("c", square, square.keys(JAN_10), "square") == ["a|c", "b|c"]
    with pytest.raises(PartitionKeyError, match="outside daily"):
        select_keys("2023-12-31", GRID, GRID_KEYS, "grid")


def test_an_unknown_dynamic_key_says_how_to_add_it() -> None:
    with pytest.raises(PartitionKeyError, match="assetflow partitions add customers zeta"):
        select_keys("zeta", dynamic("customers"), ["acme"], "orders")


# -- mappings --------------------------------------------------------------------------------

def test_mappings_resolve_and_map_keys() -> None:
    days = daily("2024-01-01", end="2024-01-09")
    keys = days.keys(JAN_10)
    index = {k: i for i, k in enumerate(keys)}
    assert resolve("d", days, "u", days, None).upstream_keys("2024-01-05", keys, index) == ["2024-01-05"]
    last3 = resolve("d", days, "u", days, window(-2, 0))
    assert last3.upstream_keys("2024-01-05", keys, index) == ["2024-01-03", "2024-01-04", "2024-01-05"]
    assert last3.upstream_keys("2024-01-01", keys, index) == ["2024-01-01"]  # clipped at the first key
    assert resolve("d", None, "u", days, None).upstream_keys("", keys, index) == keys  # all, for an unpartitioned reader
    assert resolve("d", None, "u", days, latest()).upstream_keys("", keys, index) == ["2024-01-09"]
    regions = resolve("d", static(["europe"]), "u", static(["fr", "de", "us"]), {"fr": "europe", "de": "europe"})
    assert regions.upstream_keys("europe", ["fr", "de", "us"], {"fr": 0, "de": 1, "us": 2}) == ["fr", "de"]
    reordered = resolve("d", static(["europe"]), "u", static(["fr", "de", "us"]), {"us": "europe", "de": "europe"})
    assert reordered.upstream_keys("europe", ["fr", "de", "us"], {"fr": 0, "de": 1, "us": 2}) == ["de", "us"]  # key order


@pytest.mark.parametrize(("down", "up", "mapping", "words"), [
    (daily("2024-01-01"), monthly("2024-01-01"), None, "differ, so no key maps by default"),
    (daily("2024-01-01"), static(["eu"]), window(-1, 0), "needs the same keys on both sides"),
    (static(["eu"]), static(["fr"]), {"de": "eu"}, "does not have"),
    (None, daily("2024-01-01"), window(-1, 0), "not partitioned but maps"),
    (daily("2024-01-01"), None, all_partitions(), "is not partitioned"),
    # hours that start at :30 against hours at :00 share no key: the reader waited for data forever
    (hourly("2024-01-01-00:30"), hourly("2024-01-01-00:00"), None, "start at :30 and :00, so no key of one"),
    (hourly("2024-01-01-00:30"), hourly("2024-01-01-00:00"), window(-1, 0), "Start both on the same minute"),
])
def test_wrong_mappings_name_both_assets(down: object, up: object, mapping: object, words: str) -> None:
    with pytest.raises(DefinitionError, match=words) as info:
        resolve("report", down, "events", up, mapping)  # type: ignore[arg-type]
    assert "'report'" in str(info.value) and "'events'" in str(info.value)


# -- the engine, per partition ---------------------------------------------------------------

PIPELINE = '''
    import polars as pl
    from assetflow import asset, source
    from assetflow.partitions import daily, window

    DAYS = daily("2024-01-01", end="2024-01-05")
    events = source("data/events/{date}.csv", partitions=DAYS)

    @asset(partitions=DAYS)
    def daily_events(events: pl.DataFrame, partition) -> pl.DataFrame:
        return events.with_columns(pl.lit(partition.key).alias("day"))

    @asset(partitions=DAYS, mappings={"daily_events": window(-1, 0)})
    def rolling(daily_events: pl.DataFrame) -> pl.DataFrame:
        return daily_events.group_by("user").agg(pl.col("amount").sum()).sort("user")

    @asset
    def total(daily_events: pl.DataFrame) -> pl.DataFrame:
        return daily_events.select(pl.col("amount").sum())

    @asset
    def by_day(daily_events: dict) -> pl.DataFrame:
        return pl.DataFrame({"day": list(daily_events), "rows": [len(v) for v in daily_events.values()]})
'''


def _day(root: Path, day: int, amount: int) -> None:
    path = root / "data" / "events" / f"2024-01-{day:02d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"user,amount\na,{amount}\nb,1\n")


@pytest.fixture
def partitioned(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(textwrap.dedent(PIPELINE))
    for day in (1, 2, 3):
        _day(tmp_path, day, day)
    return tmp_path


def _run(root: Path, **options: object) -> dict[str, str]:
    ws = Workspace.load(root)
    try:
        result = api.materialize(project=ws, executor="inprocess", **options)  # type: ignore[arg-type]
    finally:
        ws.close()
    return {name: r.outcome for name, r in result.results.items()}


def _ran(outcomes: dict[str, str]) -> set[str]:
    return {n for n, o in outcomes.items() if o == "ran"}


def test_each_partition_runs_once_and_only_what_changed_reruns(partitioned: Path) -> None:
    first = _run(partitioned)
    assert _ran(first) == {"daily_events[2024-01-01]", "daily_events[2024-01-02]", "daily_events[2024-01-03]",
                           "rolling[2024-01-01]", "rolling[2024-01-02]", "rolling[2024-01-03]", "total", "by_day"}
    assert _ran(_run(partitioned)) == set()
    (partitioned / "data/events/2024-01-02.csv").write_text("user,amount\na,2\nb,1\n")  # identical bytes
    assert _ran(_run(partitioned)) == set()
    _day(partitioned, 2, 20)  # one file changed: its partition, its window and the readers of all
    assert _ran(_run(partitioned)) == {"daily_events[2024-01-02]", "rolling[2024-01-02]", "rolling[2024-01-03]",
                                       "total", "by_day"}
    _day(partitioned, 4, 4)  # a new day arrives: only it (and what reads all days) runs
    assert _ran(_run(partitioned)) == {"daily_events[2024-01-04]", "rolling[2024-01-04]", "total", "by_day"}
    _day(partitioned, 2, 2)  # reverted: restored per partition, nothing recomputed but the readers of all
    outcomes = _run(partitioned)
    assert outcomes["daily_events[2024-01-02]"] == "restored" and outcomes["rolling[2024-01-03]"] == "restored"
    assert api.load("total", project=partitioned)["amount"][0] == 1 + 2 + 3 + 4 + 4
    days = api.load("daily_events", project=partitioned)
    assert days["day"].to_list() == ["2024-01-01"] * 2 + ["2024-01-02"] * 2 + ["2024-01-03"] * 2 + ["2024-01-04"] * 2
    rolling = api.load("rolling", project=partitioned, partition="2024-01-03")
    assert rolling.filter(pl.col("user") == "a")["amount"][0] == 2 + 3
    assert api.load("by_day", project=partitioned)["rows"].to_list() == [2, 2, 2, 2]


def test_a_version_of_a_partitioned_asset_is_one_partitions_and_tilde_counts_within_it(partitioned: Path) -> None:
    """load(version=V) gave the current union without partition=, another partition's data under the key asked for,
    and ~1 counted over every partition's history."""
    from assetflow.errors import UnknownAssetError

    _run(partitioned, select="daily_events")
    _day(partitioned, 2, 20)
    _run(partitioned, select="daily_events")
    [newest] = api.show("daily_events", limit=1, project=partitioned)["materializations"]
    assert newest["partition"] == "2024-01-02"
    version = str(newest["id"])
    assert api.load("daily_events", version, project=partitioned)["amount"].to_list() == [20, 1]
    assert api.load("daily_events", version, project=partitioned, partition="2024-01-02")["amount"].to_list() == [20, 1]
    with pytest.raises(UnknownAssetError, match="is a version of partition '2024-01-02', not '2024-01-01'"):
        api.load("daily_events", version, project=partitioned, partition="2024-01-01")
    earlier = api.load("daily_events", "~1", project=partitioned, partition="2024-01-02")
    assert earlier["amount"].to_list() == [2, 1]
    with pytest.raises(UnknownAssetError, match="Partition '2024-01-01' of 'daily_events' has 0 earlier version"):
        api.load("daily_events", "~1", project=partitioned, partition="2024-01-01")  # not 2024-01-02's newest
    with pytest.raises(UnknownAssetError, match="is partitioned: `~1` counts the versions of one partition"):
        api.load("daily_events", "~1", project=partitioned)
    with pytest.raises(UnknownAssetError, match="is partitioned: `~1` counts the versions of one partition") as shown:
        api.show("daily_events", version="~1", project=partitioned)
    assert "by its id or data hash (`assetflow show daily_events` lists them" in str(shown.value)  # what show takes
    assert "in Python, the partition too: assetflow.load('daily_events', version=..., partition=KEY)" in str(shown.value)


def test_a_backfill_runs_only_the_stale_partitions_of_its_range(partitioned: Path) -> None:
    outcomes = _run(partitioned, select="daily_events", partition="2024-01-02..2024-01-03")
    assert set(outcomes) == {"daily_events[2024-01-02]", "daily_events[2024-01-03]"}
    outcomes = _run(partitioned, select="daily_events", partition="2024-01-01..2024-01-03")
    assert _ran(outcomes) == {"daily_events[2024-01-01]"} and outcomes["daily_events[2024-01-02]"] == "fresh"
    assert _ran(_run(partitioned, select="daily_events", partition="latest", force=True)) == {"daily_events[2024-01-03]"}
    listed = _run(partitioned, select="daily_events", partition=["2024-01-01", "2024-01-03"], force=True)  # a list
    from click.testing import CliRunner

    from assetflow.cli import main

    waiting = CliRunner().invoke(main, ["materialize", "daily_events", "--partition", "2024-01-05", "--project",
                                        str(partitioned)])  # its day's file has not landed: not "everything is fresh"
    assert waiting.exit_code == 0 and "Nothing to run: no partition that --partition 2024-01-05 selects" in waiting.output
    assert _ran(listed) == {"daily_events[2024-01-01]", "daily_events[2024-01-03]"}


def test_a_partition_behind_a_stale_upstream_partition_outside_the_selection_waits(partitioned: Path) -> None:
    """``rolling[2024-01-03]`` reads ``daily_events`` 01-02..01-03, and 01-02 is stale: selecting the rolling
    partition alone, or the day alone with ``--partition``, leaves it as it is and stale. Run and plan say it
    waits, on what, and how to take it in; they said 'cut off' and 'Everything is fresh' (the plan: 'run')."""
    from click.testing import CliRunner

    from assetflow.cli import main

    _run(partitioned)
    _day(partitioned, 2, 20)
    assert _run(partitioned, select="rolling", partition="2024-01-03") == {"rolling[2024-01-03]": "waiting"}
    run = CliRunner().invoke(main, ["materialize", "--partition", "2024-01-03", "--project", str(partitioned)])
    assert run.exit_code == 0
    assert ("waiting rolling[2024-01-03]: upstream `daily_events[2024-01-02]` is stale and outside --partition: "
            "widen --partition") in run.output
    assert "Everything is fresh" not in run.output
    assert "waiting total: upstream `daily_events[2024-01-02]` is stale and outside --partition" in run.output
    assert run.output.endswith("Nothing to run, but not fresh: 3 assets (1 partition) wait on upstreams outside "
                               "the selection (see above).\n")
    plan = CliRunner().invoke(main, ["materialize", "rolling", "--partition", "2024-01-03", "--dry-run",
                                     "--project", str(partitioned)])
    assert ("wait        rolling[2024-01-03]: upstream `daily_events[2024-01-02]` is stale and not selected: "
            "select `daily_events` too, e.g. +rolling, with their keys in --partition") in plan.output
    outcomes = _run(partitioned, select="+rolling", partition="2024-01-02..2024-01-03")
    assert _ran(outcomes) == {"daily_events[2024-01-02]", "rolling[2024-01-02]", "rolling[2024-01-03]"}


def test_a_backfill_of_some_days_leaves_an_asset_reading_every_day_waiting_not_failed(partitioned: Path) -> None:
    """On a fresh project, --partition 2024-01-01..2024-01-02 cannot make `total`, which reads every day and
    2024-01-03 has no data yet: it waits, with how to take that day in, and the backfill exits 0. It was
    skipped, exit 1, advising `+total`, which skipped it again; the plan said it would run."""
    from click.testing import CliRunner

    from assetflow.cli import main

    args = ["materialize", "--partition", "2024-01-01..2024-01-02", "--project", str(partitioned)]
    plan = CliRunner().invoke(main, [*args, "--dry-run"])
    assert "wait        total: upstream `daily_events[2024-01-03]` is missing and outside --partition" in plan.output
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert ("waiting total: upstream `daily_events[2024-01-03]` is missing and outside --partition: widen "
            "--partition") in run.output
    assert _run(partitioned, select="+total", partition="2024-01-01..2024-01-02")["total"] == "waiting"
    outcomes = _run(partitioned)  # every day: total runs
    assert outcomes["total"] == "ran" and outcomes["daily_events[2024-01-03]"] == "ran"


def test_a_partition_selection_applies_to_the_assets_whose_definition_has_its_keys(partitioned: Path) -> None:
    """A project of daily and dynamic assets: --partition 2024-01-02 was refused on the dynamic asset, advising
    `partitions add customers 2024-01-02` (a date is no customer). It runs that day of the daily assets and says
    the dynamic one is left out; a key no selected asset has is still an error, from the daily definition."""
    from click.testing import CliRunner

    from assetflow.cli import main

    (partitioned / "pipe.py").write_text(textwrap.dedent(PIPELINE) + textwrap.dedent('''
        from assetflow.partitions import dynamic

        @asset(partitions=dynamic("customers"))
        def cust(partition) -> pl.DataFrame:
            return pl.DataFrame({"c": [partition.key]})
    '''))
    api.add_partitions("customers", ["acme"], project=partitioned)
    _run(partitioned)
    _day(partitioned, 2, 20)
    run = CliRunner().invoke(main, ["materialize", "--partition", "2024-01-02", "--project", str(partitioned)])
    assert run.exit_code == 0, run.output
    assert "left out cust: --partition 2024-01-02 names no key of its partitions, dynamic('customers')" in run.output
    assert "ran daily_events[2024-01-02]" in run.output and "Done: 4 ran." in run.output
    outcomes = _run(partitioned, select="daily_events cust", partition="2024-01-02")
    assert outcomes == {"daily_events[2024-01-02]": "fresh"}
    bad = CliRunner().invoke(main, ["materialize", "--partition", "2024-01-32", "--project", str(partitioned)])
    assert bad.exit_code == 2
    assert "Asset 'daily_events' is partitioned by daily('2024-01-01', end='2024-01-05')" in bad.output
    assert "partitions add" not in bad.output
    assert "No other selected asset has it either ('cust', 'rolling')" in bad.output
    alone = CliRunner().invoke(main, ["materialize", "cust", "--partition", "zeta", "--project", str(partitioned)])
    assert "Add it first: `assetflow partitions add customers zeta`" in alone.output  # the dynamic asset alone


def test_the_plan_spans_only_keys_that_follow_each_other(partitioned: Path) -> None:
    from click.testing import CliRunner

    from assetflow.cli import main

    _run(partitioned)
    _day(partitioned, 1, 10)
    _day(partitioned, 3, 30)  # two days changed, 2024-01-02 between them did not
    plan = CliRunner().invoke(main, ["materialize", "--dry-run", "--project", str(partitioned)])
    assert "daily_events[2024-01-01]: source `events` changed" in plan.output
    assert "daily_events[2024-01-03]: source `events` changed" in plan.output
    assert "daily_events[2024-01-01..2024-01-03]" not in plan.output  # pasted into --partition: 2024-01-02 too
    assert "upstream `daily_events` partitions 2024-01-01, 2024-01-03 (2) are stale" in plan.output
    # units are counted as such (it said 'Plan (7 of 8 assets', and 'all 8 selected assets are fresh')
    assert plan.output.startswith("Plan (7 of 8: 6 partitions of 2 assets and 2 unpartitioned assets; nothing was run):")
    _run(partitioned)
    again = CliRunner().invoke(main, ["materialize", "daily_events", "--dry-run", "--project", str(partitioned)])
    assert again.output == "Nothing to do: everything selected is fresh (3 partitions of 1 asset).\n"


def test_reasons_that_name_each_keys_upstream_partitions_merge_into_ranges(partitioned: Path) -> None:
    """Each rolling partition's reason names its own upstream days, so no two were alike: status and the plan
    gave one range per key ('... and 6 more ranges'). They merge without the keys; a lone key keeps its words."""
    from click.testing import CliRunner

    from assetflow.cli import main

    _run(partitioned)
    for day in (1, 2, 3):
        _day(partitioned, day, day * 10)
    rows = {r.name: r for r in api.status(project=partitioned)}
    assert rows["rolling"].reasons == ["2024-01-01..2024-01-03 stale (upstream `daily_events` partitions are stale), "
                                       "2024-01-04..2024-01-05 missing (no source data yet)"]
    plan = CliRunner().invoke(main, ["materialize", "--dry-run", "--project", str(partitioned)])
    assert "run         rolling[2024-01-01..2024-01-03] (3 partitions): upstream `daily_events` partitions are stale" \
        in plan.output
    _run(partitioned)
    _day(partitioned, 3, 3)
    rows = {r.name: r for r in api.status(project=partitioned)}
    assert rows["rolling"].reasons[0].startswith("2024-01-01..2024-01-02 fresh, 2024-01-03 stale (upstream "
                                                 "`daily_events[2024-01-03]` is stale)")


def test_a_bad_partition_fails_before_anything_is_recorded(partitioned: Path) -> None:
    with pytest.raises(PartitionKeyError, match="'2023-12-31' is outside"):
        _run(partitioned, partition="2023-12-31")
    ws = Workspace.load(partitioned)
    assert ws.store.runs() == []
    ws.close()


def test_status_summarises_partitions_as_ranges(partitioned: Path) -> None:
    _run(partitioned)
    _day(partitioned, 3, 30)
    rows = {r.name: r for r in api.status(project=partitioned)}
    daily_row = rows["daily_events"]
    assert daily_row.state == "stale"
    assert daily_row.reasons == ["2024-01-01..2024-01-02 fresh, 2024-01-03 stale (source `events` changed), "
                                 "2024-01-04..2024-01-05 missing (no source data yet)"]
    assert daily_row.rows == 6  # over every current partition
    assert daily_row.partitions is not None
    assert daily_row.partitions["partitions"] == {"2024-01-01": "fresh", "2024-01-02": "fresh",
                                                  "2024-01-03": "stale", "2024-01-04": "missing",
                                                  "2024-01-05": "missing"}
    assert rows["events"].reasons == ["2024-01-01..2024-01-03 observed, 2024-01-04..2024-01-05 missing (no file yet)"]
    assert set(api.selected(Workspace.load(partitioned), "status:stale")) == {"daily_events", "rolling", "total", "by_day"}


def test_a_failed_partition_fails_its_asset_and_says_which(partitioned: Path) -> None:
    pipe = partitioned / "pipe.py"
    pipe.write_text(pipe.read_text().replace(
        "    return events.with_columns(pl.lit(partition.key).alias(\"day\"))",
        "    if events[\"amount\"][0] < 0:\n        raise ValueError(\"negative amount\")\n"
        "    return events.with_columns(pl.lit(partition.key).alias(\"day\"))"))
    _day(partitioned, 2, -1)
    _day(partitioned, 3, -1)
    outcomes = _run(partitioned)
    assert outcomes["daily_events[2024-01-02]"] == "failed" and outcomes["daily_events[2024-01-01]"] == "ran"
    rows = {r.name: r for r in api.status(project=partitioned)}
    daily_row = rows["daily_events"]
    assert daily_row.state == "failed" and "failed" in daily_row.states
    assert daily_row.reasons == [
        "the last run failed for partitions 2024-01-02..2024-01-03 (2): ValueError: negative amount",
        "2024-01-01 fresh, 2024-01-02..2024-01-03 failed (ValueError: negative amount), "
        "2024-01-04..2024-01-05 missing (no source data yet)"]
    assert daily_row.partitions is not None
    assert daily_row.partitions["partitions"]["2024-01-02"] == "failed"
    assert {"first": "2024-01-02", "last": "2024-01-03", "state": "failed", "reason": "ValueError: negative amount",
            "count": 2} in daily_row.partitions["ranges"]  # type: ignore[operator]
    assert rows["rolling"].state != "failed"  # downstream was skipped, not failed
    # 2024-01-01 is fresh: the asset was updated then ('last updated -' while some partition never ran)
    assert daily_row.updated_at is not None and daily_row.materialized_at == daily_row.updated_at
    shown = api.show("daily_events", project=partitioned)
    assert shown["state"] == "failed" and shown["reasons"][0].startswith("the last run failed for partitions")
    from click.testing import CliRunner
    from starlette.testclient import TestClient

    from assetflow.cli import main
    from assetflow.ui.app import create_app
    from assetflow.ui.project_view import ProjectView

    printed = CliRunner().invoke(main, ["status", "--json", "--project", str(partitioned)])
    with TestClient(create_app(ProjectView(partitioned)), base_url="http://127.0.0.1:8765") as client:
        served = client.get("/api/status").json()  # what the page draws its strip and panel from
    for document in (json.loads(printed.stdout), served):
        row = next(a for a in document["assets"] if a["name"] == "daily_events")
        assert row["state"] == "failed" and row["partitions"]["2024-01-03"] == "failed"
        assert [r["state"] for r in row["ranges"]] == ["fresh", "failed", "missing"]
    _day(partitioned, 2, 2)  # one fixed: only the other still fails, named alone
    _run(partitioned)
    daily_row = next(r for r in api.status(project=partitioned) if r.name == "daily_events")
    assert daily_row.reasons[0] == "the last run failed for partition 2024-01-03: ValueError: negative amount"
    _day(partitioned, 3, 3)
    _run(partitioned)
    assert next(r for r in api.status(project=partitioned) if r.name == "daily_events").state == "fresh"


def test_a_deleted_partition_file_makes_only_that_partition_missing(partitioned: Path) -> None:
    _run(partitioned)
    ws = Workspace.load(partitioned)
    mat = ws.store.current_partitions(asset="daily_events")[("daily_events", "2024-01-02")]
    ws.close()
    (partitioned / ".assetflow" / "data" / "parquet" / mat.location).unlink()
    daily_row = next(r for r in api.status(project=partitioned) if r.name == "daily_events")
    assert daily_row.partitions["partitions"]["2024-01-02"] == "missing"  # type: ignore[index]
    assert daily_row.partitions["partitions"]["2024-01-01"] == "fresh"  # type: ignore[index]
    assert "daily_events[2024-01-02]" in _ran(_run(partitioned, select="daily_events"))


def test_a_partition_parameter_needs_partitions(tmp_path: Path) -> None:
    from assetflow import asset

    with pytest.raises(DefinitionError, match="takes a 'partition' parameter but is not partitioned"):
        @asset
        def lonely(partition: object) -> None: ...


def test_a_mapping_that_cannot_work_fails_at_load_naming_both_assets(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["bad"]\n')
    (tmp_path / "bad.py").write_text(textwrap.dedent('''
        from assetflow import asset
        from assetflow.partitions import daily, monthly

        @asset(partitions=daily("2024-01-01"))
        def days():
            return None

        @asset(partitions=monthly("2024-01-01"))
        def months(days):
            return None
    '''))
    with pytest.raises(DefinitionError, match="'months'.*'days'.*differ") as info:
        Workspace.load(tmp_path)
    assert "bad.py" in str(info.value)


def test_duckdb_keeps_one_view_over_the_current_partitions(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["wh"]\n')
    (tmp_path / "wh.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import static

        @asset(io="duckdb", partitions=static(["eu", "us", "apac"]))
        def sales(partition) -> pl.DataFrame:
            return pl.DataFrame({"region": [partition.key], "amount": [len(partition.key)]})
    '''))
    assert len(_ran(_run(tmp_path))) == 3
    ws = Workspace.load(tmp_path)
    backend = ws.backends.get("duckdb")
    with backend.reading() as con:  # type: ignore[attr-defined]
        assert con.execute("SELECT region FROM sales").fetchall() == [("eu",), ("us",), ("apac",)]  # key order
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert len(tables) == 3  # a table per partition version: writing one never rewrites the others
    assert api.load("sales", project=ws, partition="us")["amount"].to_list() == [2]
    ws.close()


SALES_WHOLE = """
    import polars as pl
    from assetflow import asset

    @asset(io="duckdb")
    def sales() -> pl.DataFrame:
        return pl.DataFrame({"region": ["all"], "amount": [3]})
"""
SALES_BY_REGION = """
    import polars as pl
    from assetflow import asset
    from assetflow.partitions import static

    @asset(io="duckdb", partitions=static(["eu", "us"]))
    def sales(partition) -> pl.DataFrame:
        return pl.DataFrame({"region": [partition.key], "amount": [1], "key": [partition.key]})
"""


def _sales_view(root: Path) -> list[tuple[object, ...]]:
    ws = Workspace.load(root)
    try:
        with ws.backends.get("duckdb").reading() as con:  # type: ignore[attr-defined]
            return con.execute("SELECT * FROM sales").fetchall()
    finally:
        ws.close()


def test_an_asset_made_partitioned_and_back_is_restored_and_its_view_follows(tmp_path: Path) -> None:
    """Its unpartitioned version stayed current all along (status fresh, nothing ran), while the view kept the union."""
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["wh"]\n')
    (tmp_path / "wh.py").write_text(textwrap.dedent(SALES_WHOLE))
    assert _run(tmp_path) == {"sales": "ran"}
    (tmp_path / "wh.py").write_text(textwrap.dedent(SALES_BY_REGION))
    assert _ran(_run(tmp_path)) == {"sales[eu]", "sales[us]"}
    assert _sales_view(tmp_path) == [("eu", 1, "eu"), ("us", 1, "us")]
    (tmp_path / "wh.py").write_text(textwrap.dedent(SALES_WHOLE))
    [row] = api.status(project=tmp_path)
    assert row.state == "missing" and "partitioned until now: its 2 current partitions" in row.reasons[0]
    assert _run(tmp_path) == {"sales": "restored"}
    assert _sales_view(tmp_path) == [("all", 3)]
    assert [r.state for r in api.status(project=tmp_path)] == ["fresh"]
    (tmp_path / "wh.py").write_text(textwrap.dedent(SALES_BY_REGION))
    assert _run(tmp_path) == {"sales[eu]": "restored", "sales[us]": "restored"}
    assert _sales_view(tmp_path) == [("eu", 1, "eu"), ("us", 1, "us")]
    # A store written before pointers kept one kind holds both: the partitions (the view) win, the asset is restored.
    with sqlite3.connect(tmp_path / ".assetflow" / "state.db") as db:
        db.execute("INSERT INTO pointers (env, asset, partition, materialization) VALUES ('prod', 'sales', '', 1)")
    (tmp_path / "wh.py").write_text(textwrap.dedent(SALES_WHOLE))
    assert _run(tmp_path) == {"sales": "restored"}
    assert _sales_view(tmp_path) == [("all", 3)]


def test_keys_that_left_the_definition_or_lost_their_data_are_not_served(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["wh"]\n')
    (tmp_path / "wh.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset, source
        from assetflow.partitions import daily, dynamic

        DAYS = daily("2024-01-01", end="2024-01-04")
        events = source("data/{date}.csv", partitions=DAYS)

        @asset(io="duckdb", partitions=DAYS)
        def days(events: pl.DataFrame, partition) -> pl.DataFrame:
            return pl.DataFrame({"d": [partition.key]})

        @asset(io="duckdb", partitions=dynamic("customers"))
        def customers(partition) -> pl.DataFrame:
            return pl.DataFrame({"c": [partition.key]})
    '''))
    (tmp_path / "data").mkdir()
    for day in (1, 2, 3, 4):
        (tmp_path / "data" / f"2024-01-0{day}.csv").write_text("v\n1\n")
    api.add_partitions("customers", ["a", "b", "c"], project=tmp_path)
    assert len(_ran(_run(tmp_path))) == 7
    api.remove_partitions("customers", ["b"], project=tmp_path)  # a key removed,
    (tmp_path / "data" / "2024-01-03.csv").unlink()  # a day's source file deleted, and the range starts a day later
    (tmp_path / "wh.py").write_text((tmp_path / "wh.py").read_text().replace("2024-01-01", "2024-01-02"))
    _run(tmp_path)
    ws = Workspace.load(tmp_path)
    try:
        assert api.load("days", project=ws)["d"].to_list() == ["2024-01-02", "2024-01-04"]
        assert api.load("customers", project=ws)["c"].to_list() == ["a", "c"]
        with ws.backends.get("duckdb").reading() as con:  # type: ignore[attr-defined]
            assert con.execute("SELECT d FROM days").fetchall() == [("2024-01-02",), ("2024-01-04",)]
            assert con.execute("SELECT c FROM customers").fetchall() == [("a",), ("c",)]
    finally:
        ws.close()


def test_why_explains_one_partition(partitioned: Path) -> None:
    _run(partitioned)
    _day(partitioned, 2, 22)
    report = api.why("rolling", project=partitioned, partition="2024-01-03")
    assert report.name == "rolling[2024-01-03]" and report.status.state == "stale"
    assert report.status.reasons == ["upstream `daily_events[2024-01-02]` is stale"]
    direct = api.why("daily_events", project=partitioned, partition="2024-01-02")
    assert [(i.name, i.kind, i.change) for i in direct.inputs] == [("events", "source", "new data")]
    assert api.why("daily_events", project=partitioned, partition="2024-01-01").status.state == "fresh"
    with pytest.raises(PartitionKeyError, match="outside"):
        api.why("daily_events", project=partitioned, partition="2024-02-01")


def test_dynamic_partitions_from_the_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from assetflow.cli import main

    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["crm"]\n')
    (tmp_path / "crm.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import dynamic

        @asset(partitions=dynamic("customers"))
        def invoices(partition) -> pl.DataFrame:
            return pl.DataFrame({"customer": [partition.key]})
    '''))
    cli = CliRunner()
    project = ["--project", str(tmp_path)]
    assert cli.invoke(main, ["partitions", "add", "customers", "acme", "beta", *project]).exit_code == 0
    grammar = cli.invoke(main, ["partitions", "add", "customers", "latest", *project])  # --partition's own word
    assert grammar.exit_code == 2 and "not 'latest' or 'all'" in grammar.output
    listed = cli.invoke(main, ["partitions", "list", "customers", "--json", *project])
    assert '"keys": [\n    "acme",\n    "beta"\n  ]' in listed.stdout
    assert json.loads(listed.stdout)["command"] == "partitions"  # not "list", which is `assetflow list`'s document
    assert _ran(_run(tmp_path)) == {"invoices[acme]", "invoices[beta]"}
    bad = cli.invoke(main, ["materialize", "--partition", "zeta", *project])
    assert bad.exit_code == 2 and "assetflow partitions add customers zeta" in bad.output
    assert cli.invoke(main, ["partitions", "remove", "customers", "beta", *project]).exit_code == 0
    assert set(_run(tmp_path)) == {"invoices[acme]"}
    assert api.load("invoices", project=tmp_path)["customer"].to_list() == ["acme"]
    gc = cli.invoke(main, ["gc", "--keep", "0", *project])  # a removed key's version stays until gc collects it
    assert gc.exit_code == 0 and "Deleted 1 version" in gc.output, gc.output
    assert {key for _, key in Workspace.load(tmp_path).store.current_partitions(asset="invoices")} == {"acme"}
    unknown = cli.invoke(main, ["partitions", "add", "clients", "x", *project])
    assert unknown.exit_code == 2 and "No asset of this project uses dynamic partitions 'clients'" in unknown.output


def test_an_asset_whose_last_dynamic_key_was_removed_is_said_to_have_no_partitions(tmp_path: Path) -> None:
    """Not 'Everything is fresh: 0 assets' while status says missing: the run and the plan say it has no
    partitions and how to add one, and skip what reads them all in the same words."""
    from click.testing import CliRunner

    from assetflow.cli import main

    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["crm"]\n')
    (tmp_path / "crm.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import dynamic

        @asset(partitions=dynamic("customers"))
        def cleaned(partition) -> pl.DataFrame:
            return pl.DataFrame({"customer": [partition.key]})

        @asset
        def allc(cleaned: pl.DataFrame) -> pl.DataFrame:
            return cleaned
    '''))
    cli = CliRunner()
    project = ["--project", str(tmp_path)]
    assert cli.invoke(main, ["partitions", "add", "customers", "acme", *project]).exit_code == 0
    assert _ran(_run(tmp_path)) == {"cleaned[acme]", "allc"}
    assert cli.invoke(main, ["partitions", "remove", "customers", "acme", *project]).exit_code == 0
    no_keys = "dynamic('customers') has no keys; add some: `assetflow partitions add customers KEY`"
    for dry in ([], ["--dry-run"]):
        alone = cli.invoke(main, ["materialize", "cleaned", *dry, *project])
        assert alone.exit_code == 0 and "Everything is fresh" not in alone.output, alone.output
        assert f"left out cleaned: it has no partitions: {no_keys}" in alone.output
        assert "Nothing to run: `cleaned` has no partitions (see above)." in alone.output
        both = cli.invoke(main, ["materialize", *dry, *project])
        assert both.exit_code == 1 and f"allc: upstream `cleaned` has no partitions: {no_keys}" in both.output
        assert "skipped " in both.output and "run         allc" not in both.output


def test_a_product_of_definitions(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["grid"]\n')
    (tmp_path / "grid.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import daily, static

        GRID = daily("2024-01-01", end="2024-01-02") * static(["eu", "us"])

        @asset(partitions=GRID)
        def sales(partition) -> pl.DataFrame:
            day, region = partition.parts
            return pl.DataFrame({"day": [day], "region": [region]})

        @asset
        def everything(sales: pl.DataFrame) -> pl.DataFrame:
            return sales
    '''))
    assert len(_ran(_run(tmp_path))) == 5
    assert api.load("everything", project=tmp_path)["region"].to_list() == ["eu", "us", "eu", "us"]
    assert set(_run(tmp_path, select="sales", partition="2024-01-02|us", force=True)) == {"sales[2024-01-02|us]"}


def test_rows_that_contradict_the_partition_column_fail_that_partition(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["leaky"]\n')
    (tmp_path / "leaky.py").write_text(textwrap.dedent('''
        import datetime
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import daily

        @asset(partitions=daily("2024-01-01", end="2024-01-02"), partition_column="day")
        def orders(partition) -> pl.DataFrame:
            day = datetime.date(2024, 1, 1)  # always the first day: wrong for the second
            return pl.DataFrame({"day": [day], "amount": [1]})
    '''))
    ws = Workspace.load(tmp_path)
    result = api.materialize(project=ws, executor="inprocess")
    ws.close()
    assert result.results["orders[2024-01-01]"].outcome == "ran"
    failed = result.results["orders[2024-01-02]"]
    assert failed.outcome == "failed"
    assert "Asset 'orders', partition '2024-01-02': 1 row(s) have day=datetime.date(2024, 1, 1)" in (failed.error or "")
    assert "Traceback" not in (failed.error or "")  # the rows are at fault, not the code
    why = api.why("orders", project=tmp_path, partition="2024-01-02")  # as status says it
    assert why.status.states[0] == "failed" and why.status.reasons[0].startswith("the last run failed: MaterializationError")


def test_a_partition_column_declared_later_judges_the_stored_partitions(tmp_path: Path) -> None:
    """Stored before ``partition_column`` was declared, a partition holding another day's rows is judged as by a check
    added since: failed in the plan, the run and status, and each key on its own (both share one version's data,
    right for the first day only)."""
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["later"]\n')
    code = textwrap.dedent('''
        import datetime
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import daily

        @asset(partitions=daily("2024-03-04", end="2024-03-05"))
        def per() -> pl.DataFrame:
            return pl.DataFrame({"d": [datetime.date(2024, 3, 4)]})  # every partition gets the first day

        @asset
        def everything(per: pl.DataFrame) -> pl.DataFrame:
            return per
    ''')
    (tmp_path / "later.py").write_text(code)
    assert _run(tmp_path) == {"per[2024-03-04]": "ran", "per[2024-03-05]": "ran", "everything": "ran"}
    (tmp_path / "later.py").write_text(code.replace("end=\"2024-03-05\")", "end=\"2024-03-05\"), partition_column=\"d\""))
    ws = Workspace.load(tmp_path)
    result = api.materialize(project=ws, executor="inprocess")
    ws.close()
    assert {n: r.outcome for n, r in result.results.items()} == {
        "per[2024-03-04]": "fresh", "per[2024-03-05]": "failed", "everything": "skipped"}
    assert ("check partition_column(d): partition '2024-03-05': 1 row(s) have d=datetime.date(2024, 3, 4), outside "
            "this partition") in (result.results["per[2024-03-05]"].error or "")
    assert _run(tmp_path, dry_run=True) == {"per[2024-03-04]": "fresh", "per[2024-03-05]": "failed",
                                            "everything": "skipped"}
    row = next(r for r in api.status(project=tmp_path) if r.name == "per")
    assert row.state == "failed" and "2024-03-04 fresh" in row.reasons[-1]
    assert "2024-03-05 failed (its current version fails check partition_column(d)" in row.reasons[-1]


def test_the_partition_column_compares_instants_of_any_zone_with_the_window(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["stamps"]\n')
    (tmp_path / "stamps.py").write_text(textwrap.dedent('''
        import datetime
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import daily

        @asset(partitions=daily("2024-03-01", end="2024-03-01", timezone="America/New_York"), partition_column="ts")
        def by_ts(partition) -> pl.DataFrame:  # 23:30 in New York, told in UTC: 04:30 the next day
            late = (partition.start + datetime.timedelta(hours=23, minutes=30)).astimezone(datetime.UTC)
            return pl.DataFrame({"ts": [late, partition.start.astimezone(datetime.UTC)]})
    '''))
    assert _run(tmp_path) == {"by_ts[2024-03-01]": "ran"}


def _age_files(root: Path) -> None:
    past = 1_600_000_000 * 10**9  # files older than the racy window, so the run can vouch for them
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(past, past))


def test_status_from_the_snapshot_equals_the_full_check(partitioned: Path) -> None:
    import dataclasses

    _age_files(partitioned)
    _run(partitioned)
    fast, answered = api.status_fast_or_full(project_dir=partitioned)
    assert answered  # read from the snapshot: the project was not imported, no partition assessed
    full = api.status(project=partitioned)
    assert [dataclasses.asdict(r) for r in fast] == [dataclasses.asdict(r) for r in full]
    daily_row = next(r for r in fast if r.name == "daily_events")
    assert daily_row.reasons == ["2024-01-01..2024-01-03 fresh, 2024-01-04..2024-01-05 missing (no source data yet)"]
    assert daily_row.rows == 6 and daily_row.partitions is not None
    stale, answered = api.status_fast_or_full("status:stale", project_dir=partitioned)
    assert answered and stale == []
    _day(partitioned, 2, 20)  # a changed file: the full check answers, and says which partition
    rows, answered = api.status_fast_or_full(project_dir=partitioned)
    assert not answered
    assert next(r for r in rows if r.name == "daily_events").partitions["partitions"]["2024-01-02"] == "stale"  # type: ignore[index]


def test_keys_no_upstream_partition_maps_to_say_so_instead_of_no_source_data(tmp_path: Path) -> None:
    """``down`` starts two days before ``up``, in a project with no sources: its first keys said 'missing (no source
    data yet)' forever. They say which upstream has no partition for them; status from the snapshot says the same."""
    import dataclasses

    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import daily

        @asset(partitions=daily("2024-01-03", end="2024-01-05"))
        def up(partition) -> pl.DataFrame:
            return pl.DataFrame({"k": [partition.key]})

        @asset(partitions=daily("2024-01-01", end="2024-01-05"))
        def down(up: pl.DataFrame) -> pl.DataFrame:
            return up
    '''))
    _age_files(tmp_path)
    _run(tmp_path)
    full = api.status(project=tmp_path)
    assert next(r for r in full if r.name == "down").reasons == [
        "2024-01-01..2024-01-02 missing (no partition of `up` maps to it; `up` has 2024-01-03..2024-01-05), "
        "2024-01-03..2024-01-05 fresh"]
    fast, answered = api.status_fast_or_full(project_dir=tmp_path)
    assert answered and [dataclasses.asdict(r) for r in fast] == [dataclasses.asdict(r) for r in full]


def test_the_no_op_fast_path_covers_partitions_until_a_file_or_a_day_arrives(partitioned: Path) -> None:
    from click.testing import CliRunner

    from assetflow.cli import main
    from assetflow.partitions.run import next_key_instant

    project = ["--project", str(partitioned)]
    _age_files(partitioned)
    _run(partitioned)
    fast = CliRunner().invoke(main, ["materialize", "--json", *project])
    assert '"fast_path": true' in fast.stdout and '"daily_events[2024-01-02]"' in fast.stdout
    day = next((partitioned / "data").rglob("*2024-01-02*"))
    day.write_bytes(day.read_bytes())  # rewritten with the same bytes: hashed again, and the snapshot holds
    os.utime(day, ns=(10**18, 10**18))
    touched = CliRunner().invoke(main, ["materialize", "--json", *project])
    assert '"fast_path": true' in touched.stdout, touched.stdout
    _day(partitioned, 4, 4)  # a new day's file: the full check runs it
    slow = CliRunner().invoke(main, ["materialize", "--json", "--executor", "inprocess", *project])
    assert '"fast_path": true' not in slow.stdout and '"ran"' in slow.stdout
    ws = Workspace.load(partitioned)
    assert next_key_instant(ws) is None  # daily(..., end=...): closed, no key will come with the clock
    ws.close()
    (partitioned / "pipe.py").write_text(textwrap.dedent(PIPELINE).replace(', end="2024-01-05"', ""))
    ws = Workspace.load(partitioned)
    ws.now = datetime.datetime(2024, 1, 10, 12, tzinfo=datetime.UTC).timestamp()
    assert next_key_instant(ws) == datetime.datetime(2024, 1, 11, tzinfo=datetime.UTC).timestamp()
    ws.close()


def test_a_unit_that_read_a_partition_rewritten_after_it_was_decided_is_not_recorded(tmp_path: Path) -> None:
    """Rule 9 for a partitioned source (docs/RELIABILITY.md, section 12): ``a_sneaky`` rewrites the first
    day's file; ``b_reader`` reads the new bytes and fails, its re-check observing the day again; ``c_later``
    reads them too. Recorded under the first bytes' hash, it would be fresh once the day held them again."""
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    sneaky = textwrap.dedent('''
        from pathlib import Path
        import polars as pl
        from assetflow import asset, source
        from assetflow.partitions import daily

        DAY = daily("2024-01-01", end="2024-01-01")
        a_file = source("data/events/2024-01-01.csv", format="path")  # first in the graph's order
        events = source("data/events/{date}.csv", partitions=DAY)

        @asset
        def a_sneaky(a_file: Path) -> pl.DataFrame:
            a_file.write_text("user,amount\\na,99\\n")  # the input changes mid-run
            return pl.DataFrame({"x": [1]})

        @asset(partitions=DAY)
        def b_reader(events: pl.DataFrame) -> pl.DataFrame:
            return events

        @asset(partitions=DAY)
        def c_later(events: pl.DataFrame) -> pl.DataFrame:
            return events
    ''')
    (tmp_path / "pipe.py").write_text(sneaky)
    _day(tmp_path, 1, 10)
    outcomes = _run(tmp_path)  # one at a time, in the graph's order
    assert outcomes["a_sneaky"] == "failed"
    assert outcomes["b_reader[2024-01-01]"] == outcomes["c_later[2024-01-01]"] == "failed"

    _day(tmp_path, 1, 10)  # the first bytes again, nothing rewrites them
    (tmp_path / "pipe.py").write_text(sneaky.replace('a_file.write_text("user,amount\\na,99\\n")', "pass"))
    assert _run(tmp_path)["c_later[2024-01-01]"] == "ran"  # computed from them, not restored
    assert api.load("c_later", project=tmp_path, partition="2024-01-01")["amount"].to_list() == [10, 1]


def test_a_time_zone_edit_makes_partitions_that_read_their_window_stale(tmp_path: Path) -> None:
    """The same key is another window in another zone: an asset that reads it (``partition.start``) is stale."""
    body = textwrap.dedent('''
        import datetime
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import daily

        DAYS = daily("2024-03-01", end="2024-03-02", timezone="UTC")

        @asset(partitions=DAYS)
        def starts(partition) -> pl.DataFrame:
            return pl.DataFrame({"start": [partition.start.astimezone(datetime.UTC).isoformat()]})

        @asset(partitions=DAYS)
        def keys_only(partition) -> pl.DataFrame:
            return pl.DataFrame({"key": [partition.key]})
    ''')
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(body)
    _run(tmp_path)
    (tmp_path / "pipe.py").write_text(body.replace('timezone="UTC"', 'timezone="Asia/Tokyo"'))
    [row] = [r for r in api.status("starts", project=tmp_path)]
    assert row.state == "stale" and "the partition's window changed (its definition's cadence or time zone)" in row.reasons[0]
    outcomes = _run(tmp_path)
    assert outcomes["starts[2024-03-01]"] == outcomes["starts[2024-03-02]"] == "ran"
    assert api.load("starts", project=tmp_path)["start"].to_list() == ["2024-02-29T15:00:00+00:00",
                                                                       "2024-03-01T15:00:00+00:00"]


def test_a_cadence_edit_makes_partitions_that_read_their_window_stale(tmp_path: Path) -> None:
    """daily -> weekly keeps the Mondays' keys, but each is now a week: an asset that reads its window reruns
    (it kept its one-day versions, fresh); one that does not is judged by what it reads, as always."""
    body = textwrap.dedent('''
        import polars as pl
        from assetflow import asset, source
        from assetflow.partitions import daily, weekly

        DEF = daily("2024-03-04", end="2024-03-17")
        raw = source("raw.csv")

        @asset(partitions=DEF)
        def per(raw: pl.DataFrame, partition) -> pl.DataFrame:
            s, e = partition.start.date(), partition.end.date()
            return raw.with_columns(pl.col("d").str.to_date()).filter((pl.col("d") >= s) & (pl.col("d") < e))

        @asset(partitions=DEF)
        def counted(per: pl.DataFrame) -> pl.DataFrame:
            return pl.DataFrame({"n": [per.height]})

        @asset(partitions=DEF)
        def whole(raw: pl.DataFrame) -> pl.DataFrame:
            return raw.select(pl.len())
    ''')
    days = [datetime.date(2024, 3, 4) + datetime.timedelta(days=i) for i in range(14)]
    (tmp_path / "raw.csv").write_text("d,v\n" + "".join(f"{d},{i}\n" for i, d in enumerate(days)))
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(body)
    _run(tmp_path)
    (tmp_path / "pipe.py").write_text(body.replace('daily("2024-03-04", end="2024-03-17")',
                                                   'weekly("2024-03-04", end="2024-03-11")'))
    rows = {r.name: r for r in api.status(project=tmp_path)}
    assert rows["per"].state == "stale"
    assert "the partition's window changed (its definition's cadence or time zone)" in rows["per"].reasons[0]
    assert rows["whole"].state == "fresh"  # reads all of raw in every partition, whatever its window
    outcomes = _run(tmp_path)
    assert outcomes["per[2024-03-04]"] == outcomes["per[2024-03-11]"] == "ran"
    assert outcomes["counted[2024-03-04]"] == "ran"  # its input, per's partition, has new data
    assert outcomes["whole[2024-03-04]"] == outcomes["whole[2024-03-11]"] == "fresh"
    assert api.load("per", project=tmp_path, partition="2024-03-04").height == 7
    assert api.load("counted", project=tmp_path)["n"].to_list() == [7, 7]

    (tmp_path / "pipe.py").write_text(body)  # and back: the one-day versions are restored, not recomputed
    outcomes = _run(tmp_path)
    assert outcomes["per[2024-03-04]"] == "restored"
    assert api.load("per", project=tmp_path, partition="2024-03-04").height == 1


def test_partitions_stack_by_column_name_and_values_come_back_by_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["drift"]\n')
    (tmp_path / "drift.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import static

        @asset(partitions=static(["a", "b"]))
        def t(partition) -> pl.DataFrame:  # b orders its columns otherwise and adds one
            return pl.DataFrame({"x": [1], "y": ["a"]}) if partition.key == "a" else \\
                pl.DataFrame({"y": ["b"], "z": [2.5], "x": [2]})

        @asset
        def reader(t: pl.DataFrame) -> pl.DataFrame:
            return t

        @asset(partitions=static(["a", "b"]), io="json")
        def settings(partition) -> dict:
            return {"key": partition.key}
    '''))
    assert set(_run(tmp_path).values()) == {"ran"}
    expected = [{"x": 1, "y": "a", "z": None}, {"x": 2, "y": "b", "z": 2.5}]
    assert api.load("t", project=tmp_path).to_dicts() == expected
    assert api.load("reader", project=tmp_path).to_dicts() == expected
    assert api.load("settings", project=tmp_path) == {"a": {"key": "a"}, "b": {"key": "b"}}


def test_arrow_stacks_partitions_whose_types_differ_as_polars_does_or_names_the_column(tmp_path: Path) -> None:
    """load(kind="arrow") raised pyarrow's 'Unable to merge: Field n has incompatible types: int64 vs double'."""
    from assetflow.errors import StorageError

    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["drift"]\n')
    (tmp_path / "drift.py").write_text(textwrap.dedent('''
        import polars as pl
        import pyarrow as pa
        from assetflow import asset
        from assetflow.partitions import static

        @asset(partitions=static(["a", "b"]))
        def t(partition) -> pl.DataFrame:
            return pl.DataFrame({"n": [1]}) if partition.key == "a" else pl.DataFrame({"n": [2.5], "x": [1]})

        @asset(partitions=static(["a", "b"]))
        def clash(partition) -> pl.DataFrame:
            return pl.DataFrame({"n": [1]}) if partition.key == "a" else pl.DataFrame({"n": ["two"]})

        @asset
        def reader(t: pa.Table) -> pa.Table:
            return t
    '''))
    assert set(_run(tmp_path).values()) == {"ran"}
    expected = {"n": [1.0, 2.5], "x": [None, 1]}
    assert api.load("t", project=tmp_path, kind="arrow").to_pydict() == expected  # as api.load's polars gives
    assert api.load("t", project=tmp_path).to_dict(as_series=False) == expected
    assert api.load("reader", project=tmp_path).to_dict(as_series=False) == expected  # a pa.Table parameter too
    with pytest.raises(StorageError, match="Asset 'clash': its partitions cannot be stacked as one Arrow table: "
                                           "column 'n' is int64 in partition 'a' and (large_)?string in 'b'"):
        api.load("clash", project=tmp_path, kind="arrow")


def test_a_partition_version_names_the_upstream_partitions_it_was_made_from(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["tree"]\n')
    (tmp_path / "tree.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset
        from assetflow.partitions import static

        KEYS = static(["a", "b"])

        @asset(partitions=KEYS)
        def up(partition) -> pl.DataFrame:
            return pl.DataFrame({"k": [partition.key]})

        @asset(partitions=KEYS)
        def down(up: pl.DataFrame) -> pl.DataFrame:
            return up

        @asset
        def total(up: pl.DataFrame) -> pl.DataFrame:
            return up
    '''))
    _run(tmp_path)
    ws = Workspace.load(tmp_path)
    down_b = ws.store.current_partitions(asset="down")[("down", "b")]
    ws.close()
    tree = api.version_tree("down", down_b.id, project=tmp_path)
    assert (tree.name, tree.current) == ("down[b]", True)  # a current partition's version is current
    assert [(u.name, u.current, u.materialization is not None) for u in tree.upstream] == [("up[b]", True, True)]
    total = api.version_tree("total", project=tmp_path)
    assert [u.name for u in total.upstream] == ["up[a]", "up[b]"]  # every partition it read, each its version
    with pytest.raises(Exception, match="is partitioned: each partition has its own current version"):
        api.version_tree("down", project=tmp_path)


def test_an_old_version_names_the_upstream_partitions_it_read_after_one_moved_on(partitioned: Path) -> None:
    """lineage --version of a version that read several upstream partitions said "no longer recorded; not current"
    once one of them had a newer version (its file edited and run alone, or a newer version refused by a check)."""
    _run(partitioned)
    ws = Workspace.load(partitioned)
    rolling = ws.store.current_partitions(asset="rolling")[("rolling", "2024-01-03")]
    total = ws.store.current()["total"]
    ws.close()
    _day(partitioned, 2, 20)
    _run(partitioned, select="daily_events")  # daily_events[2024-01-02] moves on; rolling and total do not
    for version, upstream in ((rolling.id, ["2024-01-02", "2024-01-03"]), (total.id, ["2024-01-01", "2024-01-02",
                                                                                       "2024-01-03"])):
        tree = api.version_tree("rolling" if version == rolling.id else "total", version, project=partitioned)
        assert [u.name for u in tree.upstream] == [f"daily_events[{k}]" for k in upstream]
        assert all(u.materialization is not None for u in tree.upstream)
        assert [u.current for u in tree.upstream] == [k != "2024-01-02" for k in upstream]  # the one it read, not now


def test_an_unreadable_file_of_a_partitioned_source_shows_the_source_failed(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset, source
        from assetflow.partitions import daily

        DAYS = daily("2024-03-01", end="2024-03-02")
        ev = source("data/ev/{date}.csv", partitions=DAYS)

        @asset(partitions=DAYS)
        def de(ev: pl.DataFrame) -> pl.DataFrame:
            return ev
    '''))
    (tmp_path / "data" / "ev").mkdir(parents=True)
    (tmp_path / "data" / "ev" / "2024-03-01.csv").write_text("v\n1\n")
    (tmp_path / "data" / "ev" / "2024-03-02.csv").write_text('v\nx\n"unterminated\n')
    assert _run(tmp_path)["de[2024-03-02]"] == "failed"
    [source] = api.status("ev", project=tmp_path)
    assert "failed" in source.states and source.reasons[0].startswith("partition 2024-03-02: Source `ev`")
    (tmp_path / "data" / "ev" / "2024-03-02.csv").write_text("v\n2\n")  # fixed: the source is observed again
    assert api.status("ev", project=tmp_path)[0].states == ("observed",)
