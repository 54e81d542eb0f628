"""Staging: typed, cleaned copies of the raw sources."""

import polars as pl

from assetflow import asset
from shop import cleaning


@asset(group="staging", tags={"layer": "staging"})
def stg_orders(orders_raw: pl.DataFrame) -> pl.DataFrame:
    """Valid order lines: positive quantities, known statuses, parsed dates."""
    return (
        orders_raw.filter(pl.col("quantity") > 0)
        .filter(pl.col("status").is_in(cleaning.VALID_STATUSES))
        .with_columns(pl.col("order_date").str.to_date())
    )


@asset(group="staging", tags={"layer": "staging"}, owners=["crm-team@example.com"])
def stg_customers(customers_raw: pl.DataFrame) -> pl.DataFrame:
    """Customers with cleaned names."""
    return customers_raw.with_columns(cleaning.clean_name("name").alias("name"))


@asset(group="staging", tags={"layer": "staging"})
def stg_products(products_raw: pl.DataFrame) -> pl.DataFrame:
    """The catalogue, prices as floats."""
    return products_raw.with_columns(pl.col("unit_price").cast(pl.Float64))
