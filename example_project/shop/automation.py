"""When the shop's assets run without a person: a schedule and a sensor (docs/automation.md).

``daily_revenue`` (in marts.py) carries its own condition, ``automation=eager()``.
"""

from pathlib import Path

from assetflow.automation import RunRequest, SensorContext, SkipReason, schedule, sensor

# Every morning at 06:00 Paris time, bring the marts up to date (only what is stale runs).
schedule("daily_marts", cron="0 6 * * *", select="group:marts", timezone="Europe/Paris")

FLAG = Path(__file__).resolve().parent.parent / "data" / "refresh.flag"


@sensor(select="+city_revenue", interval="30s")
def refresh_requested(context: SensorContext) -> RunRequest | SkipReason:
    """Someone touched data/refresh.flag: bring city_revenue up to date, once per touch (the cursor keeps its mtime)."""
    if not FLAG.exists():
        return SkipReason("no data/refresh.flag")
    stamp = str(FLAG.stat().st_mtime_ns)
    if stamp == context.cursor:
        return SkipReason("data/refresh.flag unchanged since the last request")
    context.update_cursor(stamp)
    return RunRequest()  # the sensor's own selection; RunRequest(select=..., force=True) recomputes even if fresh
