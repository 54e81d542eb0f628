"""Partitions: split an asset into keys, each computed, stored and kept fresh on its own.

See docs/partitions.md. Definitions and mappings are declared in user code, so this
package's top level stays light: the engine (``units``, ``keys``) loads on first use.
"""

from __future__ import annotations

from assetflow.partitioning import (
    Partition,
    PartitionsDefinition,
    daily,
    dynamic,
    hourly,
    monthly,
    static,
    weekly,
)
from assetflow.partitions.mappings import all_partitions, identity, latest, window

__all__ = [
    "Partition",
    "PartitionsDefinition",
    "all_partitions",
    "daily",
    "dynamic",
    "hourly",
    "identity",
    "latest",
    "monthly",
    "static",
    "weekly",
    "window",
]
