"""The no-op snapshot as the state store keeps it: a sealed text under one meta key.

The seal (a hash of the body, on the first line) makes a damaged snapshot unreadable rather
than wrong: a corrupted one never vouches for anything. ``assetflow.fastpath`` writes and
checks snapshots; ``doctor`` only asks whether the one stored is intact.
"""

from __future__ import annotations

import json
from typing import Any

from assetflow.hashing import hash_fields

SNAPSHOT_KEY = "noop_snapshot"  # the meta key of the no-op snapshot
GRAPH_KEY = "graph_cache"  # the meta key of the graph cache that lets status skip the import
CODE_CACHE_KEY = "code_fingerprints"  # the meta key of the code digests kept while the project's code is unchanged


def seal(body: str) -> str:
    """The stored form of a snapshot body: its seal, a newline, the body."""
    return f"{hash_fields(SNAPSHOT_KEY, body)}\n{body}"


def unseal(text: str) -> dict[str, Any] | None:
    """The snapshot if its seal matches its body; None if it was corrupted (or is of another format)."""
    seal_line, _, body = text.partition("\n")
    if seal_line != hash_fields(SNAPSHOT_KEY, body):
        return None
    snapshot = json.loads(body)
    return snapshot if isinstance(snapshot, dict) else None


def is_sealed(text: str) -> bool:
    """Whether a stored snapshot is intact (``doctor``'s question)."""
    try:
        return unseal(text) is not None
    except ValueError:
        return False
