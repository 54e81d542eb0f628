"""Automation, in process: schedules, catch-up, DST, sensors, content-aware conditions, claim-then-run.

Every test drives ``Daemon.tick()`` with an injected clock: no sleeps, no subprocesses (the kill
battery is in test_automation_kill.py, slow lane).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from browser_support import eventually

from assetflow.automation.daemon import Daemon
from assetflow.cli import main
from assetflow.cron import CronError, parse_cron
from assetflow.errors import DaemonRunningError, DefinitionError, ProjectLoadError

PARIS = ZoneInfo("Europe/Paris")
HEADER = """\
import polars as pl
from assetflow import asset, source
from assetflow.automation import (schedule, sensor, eager, on_cron, on_missing, on_overdue,
                                  on_upstream_change, RunRequest, SkipReason)
"""


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def at(self, text: str) -> Clock:
        self.now = datetime.datetime.fromisoformat(text).timestamp()
        return self


def make(tmp_path: Path, body: str, csv: str = "id,amount\n1,10\n2,-3\n") -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "orders.csv").write_text(csv)
    (tmp_path / "pipeline.py").write_text(HEADER + textwrap.dedent(body))
    return tmp_path


def daemon(root: Path, clock: Clock, **options: object) -> Daemon:
    return Daemon(root, clock=clock, executor="inprocess", **options).open()  # type: ignore[arg-type]


def ticks_of(d: Daemon, origin: str) -> list:
    return sorted((t for t in d.ticks.ticks(limit=100_000) if t.origin == origin), key=lambda t: t.tick_at)


MARTS = """
orders_raw = source("data/orders.csv")

@asset
def orders(orders_raw: pl.DataFrame) -> pl.DataFrame:
    return orders_raw.filter(pl.col("amount") > 0)

