"""PostgreSQL's limits that both the table names (backend) and the column names (types) must respect."""

from __future__ import annotations

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: a longer identifier is silently truncated by the server
