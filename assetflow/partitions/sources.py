"""Partitioned sources: one file per key, each hashed on its own behind the stat cache.

A key whose file is absent has no data yet: it is left out (its downstream partitions
wait), never an error. A file rewritten with identical bytes keeps its hash; a changed
file changes only its own key's version, so only that key's downstream goes stale.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from assetflow.declare import SourceSpec, partition_path
from assetflow.fingerprint.source import SourceVersion, StatCache, _hash_stable
from assetflow.hashing import Digest, is_racy, stat_token


def observe_partitions(spec: SourceSpec, keys: Sequence[str], root: Path, cache: StatCache,
                       updates: StatCache) -> dict[str, SourceVersion]:
    """key -> version of every key whose file exists; new (token, hash) pairs go into ``updates``."""
    assert spec.name is not None
    found: dict[str, SourceVersion] = {}
    now = time.time_ns()
    absolute = Path(spec.path).is_absolute()
    for key in keys:
        relative = partition_path(spec, key)
        path = Path(relative) if absolute else root / relative
        text = str(path)
        try:
            token = stat_token(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if not os.path.isfile(text):
            continue
        cached = cache.get(text)
        if cached is not None and cached[0] == token:
            content = cached[1]
        else:
            content, token = _hash_stable(path, token)
            if not is_racy(token, now):
                updates[text] = (token, content)
        shown = relative if not absolute else text
        found[key] = SourceVersion(spec.name, Digest("source").fields(shown, content).hexdigest(),
                                   ((shown, token, content),))
    return found