@asset(group="marts")
def revenue(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.select(pl.col("amount").sum())
"""


# -- cron ---------------------------------------------------------------------------------


def test_a_schedule_without_timezone_follows_the_machine_zone_across_dst(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")  # the machine's zone, as a server set to local time has it

    def due(expression: str, timezone: str | None, start: str, end: str) -> list[float]:
        return parse_cron(expression, timezone).between(datetime.datetime.fromisoformat(start).timestamp(),
                                                        datetime.datetime.fromisoformat(end).timestamp())

    for expression, start, end in (("*/30 * * * *", "2026-10-25T01:45+02:00", "2026-10-25T03:15+01:00"),
                                   ("30 2 * * *", "2026-03-28T12:00+01:00", "2026-03-29T12:00+02:00")):
        assert due(expression, None, start, end) == due(expression, "Europe/Paris", start, end)
    assert len(due("*/30 * * * *", None, "2026-10-25T01:45+02:00", "2026-10-25T03:15+01:00")) == 5  # 02:xx twice
    fall_back = datetime.datetime.fromisoformat("2026-10-25T02:10+01:00").timestamp()  # the second 02:10
    assert parse_cron("0 * * * *").previous(fall_back) == datetime.datetime.fromisoformat(
        "2026-10-25T02:00+01:00").timestamp()


def test_cron_dst_daily_0230_runs_once_on_spring_forward_and_fall_back_days() -> None:
    cron = parse_cron("30 2 * * *", "Europe/Paris")
    for first, last in (("2026-03-28T00:00+01:00", "2026-03-31T00:00+02:00"),
                        ("2026-10-24T00:00+02:00", "2026-10-27T00:00+01:00")):
        start = datetime.datetime.fromisoformat(first).timestamp()
        end = datetime.datetime.fromisoformat(last).timestamp()
        days = [datetime.datetime.fromtimestamp(t, PARIS).date() for t in cron.between(start, end)]
        assert len(days) == len(set(days)) == 3  # one per local day, the DST day included
    spring = datetime.datetime.fromtimestamp(cron.next(datetime.datetime(2026, 3, 29, tzinfo=PARIS).timestamp()), PARIS)
    assert (spring.hour, spring.minute) == (3, 0)  # 02:30 does not exist that day: the first instant after


def test_cron_errors_say_what_is_wrong() -> None:
    with pytest.raises(CronError, match="5 fields"):
        parse_cron("* * *")
    with pytest.raises(CronError, match="day '30' never falls in month '2'"):  # not "a day is 1-31"
        parse_cron("0 6 30 2 *")
    with pytest.raises(CronError, match="bad minute"):
        parse_cron("61 * * * *")
    with pytest.raises(CronError, match="unknown time zone"):
        parse_cron("0 6 * * *", "Mars/Olympus")
    assert parse_cron("@daily").expression == "0 0 * * *"


def test_freshness_cron_policy_still_reads_through_cron_module() -> None:
    from assetflow.freshness import parse_policy

    policy = parse_policy("cron:0 6 * * * +1h")
    now = datetime.datetime(2026, 5, 2, 12, 0).timestamp()
    assert policy.due(now) == datetime.datetime(2026, 5, 2, 6, 0).timestamp()


# -- schedules ----------------------------------------------------------------------------


def test_schedule_first_seen_never_replays_then_runs_its_tick_with_trigger(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + 'schedule("daily_marts", cron="0 6 * * *", select="+group:marts", '
                                  'timezone="Europe/Paris")\n')
    clock = Clock(0).at("2026-05-02T12:00+02:00")
    d = daemon(root, clock)
    assert d.tick().claimed == []  # 06:00 today passed before the schedule was first seen
    clock.at("2026-05-03T06:00:30+02:00")
    report = d.tick()
    [tick] = ticks_of(d, "schedule:daily_marts")
    assert tick.status == "succeeded" and tick.run_id == report.runs[0]
    run = d.ws.store.runs(limit=1)[0]
    assert run["trigger"] == {"kind": "schedule", "name": "daily_marts", "tick": tick.tick_at}
    clock.at("2026-05-04T06:01+02:00")
    d.tick()
    second = ticks_of(d, "schedule:daily_marts")[-1]
    assert (second.status, second.reason) == ("skipped", "nothing in daily_marts is stale")
    assert second.run_id is None
    d.close()


def test_a_due_tick_asks_the_snapshot_first_and_is_not_fooled_by_it(tmp_path: Path) -> None:
    """Nothing changed since a complete run: skipped through the no-op snapshot; a source changed: it runs."""
    from assetflow.state.snapshot import SNAPSHOT_KEY

    from reliability_harness import backdate  # type: ignore[import-not-found]

    root = make(tmp_path, MARTS + 'schedule("s", cron="0 6 * * *", select="+revenue", timezone="UTC")\n')
    for path in (root / "pyproject.toml", root / "pipeline.py", root / "data" / "orders.csv", root / "data", root):
        backdate(path)  # out of the racy-clean window, so that a complete run seals a snapshot
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    d.tick()
    clock.at("2026-05-01T06:00:10+00:00")
    d.tick()
    assert d.ws.store.get_meta(SNAPSHOT_KEY) is not None  # the tick's run covered the project: sealed
    assert d.ws.store.current_of(["revenue", "nope"]) == {"revenue": d.ws.store.current()["revenue"]}
    clock.at("2026-05-02T06:00:10+00:00")
    d.tick()
    (root / "data" / "orders.csv").write_text("id,amount\n1,10\n2,7\n")
    clock.at("2026-05-03T06:00:10+00:00")
    d.tick()
    assert [(t.status, t.reason) for t in ticks_of(d, "schedule:s")][1:] == [
        ("skipped", "nothing in s is stale"), ("succeeded", "ran 2")]
    d.close()


@pytest.mark.parametrize(("catchup", "expected"), [("latest", 1), ("all", 3), ("none", 0)])
def test_missed_ticks_follow_the_catchup_policy(tmp_path: Path, catchup: str, expected: int) -> None:
    root = make(tmp_path, MARTS + f'schedule("s", cron="0 6 * * *", select="+revenue", catchup="{catchup}", '
                                  f'force=True, timezone="UTC")\n')
    clock = Clock(0).at("2026-05-01T12:00+00:00")
    daemon(root, clock).close()  # first seen
    clock.at("2026-05-04T12:00+00:00")  # the daemon was down for three 06:00 ticks
    d = daemon(root, clock)
    d.tick()
    ticks = ticks_of(d, "schedule:s")
    assert len(ticks) == 3  # every due tick is recorded, whatever ran
    ran = [t for t in ticks if t.status == "succeeded"]
    assert len(ran) == expected
    if catchup == "none":
        assert [(t.status, t.reason) for t in ticks] == [
            ("skipped", "missed while no daemon ran (catchup='none')")] * 3
    d.close()


def test_latest_catchup_records_each_missed_tick_as_superseded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Down for three days: the 06:00 of the third runs, the two before are each recorded, skipped, with why."""
    root = make(tmp_path, MARTS + 'schedule("daily", cron="0 6 * * *", select="+revenue", force=True, '
                                  'timezone="Europe/Paris")\n')
    clock = Clock(0).at("2026-05-01T12:00+02:00")
    daemon(root, clock).close()  # first seen
    clock.at("2026-05-04T09:00+02:00")
    d = daemon(root, clock)
    d.tick()
    ticks = ticks_of(d, "schedule:daily")
    local = [datetime.datetime.fromtimestamp(t.tick_at, PARIS).strftime("%m-%d %H:%M") for t in ticks]
    assert local == ["05-02 06:00", "05-03 06:00", "05-04 06:00"]
    superseded = "superseded by the tick of 2026-05-04 06:00 CEST (catchup='latest')"
    assert [(t.status, t.reason) for t in ticks[:2]] == [("skipped", superseded)] * 2
    assert ticks[2].status == "succeeded" and ticks[2].run_id is not None
    assert (ticks[2].reason or "").startswith("catch-up: newest of 3 due tick(s) (catchup='latest')")
    clock.at("2026-05-04T09:01+02:00")
    d.tick()  # evaluating again records nothing twice
    assert len(ticks_of(d, "schedule:daily")) == 3
    d.close()
    monkeypatch.chdir(root)
    shown = CliRunner().invoke(main, ["ticks", "daily"]).output
    assert shown.count(superseded) == 2 and shown.count("schedule:daily") == 3, shown


def _minutely_after_a_long_absence(tmp_path: Path, options: str = "") -> tuple[Daemon, list]:
    """A minutely schedule whose daemon was away for MAX_CATCHUP + 200 minutes, evaluated once on its return."""
    from assetflow.automation.evaluate import MAX_CATCHUP

    root = make(tmp_path, MARTS + f'schedule("minutely", cron="* * * * *", select="+revenue", timezone="UTC"{options})\n')
    clock = Clock(0).at("2026-05-01T00:00+00:00")
    daemon(root, clock).close()
    clock.now += 60 * (MAX_CATCHUP + 200) + 30  # 1,200 minutes missed
    d = daemon(root, clock)
    d.tick()
    ticks = ticks_of(d, "schedule:minutely")
    assert len(ticks) == MAX_CATCHUP
    return d, ticks


def test_catchup_beyond_its_limit_says_how_many_ticks_were_not_recorded(tmp_path: Path) -> None:
    from assetflow.automation.evaluate import MAX_CATCHUP

    d, ticks = _minutely_after_a_long_absence(tmp_path)
    assert [t.status for t in ticks].count("skipped") == MAX_CATCHUP - 1
    assert "200 earlier due tick(s) from 2026-05-01 00:01 UTC on were neither run nor recorded" in (ticks[0].reason or "")
    d.close()


def test_catchup_all_beyond_its_limit_says_so_once_not_in_every_replayed_tick(tmp_path: Path) -> None:
    d, ticks = _minutely_after_a_long_absence(tmp_path, ', catchup="all"')
    noted = [t for t in ticks if "neither run nor recorded" in (t.reason or "")]
    assert [t.tick_at for t in noted] == [ticks[0].tick_at]  # the oldest recorded says it, once
    assert (ticks[0].reason or "").startswith(
        "catch-up: 999 missed tick(s) run (catchup='all'); 200 earlier due tick(s) from 2026-05-01 00:01 UTC on "
        "were neither run nor recorded one by one (at most 1000 are) -> ")
    assert ticks[1].reason == "catch-up: 999 missed tick(s) run (catchup='all') -> nothing in minutely is stale"
    d.close()


def test_editing_the_cron_or_selection_never_replays_past_ticks(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + 'schedule("s", cron="0 6 * * *", select="+revenue", force=True, timezone="UTC")\n')
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    d.tick()
    clock.at("2026-05-01T06:00:10+00:00")
    d.tick()
    assert len(ticks_of(d, "schedule:s")) == 1
    d.close()
    # An hour later, the cron becomes "every 5 minutes from midnight" and the selection changes:
    # nothing before the edit is replayed, only ticks after the last evaluation count.
    (root / "pipeline.py").write_text(HEADER + textwrap.dedent(MARTS) +
                                      'schedule("s", cron="*/5 * * * *", select="+revenue", force=True, timezone="UTC")\n')
    clock.at("2026-05-01T06:06+00:00")
    d = daemon(root, clock)
    d.tick()
    instants = [datetime.datetime.fromtimestamp(t.tick_at, datetime.UTC).strftime("%H:%M") for t in ticks_of(d, "schedule:s")]
    assert instants == ["06:00", "06:05"]
    assert ticks_of(d, "schedule:s")[-1].definition["select"] == ["+revenue"]
    d.close()


def test_dst_days_run_a_0230_paris_schedule_exactly_once(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + 'schedule("night", cron="30 2 * * *", select="revenue", timezone="Europe/Paris")\n')
    for first in ("2026-03-28T12:00+01:00", "2026-10-24T12:00+02:00"):
        clock = Clock(0).at(first)
        d = daemon(root, clock)
        start = clock.now
        while clock.now < start + 3 * 86400:  # every 10 minutes for three days
            d.tick()
            clock.now += 600
        days = [datetime.datetime.fromtimestamp(t.tick_at, PARIS).date() for t in ticks_of(d, "schedule:night")
                if t.tick_at > start]
        assert len(days) == 3 and len(set(days)) == 3, days
        d.close()


# -- claims -------------------------------------------------------------------------------


def test_two_daemons_never_claim_one_tick_twice(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + 'schedule("s", cron="*/10 * * * *", select="+revenue", force=True, timezone="UTC")\n')
    clock = Clock(0).at("2026-05-01T05:55+00:00")
    a, b = daemon(root, clock), daemon(root, clock)
    clock.at("2026-05-01T06:00:05+00:00")
    claimed = a.tick().claimed + b.tick().claimed
    assert claimed == [f"schedule:s@{datetime.datetime(2026, 5, 1, 6, tzinfo=datetime.UTC).timestamp():.0f}"]
    assert [t.status for t in ticks_of(a, "schedule:s")] == ["succeeded"]
    a.close()
    b.close()


def test_a_started_tick_whose_run_finished_is_closed_not_run_again(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + 'schedule("s", cron="0 6 * * *", select="+revenue", force=True, timezone="UTC")\n')
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    d.tick()
    clock.at("2026-05-01T06:00:05+00:00")
    d.tick()
    [tick] = ticks_of(d, "schedule:s")
    runs = len(d.ws.store.runs(limit=100))
    with d.ws.store.transaction() as db:  # as if killed after the run finished, before the tick was noted
        db.execute("UPDATE ticks SET status = 'started'")
    d.close()
    d = daemon(root, clock)
    d.tick()
    assert [t.status for t in ticks_of(d, "schedule:s")] == ["succeeded"]
    assert len(d.ws.store.runs(limit=100)) == runs
    d.close()


def _killed_daemon_left(tmp_path: Path, settled: str) -> tuple[Daemon, Clock, float]:
    """What a daemon killed mid-run leaves: the 06:00 tick of a forced ``+revenue`` schedule started by run
    ``dead-run``, which settled ``settled`` and reads ``running``. Returns a new daemon, its clock, the tick."""
    from assetflow import api

    root = make(tmp_path, MARTS + 'schedule("s", cron="0 6 * * *", select="+revenue", force=True, timezone="UTC")\n')
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    d.tick()
    tick_at = datetime.datetime(2026, 5, 1, 6, tzinfo=datetime.UTC).timestamp()
    api.materialize(settled, project=d.ws, run_id="dead-run", force=True)
    with d.ws.store.transaction() as db:
        db.execute("INSERT INTO ticks (origin, tick_at, status, run_id, definition, claimed_at) VALUES "
                   "('schedule:s', ?, 'started', 'dead-run', ?, ?)",
                   (tick_at, json.dumps({"select": ["+revenue"], "force": True}), tick_at))
        db.execute("UPDATE runs SET status = 'running', finished_at = NULL, summary = NULL WHERE run_id = 'dead-run'")
    lock_file = d.ws.config.state_path / "lock"  # as the killed daemon left it: naming a process that is gone
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_file.write_text(json.dumps({**json.loads(lock_file.read_text()), "pid": int(ended.stdout)}))
    return d, clock, tick_at


@pytest.mark.parametrize("leftover", ["running", "abandoned", "never-began"])
def test_a_started_tick_whose_run_died_is_resumed_once_without_redoing_settled_assets(tmp_path: Path,
                                                                                      leftover: str) -> None:
    """``running``: the killed run as it died; ``abandoned``: a person's run marked it failed (abandoned)
    before the daemon came back, which is an interruption, not a failure; ``never-began``: a resuming
    daemon was killed after starting the tick with a new run id but before that run began."""
    # A killed daemon's leftovers: the tick claimed and started, its run begun, 'orders' settled, then SIGKILL.
    d, clock, tick_at = _killed_daemon_left(tmp_path, settled="orders")
    store = d.ws.store
    if leftover == "abandoned":
        store.mark_abandoned_runs(lambda pid, host: False)
    if leftover == "never-began":
        d.ticks.start_many([("schedule:s", tick_at)], "unborn-run", resumes=["dead-run"])
    clock.at("2026-05-01T06:00:30+00:00")
    report = d.tick()
    [tick] = ticks_of(d, "schedule:s")
    assert tick.status == "succeeded" and tick.run_id == report.runs[0]
    run = store.runs(limit=1)[0]
    assert run["trigger"]["resumes"] == ["dead-run"]
    assert {e["asset"] for e in store.events(runs=[run["run_id"]])} == {"revenue"}  # orders was settled
    assert [r["status"] for r in store.runs(limit=10) if r["run_id"] == "dead-run"] == ["failed"]  # abandoned
    d.close()


def test_a_killed_run_that_settled_every_asset_is_closed_as_abandoned_with_its_tick(tmp_path: Path) -> None:
    """A daemon killed after its run settled every asset, before the run was marked finished: the next daemon
    closes the tick without another run, so no later run start would mark the dead run abandoned. It must not
    stay ``running`` in the history (``assetflow runs``, the page) for as long as no other run starts."""
    d, clock, _ = _killed_daemon_left(tmp_path, settled="+revenue")  # both assets settled, then SIGKILL
    store = d.ws.store
    runs = len(store.runs(limit=100))
    clock.at("2026-05-01T06:00:30+00:00")
    report = d.tick()
    assert report.runs == []
    [tick] = ticks_of(d, "schedule:s")
    assert tick.status == "succeeded" and "settled every asset" in (tick.reason or "")
    assert len(store.runs(limit=100)) == runs  # closed without another run
    [dead] = [r for r in store.runs(limit=100) if r["run_id"] == "dead-run"]
    assert (dead["status"], dead["summary"]) == ("failed", {"abandoned": 1})
    d.close()


def test_a_dead_daemons_run_reads_interrupted_unless_a_live_process_holds_the_lock_in_its_name(tmp_path: Path) -> None:
    """``ticks`` and the schedule listings show a run the daemon's death left ``running`` as interrupted, as the
    next start will record it: the lock file names a process that is gone, or another holder took it since.
    While a live process holds the lock in that run's name, it is running. The lock itself is never taken."""
    from assetflow.state.lock import ProjectLock

    d, _, _ = _killed_daemon_left(tmp_path, settled="orders")
    assert d.ticks.run_state("dead-run") == ("interrupted", {"abandoned": 1})
    [row] = d.ws.store._db.execute("SELECT status FROM runs WHERE run_id = 'dead-run'").fetchall()
    assert row == ("running",)  # read so, not written so
    for holder, seen in (("dead-run", ("running", None)), ("doctor", ("interrupted", {"abandoned": 1}))):
        lock = ProjectLock(d.ws.config.state_path)
        lock.acquire(holder)
        try:
            assert d.ticks.run_state("dead-run") == seen, holder
        finally:
            lock.release()
    d.close()


def test_a_second_daemon_refuses_naming_the_first(tmp_path: Path) -> None:
    from assetflow.automation.lock import DaemonLock

    first = DaemonLock(tmp_path / ".assetflow")
    first.acquire()
    with pytest.raises(DaemonRunningError, match=r"pid \d+ on .*--wait"):
        DaemonLock(tmp_path / ".assetflow").acquire()
    first.release()
    DaemonLock(tmp_path / ".assetflow").acquire()


def test_a_tick_due_while_the_daemon_was_busy_is_late_not_missed(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + 'schedule("at_one", cron="1 * * * *", select="orders", catchup="none", force=True)\n')
    clock = Clock(0).at("2026-05-01T05:56:00+00:00")
    d = daemon(root, clock)
    d.tick()  # the daemon evaluates from 05:56 on
    clock.at("2026-05-01T06:10:00+00:00")  # its next evaluation comes late: a long run held it until 06:10
    d.tick()
    assert [(t.status, t.reason) for t in ticks_of(d, "schedule:at_one")] == [("succeeded", "ran 1")]
    d.close()
    restarted = daemon(root, clock.at("2026-05-01T08:30:00+00:00"))  # down from 06:10 to 08:30: 07:01, 08:01 missed
    restarted.tick()
    missed = [t.reason for t in ticks_of(restarted, "schedule:at_one")][1:]
    assert missed == ["missed while no daemon ran (catchup='none')"] * 2
    restarted.close()


def test_catchup_all_replays_the_daemons_absence_not_the_ticks_a_long_run_overlapped(tmp_path: Path) -> None:
    """Replayed one by one, ticks due during runs made a schedule whose run outlasts its period claim twice the runs at
    each evaluation (1, 2, 5, 11, 22, 45, 91 ...), for ever; the newest of them runs, the others say why not."""
    root = make(tmp_path, MARTS + 'schedule("hourly", cron="0 * * * *", select="+revenue", catchup="all", '
                                  'force=True, timezone="UTC")\n')
    clock = Clock(0).at("2026-05-01T05:30:00+00:00")
    d = daemon(root, clock)
    d.tick()
    clock.at("2026-05-01T09:30:00+00:00")  # the daemon was up, but a run held its next evaluation for four hours
    d.tick()
    ticks = ticks_of(d, "schedule:hourly")
    assert [t.status for t in ticks] == ["skipped", "skipped", "skipped", "succeeded"]
    assert ticks[0].reason == ("superseded by the tick of 2026-05-01 09:00 UTC: due while the daemon was running "
                               "earlier ticks (catchup='all' replays the ticks no daemon was up for)")
    d.close()
    restarted = daemon(root, clock.at("2026-05-01T12:30:00+00:00"))  # down from 09:30: 10:00, 11:00, 12:00 missed
    restarted.tick()
    replayed = ticks_of(restarted, "schedule:hourly")[4:]
    assert [t.status for t in replayed] == ["succeeded"] * 3
    assert (replayed[0].reason or "").startswith("catch-up: 3 missed tick(s) run (catchup='all')")
    restarted.close()


def test_a_schedule_removed_then_restored_does_not_replay_its_absence(tmp_path: Path) -> None:
    line = 'schedule("nightly", cron="0 3 * * *", select="orders", catchup="all", force=True)\n'
    root = make(tmp_path, MARTS + line)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    d.tick()
    clock.at("2026-05-02T03:00:10+00:00")
    d.tick()  # one nightly run
    (root / "pipeline.py").write_text(HEADER + textwrap.dedent(MARTS))  # paused by removing it; the daemon goes on
    for hour in range(1, 24 * 5):
        clock.at("2026-05-02T04:00+00:00")
        clock.now += hour * 3600
        d.tick()
    (root / "pipeline.py").write_text(HEADER + textwrap.dedent(MARTS) + line)  # back, five days later
    clock.now += 1800
    d.tick()
    assert [t.status for t in ticks_of(d, "schedule:nightly")] == ["succeeded"]  # its absence is not replayed
    d.close()


def test_a_broken_project_is_logged_once_not_at_every_tick(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make(tmp_path, MARTS)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock, interval=0.01)
    (root / "pipeline.py").write_text(HEADER + "def broken(:\n")  # an edit that does not import
    ticks = 0
    stop = threading.Event()
    real_tick = d.tick

    def counted() -> object:
        nonlocal ticks
        ticks += 1
        if ticks == 5:
            stop.set()
        return real_tick()

    d.tick = counted  # type: ignore[method-assign]
    with caplog.at_level("INFO", logger="assetflow.daemon"):
        d.serve(stop)
    failures = [r for r in caplog.records if "evaluation failed" in r.getMessage()]
    assert ticks == 5 and len(failures) == 1  # five failing ticks, said once
    d.close()


def test_a_project_that_does_not_import_is_imported_again_when_a_file_changes_not_at_every_tick(tmp_path: Path) -> None:
    """Each import of a broken project costs its import time and says nothing new: the daemon tries again when one of
    the project's files changes (a new one too), or a minute later (a package installed meanwhile), and its error
    does not tell the user to run a command again."""
    root = make(tmp_path, MARTS)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    imports = root / "imports.log"
    (root / "pipeline.py").write_text(HEADER + f"open({str(imports)!r}, 'a').write('x')\n"
                                               "raise RuntimeError('BUCKET_TOKEN is not set')\n")

    def evaluate(times: int = 1) -> None:
        for _ in range(times):
            clock.now += 1
            d.serve(threading.Event(), once=True)

    evaluate(5)
    assert imports.read_text() == "x"  # five failing evaluations, one import
    (root / "helpers.py").write_text("X = 1\n")  # a new file the fix might import
    evaluate(3)
    assert imports.read_text() == "xx"
    clock.now += 60
    evaluate(2)
    assert imports.read_text() == "xxx"
    [failure] = ticks_of(d, "daemon:evaluation")
    assert "RuntimeError: BUCKET_TOKEN is not set" in (failure.reason or "")
    assert (failure.reason or "").endswith(
        "Fix the error above: the daemon imports the project again as soon as one of its files changes.")
    (root / "pipeline.py").write_text(HEADER + MARTS)
    evaluate()
    assert (ticks_of(d, "daemon:evaluation")[0].reason or "").endswith(": it succeeded again")
    d.close()


def test_a_daemon_that_cannot_load_the_project_says_so_in_ticks_listings_and_the_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's environment breaks the import (a secret missing from the service), the user's does not: its failure
    is a failed tick and the first line of the listings, once per error, and is closed when it succeeds again."""
    from starlette.testclient import TestClient

    from assetflow.automation.lock import DaemonLock
    from assetflow.ui.app import create_app
    from assetflow.ui.project_view import ProjectView

    root = make(tmp_path, MARTS + 'import os\nif os.environ.get("BREAK_IMPORT"):\n'
                                  '    raise RuntimeError("BUCKET_TOKEN is not set")\n'
                                  'schedule("daily_marts", cron="0 6 * * *", select="+revenue")\n')
    monkeypatch.chdir(root)
    lock = DaemonLock(root / ".assetflow")
    lock.acquire()  # this process is the daemon the listings find
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    monkeypatch.setenv("BREAK_IMPORT", "1")
    (root / "pipeline.py").write_text((root / "pipeline.py").read_text() + "\n")  # an edit: the daemon reloads
    for _ in range(3):  # three evaluations fail with the same error: recorded once
        clock.now += 5
        d.serve(threading.Event(), once=True)
    monkeypatch.delenv("BREAK_IMPORT")
    [failure] = ticks_of(d, "daemon:evaluation")
    assert failure.status == "failed" and "RuntimeError: BUCKET_TOKEN is not set" in (failure.reason or "")
    runner = CliRunner()
    health = json.loads(runner.invoke(main, ["schedules", "--json"]).output)["daemon"]
    assert health["running"] and health["failing"]["since"] == failure.tick_at
    assert "BUCKET_TOKEN is not set" in health["failing"]["error"]
    text = runner.invoke(main, ["automation"]).output
    assert text.startswith(f"daemon: pid {health['pid']} on ") and "its evaluations FAIL since 2026-05-01T" in text
    assert "BUCKET_TOKEN is not set" in runner.invoke(main, ["ticks"]).output
    view = ProjectView(root)
    try:
        with TestClient(create_app(view), base_url="http://127.0.0.1") as client:
            assert client.get("/api/sensors").json()["daemon"]["failing"]["since"] == failure.tick_at
    finally:
        view.close()
    clock.now += 3600  # fixed (its environment now has the secret): the 06:00 tick due meanwhile runs, on time
    d.serve(threading.Event(), once=True)
    [failure] = ticks_of(d, "daemon:evaluation")
    assert (failure.reason or "").endswith("-> until 2026-05-01T06:00:15+00:00: it succeeded again")
    assert [(t.status, t.reason) for t in ticks_of(d, "schedule:daily_marts")] == [("succeeded", "ran 2")]
    health = json.loads(runner.invoke(main, ["schedules", "--json"]).output)["daemon"]
    assert health["failing"] is None
    d.close()
    lock.release()
    assert runner.invoke(main, ["sensors"]).output.startswith("daemon: not running;")


def test_a_daemon_started_on_a_broken_project_waits_for_its_fix(tmp_path: Path) -> None:
    """``assetflow daemon`` and ``serve`` (whose daemon thread ended for good, while the page went on) keep
    evaluating a project that does not import yet, and run it once it does; ``--once`` fails at once."""
    from assetflow.cli_automation import run_daemon
    from assetflow.state.ticks import TickStore

    root = make(tmp_path, MARTS + '@sensor(select="+revenue")\ndef poke(context):\n    return RunRequest()\n')
    good = (root / "pipeline.py").read_text()
    (root / "pipeline.py").write_text(good + "def broken(:\n")
    with pytest.raises(ProjectLoadError, match="SyntaxError"):
        run_daemon(root, (), (), interval=0.05, wait=False, once=True, executor="inprocess", jobs=None)
    stop = threading.Event()
    thread = threading.Thread(target=run_daemon, args=(root, (), ()), kwargs=dict(
        interval=0.05, wait=False, once=False, executor="inprocess", jobs=None, stop=stop))
    thread.start()
    try:
        from assetflow.project import load_config
        from assetflow.state.store import StateStore

        state = StateStore(load_config(root).state_path)

        def origins() -> set[str]:
            return {t.origin for t in TickStore(state).ticks()}

        assert eventually(lambda: "daemon:evaluation" in origins()), "the failure was not recorded"
        assert thread.is_alive()  # it waits for the fix instead of ending
        (root / "pipeline.py").write_text(good)
        assert eventually(lambda: "sensor:poke" in origins()), "the fixed project was never evaluated"
    finally:
        stop.set()
        thread.join(30)
    [tick] = [t for t in TickStore(state).ticks() if t.origin == "sensor:poke"]
    assert tick.status == "succeeded"
    state.close()


def test_a_resumed_tick_keeps_the_reason_it_was_claimed_for(tmp_path: Path) -> None:
    from assetflow.state.ticks import TickStore

    root = make(tmp_path, EAGER)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    with d.ws.store.transaction() as db:
        TickStore.claim(db, "condition:orders", clock.now, clock.now, {"select": ["+orders"]},
                        reason="missing: never materialized")
    for note in ("interrupted: run r1 stopped; the next start resumes it", "queued: locked by another run"):
        d.ticks.requeue("condition:orders", clock.now, note)  # stopped twice before it could run
    d.tick()
    [tick] = ticks_of(d, "condition:orders")
    assert tick.status == "succeeded" and tick.reason is not None
    assert tick.reason.startswith("missing: never materialized -> ran")  # not lost with the interruptions
    d.close()


# -- sensors ------------------------------------------------------------------------------


def test_sensor_keeps_its_cursor_and_a_raising_or_hanging_sensor_stops_nothing(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + """
import threading
GATE = threading.Event()

@sensor(select="+revenue", interval="30s")
def counter(context):
    n = int(context.cursor or 0)
    context.update_cursor(str(n + 1))
    return RunRequest(force=True) if n % 2 == 0 else SkipReason(f"odd call {n}")

@sensor(interval="30s")
def broken(context):
    raise ValueError("the bucket is unreachable")

@sensor(interval="30s", timeout="0.2s")
def stuck(context):
    GATE.wait()
""")
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    for _ in range(3):
        d.tick()
        clock.now += 30
    counter = [(t.status, t.reason) for t in ticks_of(d, "sensor:counter")]
    assert counter == [("succeeded", "1 run request(s) -> ran 2"), ("skipped", "odd call 1"),
                       ("succeeded", "1 run request(s) -> ran 2")]
    assert d.ticks.cursors("sensor:counter") == {"sensor:counter": "3"}
    assert {t.reason for t in ticks_of(d, "sensor:broken")} == {"raised ValueError: the bucket is unreachable"}
    stuck = ticks_of(d, "sensor:stuck")
    assert stuck[0].status == "failed" and "timed out after 0.2s" in (stuck[0].reason or "")
    assert [t.status for t in stuck[1:]] == ["skipped", "skipped"]  # no gap in its history while the call hangs
    assert (stuck[1].reason or "").startswith("not called: its call of 2026-05-01T") and \
        "still runs, past its 0.2s timeout (called again once that call returns)" in (stuck[2].reason or "")
    import pipeline  # type: ignore[import-not-found]

    pipeline.GATE.set()  # the hung call returns: the sensor is called again from then on
    d._hung["stuck"].join()  # noqa: SLF001
    d.tick()
    assert len(ticks_of(d, "sensor:stuck")) == 4 and ticks_of(d, "sensor:stuck")[-1].status == "skipped"
    d.close()


def test_a_failed_ticks_reason_says_why_each_asset_failed_or_was_skipped(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + """
@asset
def boom(orders: pl.DataFrame) -> pl.DataFrame:
    raise ValueError("the bucket is unreachable")

@sensor(select="revenue")
def a_without_upstream(context):
    return RunRequest()

@sensor(select="+boom")
def b_raising(context):
    return RunRequest()
""")
    d = daemon(root, Clock(0).at("2026-05-01T05:00+00:00"))
    d.tick()
    [skipped] = ticks_of(d, "sensor:a_without_upstream")
    assert skipped.status == "failed" and skipped.reason == (
        "1 run request(s) -> skipped 1: revenue skipped: upstream `orders` has never been materialized "
        "(select it too, e.g. +revenue)")
    [failed] = ticks_of(d, "sensor:b_raising")
    assert failed.status == "failed" and failed.reason == (
        "1 run request(s) -> failed 1, ran 1: boom failed: ValueError: the bucket is unreachable")
    d.close()


def test_a_tick_whose_selection_waits_on_an_upstream_that_failed_its_check_is_skipped_saying_which(
        tmp_path: Path) -> None:
    """A schedule over the downstream of a partition its check refused: each tick's run computes nothing (the stale
    keys wait on that upstream, outside the selection), so the tick is skipped, naming the upstream and the fix."""
    from assetflow import api

    root = make(tmp_path, """
