"""Source data versions: content hashes of the files a source reads, behind a stat cache.

A file whose (device, inode, size, mtime_ns) is unchanged since it was last hashed is
not read again. Rewriting a file with identical bytes changes its stat but not its
hash, so nothing downstream goes stale.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import blake3

from assetflow.errors import ProjectLoadError, SourceReadError
from assetflow.hashing import ALGORITHM, Digest, is_racy, stat_token

if TYPE_CHECKING:  # the fast path hashes a file without loading the declarations
    from assetflow.declare import SourceSpec

StatCache = dict[str, tuple[str, str]]  # absolute path -> (stat token, content hash)


@dataclasses.dataclass(frozen=True)
class SourceVersion:
    """What a source read: its files (relative to the project) with their hashes, and one data hash."""

    name: str
    data_hash: str
    files: tuple[tuple[str, str, str], ...]  # (relative path, stat token, content hash)


def source_files(spec: SourceSpec, root: Path) -> list[Path]:
    """The files a source covers, sorted: one file, every file under a folder, or a glob's matches; for a
    partitioned source, the file of every key there is (its placeholder matched as a glob's ``*``)."""
    if spec.partitions is not None:
        from assetflow.declare import partition_glob

        return [Path(p) for p in glob_files(partition_glob(spec), root)]
    return pattern_files(spec.path, root)


def pattern_files(pattern: str, root: Path) -> list[Path]:
    """``source_files`` of a source's path pattern (what the fast path keeps of a source)."""
    if any(ch in pattern for ch in "*?["):
        return [Path(p) for p in glob_files(pattern, root)]
    base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
    if base.is_dir():
        return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    if base.is_file():
        return [base]
    return []


def glob_files(pattern: str, root: Path) -> list[str]:
    """The files a glob matches, as strings, sorted as paths sort (part by part).

    Strings, not Path objects: over 10,000 files (a partitioned source, checked by the no-op
    fast path) building and comparing Paths would cost more than the stats.
    """
    base = str(Path(pattern) if os.path.isabs(pattern) else root / pattern)
    return sorted((p for p in glob.glob(base, recursive=True) if os.path.isfile(p)), key=lambda p: p.split("/"))


_READ_BYTES = 8 << 20


def file_hash(path: Path) -> str:
    """The content hash of a file, read through one buffer of at most 8 MiB.

    Not ``update_mmap``: a mapped file's pages count in the process's resident memory, so
    hashing a 5 GB CSV showed as 5 GB of RSS (and reading was twice as slow, 0.59 against
    0.30 s a GB).
    """
    hasher = blake3.blake3()
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(max(1, min(_READ_BYTES, os.fstat(handle.fileno()).st_size)))
        view = memoryview(buffer)
        while read := handle.readinto(buffer):
            hasher.update(view[:read])
    return _content_hash(hasher)


def _content_hash(hasher: blake3.blake3) -> str:
    """A file's content hash as recorded: the algorithm, then the digest of its bytes (``file_hash``, ``_verified``)."""
    return f"{ALGORITHM}:{hasher.hexdigest()}"


def _verified(path: Path, content: str, spec: SourceSpec) -> Path | bytes:
    """The bytes of ``path`` if they hash to ``content`` (``SourceMoved`` if not); the path itself for a file
    too large to hold twice, or one with no recorded hash."""
    if not content:
        return path
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size > VERIFIED_READ_BYTES:
            return path
        data = handle.read()
    if _content_hash(blake3.blake3(data)) != content:
        raise SourceMoved(spec.name or "")
    return data


def _hash_stable(path: Path, token: str) -> tuple[str, str]:
    """Hash a file, retrying while it changes underneath (its token moving during the read)."""
    for _ in range(5):
        content = file_hash(path)
        after = stat_token(path)
        if after == token:
            return content, token
        token = after
    raise OSError(f"{path} keeps changing while it is being hashed; try again once it is written.")


def observe_source(spec: SourceSpec, root: Path, cache: StatCache, updates: StatCache) -> SourceVersion:
    """Hash a source's files, reusing cached hashes for files whose stat is unchanged.

    Newly computed (token, hash) pairs go into ``updates`` for the caller to persist.
    """
    assert spec.name is not None
    files = source_files(spec, root)
    if not files:
        raise ProjectLoadError(
            f"Source {spec.name!r} ({spec.where}) reads {spec.path!r}, but no file matches it under "
            f"{root}. Create the file, or fix the path in source(...)."
        )
    digest = Digest("source")
    entries = []
    now = time.time_ns()
    for path in files:
        key = str(path)
        token = stat_token(path)
        cached = cache.get(key)
        if cached is not None and cached[0] == token:
            content = cached[1]
        else:
            content, token = _hash_stable(path, token)
            if not is_racy(token, now):
                updates[key] = (token, content)
        relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else key
        digest.fields(relative, content)
        entries.append((relative, token, content))
    return SourceVersion(spec.name, digest.hexdigest(), tuple(entries))


def unchanged_since(version: SourceVersion, root: Path) -> bool:
    """True when every file still has the stat it had when observed (checked after a run)."""
    try:
        return all(stat_token(root / rel if not Path(rel).is_absolute() else Path(rel)) == token
                   for rel, token, _ in version.files)
    except FileNotFoundError:
        return False


class SourceMoved(Exception):
    """A source's files were not, as read, those an asset was decided against (rule 9, docs/concepts.md)."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.source = source


# A source file up to this size is read whole and its bytes hashed before they are parsed; a larger one is
# parsed from its path (no second copy in memory), and only its stat vouches for what was read.
VERIFIED_READ_BYTES = 256 << 20


def read_source(spec: SourceSpec, version: SourceVersion, root: Path) -> object:
    """The value a downstream asset receives from a source.

    Each file (up to ``VERIFIED_READ_BYTES``) is parsed from bytes whose content hash is the one ``version``
    records, or ``SourceMoved`` is raised: the value is then exactly the data the asset was decided against,
    even if the file was rewritten with its stat restored (same inode, size and mtime) since it was observed.
    """
    paths = [root / rel if not Path(rel).is_absolute() else Path(rel) for rel, _, _ in version.files]
    if spec.format == "path":
        return paths[0] if len(paths) == 1 and "*" not in spec.path and not (root / spec.path).is_dir() else paths
    import polars as pl

    readers = {"csv": pl.read_csv, "parquet": pl.read_parquet, "json": pl.read_json, "ndjson": pl.read_ndjson}
    frames = []
    for path, (_, _, content) in zip(paths, version.files, strict=True):
        try:
            frames.append(readers[spec.format](_verified(path, content, spec), **spec.read_options))
        except (TypeError, SourceMoved):
            raise  # a bad reader option (the traceback shows the call), or rule 9's failure
        except Exception as exc:  # noqa: BLE001 - any reader failure is the file's: say which source, file and line
            from assetflow.fingerprint.read_errors import source_read_error

            raise source_read_error(spec, path, root, exc) from None
    try:
        frame = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
    except pl.exceptions.PolarsError as exc:
        raise SourceReadError(
            f"Source `{spec.name}` ({spec.where}) reads {len(frames)} files that do not fit together: {exc}. "
            f"Give them the same columns and types, or point source(...) at fewer files.", source=spec.name or "",
            file=spec.path) from None
    # One chunk per column: a CSV read in parallel comes in several, and every asset computed from it
    # would carry them through its work, its data hash and its Parquet file (~0.2 ms an asset of 1,000 rows).
    return frame.rechunk()
