"""A small five-field cron reader: enough to ask "when was the schedule last due?".

Fields are minute, hour, day of month, month, day of week, each ``*``, a number, a
range ``a-b``, a step ``*/n`` / ``a-b/n`` / ``a/n``, or a comma list of those; months and
weekdays also take names (``jan``, ``mon``), and 0 or 7 is Sunday. As in Vixie cron, when
both day fields are restricted a day matching either counts. ``@hourly``, ``@daily``,
``@weekly``, ``@monthly`` and ``@yearly`` are shorthands. Times are the machine's local time.
"""

from __future__ import annotations

import dataclasses
import datetime

from assetflow.errors import CronError

_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
_SEARCH_DAYS = 366 * 8  # long enough for "29 feb" schedules to recur


@dataclasses.dataclass(frozen=True)
class Cron:
    """A parsed schedule: the allowed values of each field."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def _day_matches(self, day: datetime.date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return by_day or by_weekday
        return by_day and by_weekday

    def previous(self, now: float) -> float | None:
        """The latest time at or before ``now`` (epoch seconds) when the schedule was due."""
        moment = datetime.datetime.fromtimestamp(now).replace(second=0, microsecond=0)
        day = moment.date()
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for hour in reversed(self.hours):
                    for minute in reversed(self.minutes):
                        if day == moment.date() and (hour, minute) > (moment.hour, moment.minute):
                            continue
                        return datetime.datetime.combine(day, datetime.time(hour, minute)).timestamp()
            day -= datetime.timedelta(days=1)
        return None


def _value(text: str, low: int, high: int, names: tuple[str, ...], field: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + (1 if field == "month" else 0)
    if not text.isdigit():
        raise CronError(f"{field} {text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    number = int(text)
    if not low <= number <= high:
        raise CronError(f"{field} {number} is outside {low}-{high}")
    return number


def _field(text: str, low: int, high: int, names: tuple[str, ...], field: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field} step {step_text!r} must be a positive number")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, low, high, names, field), _value(last, low, high, names, field)
            if start > end:
                raise CronError(f"{field} range {body!r} runs backwards")
        else:
            start = _value(body, low, high, names, field)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return values


def parse_cron(text: str) -> Cron:
    """Read a cron expression; raises CronError saying which field is wrong."""
    expanded = _MACROS.get(text.strip().lower(), text)
    parts = expanded.split()
    if len(parts) != 5:
        raise CronError(f"a cron expression has 5 fields (minute hour day month weekday); {text!r} has {len(parts)}")
    sets = [_field(part, low, high, names, field) for part, (field, low, high, names) in zip(parts, _FIELDS)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(text, tuple(sorted(sets[0])), tuple(sorted(sets[1])), frozenset(sets[2]), frozenset(sets[3]),
                weekdays, parts[2] != "*", parts[4] != "*")
