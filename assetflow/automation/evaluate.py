"""What is due: schedule ticks under a catch-up policy, sensor calls under a timeout, condition facts.

Pure decisions over values the daemon hands in (instants, cursors, the loaded workspace); the
daemon records them (``state.ticks``) and runs them. Kept apart so each rule has a fast test.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import traceback
import types
from collections.abc import Collection, Mapping

from assetflow.conditions import AssetFacts, Verdict
from assetflow.automation.definitions import RunRequest, ScheduleSpec, SensorContext, SensorSpec, SkipReason
from assetflow.cron import parse_cron

MAX_CATCHUP = 1000  # catchup="all" runs at most this many missed ticks (the newest), and says so
# A sensor's cursor at most, in UTF-8 bytes: it is written with its tick and read back at every call, so it should be
# a position (the newest id or mtime seen), not a log of everything seen. Dagster has no limit yet (its issue 18402).
MAX_CURSOR_BYTES = 1_000_000


@dataclasses.dataclass(frozen=True)
class ScheduleDue:
    """The ticks of one schedule to claim now, and the due ticks let go, each with its reason."""

    ticks: tuple[float, ...]
    reason: str | None  # why a tick runs although others were missed (shown with the tick)
    skipped: tuple[tuple[float, str], ...] = ()  # (instant, why it does not run): recorded as skipped ticks
    note: str | None = None  # how many older due ticks were not recorded, when the oldest recorded is kept: it says so

    def reason_for(self, tick_at: float) -> str | None:
        """The reason of one kept tick: ``reason``, and for the oldest, ``note`` (not each replayed tick's)."""
        if self.note is None or tick_at != self.ticks[0]:
            return self.reason
        return f"{self.reason}; {self.note}" if self.reason else self.note

    @property
    def missed(self) -> int:
        return len(self.skipped)


def schedule_due(spec: ScheduleSpec, since: float, now: float, lateness: float,
                 alive_since: float | None = None) -> ScheduleDue:
    """Ticks of ``spec`` in (since, now], per its catch-up policy; every other due tick with its reason.

    A tick within ``lateness`` of ``now`` is on time (the daemon was evaluating), and so is one due once
    this daemon was evaluating (at or after ``alive_since``), however late a long run made its claim; older
    ones were missed while no daemon ran: ``latest`` keeps the newest of them, ``all`` keeps each (up to
    ``MAX_CATCHUP``) and, of the ticks due while the daemon was busy, the newest; ``none`` keeps only on-time ticks. The ticks let go are returned too, so that
    each due tick is recorded (``assetflow ticks`` shows every one, skipped with why); at most
    ``MAX_CATCHUP`` of them, the newest, the oldest saying how many earlier ones were not recorded.
    """
    cron = parse_cron(spec.cron, spec.timezone)
    due, total = cron.window(since, now, limit=MAX_CATCHUP)
    if not due:
        return ScheduleDue((), None)
    late = [t for t in due if now - t > lateness and (alive_since is None or t < alive_since)]
    on_time = [t for t in due if t not in late]
    busy = {t for t in on_time if now - t > lateness}  # due while the daemon was up, but running earlier ticks
    dropped = total - len(due)  # older than the newest MAX_CATCHUP: neither run nor recorded one by one
    if spec.catchup == "all":
        # Each tick missed while no daemon ran, and, of those due while it was busy, the newest (none when a tick
        # is due now): replayed one by one, they would make a schedule whose run outlasts its period claim twice
        # the runs at each evaluation, for ever.
        prompt = [t for t in on_time if t not in busy]
        kept_all = [*late, *prompt] if prompt else [*late, *sorted(busy)[-1:]]
        kept: tuple[float, ...] = tuple(t for t in due if t in kept_all)
        reason = f"catch-up: {len(late)} missed tick(s) run (catchup='all')" if late else None
    elif spec.catchup == "none":
        kept = tuple(on_time[-1:])
        reason = None
    else:
        kept = (due[-1],)
        reason = f"catch-up: newest of {total} due tick(s) (catchup='latest')" if late else None
    skipped = []
    for t in due:
        if t in kept:
            continue
        if spec.catchup == "none" and t in late:
            why = "missed while no daemon ran (catchup='none')"
        elif spec.catchup == "all" and t in busy:
            why = (f"superseded by the tick of {cron.label(max(kept))}: due while the daemon was running earlier "
                   f"ticks (catchup='all' replays the ticks no daemon was up for)")
        else:
            why = f"superseded by the tick of {cron.label(max(kept) if kept else due[-1])} (catchup='{spec.catchup}')"
        skipped.append((t, why))
    if not dropped:
        return ScheduleDue(kept, reason, tuple(skipped))
    note = (f"{dropped} earlier due tick(s) from {cron.label(cron.next(since))} on were neither run nor "
            f"recorded one by one (at most {MAX_CATCHUP} are)")  # said once, by the oldest tick recorded
    if due[0] in kept:
        return ScheduleDue(kept, reason, tuple(skipped), note)
    skipped[0] = (skipped[0][0], f"{skipped[0][1]}; {note}")
    return ScheduleDue(kept, reason, tuple(skipped))


@dataclasses.dataclass(frozen=True)
class SensorOutcome:
    """A sensor call's result: requests to run, or a skip/failure reason; and its new cursor."""

    status: str  # "requested" | "skipped" | "failed"
    reason: str
    requests: tuple[RunRequest, ...] = ()
    cursor: str | None = None
    cursor_changed: bool = False
    hung: threading.Thread | None = None  # still running past its timeout: not called again until it ends


def call_sensor(spec: SensorSpec, cursor: str | None, now: float) -> SensorOutcome:
    """Call a sensor in a thread, at most ``spec.timeout`` seconds; never raises."""
    context = SensorContext(cursor, now, spec.name)
    box: dict[str, object] = {}

    def target() -> None:
        try:
            value = spec.fn(context)
            if isinstance(value, types.GeneratorType):  # `yield RunRequest(...)`: run it here, under the timeout
                value = list(value)
            box["value"] = value
        except BaseException as exc:  # noqa: BLE001 - a sensor's error is reported, never raised
            box["error"] = exc
            box["traceback"] = traceback.format_exc()

    thread = threading.Thread(target=target, name=f"assetflow-sensor-{spec.name}", daemon=True)
    thread.start()
    thread.join(spec.timeout)
    if thread.is_alive():
        return SensorOutcome("failed", f"timed out after {spec.timeout:g}s (it is not called again until "
                                       f"that call returns)", hung=thread)
    new_cursor = context.new_cursor[0] if context.new_cursor else cursor
    changed = new_cursor != cursor  # the same cursor again is not rewritten
    if "error" in box:
        error = box["error"]
        return SensorOutcome("failed", f"raised {type(error).__name__}: {error}", cursor=cursor)
    if changed and new_cursor is not None and len(new_cursor.encode()) > MAX_CURSOR_BYTES:
        return SensorOutcome("failed", f"context.update_cursor() was given {_size(len(new_cursor.encode()))}, more "
                                       f"than a cursor's {_size(MAX_CURSOR_BYTES)}: it is stored at every evaluation. "
                                       f"Keep a position (the newest mtime or id seen), not everything seen; the "
                                       f"cursor it had is kept", cursor=cursor)
    outcome = _interpret(spec, box.get("value"), new_cursor, changed)
    if outcome.status == "failed":  # as for a raise: the cursor stays, so the next call sees the same events
        return dataclasses.replace(outcome, cursor=cursor, cursor_changed=False)
    return outcome


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _interpret(spec: SensorSpec, value: object, cursor: str | None, changed: bool) -> SensorOutcome:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], SkipReason):  # yielded alone
        value = value[0]
    if value is None or value is False:
        return SensorOutcome("skipped", "the sensor returned nothing to run", cursor=cursor,
                             cursor_changed=changed)
    if isinstance(value, SkipReason):
        return SensorOutcome("skipped", value.reason, cursor=cursor, cursor_changed=changed)
    if value is True:
        value = RunRequest()
    requests = [value] if isinstance(value, RunRequest) else list(value) if isinstance(value, list | tuple) else None
    if requests is None or not all(isinstance(r, RunRequest) for r in requests):
        return SensorOutcome("failed", f"returned {value!r}; a sensor returns True, a RunRequest, a list of them, "
                                       f"None or a SkipReason (or yields RunRequests, or one SkipReason)", cursor=cursor, cursor_changed=changed)
    if not requests:
        return SensorOutcome("skipped", "the sensor returned no run request", cursor=cursor,
                             cursor_changed=changed)
    return SensorOutcome("requested", f"{len(requests)} run request(s)", tuple(requests), cursor, changed)