from assetflow import expr
from assetflow.partitions import daily, window
DAYS = daily("2024-03-01", end="2024-03-03")
ev = source("data/ev/{date}.csv", partitions=DAYS)

@asset(partitions=DAYS, checks=[expr(pl.col("n") >= 0)])
def daily_ev(ev: pl.DataFrame) -> pl.DataFrame:
    return ev

@asset(partitions=DAYS, mappings={"daily_ev": window(-1, 0)})
def two_day(daily_ev: pl.DataFrame) -> pl.DataFrame:
    return daily_ev.select(pl.col("n").sum())

@asset
def everything(daily_ev: pl.DataFrame) -> pl.DataFrame:
    return daily_ev

schedule("two_days", cron="* * * * *", select="two_day or everything", timezone="UTC")
""")
    (root / "data" / "ev").mkdir()
    for day, n in (("01", 1), ("02", 2), ("03", 3)):
        (root / "data" / "ev" / f"2024-03-{day}.csv").write_text(f"n\n{n}\n")
    api.materialize(project=root)
    (root / "data" / "ev" / "2024-03-02.csv").write_text("n\n-5\n")
    assert not api.materialize(project=root).ok  # daily_ev[2024-03-02] refused by its check
    (root / "data" / "ev" / "2024-03-01.csv").write_text("n\n7\n")
    api.materialize("daily_ev", project=root, partition="2024-03-01")
    clock = Clock(0).at("2026-05-01T05:00:30+00:00")
    d = daemon(root, clock)
    for _ in range(2):
        clock.now += 60
        d.tick()
    waits = "waiting: upstream `daily_ev[2024-03-02]` is stale and not selected: select `daily_ev` too, e.g. +"
    assert [(t.status, t.reason) for t in ticks_of(d, "schedule:two_days")] == [
        ("succeeded", f"ran 3, waiting 1: two_day[2024-03-03] {waits}two_day"),  # what reads 2024-03-01's new data
        ("skipped", f"nothing in two_days could run (fresh 1, waiting 3): everything {waits}everything; "
                    f"two_day[2024-03-02..2024-03-03] {waits}two_day")]
    d.close()


def test_an_oversize_cursor_fails_its_sensors_tick_and_long_cursors_are_cut_in_text(tmp_path: Path,
                                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path, MARTS + """
