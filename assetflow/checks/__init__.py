"""Asset checks: judge a new version before it is published (docs/checks.md).

``definitions`` declares (the built-ins and ``@check``), ``evaluate`` judges a value (all
built-ins of an asset fused into one polars select); the gate that stores, checks and only
then publishes lives in ``assetflow.execute.gate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    """The declarations load on first use: reading verdicts (``checks.report``) must not pay for them."""
    if name in __all__:
        from assetflow.checks import definitions

        return getattr(definitions, name)
    raise AttributeError(f"module 'assetflow.checks' has no attribute {name!r}")
