"""Safe file operations shared by file-based backends: atomic writes, root confinement."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from assetflow.errors import StorageError
from assetflow.failpoints import failpoint
from assetflow.hashing import stat_token

__all__ = ["TEMP_PREFIX", "atomic_target", "confined", "fsync_dir", "remove_temp_files", "stat_token"]

TEMP_PREFIX = ".tmp-"


def confined(root: Path, relative: str) -> Path:
    """``root / relative``, refusing any path that would resolve outside ``root``.

    Resolution follows symlinks, so a link pointing out of the storage root is refused too.
    """
    base = root.resolve()
    target = (base / relative).resolve()
    if target != base and base not in target.parents:
        raise StorageError(
            f"Storage path {relative!r} resolves to {target}, outside the storage root {base}. "
            f"Remove the symlink or fix the location; assetflow never writes outside its root."
        )
    return target


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_target(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success fsync and rename it into place.

    A crash at any instant leaves either the old file or the new complete one at
    ``final``, plus perhaps a ``.tmp-*`` file that cleanup removes later.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=final.parent)
    os.close(fd)
    temp = Path(temp_name)
    try:
        yield temp
        failpoint("after_data_write")
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, final)
        fsync_dir(final.parent)
        failpoint("after_rename")
    finally:
        temp.unlink(missing_ok=True)


def remove_temp_files(root: Path) -> int:
    """Delete temporary files an interrupted write left under ``root``; return how many."""
    removed = 0
    if root.is_dir():
        for temp in root.rglob(f"{TEMP_PREFIX}*"):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed
