"""Safe file operations shared by file-based backends: atomic writes, root confinement."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from assetflow.errors import StorageError
from assetflow.failpoints import failpoint
from assetflow.hashing import stat_token

__all__ = ["TEMP_PREFIX", "atomic_target", "confined", "confined_for_write", "deferred_sync", "fsync_dir",
           "links_under", "make_durable", "remove_temp_files", "replace_link_with_copy", "stat_token", "unlinked",
           "write_atomically"]

TEMP_PREFIX = ".tmp-"


def confined(root: Path, relative: str, base: Path | None = None, folders: dict[Path, Path] | None = None) -> Path:
    """``root / relative``, refusing any path that would resolve outside ``root``.

    Resolution follows symlinks, so a link pointing out of the storage root is refused too.
    The path returned keeps its last component unresolved: a stored file that is a link
    inside the root (a deduplication tool makes these) is read through, but a write replaces
    the link (``atomic_target`` renames over it) and a delete removes the link, never the
    file it points at, which may be another asset's version. ``base`` is ``root.resolve()``
    when the caller already has it (a backend checking 20,000 partitions resolves its root once);
    ``folders`` caches the resolved folders: a file that is not a link then costs one ``lstat``
    instead of one per path component (a third of checking 6,000 partitions).
    """
    base = root.resolve() if base is None else base
    lexical = base / relative
    if folders is not None and lexical.name not in ("", ".", ".."):
        folder = folders.get(lexical.parent)
        if folder is None:
            plain = _without_links(base, relative)
            folder = lexical.parent.resolve() if plain is None else plain.parent
            _refuse_outside(relative, folder, base)
            folders[lexical.parent] = folder
        if not os.path.islink(lexical):
            return folder / lexical.name  # what resolving the whole path gives for a file that is no link
    plain = _without_links(base, relative)
    if plain is not None:
        return plain
    target = lexical.resolve()
    _refuse_outside(relative, target, base)
    if target.name == lexical.name and not os.path.islink(lexical):
        return target  # the usual case: one lstat more than resolving, not a second resolve
    return lexical.parent.resolve() / lexical.name


def _without_links(base: Path, relative: str) -> Path | None:
    """``base / relative`` if resolving it would change nothing, else None (``unlinked``)."""
    plain = unlinked(base, relative)
    return None if plain is None else Path(plain)


def unlinked(base: Path, relative: str) -> str | None:
    """``base / relative`` as text if resolving it would change nothing (no ``..``, no link below the
    resolved ``base``; ``""`` is ``base`` itself), else None. One ``lstat`` per component of
    ``relative`` (an asset's version: two) instead of one per component of the whole path, twice."""
    parts = relative.split("/") if relative else []
    if any(part in ("", ".", "..") for part in parts):
        return None
    path = str(base)
    for part in parts:
        path = f"{path}/{part}"
        if os.path.islink(path):
            return None
    return path


def _refuse_outside(relative: str, target: Path, base: Path) -> None:
    if target != base and base not in target.parents:
        raise StorageError(
            f"Storage path {relative!r} resolves to {target}, outside the storage root {base}. "
            f"Remove the symlink or fix the location; assetflow never writes outside its root."
        )


def confined_for_write(root: Path, relative: str, base: Path | None = None) -> Path:
    """``confined``, and refused if a folder on the way (below ``root``) is a symbolic link.

    Writing or deleting through a linked folder would reach files of other assets (two
    assets' folders linked together share every version file name), so it is refused and
    said, rather than done.
    """
    base = root.resolve() if base is None else base
    path = confined(root, relative, base)
    lexical = Path(os.path.normpath(base / relative)).parent
    if path.parent != lexical:
        raise StorageError(
            f"Storage folder {lexical} is a symbolic link (to {path.parent}); assetflow never writes or deletes "
            f"through a link, which could overwrite or delete another asset's data. Replace the link with a real "
            f"folder (`assetflow doctor --repair` does), then run again."
        )
    return path


def links_under(root: Path) -> list[tuple[Path, str]]:
    """Every symbolic link below ``root`` (files and folders, not followed), with what it points at."""
    found = []
    if root.is_dir():
        for folder, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                path = Path(folder) / name
                if path.is_symlink():
                    found.append((path, os.readlink(path)))
    return sorted(found)


def replace_link_with_copy(link: Path, root: Path) -> bool:
    """Replace a symbolic link below ``root`` by a copy of what it points at (inside ``root``).

    A file link whose target is missing or outside ``root`` is removed (its version then reads
    missing, and is recomputed). Returns False, changing nothing, for such a folder link.
    """
    import shutil

    base = root.resolve()
    target = link.resolve()
    inside = target != base and base in target.parents
    if not inside or not target.exists():
        if target.is_dir():
            return False
        link.unlink()
        return True
    temp = link.with_name(f"{TEMP_PREFIX}{link.name}")
    if target.is_dir():
        shutil.copytree(target, temp, symlinks=True)
        link.unlink()
        os.replace(temp, link)
    else:
        shutil.copy2(target, temp)
        os.replace(temp, link)
    fsync_dir(link.parent)
    return True


def fsync_dir(folder: Path) -> None:
    _fsync(folder)


def _fsync(path: str | Path) -> None:
    """fsync a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_UNSYNCED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("assetflow_unsynced", default=None)


@contextlib.contextmanager
def atomic_target(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success fsync and rename it into place.

    A crash at any instant leaves either the old file or the new complete one at
    ``final``, plus perhaps a ``.tmp-*`` file that cleanup removes later. Inside
    ``deferred_sync`` the file is renamed without its two fsyncs and listed instead:
    whoever records it makes it durable first (``make_durable``).
    """
    fd, temp_name = _open_temp(str(final.parent))
    os.close(fd)
    temp = Path(temp_name)
    unsynced = _UNSYNCED.get()
    try:
        yield temp
        failpoint("after_data_write")
        if unsynced is None:
            _fsync(temp)
        _put_in_place(temp, final, unsynced)
    finally:
        temp.unlink(missing_ok=True)


def _put_in_place(temp: str | Path, final: Path, unsynced: list[str] | None) -> None:
    """Rename a written (and, unless ``unsynced`` lists files for ``make_durable``, fsynced) temporary file over
    ``final``, then fsync its folder or list it."""
    os.replace(temp, final)
    if unsynced is None:
        fsync_dir(final.parent)
    else:
        unsynced.append(str(final))
    failpoint("after_rename")


def write_atomically(final: Path, data: bytes | memoryview) -> os.stat_result:
    """``atomic_target`` for bytes already in memory, with the same guarantees, failpoints and ``deferred_sync``.

    The temporary file is opened once, written with one ``write`` and renamed: a second ``open`` by a
    library writing by name, and a ``stat`` of the result, cost more than the write of a small file (0.30
    against 0.59 ms for a 1,000-row Parquet file here). Returns the file's stat, taken before the rename,
    which keeps its device, inode, size and mtime: the final file's stat token (``token_of``).
    """
    folder = str(final.parent)
    fd, temp = _open_temp(folder)
    unsynced = _UNSYNCED.get()
    renamed = False
    try:
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view):]
            failpoint("after_data_write")
            if unsynced is None:
                os.fsync(fd)
            written = os.fstat(fd)
        finally:
            os.close(fd)
        _put_in_place(temp, final, unsynced)
        renamed = True
    finally:
        if not renamed:  # a name no longer there once renamed: nothing to remove
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
    return written


