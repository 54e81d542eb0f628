"""What ``assetflow schedules | sensors | automation | ticks`` and the page show: plain JSON-able dicts.

Each listing is built from a read-only ``Daemon`` (the project loaded, nothing claimed) and the
ticks in the state store; the CLI prints them as text or ``--json``, the page serves the same.
"""

from __future__ import annotations

import json
import time
from typing import Any

from assetflow.automation.daemon import HEALTH, HEARTBEAT, Daemon
from assetflow.cron import local_time, parse_cron
from assetflow.state.ticks import Tick
from assetflow.workspace import Workspace

NEXT_TICKS = 3


def condition_verdict(ws: Workspace, name: str, now: float | None = None) -> dict[str, Any] | None:
    """The asset's automation condition evaluated now, for ``why`` (None when it declares none).

    ``api.why`` carries it (``WhyReport.automation``), so the CLI's and the page's ``why`` are the same.
    """
    spec = ws.graph.specs.get(name)
    if getattr(spec, "automation", None) is None:
        return None
    daemon = Daemon.for_workspace(ws)
    found = [ev for ev in daemon.evaluate_conditions(time.time() if now is None else now) if ev.name == name]
    return found[0].to_json() if found else None


def daemon_health(daemon: Daemon) -> dict[str, Any]:
    """Whether a daemon automates the project (its pid, host and start, from its lock file), when it last evaluated
    (its heartbeat, kept once a minute), and whether its evaluations fail now (since when, the error): the line the
    listings and the page show first, so that a project the daemon cannot load is seen where users look."""
    from assetflow.automation.lock import running_daemon

    assert daemon.ws is not None
    holder = running_daemon(daemon.ws.config.state_path) or {}
    cursors = daemon.ticks.cursors("daemon:")
    heartbeat = cursors.get(HEARTBEAT)
    try:
        failing = json.loads(cursors.get(HEALTH) or "null") if holder else None
    except ValueError:
        failing = None
    return {"running": bool(holder), "pid": holder.get("pid"), "host": holder.get("host"),
            "since": holder.get("since"), "last_evaluated": float(heartbeat) if heartbeat else None,
            "failing": failing if isinstance(failing, dict) else None}


def _last(daemon: Daemon, origin: str, last: dict[str, Tick]) -> dict[str, Any] | None:
    tick = last.get(origin)
    if tick is None:
        return None
    out = tick.to_json()
    if tick.run_id:
        state = daemon.ticks.run_state(tick.run_id)
        out["run_status"] = state[0] if state else None
    return out


def schedules_payload(daemon: Daemon, now: float) -> dict[str, Any]:
    last = daemon.ticks.last_ticks()
    rows = []
    for name, spec in sorted(daemon.schedules.items()):
        cron = parse_cron(spec.cron, spec.timezone)
        upcoming = []
        instant = now
        for _ in range(NEXT_TICKS):
            instant = cron.next(instant)
            upcoming.append({"at": instant, "local": local_time(instant, spec.timezone)})
        rows.append({"name": name, "cron": spec.cron, "timezone": spec.timezone, "select": list(spec.select),
                     "catchup": spec.catchup, "force": spec.force, "where": spec.where, "next_ticks": upcoming,
                     "last_tick": _last(daemon, spec.origin, last)})
    return {"daemon": daemon_health(daemon), "schedules": rows}


def sensors_payload(daemon: Daemon, now: float) -> dict[str, Any]:
    last = daemon.ticks.last_ticks()
    cursors = daemon.ticks.cursors("sensor:")
    rows = []
    for name, spec in sorted(daemon.sensors.items()):
        previous = last.get(spec.origin)
        due = max(now, previous.tick_at + spec.interval) if previous else now
        rows.append({"name": name, "interval_s": spec.interval, "timeout_s": spec.timeout, "select": list(spec.select),
                     "where": spec.where, "cursor": cursors.get(spec.origin), "next_tick": {"at": due, "local": local_time(due)},
                     "last_tick": _last(daemon, spec.origin, last)})
    return {"daemon": daemon_health(daemon), "sensors": rows}


def automation_payload(daemon: Daemon, now: float) -> dict[str, Any]:
    last = daemon.ticks.last_ticks()
    rows = []
    for ev in daemon.evaluate_conditions(now):
        row = ev.to_json()
        row["last_tick"] = _last(daemon, f"condition:{ev.name}", last)
        rows.append(row)
    return {"daemon": daemon_health(daemon), "automation": rows}


def ticks_payload(daemon: Daemon, name: str | None, limit: int) -> dict[str, Any]:
    origins = None
    if name is not None:
        origins = [f"{kind}:{name}" for kind in ("schedule", "sensor", "condition")]
    return {"ticks": [t.to_json() for t in daemon.ticks.ticks(origins, limit)]}