@sensor()
def huge(context):
    context.update_cursor("x" * 2_000_000)
    return SkipReason("kept everything seen")

@sensor()
def long(context):
    context.update_cursor("y" * 5000)
    return SkipReason("kept a long position")
""")
    monkeypatch.chdir(root)
    runner = CliRunner()
    assert runner.invoke(main, ["daemon", "--once", "--executor", "inprocess"]).exit_code == 0
    [tick] = json.loads(runner.invoke(main, ["ticks", "huge", "--json"]).output)["ticks"]
    assert tick["status"] == "failed" and tick["reason"].startswith(
        "context.update_cursor() was given 2.0 MB, more than a cursor's 1.0 MB: it is stored at every evaluation. "
        "Keep a position")
    listed = {s["name"]: s["cursor"] for s in json.loads(runner.invoke(main, ["sensors", "--json"]).output)["sensors"]}
    assert listed == {"huge": None, "long": "y" * 5000}  # the oversize cursor was not stored; --json has each whole
    text = runner.invoke(main, ["sensors"]).output
    assert len(text) < 2000 and "'" + "y" * 80 + "'... (5,000 characters; sensors --json has it whole)" in text


def test_a_sensor_that_misuses_the_api_fails_its_own_tick_keeps_its_cursor_and_stops_nothing(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS + """
@sensor(select="revenue", interval="30s")
def bad_select(context):
    context.update_cursor("seen-1")
    return RunRequest(select=123)

