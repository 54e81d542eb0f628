"""What an import can find in a folder: the names the no-op snapshot compares instead of a folder's stat.

Its own small module so that the no-op fast path, which must stay cheap, checks listings without
importing the project loader (``fingerprint.imports``).
"""

from __future__ import annotations

import importlib.machinery
import os

__all__ = ["importable_names"]

_IMPORTABLE = tuple(importlib.machinery.all_suffixes())


def importable_names(folder: str) -> list[str] | None:
    """What an import can find in ``folder``: its modules and possible packages (None: unreadable).

    Compared instead of the folder's stat token, which assetflow's own writes (``.assetflow``,
    ``__pycache__``) move and which cannot vouch for a listing as recent as the run anyway.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    return sorted(n for n in names if not n.startswith(".") and n != "__pycache__"
                  and (n.endswith(_IMPORTABLE) or n.isidentifier()))
