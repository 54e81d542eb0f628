"""Project-local helpers: assetflow follows them, so editing one reruns the assets that use them."""

import polars as pl

VAT_RATE = 0.20
VALID_STATUSES = ("paid", "refunded")


def clean_name(column: str) -> pl.Expr:
    """Trim and title-case a free-text name column."""
    return pl.col(column).str.strip_chars().str.strip_chars(".").str.to_titlecase()


def with_vat(amount: pl.Expr) -> pl.Expr:
    return (amount * (1 + VAT_RATE)).round(2)
