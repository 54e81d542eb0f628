"""Declaring schedules and sensors beside assets: ``schedule(...)`` and ``@sensor(...)``.

Like ``@asset``, a declaration only describes: the daemon reads them after importing the
project (``recording_automation`` collects every declaration made during the import, assigned
to a variable or not). Names follow the asset rules and are the identity of their ticks in the
state store: renaming a schedule starts a new one, editing its cron or selection does not
replay its past ticks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence

from assetflow.errors import DefinitionError
from assetflow.recorder import Recorder

CATCHUP_POLICIES = ("latest", "all", "none")
DEFAULT_SENSOR_INTERVAL = 30.0
DEFAULT_SENSOR_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """What a sensor asks for: a selection (the CLI's language), optionally partitions, optionally forced."""

    select: tuple[str, ...] | str | None = None
    partitions: tuple[str, ...] | str = ()
    force: bool = False

    def __post_init__(self) -> None:
        """Refuse what is not a selection or a key here, in the sensor's call (a failed tick saying why),
        rather than in the daemon once the request is read; one key given as a string is a key, not its letters."""
        select, partitions = self.select, self.partitions
        if isinstance(select, str):
            select = (select,)
        if select is not None and not (isinstance(select, Sequence) and all(isinstance(s, str) for s in select)):
            raise TypeError(f"RunRequest(select={self.select!r}): select is a selection string such as "
                            f"\"group:marts\", a list of them, or None for the sensor's own selection.")
        if isinstance(partitions, str):
            partitions = (partitions,)
        if not (isinstance(partitions, Sequence) and all(isinstance(p, str) for p in partitions)):
            raise TypeError(f"RunRequest(partitions={self.partitions!r}): partitions is a key such as "
                            f"\"2024-01-02\" or a list of them.")
        object.__setattr__(self, "select", None if select is None else tuple(select))
        object.__setattr__(self, "partitions", tuple(partitions))


@dataclasses.dataclass(frozen=True)
class SkipReason:
    """A sensor's answer when nothing should run, with why (shown by ``assetflow ticks``)."""

    reason: str


@dataclasses.dataclass(frozen=True)
class SensorContext:
    """What a sensor function receives: its cursor from the last call and the evaluation instant."""

    cursor: str | None
    now: float
    name: str
    new_cursor: list[str | None] = dataclasses.field(default_factory=list)

    def update_cursor(self, cursor: str | None) -> None:
        """Keep ``cursor`` for the next call (stored with the tick, in one transaction).

        A string (or None): what the state store keeps as it is. Anything else is refused here, in the
        sensor's call, so its tick fails saying so and the cursor it had is kept."""
        if cursor is not None and not isinstance(cursor, str):
            raise TypeError(f"context.update_cursor({cursor!r}): a cursor is a string (or None); keep structured "
                            f"data as text, e.g. json.dumps(...), and read it back with json.loads(context.cursor).")
        self.new_cursor[:] = [cursor]


@dataclasses.dataclass(frozen=True)
class ScheduleSpec:
    name: str
    cron: str
    select: tuple[str, ...]
    timezone: str | None
    catchup: str
    force: bool
    file: str
    line: int

    kind = "schedule"

    @property
    def origin(self) -> str:
        return f"schedule:{self.name}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def definition(self) -> dict[str, object]:
        """What a claimed tick records: enough to run it after a restart, whatever was edited since."""
        return {"cron": self.cron, "timezone": self.timezone, "select": list(self.select), "force": self.force}


@dataclasses.dataclass(frozen=True)
class SensorSpec:
    name: str
    fn: Callable[..., object]
    select: tuple[str, ...]
    interval: float
    timeout: float
    file: str
    line: int

    kind = "sensor"

    @property
    def origin(self) -> str:
        return f"sensor:{self.name}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def __call__(self, *args: object, **kwargs: object) -> object:
        return self.fn(*args, **kwargs)


AutomationSpec = ScheduleSpec | SensorSpec

_declared: Recorder[AutomationSpec] = Recorder("assetflow_automation_declared")


def recording_automation() -> contextlib.AbstractContextManager[list[AutomationSpec]]:
    """Collect every schedule and sensor declared inside the block (wrap the project's import)."""
    return _declared.recording()


def _note(spec: AutomationSpec) -> None:
    _declared.note(spec)


def _selection(select: object, where: str, what: str) -> tuple[str, ...]:
    if select is None:
        return ()
    if isinstance(select, str):
        return (select,)
    if isinstance(select, Sequence) and all(isinstance(s, str) for s in select):
        return tuple(select)
    raise DefinitionError(f"{what} at {where}: select must be a selection string such as \"group:marts\" "
                          f"or a list of them; got {select!r}.")


def _caller() -> tuple[str, int]:
    import inspect

    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back if frame and frame.f_back else None
        return (caller.f_code.co_filename, caller.f_lineno) if caller else ("<unknown>", 0)
    finally:
        del frame


def schedule(name: str, *, cron: str, select: str | Sequence[str] | None = None, timezone: str | None = None,
             catchup: str = "latest", force: bool = False) -> ScheduleSpec:
    """Materialize ``select`` (default: everything) at each tick of ``cron`` in ``timezone``.

    A tick runs what is stale in the selection (``force=True``: all of it) and is skipped, with the
    reason recorded, when nothing is. ``catchup`` says what happens to ticks missed while no daemon
    ran: ``"latest"`` runs the newest of them once, ``"all"`` runs each, ``"none"`` runs none. Every
    due tick is recorded either way: those let go as skipped ticks saying why (``superseded by the
    tick of ...``), so ``assetflow ticks`` shows each instant the schedule was due.
    """
    from assetflow.cron import CronError, parse_cron
    from assetflow.declare import validate_name

    file, line = _caller()
    where = f"{file}:{line}"
    validate_name(name, what="Schedule", where=where)
    try:
        parse_cron(cron, timezone)
    except CronError as exc:
        raise DefinitionError(f"Schedule {name!r} at {where}: {exc}. Fix cron= or timezone=.") from None
    if catchup not in CATCHUP_POLICIES:
        raise DefinitionError(f"Schedule {name!r} at {where}: catchup={catchup!r}; use one of "
                              f"{', '.join(repr(c) for c in CATCHUP_POLICIES)}.")
    spec = ScheduleSpec(name, cron, _selection(select, where, f"Schedule {name!r}"), timezone, catchup,
                        bool(force), file, line)
    _note(spec)
    return spec


def sensor(fn: Callable[..., object] | None = None, /, *, name: str | None = None,
           select: str | Sequence[str] | None = None, interval: str | float = DEFAULT_SENSOR_INTERVAL,
           timeout: str | float = DEFAULT_SENSOR_TIMEOUT) -> Callable[[Callable[..., object]], SensorSpec] | SensorSpec:
    """Declare a function the daemon calls every ``interval``; it returns what to run.

    The function takes a ``SensorContext`` (``context.cursor`` from the last call,
    ``context.update_cursor(...)`` to keep a new one) and returns ``True`` / a ``RunRequest`` /
    a list of them (run ``select``, or the request's own selection), or ``None`` / ``False`` /
    a ``SkipReason`` (nothing to run); a generator may ``yield`` the requests (or one ``SkipReason``),
    and is run to its end within the timeout. A call that raises or runs past ``timeout`` is recorded as
    a failed tick and does not stop the daemon or other sensors.
    """
    from assetflow.declare import validate_name
    from assetflow.durations import parse_duration

    def decorate(func: Callable[..., object]) -> SensorSpec:
        code = getattr(func, "__code__", None)
        file, line = (code.co_filename, code.co_firstlineno) if code else ("<unknown>", 0)
        where = f"{file}:{line}"
        sensor_name = validate_name(name or getattr(func, "__name__", ""), what="Sensor", where=where)
        try:
            every = parse_duration(interval, what=f"interval of sensor {sensor_name!r} at {where}")
            limit = parse_duration(timeout, what=f"timeout of sensor {sensor_name!r} at {where}")
        except ValueError as exc:
            raise DefinitionError(str(exc)) from None
        spec = SensorSpec(sensor_name, func, _selection(select, where, f"Sensor {sensor_name!r}"), every, limit,
                          file, line)
        _note(spec)
        return spec

    if fn is not None:
        return decorate(fn)
    return decorate


def fingerprint(definition: dict[str, object]) -> str:
    """A short stable hash of a definition (shown when a tick ran under an older one)."""
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:12]


def collect(declared: Sequence[AutomationSpec]) -> tuple[dict[str, ScheduleSpec], dict[str, SensorSpec]]:
    """Schedules and sensors by name; a name declared twice is an error naming both places."""
    from assetflow.errors import DuplicateAssetError

    schedules: dict[str, ScheduleSpec] = {}
    sensors: dict[str, SensorSpec] = {}
    for spec in declared:
        table: dict = schedules if isinstance(spec, ScheduleSpec) else sensors
        previous = table.get(spec.name)
        if previous is not None and previous is not spec:  # on one line too: a loop giving each the same name
            same = " (the same line, run twice: give each its own name)" if previous.where == spec.where else ""
            raise DuplicateAssetError(f"{spec.kind.capitalize()} name {spec.name!r} is declared twice{same}:\n"
                                      f"  {previous.where}\n  {spec.where}\nRename one of them or delete it.")
        table[spec.name] = spec
    return schedules, sensors
