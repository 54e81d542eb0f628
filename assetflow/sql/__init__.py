"""SQL assets: ``.sql`` files and ``sql_asset()`` run in DuckDB, with column-level lineage (docs/sql.md).

``parse`` (text -> checked query, canonical form), ``header`` (a file's options),
``spec`` (the declaration), ``resolve`` (table names -> assets, at project load),
``fingerprint``, ``run`` (DuckDB over stored data) and ``lineage`` (columns).
"""
