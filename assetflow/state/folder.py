"""The state folder on disk, and what to tell the user when the file system refuses it.

A full disk, a lock file replaced by a folder, or a state "folder" that is a regular file
are the user's to fix; each becomes a ``StateError`` (exit code 2) that names the path and
says what to do, never a raw ``OSError`` traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path

from assetflow.errors import StateError

NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
NO_ACCESS = {errno.EACCES, errno.EPERM, errno.EROFS}


def ensure_state_folder(folder: Path) -> None:
    """Create the state folder if needed; a ``StateError`` saying what to do if it cannot be."""
    if folder.exists() and not folder.is_dir():
        raise StateError(
            f"The state folder {folder} is a file, not a folder, so assetflow cannot keep its state there. "
            f"Move the file away (e.g. mv {folder} {folder}.bak), or set another folder with "
            f"`state = \"...\"` in [tool.assetflow]."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(folder, exc, "create the state folder") from exc


def os_error(path: Path, exc: OSError, doing: str) -> StateError:
    """``exc``, raised while trying to ``doing`` on ``path``, as a one-line error that says what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno in NO_SPACE:
        advice = "The disk (or your quota) is full: free some space, then run the command again."
    elif exc.errno == errno.EISDIR:
        advice = (f"assetflow keeps a file there, but a folder took its place: remove it (rm -r {path}); "
                  f"assetflow creates the file again.")
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        advice = f"A file stands where a folder is needed on the way to {path}: move it away."
    elif exc.errno in NO_ACCESS:
        advice = "Check the permissions of the folder (and that the file system is not read-only)."
    else:
        advice = "Fix the file system problem, then run the command again."
    return StateError(f"Cannot {doing} {path} ({reason}). {advice} Nothing was recorded.")