def sensor_definition(spec: SensorSpec, requests: tuple[RunRequest, ...]) -> dict[str, object]:
    """One run for one evaluation: the union of its requests' selections (the sensor's own by default)."""
    select: list[str] = []
    partitions: list[str] = []
    for request in requests:
        chosen = request.select if request.select is not None else spec.select
        for expression in ((chosen,) if isinstance(chosen, str) else chosen):
            if expression not in select:
                select.append(expression)
        partitions.extend(p for p in request.partitions if p not in partitions)
    return {"select": select, "force": any(r.force for r in requests), "partitions": partitions}


# -- conditions ---------------------------------------------------------------------------


@dataclasses.dataclass
class ConditionMemory:
    """What a condition remembers between evaluations (the ``condition:ASSET`` cursor, JSON)."""

    first_seen: float
    fired: str | None = None  # the input-state signature it last acted on
    cron: dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None, now: float) -> ConditionMemory:
        try:
            data = json.loads(text) if text else {}
            return cls(float(data.get("first_seen", now)), data.get("fired"),
                       {str(k): float(v) for k, v in dict(data.get("cron", {})).items()})
        except (ValueError, TypeError, AttributeError):
            return cls(now)

    def dump(self) -> str:
        return json.dumps({"first_seen": self.first_seen, "fired": self.fired, "cron": self.cron}, sort_keys=True)


