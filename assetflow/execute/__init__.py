"""Execution: running the plan, one asset at a time or in parallel."""
