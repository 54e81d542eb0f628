"""The no-op fast path: prove nothing changed without importing the user's code.

Importing a project (and polars with it) costs far more than checking it. After a
complete, successful run, the runner saves a *snapshot*: the stat of every project
Python file and of the folders holding them, of pyproject.toml, of every source
file (and the list a glob or folder matched), and each asset's stored-data token.
If every one of those is unchanged, every asset is still fresh: code fingerprints,
the graph and source hashes are functions of exactly those files. Any difference,
however harmless (a touched file), falls back to the full check, which then writes a
fresh snapshot.

Not covered, by design: module-level code whose result depends on something other
than the files (environment variables, the clock, the network). Set
``ASSETFLOW_NO_FAST_PATH=1`` for such projects.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from assetflow.hashing import hash_fields, is_racy, stat_token
from assetflow.project import ProjectConfig

SNAPSHOT_KEY = "noop_snapshot"
SNAPSHOT_VERSION = 1
DISABLE_ENV = "ASSETFLOW_NO_FAST_PATH"


def _token(path: str) -> str | None:
    try:
        return stat_token(path)
    except OSError:
        return None


def _identity(config: ProjectConfig) -> dict[str, object]:
    """What the snapshot is only valid for: this project, loaded this way, by this assetflow."""
    from assetflow import __version__

    return {
        "snapshot": SNAPSHOT_VERSION,
        "assetflow": __version__,
        "python": sys.version,
        "root": str(config.root),
        "modules": list(config.modules),
        "files": list(config.files),
        "state": str(config.state_path),
    }


def build_snapshot(
    config: ProjectConfig,
    code_files: Iterable[str],
    sources: Mapping[str, tuple[str, Mapping[str, str]]],
    assets: Iterable[tuple[str, str, str, str, str, str | None]],
    loaded_at_ns: int,
) -> str | None:
    """Serialise a snapshot, or None when a file is too recent to vouch for what was read.

    ``loaded_at_ns`` is when the project's code was imported: a code or source file whose
    mtime is that recent may have changed after it was read at the same stat token
    (the "racy clean" problem), so the snapshot is not written and the next run checks
    in full. ``sources`` maps a source name to (its path pattern, {absolute file: stat
    token when it was hashed});
    ``assets`` holds (name, io, location, data hash, token, local file or None) of every
    current version; a local file's stat token is checked without loading any backend.
    """
    files = sorted(set(code_files) | ({str(config.pyproject)} if config.pyproject else set()))
    folders = sorted({str(Path(f).parent) for f in files})
    stats = {p: _token(p) for p in (*files, *folders)}
    source_tokens = [t for _, matched in sources.values() for t in matched.values()]
    if any(t is None or is_racy(t, loaded_at_ns) for t in (*(stats[f] for f in files), *source_tokens)):
        return None
    body = json.dumps({
        **_identity(config),
        "stats": stats,
        "sources": {name: {"pattern": pattern, "files": dict(matched)} for name, (pattern, matched) in sources.items()},
        "assets": [list(a) for a in assets],
    })
    return f"{hash_fields(SNAPSHOT_KEY, body)}\n{body}"  # sealed: a corrupted snapshot never vouches


def _unseal(text: str) -> dict | None:
    """The snapshot if its seal matches its body; None if it was corrupted (or is of another format)."""
    seal, _, body = text.partition("\n")
    return json.loads(body) if seal == hash_fields(SNAPSHOT_KEY, body) else None


def check_snapshot(config: ProjectConfig, text: str | None) -> list[str] | None:
    """The asset names if the snapshot proves everything is fresh, else None."""
    if text is None or os.environ.get(DISABLE_ENV):
        return None
    snapshot = _unseal(text)
    if snapshot is None or any(snapshot.get(k) != v for k, v in _identity(config).items()):
        return None
    if any(_token(path) != token for path, token in snapshot["stats"].items()):
        return None
    from assetflow.declare import SourceSpec
    from assetflow.fingerprint.source import source_files

    for name, entry in snapshot["sources"].items():
        matched = source_files(SourceSpec(path=entry["pattern"], name=name), config.root)
        if {str(p) for p in matched} != set(entry["files"]):
            return None
        if any(_token(str(p)) != entry["files"][str(p)] for p in matched):
            return None
    backends = None
    for name, io, location, data_hash, token, local_file in snapshot["assets"]:
        if local_file is not None:
            if _token(local_file) != token:
                return None
            continue
        if backends is None:
            from assetflow.storage.base import Backends
            from assetflow.workspace import DATA_FOLDER

            backends = Backends(config.state_path / DATA_FOLDER, config.io_options)
        from assetflow.errors import PluginError, StorageError

        try:
            result = backends.get(io).check(name, location, data_hash, token)
        except (StorageError, PluginError):  # e.g. a damaged DuckDB file: the full path says which assets
            return None
        if result.status != "ok" or result.token != token:
            return None
    return [a[0] for a in snapshot["assets"]]
