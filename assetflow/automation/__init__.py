"""Automation: schedules, sensors and asset conditions that ``assetflow daemon`` acts on.

Declared in project modules beside assets (docs/automation.md)::

    from assetflow.automation import schedule, sensor, on_upstream_change, on_cron

    schedule("daily_marts", cron="0 6 * * *", select="group:marts", timezone="Europe/Paris")

Importing this package is cheap: the daemon itself (``assetflow.automation.daemon``) loads
only when it runs.
"""

from __future__ import annotations

from assetflow.conditions import (
    AutomationCondition,
    eager,
    on_cron,
    on_missing,
    on_overdue,
    on_upstream_change,
)
from assetflow.automation.definitions import RunRequest, SensorContext, SkipReason, schedule, sensor

__all__ = [
    "AutomationCondition",
    "RunRequest",
    "SensorContext",
    "SkipReason",
    "eager",
    "on_cron",
    "on_missing",
    "on_overdue",
    "on_upstream_change",
    "schedule",
    "sensor",
]
