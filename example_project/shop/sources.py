"""Raw exports from the shop's systems: observed, never computed."""

from assetflow import source

orders_raw = source("data/orders.csv", description="Order lines exported nightly from the web shop.")
customers_raw = source("data/customers.csv", description="The CRM's customer export.")
products_raw = source("data/products.csv", description="The product catalogue.", try_parse_dates=False)
arrivals_raw = source("data/arrivals/*.csv",
                      description="Stock deliveries from the warehouse: one CSV file per delivery, concatenated.")
