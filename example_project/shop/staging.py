"""Staging: typed, cleaned copies of the raw sources."""

import polars as pl

from assetflow import accepted_values, asset, expr, not_null, relationship, row_count, unique
from shop import cleaning


@asset(group="staging", tags={"layer": "staging"},
       checks=[not_null("order_id"), unique("order_id"), accepted_values("status", cleaning.VALID_STATUSES),
               expr(pl.col("quantity") > 0), row_count(min=1)])
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


@asset(group="staging", tags={"layer": "staging"}, checks=[not_null("product_id"), unique("product_id")])
def stg_products(products_raw: pl.DataFrame) -> pl.DataFrame:
    """The catalogue, prices as floats."""
    return products_raw.with_columns(pl.col("unit_price").cast(pl.Float64))


@asset(group="staging", tags={"layer": "staging"}, deps=["stg_products"],
       checks=[not_null("product_id"), expr(pl.col("quantity") > 0, name="quantity > 0"),
               relationship("product_id", to="stg_products.product_id")])
def stg_arrivals(arrivals_raw: pl.DataFrame) -> pl.DataFrame:
    """Every delivered line, dates parsed. Checked before it is published: a delivery naming a product
    the catalogue does not have, or a quantity that is not positive, keeps the previous version."""
    return arrivals_raw.with_columns(pl.col("arrived_on").str.to_date()).sort("arrived_on", "product_id")
