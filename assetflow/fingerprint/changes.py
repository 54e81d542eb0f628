"""Naming and showing what changed between two code fingerprints' normalised sources.

Keys of ``CodeFingerprint.sources`` are qualified names (``shop.staging.clean_name``);
this module turns one into words a user recognises ("helper `clean_name` in
shop/staging.py") and renders a unified diff of the normalised text.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from pathlib import Path


def changed_names(old: Mapping[str, str] | None, new: Mapping[str, str]) -> list[str]:
    """Qualified names whose normalised source differs between two fingerprints."""
    if old is None:
        return []
    return sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))


SQL_PREFIX = "sql:"  # a SQL asset's canonical query: ``sql:<file>#<asset>`` (see assetflow.sql.fingerprint)


def split_key(key: str) -> tuple[str, str]:
    """(module, qualified name inside it), using the loaded modules to find where the module ends."""
    if key.startswith(SQL_PREFIX):
        file, _, name = key[len(SQL_PREFIX):].rpartition("#")
        return file, name
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        if module in sys.modules:
            return module, ".".join(parts[cut:])
    return ".".join(parts[:-1]) or key, parts[-1]


def module_file(module: str) -> str:
    """The module's file as its import path spells it (``shop/staging.py``), or the module name."""
    filename = getattr(sys.modules.get(module), "__file__", None)
    if not filename:
        return module
    path = Path(filename)
    depth = module.count(".") + (2 if path.name == "__init__.py" else 1)
    return "/".join(path.parts[-depth:])


def _kind(text: str | None) -> str:
    if text is None:
        return "constant"
    first = next((line for line in text.splitlines() if not line.startswith("@")), "")
    if first.startswith(("def ", "async def ")):
        return "helper"
    if first.startswith("class "):
        return "class"
    if first.startswith("# source unavailable"):
        return "helper"
    return "constant"


def describe(key: str, old: str | None, new: str | None, asset: str) -> str:
    """``helper `clean_name` in shop/staging.py``, ``the asset's own code``, ``constant `RATE` ... (removed)``."""
    module, name = split_key(key)
    if key.startswith(SQL_PREFIX):
        return f"the asset's SQL in {module}" if name == asset else f"the SQL of `{name}` in {module}"
    kind = _kind(new if new is not None else old)
    where = module_file(module)
    if kind == "helper" and name == asset:
        text = f"the asset's own code in {where}"
    else:
        text = f"{kind} `{name}` in {where}"
    if old is None:
        return text + " (new)"
    if new is None:
        return text + " (no longer used)"
    return text


def unified_diff(key: str, old: str | None, new: str | None, old_label: str = "stored", new_label: str = "now") -> str:
    """A unified diff of one entry's normalised source, headed by its file and name."""
    module, name = split_key(key)
    label = module if key.startswith(SQL_PREFIX) else f"{module_file(module)}::{name}"
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True) if old is not None else [],
        (new or "").splitlines(keepends=True) if new is not None else [],
        fromfile=f"{label} ({old_label})", tofile=f"{label} ({new_label})",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
