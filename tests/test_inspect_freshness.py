"""Freshness policies and the cron reader, without a project."""

from __future__ import annotations

import datetime

import pytest

from assetflow import DefinitionError, asset, source
from assetflow.cron import CronError, parse_cron
from assetflow.durations import format_duration, parse_duration
from assetflow.freshness import parse_policy


def ts(*args: int) -> float:
    return datetime.datetime(*args).timestamp()  # local time, as cron is


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("6h", 21600), ("1d", 86400),
                                               ("1w", 604800), ("1h30m", 5400), ("1.5h", 5400), ("2D", 172800)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "d", "1y", "-1d", "1d-", "one day"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert format_duration(5) == "5s"
    assert format_duration(3 * 3600 + 120) == "3h 2m"
    assert format_duration(2 * 86400 + 3 * 3600 + 59) == "2d 3h"


@pytest.mark.parametrize(
    ("expression", "now", "expected"),
    [
        ("0 6 * * *", ts(2024, 5, 10, 7, 0), ts(2024, 5, 10, 6, 0)),
        ("0 6 * * *", ts(2024, 5, 10, 5, 59), ts(2024, 5, 9, 6, 0)),
        ("0 6 * * *", ts(2024, 5, 10, 6, 0), ts(2024, 5, 10, 6, 0)),
        ("*/15 * * * *", ts(2024, 5, 10, 7, 44, 30), ts(2024, 5, 10, 7, 30)),
        ("0 9 * * mon-fri", ts(2024, 5, 12, 12, 0), ts(2024, 5, 10, 9, 0)),  # Sunday -> Friday
        ("0 0 1 * *", ts(2024, 5, 10, 0, 0), ts(2024, 5, 1, 0, 0)),
        ("0 0 29 feb *", ts(2025, 3, 1, 0, 0), ts(2024, 2, 29, 0, 0)),
        ("0 0 1 * 1", ts(2024, 5, 10, 12, 0), ts(2024, 5, 6, 0, 0)),  # day 1 OR Monday (Vixie cron)
        ("@daily", ts(2024, 5, 10, 12, 0), ts(2024, 5, 10, 0, 0)),
        ("30 8 * * 7", ts(2024, 5, 13, 0, 0), ts(2024, 5, 12, 8, 30)),  # 7 is Sunday too
    ],
)
def test_cron_previous(expression: str, now: float, expected: float) -> None:
    assert parse_cron(expression).previous(now) == expected


@pytest.mark.parametrize(("expression", "message"), [
    ("0 6 * *", "5 fields"), ("61 * * * *", "bad minute field '61': a minute is 0-59"),
    ("* * * foo *", "bad month field 'foo': a month is 1-12 or jan-dec"), ("*/0 * * * *", "bad minute field '\\*/0'"),
    ("5-1 * * * *", "bad minute field '5-1'"), ("0 0 32 * *", "bad day field '32'"), ("0 0 * * 9", "bad weekday field '9'"),
])
def test_cron_errors(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse_cron(expression)


def test_max_age_policy() -> None:
    policy = parse_policy("1h")
    now = 100_000.0
    assert policy.overdue_by(now - 1800, now) is None
    assert policy.overdue_by(now - 5400, now) == pytest.approx(1800)
    assert policy.overdue_by(None, now) is None  # never made: that is "missing", not "overdue"
    assert policy.describe() == "at most 1h old"


def test_cron_policy_with_grace() -> None:
    policy = parse_policy("cron:0 6 * * * +2h")
    assert policy.cron == "0 6 * * *" and policy.grace == 7200
    made_yesterday = ts(2024, 5, 9, 6, 30)
    assert policy.overdue_by(made_yesterday, ts(2024, 5, 10, 7, 0)) is None  # still within the grace
    assert policy.overdue_by(made_yesterday, ts(2024, 5, 10, 9, 0)) == pytest.approx(3600)
    assert policy.overdue_by(ts(2024, 5, 10, 6, 5), ts(2024, 5, 10, 9, 0)) is None
    assert "within 2h" in policy.describe()


def test_policies_are_checked_at_declaration() -> None:
    @asset(freshness="1d")
    def fine() -> int:
        return 1

    assert fine.freshness == "1d"
    assert source("data/x.csv", name="x", freshness="cron:0 6 * * *").freshness == "cron:0 6 * * *"
    with pytest.raises(DefinitionError, match=r"freshness='daily' is not a policy"):
        asset(freshness="daily", name="bad")(lambda: 1)
    with pytest.raises(DefinitionError, match=r"source\('data/x.csv'\).*bad hour field '25': an hour is 0-23"):
        source("data/x.csv", name="x", freshness="cron:0 25 * * *")


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.25, "250ms"), (1.5, "1.5s"), (45, "45s"), (90, "1m 30s"), (600, "10m"), (5400, "1h 30m"),
    (86405, "1d"), (2 * 86400 + 3 * 3600 + 59, "2d 3h"),
])
def test_one_formatter_for_every_duration(seconds: float, text: str) -> None:
    """Timeouts, retry delays, ages and overdue amounts all print through ``format_duration``."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("text", "seconds"), [("250ms", 0.25), ("1h 30m", 5400), (" 2D ", 172800), (30, 30)])
def test_one_grammar_for_timeouts_and_freshness(text: object, seconds: float) -> None:
    """``@asset(timeout=...)`` and ``freshness=`` read durations alike (they once had two grammars)."""
    from assetflow.freshness import parse_policy as policy

    assert parse_duration(text) == seconds
    if isinstance(text, str):
        assert policy(text).max_age == seconds
