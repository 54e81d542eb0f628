"""Marts: joined and aggregated tables the business reads.

order_lines feeds both daily_revenue and customer_revenue, which meet again in
revenue_summary: a diamond.
"""

import dataclasses

import polars as pl
import pyarrow as pa

from assetflow import asset, sql_asset
from assetflow.automation import eager, on_cron
from assetflow.partitions import static
from shop.cleaning import with_vat


@dataclasses.dataclass(frozen=True)
class TopCustomersConfig:
    """How many customers the top list keeps; part of the recipe, so changing it reruns."""

    limit: int = 10


@asset(group="marts")
def order_lines(stg_orders: pl.DataFrame, stg_products: pl.DataFrame) -> pl.DataFrame:
    """Each valid order line with its product and gross amount (VAT included)."""
    joined = stg_orders.join(stg_products, on="product_id", how="inner")
    return joined.with_columns(
        with_vat(pl.col("quantity") * pl.col("unit_price")).alias("gross_amount")
    ).sort("order_id")


@asset(group="marts", tags={"tier": "gold"}, automation=eager())
def daily_revenue(order_lines: pl.DataFrame) -> pl.DataFrame:
    """Gross revenue per day, refunds excluded.

    Automated: `assetflow daemon` builds it when missing and whenever an upstream's data really
    changes (docs/automation.md).
    """
    return (
        order_lines.filter(pl.col("status") == "paid")
        .group_by("order_date")
        .agg(pl.col("gross_amount").sum().round(2).alias("revenue"), pl.len().alias("orders"))
        .sort("order_date")
    )


@asset(group="marts", tags={"tier": "gold"}, retries=2, timeout="5m")
def customer_revenue(order_lines: pl.DataFrame, stg_customers: pl.DataFrame) -> pl.DataFrame:
    """Revenue per customer with their city.

    retries=2 and timeout="5m" show the execution options (docs/execution.md): an attempt that raises is
    tried again (up to 3 in all, with backoff), one running past 5 minutes is stopped.
    """
    per_customer = (
        order_lines.filter(pl.col("status") == "paid")
        .group_by("customer_id")
        .agg(pl.col("gross_amount").sum().round(2).alias("revenue"))
    )
    return per_customer.join(stg_customers, on="customer_id", how="left").sort("customer_id")


@asset(group="marts", config=TopCustomersConfig(limit=5))
def top_customers(customer_revenue: pl.DataFrame, config: TopCustomersConfig) -> pl.DataFrame:
    """The best customers by revenue; the list length comes from the typed config."""
    return customer_revenue.sort(["revenue", "customer_id"], descending=[True, False]).head(config.limit)


@asset(group="marts", tags={"tier": "gold"}, freshness="1d")
def revenue_summary(daily_revenue: pa.Table, customer_revenue: pl.DataFrame) -> pl.DataFrame:
    """One row of headline figures; reads daily_revenue as Arrow to show both value kinds.

    freshness="1d": a day after its last materialization `assetflow status` calls it overdue (reported,
    never a reason to recompute; docs/cli.md, "Freshness policies").
    """
    days = pl.from_arrow(daily_revenue)
    assert isinstance(days, pl.DataFrame)
    return pl.DataFrame({
        "total_revenue": [round(days["revenue"].sum(), 2)],
        "days_with_sales": [days.height],
        "paying_customers": [customer_revenue.height],
    })


@asset(group="marts", version="1", deps=["revenue_summary"])
def city_revenue(customer_revenue: pl.DataFrame) -> pl.DataFrame:
    """Revenue per city. Pinned with version="1", and ordered after revenue_summary (deps)."""
    return customer_revenue.group_by("city").agg(pl.col("revenue").sum().round(2)).sort("city")


@asset(group="marts")
def leading_category(category_share: pl.DataFrame) -> pl.DataFrame:
    """The category with the largest share: a Python asset reading a SQL one (models/marts/category_share.sql)."""
    return category_share.sort(["share_pct", "category"], descending=[True, False]).head(1)


loyal_customers = sql_asset(
    "loyal_customers",
    """
    select customer_id, count(*) as big_orders, sum(amount) as amount
    from big_orders
    group by customer_id
    having count(*) >= 1
    order by amount desc, customer_id
    """,
    group="marts",
    description="Customers with big orders, most spent first: SQL declared in Python with sql_asset().",
)


@asset(group="marts")
def stock_received(stg_arrivals: pl.DataFrame, stg_products: pl.DataFrame) -> pl.DataFrame:
    """Units received per product so far, with its name: runs only on checked arrivals."""
    received = stg_arrivals.group_by("product_id").agg(pl.col("quantity").sum().alias("units"))
    return received.join(stg_products.select("product_id", "product_name"), on="product_id").sort("product_id")


@asset(group="marts", io="json", automation=on_cron("0 7 * * *", timezone="Europe/Paris"))
def headline(revenue_summary: pl.DataFrame) -> dict[str, float]:
    """The headline figures as a plain dict, stored as JSON (io="json": a value that is not a table).

    Automated: the daemon recomputes it after every 07:00 Paris time once its upstreams are up to date.
    """
    return {name: float(value) for name, value in revenue_summary.row(0, named=True).items()}


CATEGORIES = static(["books", "games", "garden", "kitchen"])


@asset(group="marts", partitions=CATEGORIES)
def category_orders(order_lines: pl.DataFrame, partition) -> pl.DataFrame:
    """The order lines of one category: a static partition per category, each stored and rerun on its own."""
    return order_lines.filter(pl.col("category") == partition.key)