def signature(facts: AssetFacts, code_stamp: str) -> str:
    """The input state a firing acts on: its version, its upstreams' data hashes, the project's code."""
    text = json.dumps([facts.has_version, facts.finished_at, sorted(facts.upstream_hashes.items(), key=str),
                       code_stamp], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def should_fire(verdict: Verdict, memory: ConditionMemory, state: str) -> tuple[bool, str]:
    """Fire when it holds and acts on something new: a new cron tick, or an input state not acted on."""
    if not verdict.holds:
        return False, verdict.reason
    if verdict.consumes:
        return True, verdict.reason
    if memory.fired == state:
        return False, f"holds ({verdict.reason}) but was already acted on for these inputs"
    return True, verdict.reason


def facts_for(name: str, spec: object, now: float, current: Mapping[str, object],
              upstream_hashes: Mapping[str, str | None], observed: Collection[str], overdue_reason: str | None,
              memory: ConditionMemory) -> AssetFacts:
    """The facts of one asset: its current version, its upstreams' hashes as it reads them, their update times.

    ``observed``: the upstream sources whose data was observed now (they count as updated at the tick);
    every other upstream's update time is when its current version was made (None: it has none).
    """
    mat = current.get(name)
    upstreams: tuple[str, ...] = getattr(spec, "upstreams", ())
    hashes = {up: upstream_hashes.get(up) for up in upstreams}
    updated = {up: getattr(current.get(up), "finished_at", None) for up in upstreams if up not in observed}
    return AssetFacts(
        name=name, now=now, has_version=mat is not None, finished_at=getattr(mat, "finished_at", None),
        made_from=dict(getattr(mat, "upstream", {}) or {}), upstream_hashes=hashes, upstream_updated=updated,
        overdue_reason=overdue_reason, cron_consumed=memory.cron, first_seen=memory.first_seen,
    )
