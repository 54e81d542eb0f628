"""Inspection: status, why, lineage, show and history, from the state and the current code.

Each module answers one question and returns plain data (dataclasses, dicts) that the
Python API returns as is and the CLI renders as text or as versioned JSON.
"""