_temp_names: tuple[int, str, Iterator[int]] | None = None  # (pid, random tag, counter): drawn again after a fork


def _open_temp(folder: str) -> tuple[int, str]:
    """A new temporary file in ``folder`` (made if missing), open for writing: named by this process's id, a random
    tag and a counter, so one ``open`` makes it; a name taken (another host's process, same id, same tag) falls
    back to ``mkstemp``. Readable by its owner only, as ``mkstemp`` makes it."""
    global _temp_names
    pid = os.getpid()
    if _temp_names is None or _temp_names[0] != pid:
        _temp_names = (pid, os.urandom(4).hex(), itertools.count())
    temp = os.path.join(folder, f"{TEMP_PREFIX}{pid}-{_temp_names[1]}-{next(_temp_names[2])}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(temp, flags, 0o600), temp
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        return os.open(temp, flags, 0o600), temp
    except FileExistsError:
        return tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)


@contextlib.contextmanager
def deferred_sync(enabled: bool = True) -> Iterator[list[str]]:
    """Within: files ``atomic_target`` renames into place are listed, not fsynced, one by one.

    For a worker on the coordinator's host: the coordinator makes all that its workers wrote
    since its last record durable with one ``syncfs`` (``make_durable``) before it records any
    of them, instead of two fsyncs a file (0.42 against ~0.1 ms an asset here). Never across
    hosts: a ``syncfs`` reaches only this kernel's page cache. Disabled, the list stays empty.
    """
    written: list[str] = []
    if not enabled:
        yield written
        return
    token = _UNSYNCED.set(written)
    try:
        yield written
    finally:
        _UNSYNCED.reset(token)


def make_durable(paths: Iterable[str]) -> None:
    """Flush files renamed without fsync (``deferred_sync``) and their folders to disk.

    One ``syncfs`` per file system where Linux has it; elsewhere, or if it fails, each file
    and its folder are fsynced as ``atomic_target`` would have. A file already replaced or
    removed needs nothing.
    """
    by_device: dict[int, list[str]] = {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            by_device.setdefault(os.stat(path).st_dev, []).append(path)
    syncfs = _syncfs()
    for files in by_device.values():
        if syncfs is not None:
            fd = os.open(os.path.dirname(files[0]), os.O_RDONLY)
            try:
                if syncfs(fd) == 0:
                    continue
            finally:
                os.close(fd)
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                _fsync(path)
            fsync_dir(Path(path).parent)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs(fd)`` (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def remove_temp_files(root: Path) -> int:
    """Delete temporary files an interrupted write left under ``root``; return how many."""
    removed = 0
    if root.is_dir():
        for temp in root.rglob(f"{TEMP_PREFIX}*"):
            temp.unlink(missing_ok=True)
            removed += 1
    return removed
