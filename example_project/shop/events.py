"""Web-shop click events, one CSV file per day: the partitioned part of the project.

Each day is a partition (see docs/partitions.md): a new day's file runs that day only,
a corrected file reruns its own day and the windows that contain it.
"""

import polars as pl

from assetflow import asset, source
from assetflow.partitions import daily, window

DAYS = daily("2024-03-01", end="2024-03-31", timezone="Europe/Paris")

events_raw = source("data/events/{date}.csv", partitions=DAYS,
                    description="Click events exported each night, one file per day.")


@asset(partitions=DAYS, group="events")
def daily_events(events_raw: pl.DataFrame, partition) -> pl.DataFrame:
    """One day's events, stamped with their day."""
    return events_raw.with_columns(pl.lit(partition.key).alias("day"))


@asset(partitions=DAYS, group="events", mappings={"daily_events": window(-6, 0)})
def weekly_active_users(daily_events: pl.DataFrame, partition) -> pl.DataFrame:
    """Distinct users over the 7 days ending on each day."""
    return pl.DataFrame({"day": [partition.key], "active_users": [daily_events["user"].n_unique()]})


@asset(group="events")
def time_on_site(daily_events: pl.DataFrame) -> pl.DataFrame:
    """Seconds on site per day, over every day so far (all partitions, in day order)."""
    return daily_events.group_by("day", maintain_order=True).agg(pl.col("seconds").sum())
