"""Asset checks: judge a new version before it is published (docs/checks.md).

``definitions`` declares (the built-ins and ``@check``), ``evaluate`` judges a value (all
built-ins of an asset fused into one polars select); the gate that stores, checks and only
then publishes lives in ``assetflow.execute.gate``.
"""

from __future__ import annotations

from assetflow.checks.definitions import (
    Check,
    CheckOutcome,
    FunctionCheck,
    accepted_values,
    check,
    expr,
    not_null,
    relationship,
    row_count,
    schema,
    unique,
)

__all__ = ["Check", "CheckOutcome", "FunctionCheck", "accepted_values", "check", "expr", "not_null", "relationship",
           "row_count", "schema", "unique"]
