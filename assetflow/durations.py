"""Durations: the one grammar every option of assetflow reads, and the one form it prints.

Grammar (``parse_duration``)::

    duration := part ( part )*          whitespace may stand between parts and inside them
    part     := number unit             e.g. 30s, 1.5h, 250ms
    number   := digits [ "." digits ]
    unit     := ms | s | m | h | d | w  (case-insensitive: 2D is two days)

or, from Python, a number of seconds or a ``datetime.timedelta``. A duration is positive.
Used by ``@asset(timeout=..., retry_delay=...)`` and freshness policies (``freshness="1d"``);
kept free of heavy imports, since it runs while the user's module is imported.

Form (``format_duration``): at most two units, largest first, ``2d 3h``, ``1h 30m``, ``1m 30s``,
``45s``, ``1.5s``, ``250ms``; seconds only under an hour.
"""

from __future__ import annotations

import datetime
import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*", re.IGNORECASE)


def parse_duration(value: object, *, what: str = "duration") -> float:
    """Seconds from ``"10m"``, ``"1h30m"``, ``"45s"``, ``"250ms"``, a number of seconds or a timedelta.

    ``what`` names the option in the error message (``"timeout of asset 'x' at f.py:3"``);
    every error is a ValueError saying how to write a duration.
    """
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        seconds, position = 0.0, 0
        for match in _PART.finditer(value):
            if match.start() != position:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2).lower()]
            position = match.end()
        if position != len(value):
            raise _not_a_duration(value, what)
    else:
        raise _not_a_duration(value, what)
    if not seconds > 0:
        raise ValueError(f"{what}: a duration must be positive; got {value!r}.")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form, at most two units: ``2d 3h``, ``1h 30m``, ``45s``, ``1.5s``, ``250ms``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{round(max(0.0, seconds), 1):g}s"
    whole = int(seconds)
    parts = []
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)) if whole < 3600 else (("d", 86400), ("h", 3600), ("m", 60))
    for unit, size in units:  # seconds only under an hour: "overdue by 1d", not "1d 5s"
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
        if len(parts) == 2 or (parts and whole == 0):
            break
    return " ".join(parts)


def _not_a_duration(value: object, what: str) -> ValueError:
    return ValueError(
        f"{what}: {value!r} is not a duration; write it like \"30s\", \"10m\", \"1h30m\", \"1d\" "
        f"or \"250ms\" (units ms, s, m, h, d, w), or give a number of seconds."
    )
