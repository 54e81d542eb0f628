"""The state store: what was materialized, from what, and which version is current."""