@sensor(select="revenue", interval="30s")
def dict_cursor(context):
    context.update_cursor({"last_id": 1})
    return None

@sensor(select="revenue", interval="30s")
def bad_return(context):
    context.update_cursor("seen-1")
    return {"select": "revenue"}

@sensor(select="+revenue", interval="30s")
def good(context):
    if context.cursor == "done":
        return None
    context.update_cursor("done")
    return RunRequest(select="+revenue", partitions="k1")

@sensor(select="revenue", interval="30s")
def yielding(context):
    yield RunRequest(select="orders")
    yield RunRequest(select="revenue")

@sensor(select="revenue", interval="30s")
def yields_a_skip(context):
    yield SkipReason("nothing new")
""")
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    d.tick()  # none of them raises out of the daemon
    reasons = {name: [(t.status, t.reason) for t in ticks_of(d, f"sensor:{name}")]
               for name in ("bad_select", "dict_cursor", "bad_return")}
    assert reasons["bad_select"][0][0] == "failed" and "RunRequest(select=123)" in reasons["bad_select"][0][1]
    assert reasons["dict_cursor"][0][0] == "failed" and "a cursor is a string" in reasons["dict_cursor"][0][1]
    assert reasons["bad_return"][0][0] == "failed" and "returned {'select': 'revenue'}" in reasons["bad_return"][0][1]
    cursors = d.ticks.cursors("sensor:")
    assert "sensor:bad_select" not in cursors and "sensor:bad_return" not in cursors  # a failed call keeps none
    good = ticks_of(d, "sensor:good")
    assert [t.definition["partitions"] for t in good] == [["k1"]]  # one key, not its letters
    assert cursors["sensor:good"] == "done"
    [yielded] = ticks_of(d, "sensor:yielding")  # Dagster's idiom: the requests yielded make one run
    assert yielded.definition["select"] == ["orders", "revenue"] and yielded.status == "succeeded"
    assert [(t.status, t.reason) for t in ticks_of(d, "sensor:yields_a_skip")] == [("skipped", "nothing new")]
    d.close()


# -- conditions ---------------------------------------------------------------------------

EAGER = """
orders_raw = source("data/orders.csv")

