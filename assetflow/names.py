"""Names of assets, sources, groups and backends: safe as file names and as SQL identifiers.

A leaf: declarations, partition definitions and the state's log files all check names
with these rules, and none of them need the others to do it.
"""

from __future__ import annotations

import re

from assetflow.errors import DefinitionError

__all__ = ["MAX_NAME_LENGTH", "NAME_PATTERN", "suggest_name", "validate_name"]

NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]*\Z")
MAX_NAME_LENGTH = 63  # PostgreSQL's identifier limit: the strictest backend we target.
_WINDOWS_DEVICE_NAMES = frozenset(
    {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
)


def validate_name(name: object, *, what: str, where: str) -> str:
    """Return ``name`` if it is safe as a file name and as a SQL identifier, else raise."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise DefinitionError(
            f"{what} name {name!r} at {where} is not allowed: names must match "
            f"[a-z_][a-z0-9_]* (lower-case letters, digits, underscores; no dots, slashes, "
            f"spaces or upper case) so they are safe as file names and SQL identifiers. "
            f"Rename it, e.g. {suggest_name(name)!r}."
        )
    if len(name) > MAX_NAME_LENGTH:
        raise DefinitionError(
            f"{what} name {name!r} at {where} is {len(name)} characters long; the limit is "
            f"{MAX_NAME_LENGTH} (the strictest SQL backend's identifier length). Shorten it."
        )
    if name in _WINDOWS_DEVICE_NAMES:
        raise DefinitionError(
            f"{what} name {name!r} at {where} is a reserved device name on Windows file "
            f"systems; choose another name."
        )
    return name


def suggest_name(name: object) -> str:
    """A valid name close to ``name``: ``DailyTrips`` -> ``daily_trips``, ``HTTPLogs`` -> ``http_logs``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", str(name))
    text = re.sub(r"[^a-z0-9_]+", "_", words.lower()).strip("_") or "asset"
    return ("_" + text if text[0].isdigit() else text)[:MAX_NAME_LENGTH]
