"""Cron expressions, read and stepped by ``cronsim`` (a maintained library), in a named time zone.

Five fields: minute, hour, day of month, month, day of week (names like ``jan``/``mon``
allowed, 0 or 7 is Sunday, ``L`` and ``#`` as cronsim reads them); ``@hourly``, ``@daily``,
``@midnight``, ``@weekly``, ``@monthly``, ``@yearly`` are shorthands. Times are wall-clock
times in ``timezone`` (an IANA name such as ``"Europe/Paris"``, via ``zoneinfo`` and the
``tzdata`` package); without one, the machine's local time.

Daylight saving time follows cron's rule: a daily ``30 2 * * *`` in Europe/Paris is due once
on the spring-forward day (at 03:00, the first instant after the skipped hour) and once on the
fall-back day (the first 02:30); an interval (``*/30 * * * *``) is due at each real instant.
Every instant this module returns is epoch seconds (UTC), never wall-clock text: what the
daemon stores as a tick's identity.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import functools
import os
from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from assetflow.errors import CronError

_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


@functools.lru_cache(maxsize=64)
def zone(name: str | None) -> datetime.tzinfo | None:
    """The ``ZoneInfo`` of an IANA name (None: the machine's local time); CronError if unknown."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name!r} ({exc}); use an IANA name such as 'Europe/Paris' or 'UTC'") from None


def local_time(instant: float | None, timezone: str | None = None) -> str | None:
    """An instant as ISO 8601 in a time zone (the machine's when None), with its UTC offset."""
    if instant is None:
        return None
    tz = zone(timezone)
    moment = datetime.datetime.fromtimestamp(instant, tz) if tz else datetime.datetime.fromtimestamp(instant).astimezone()
    return moment.isoformat(timespec="seconds")


@functools.lru_cache(maxsize=8)
def local_zone(tz_variable: str | None) -> datetime.tzinfo:
    """The machine's time zone with its daylight saving rules, for schedules without ``timezone=``.

    A naive local datetime cannot hold the hour repeated at fall-back nor skip the one lost at spring-forward,
    so stepping cron in it lost ticks and moved them; this zone can. ``$TZ`` when it names an IANA zone, else
    ``/etc/localtime``; a fixed offset (today's) only where neither exists. Keyed by ``$TZ`` as read by the caller.
    """
    if tz_variable:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            return ZoneInfo(tz_variable.removeprefix(":"))
    with contextlib.suppress(OSError, ValueError), open("/etc/localtime", "rb") as handle:
        return ZoneInfo.from_file(handle, key="localtime")
    return datetime.datetime.now().astimezone().tzinfo or datetime.UTC


@dataclasses.dataclass(frozen=True)
class Cron:
    """A parsed schedule in a time zone; ``text`` is what the user wrote."""

    text: str
    expression: str  # the five fields, macros expanded
    timezone: str | None = None

    def _at(self, instant: float) -> datetime.datetime:
        tz = zone(self.timezone) if self.timezone is not None else local_zone(os.environ.get("TZ"))
        return datetime.datetime.fromtimestamp(instant, tz)

    def after(self, instant: float) -> Iterator[float]:
        """Due instants strictly after ``instant`` (epoch seconds), ascending, forever."""
        start = self._at(instant)
        seen = instant
        for moment in CronSim(self.expression, start):
            stamp = moment.timestamp()
            if stamp > seen:  # cronsim starts at the next whole minute; never repeat an instant
                seen = stamp
                yield stamp

    def next(self, instant: float) -> float:
        """The first due instant strictly after ``instant``."""
        return next(self.after(instant))

    def previous(self, now: float) -> float | None:
        """The latest due instant at or before ``now`` (None if there is none within years)."""
        start = self._at(now + 1e-6)
        for moment in CronSim(self.expression, start, reverse=True):
            stamp = moment.timestamp()
            if stamp <= now:
                return stamp
        return None  # pragma: no cover - cronsim raises StopIteration for impossible dates first

    def between(self, start: float, end: float, limit: int = 100_000) -> list[float]:
        """Due instants in (start, end], oldest first, at most ``limit`` of them (the newest kept)."""
        return self.window(start, end, limit)[0]

    def window(self, start: float, end: float, limit: int = 100_000) -> tuple[list[float], int]:
        """``between``, and how many instants fell in (start, end] in all (more than ``limit`` kept)."""
        found: collections.deque[float] = collections.deque(maxlen=limit)
        total = 0
        for stamp in self.after(start):
            if stamp > end:
                break
            found.append(stamp)
            total += 1
        return list(found), total

    def label(self, instant: float) -> str:
        """An instant as the schedule's wall clock, for reasons people read ("2026-05-04 06:00 CEST")."""
        return self._at(instant).strftime("%Y-%m-%d %H:%M %Z").strip()


@functools.lru_cache(maxsize=4096)
def parse_cron(text: str, timezone: str | None = None) -> Cron:
    """Read a cron expression (and check the time zone); raises CronError saying what is wrong."""
    if not isinstance(text, str):
        raise CronError(f"a cron expression is a string such as '0 6 * * *', got {type(text).__name__}")
    expression = _MACROS.get(text.strip().lower(), text.strip())
    parts = expression.split()
    if len(parts) != 5:
        raise CronError(f"a cron expression has 5 fields (minute hour day month weekday); {text!r} has {len(parts)}")
    try:
        CronSim(expression, datetime.datetime(2000, 1, 1))
    except CronSimError as exc:
        raise CronError(_explain(text, parts, str(exc))) from None
    zone(timezone)
    return Cron(text, expression, timezone)


def _valid(expression: str) -> bool:
    try:
        CronSim(expression, datetime.datetime(2000, 1, 1))
    except CronSimError:
        return False
    return True


_FIELDS = ("minute", "hour", "day", "month", "weekday")
_RANGES = {"minute": "0-59", "hour": "0-23", "day": "1-31", "month": "1-12 or jan-dec", "weekday": "0-7 or sun-sat"}


def _explain(text: str, parts: list[str], reason: str) -> str:
    """cronsim says which field is bad ("Bad minute"); name the field's text and what it accepts."""
    said = reason.lower().replace("day-of-week", "weekday").replace("day-of-month", "day")
    named = next((name for name in _FIELDS if f"bad {name}" in said), None)
    if named is None:
        return f"{text!r}: {reason}"
    value = parts[_FIELDS.index(named)]
    if named == "day" and _valid(" ".join([*parts[:3], "*", parts[4]])):  # each day exists, not in those months
        return (f"{text!r}: day {value!r} never falls in month {parts[3]!r}, so the schedule would never run; "
                f"pick days those months have (February: 1-28, or 29 in leap years)")
    return (f"{text!r}: bad {named} field {value!r}: {'an' if named == 'hour' else 'a'} {named} is "
            f"{_RANGES[named]}; write a value, "
            f"a low-high range, a list (1,15) or a step (*/15)")