@asset(automation=eager())
def orders(orders_raw: pl.DataFrame) -> pl.DataFrame:
    return orders_raw.filter(pl.col("amount") > 0)

@asset(automation=on_upstream_change())
def revenue(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.select(pl.col("amount").sum())
"""


def test_conditions_are_content_aware(tmp_path: Path) -> None:
    root = make(tmp_path, EAGER)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    d.tick()  # orders is missing: it runs; revenue is missing, but on_upstream_change needs a version
    assert [t.status for t in ticks_of(d, "condition:orders")] == ["succeeded"]
    assert ticks_of(d, "condition:revenue") == []
    from assetflow import api

    api.materialize("revenue", project=d.ws)
    clock.now += 5
    assert d.tick().claimed == []
    # The source changes, but only in a row the filter drops: orders reruns (its upstream changed)
    # and is cut off at equal data, so revenue triggers nothing.
    (root / "data" / "orders.csv").write_text("id,amount\n1,10\n2,-4\n")
    clock.now += 5
    d.tick()
    assert [t.status for t in ticks_of(d, "condition:orders")] == ["succeeded", "succeeded"]
    clock.now += 5
    d.tick()
    assert ticks_of(d, "condition:revenue") == []
    # Rewriting identical bytes changes nothing at all.
    (root / "data" / "orders.csv").write_text("id,amount\n1,10\n2,-4\n")
    clock.now += 5
    assert d.tick().claimed == []
    # Real new data: orders, then revenue, each once.
    (root / "data" / "orders.csv").write_text("id,amount\n1,10\n2,5\n")
    for _ in range(3):
        clock.now += 5
        d.tick()
    assert len(ticks_of(d, "condition:orders")) == 3
    assert [t.status for t in ticks_of(d, "condition:revenue")] == ["succeeded"]
    assert "upstream `orders` has new data" in (ticks_of(d, "condition:revenue")[0].reason or "")
    d.close()


def test_a_failing_condition_run_is_not_retried_every_tick(tmp_path: Path) -> None:
    root = make(tmp_path, """
orders_raw = source("data/orders.csv")

@asset(automation=on_missing())
def boom(orders_raw: pl.DataFrame) -> pl.DataFrame:
    raise RuntimeError("no")
""")
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock)
    for _ in range(5):
        d.tick()
        clock.now += 61
    [tick] = ticks_of(d, "condition:boom")
    assert tick.status == "failed" and "boom" in (tick.reason or "")
    (root / "data" / "orders.csv").write_text("id,amount\n1,11\n")  # its input changes: one new attempt
    d.tick()
    assert len(ticks_of(d, "condition:boom")) == 2
    d.close()


def test_on_cron_fires_once_per_tick_after_upstreams_are_updated(tmp_path: Path) -> None:
    import time

    root = make(tmp_path, """
orders_raw = source("data/orders.csv")

@asset
def orders(orders_raw: pl.DataFrame) -> pl.DataFrame:
    return orders_raw

@asset(automation=on_cron("* * * * *", timezone="UTC"))
def hourly(orders: pl.DataFrame) -> pl.DataFrame:
    return orders
""")
    # Runs record real finish times; the clock follows them so "updated since the tick" compares.
    clock = Clock(time.time() - 120)
    d = daemon(root, clock)
    d.tick()
    clock.now = time.time()
    d.tick()
    [row] = [r for r in d.evaluate_conditions(clock.now) if r.name == "hourly"]
    assert not row.fire and "waits for upstream `orders`" in row.reason
    assert ticks_of(d, "condition:hourly") == []
    from assetflow import api

    api.materialize("orders", project=d.ws, force=True)
    clock.now = max(clock.now, time.time()) + 1
    d.tick()
    assert len(ticks_of(d, "condition:hourly")) == 1
    clock.now += 5
    d.tick()
    assert len(ticks_of(d, "condition:hourly")) == 1  # once per tick
    d.close()


def test_on_overdue_recomputes_an_asset_past_its_freshness_policy(tmp_path: Path) -> None:
    import time

    root = make(tmp_path, """
@asset(freshness="1h", automation=on_overdue())
def pulled() -> pl.DataFrame:
    return pl.DataFrame({"x": [1]})
""")
    from assetflow import api

    clock = Clock(time.time())
    d = daemon(root, clock)
    api.materialize(project=d.ws)
    d.tick()
    assert ticks_of(d, "condition:pulled") == []
    clock.now += 3 * 3600
    d.tick()
    [tick] = ticks_of(d, "condition:pulled")
    assert tick.status == "succeeded" and "overdue by" in (tick.reason or "")
    assert "ran 1" in (tick.reason or "")
    d.close()


def test_conditions_compose_and_reject_non_conditions() -> None:
    from assetflow.automation import on_cron, on_missing, on_upstream_change

    condition = (on_missing() | on_upstream_change()) & ~on_cron("0 0 * * *")
    assert condition.describe() == "((on_missing() | on_upstream_change()) & ~on_cron('0 0 * * *'))"
    with pytest.raises(DefinitionError, match="combine with |"):
        on_missing() | "daily"  # type: ignore[operator]
    with pytest.raises(DefinitionError, match="on_cron"):
        on_cron("61 * * * *")


def test_bad_declarations_name_the_place(tmp_path: Path) -> None:
    from assetflow.automation import schedule

    with pytest.raises(DefinitionError, match=r"Schedule 's' at .*test_automation.py:\d+: .*bad minute"):
        schedule("s", cron="99 * * * *")
    with pytest.raises(DefinitionError, match="catchup='sometimes'"):
        schedule("s", cron="0 * * * *", catchup="sometimes")
    with pytest.raises(ProjectLoadError, match=r"pipeline.py:5: automation='daily' is not a condition"):
        make(tmp_path, "@asset(automation='daily')\ndef x() -> pl.DataFrame:\n    return pl.DataFrame()\n")
        Daemon(tmp_path).open()
    make(tmp_path, MARTS + 'for hour in (6, 18):\n    schedule("twice", cron=f"0 {hour} * * *")\n')
    with pytest.raises(Exception, match=r"Schedule name 'twice' is declared twice \(the same line, run twice"):
        Daemon(tmp_path).open()  # a loop giving each the same name kept only the last
    make(tmp_path, MARTS + 'schedule("nightly", cron="0 6 * * *", select=["group:marts", "ordres"])\n')
    with pytest.raises(DefinitionError, match=r"Schedule 'nightly' at .*pipeline.py:\d+: .*Did you mean 'orders'"):
        Daemon(tmp_path).open()  # at load, not at its first tick


# -- the CLI ------------------------------------------------------------------------------


def test_cli_lists_schedules_sensors_automation_and_ticks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path, EAGER + 'schedule("daily_marts", cron="30 2 * * *", select="revenue", '
                                  'timezone="Europe/Paris")\n'
                                  '@sensor(select="revenue")\ndef poke(context):\n    return None\n')
    monkeypatch.chdir(root)
    runner = CliRunner()
    out = runner.invoke(main, ["schedules", "--json", "--at", "2026-03-28T12:00+01:00"])
    assert out.exit_code == 0, out.output
    [row] = json.loads(out.output)["schedules"]
    assert [t["local"] for t in row["next_ticks"]] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
                                                       "2026-03-31T02:30:00+02:00"]
    result = runner.invoke(main, ["daemon", "--once", "--executor", "inprocess"])
    assert result.exit_code == 0, result.output
    ticks = json.loads(runner.invoke(main, ["ticks", "--json"]).output)["ticks"]
    assert {(t["origin"], t["status"]) for t in ticks} == {("condition:orders", "succeeded"),
                                                           ("sensor:poke", "skipped")}
    text = runner.invoke(main, ["ticks", "poke"]).output
    assert "sensor:poke" in text and "skipped: the sensor returned nothing to run" in text
    automation = json.loads(runner.invoke(main, ["automation", "--json"]).output)["automation"]
    assert {a["asset"]: a["fires"] for a in automation} == {"orders": False, "revenue": False}
    sensors = json.loads(runner.invoke(main, ["sensors", "--json"]).output)["sensors"]
    assert sensors[0]["last_tick"]["status"] == "skipped"
    history = json.loads(runner.invoke(main, ["history", "--json"]).output)
    assert history["runs"][0]["trigger"]["kind"] == "condition"
    assert "[condition orders]" in runner.invoke(main, ["history"]).output
    from test_json_schema import documented, normalise, paths  # type: ignore[import-not-found]

    for command in ("schedules", "sensors", "automation", "ticks", "history"):
        payload = json.loads(runner.invoke(main, [command, "--json"]).output)
        keys, types = documented()[command]
        body = {k: v for k, v in payload.items() if k not in ("schema_version", "command")}
        assert {normalise(p) for p in paths(body, types)} - keys == set(), command


def test_ticks_lists_every_tick_in_one_zone_with_a_schedules_own_clock_beside_it(tmp_path: Path) -> None:
    """A schedule in Europe/Paris and a sensor on a UTC machine: each line's time is UTC (the list's order is its times'
    order); the schedule's line also shows the wall clock its cron names."""
    import os

    root = make(tmp_path, MARTS + 'schedule("paris", cron="0 6 * * *", select="+revenue", timezone="Europe/Paris")\n'
                                  'schedule("utc", cron="0 6 * * *", select="+revenue", timezone="UTC")\n'
                                  '@sensor(select="+revenue", interval="1h")\ndef poke(context):\n    return None\n')
    clock = Clock(0).at("2026-05-01T03:00+00:00")
    d = daemon(root, clock)
    for at in ("2026-05-01T04:00:10+00:00", "2026-05-01T05:00:10+00:00", "2026-05-01T06:00:10+00:00"):
        clock.at(at)
        d.tick()
    d.close()
    out = subprocess.run([sys.executable, "-m", "assetflow", "ticks"], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "TZ": "UTC"})
    assert out.returncode == 0, out.stderr
    assert [line.split(": ", 1)[0] for line in out.stdout.splitlines()] == [
        "2026-05-01T06:00:10+00:00  sensor:poke                  skipped",
        "2026-05-01T06:00:00+00:00  schedule:utc                 skipped",
        "2026-05-01T05:00:10+00:00  sensor:poke                  skipped",
        "2026-05-01T04:00:10+00:00  sensor:poke                  skipped",
        "2026-05-01T04:00:00+00:00  schedule:paris (06:00 CEST)  succeeded"]


