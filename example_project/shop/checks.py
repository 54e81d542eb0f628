"""Checks beyond the built-ins: functions of an asset's value (and of its upstreams, by name).

Listed in pyproject.toml's modules like any module with assets. See docs/checks.md.
"""

import polars as pl

from assetflow import CheckOutcome, check


@check(asset="order_lines")
def every_line_has_a_product(order_lines: pl.DataFrame, stg_orders: pl.DataFrame) -> CheckOutcome:
    """The join with the catalogue must not drop order lines: a missing product would hide revenue."""
    lost = stg_orders.join(order_lines, on="order_id", how="anti")
    return CheckOutcome(lost.height == 0, summary=f"{lost.height} order lines lost in the join",
                        findings=lost.head(5), metadata={"lines": order_lines.height})


@check(asset="daily_revenue", severity="warn")
def no_day_above_ten_thousand(daily_revenue: pl.DataFrame) -> bool:
    """A day over 10,000 is worth a look, not worth blocking the marts."""
    return bool(daily_revenue["revenue"].max() <= 10_000)