def test_daemon_stop_event_ends_the_loop(tmp_path: Path) -> None:
    root = make(tmp_path, MARTS)
    clock = Clock(0).at("2026-05-01T05:00+00:00")
    d = daemon(root, clock, interval=0.01)
    stop = threading.Event()
    calls = []
    original = d.tick

    def counting():  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return original()

    d.tick = counting  # type: ignore[method-assign]
    d.serve(stop)
    assert len(calls) == 3
    d.close()


def test_a_partitioned_assets_condition_acts_on_its_latest_partition(tmp_path: Path) -> None:
    import time

    start = (datetime.date.today() - datetime.timedelta(days=5)).isoformat()
    root = make(tmp_path, f"""
from assetflow.partitions import daily

@asset(partitions=daily("{start}"), automation=on_missing())
def events(partition) -> pl.DataFrame:
    return pl.DataFrame({{"day": [partition.key]}})
""")
    clock = Clock(time.time())
    d = daemon(root, clock)
    d.tick()
    [row] = d.evaluate_conditions(clock.now)
    latest = row.partition
    assert latest == (datetime.date.today() - datetime.timedelta(days=1)).isoformat()
    [tick] = ticks_of(d, "condition:events")
    assert tick.status == "succeeded" and tick.definition["partition"] == "latest"
    assert {key for _, key in d.ws.store.current_partitions(asset="events")} == {latest}  # only the latest ran
    clock.now += 61
    d.tick()
    assert len(ticks_of(d, "condition:events")) == 1  # built: on_missing no longer holds for it
    d.close()


def test_not_on_cron_is_false_only_at_the_evaluation_that_sees_the_tick(tmp_path: Path) -> None:
    body = MARTS.replace("@asset\ndef orders", '@asset(automation=on_upstream_change() & ~on_cron("0 3 * * *"))\ndef orders')
    assert body != MARTS
    root = make(tmp_path, body)
    from assetflow import api

    api.materialize(project=root, executor="inprocess")
    clock = Clock(0).at("2026-05-01T01:00+00:00")
    d = daemon(root, clock)
    d.tick()
    runs = 0
    for amount, at in enumerate(("2026-05-01T05:00", "2026-05-02T05:00", "2026-05-09T05:00")):  # each after a tick
        (root / "data" / "orders.csv").write_text(f"id,amount\n1,{100 + amount}\n")
        clock.at(at + "+00:00")
        runs += len(d.tick().runs)  # sees the 03:00 tick: ~on_cron is false now...
        clock.now += 5
        runs += len(d.tick().runs)  # ...and true again at the next evaluation: the new data is acted on
    assert runs == 3
    d.close()


def test_conditions_see_a_partitioned_source_new_days_and_what_each_partition_read(tmp_path: Path) -> None:
    root = make(tmp_path, """
from assetflow.partitions import daily

events = source("data/events/{date}.csv", partitions=daily("2090-05-01"))

@asset(partitions=daily("2090-05-01"), automation=eager())
def daily_events(events: pl.DataFrame) -> pl.DataFrame:
    return events

@asset(partitions=daily("2090-05-01"), automation=on_upstream_change())
def doubled(daily_events: pl.DataFrame) -> pl.DataFrame:
    return daily_events.with_columns(pl.col("amount") * 2)
""")
    days = root / "data" / "events"
    days.mkdir()
    for day, amount in (("2090-05-01", 1), ("2090-05-02", 2)):
        (days / f"{day}.csv").write_text(f"id,amount\n1,{amount}\n")
    clock = Clock(0).at("2090-05-03T06:00+00:00")
    d = daemon(root, clock)

    def built() -> dict[str, str]:
        return {key: mat.data_hash for (_, key), mat in d.ws.store.current_partitions(asset="daily_events").items()}

    d.tick()  # the latest day with data is missing: built (keys listed at the daemon's clock, not the machine's)
    assert set(built()) == {"2090-05-02"}
    [doubled] = [ev for ev in d.evaluate_conditions(clock.now) if ev.name == "doubled"]
    assert not doubled.fire  # on_upstream_change only acts once the asset has a version
    from assetflow import api

    api.materialize(project=d.ws, partition="2090-05-02")  # at the daemon's clock: doubled[2090-05-02] made
    [doubled] = [ev for ev in d.evaluate_conditions(clock.now) if ev.name == "doubled"]
    assert not doubled.verdict.holds, doubled.verdict.reason  # its upstream did not change since

    clock.at("2090-05-04T06:00+00:00")  # a day later, in the same daemon: the key 2090-05-03 exists now
    (days / "2090-05-03.csv").write_text("id,amount\n1,3\n")
    d.tick()
    assert set(built()) == {"2090-05-02", "2090-05-03"}
    before = built()["2090-05-03"]
    (days / "2090-05-03.csv").write_text("id,amount\n1,30\n")  # that day's file is corrected
    clock.now += 61
    d.tick()
    assert built()["2090-05-03"] != before  # the change of the latest key's file was seen and acted on
    d.close()


def test_a_running_daemon_sees_dynamic_keys_another_process_adds(tmp_path: Path) -> None:
    root = make(tmp_path, """
from assetflow.partitions import dynamic

@asset(partitions=dynamic("customers"), automation=on_missing())
def per_customer(partition) -> pl.DataFrame:
    return pl.DataFrame({"customer": [partition.key]})
""")
    from assetflow import api

    clock = Clock(0).at("2026-05-03T06:00+00:00")
    d = daemon(root, clock)
    d.tick()
    assert ticks_of(d, "condition:per_customer") == []  # no key yet: nothing to build
    ws = api.workspace(root)  # another process: `assetflow partitions add customers acme`
    api.add_partitions("customers", ["acme"], project=ws)
    ws.close()
    clock.now += 61
    d.tick()
    assert {key for _, key in d.ws.store.current_partitions(asset="per_customer")} == {"acme"}
    d.close()


def test_the_page_serves_schedules_and_sensors_like_the_cli(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from assetflow.ui.app import create_app
    from assetflow.ui.project_view import ProjectView

    root = make(tmp_path, MARTS + 'schedule("daily_marts", cron="0 6 * * *", select="group:marts")\n'
                                  '@sensor()\ndef poke(context):\n    return None\n')
    view = ProjectView(root)
    try:
        with TestClient(create_app(view), base_url="http://127.0.0.1") as client:
            schedules = client.get("/api/schedules").json()
            sensors = client.get("/api/sensors").json()
    finally:
        view.close()
    assert schedules["command"] == "schedules" and [s["name"] for s in schedules["schedules"]] == ["daily_marts"]
    assert [s["name"] for s in sensors["sensors"]] == ["poke"]
