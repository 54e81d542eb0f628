"""Plain-text phrasing the command line shares, importable without click (``cli_fast`` answers a no-op with it)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["all_fresh", "counted", "plural"]


def plural(count: int, noun: str) -> str:
    """``1 asset``, ``2 assets``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def all_fresh(names: Iterable[str]) -> str:
    """``Everything is fresh: 3 assets (20,000 partitions), nothing to do.``: partitions (``name[key]``) are
    counted apart from the assets they belong to."""
    return f"Everything is fresh: {counted(names)}, nothing to do."


def counted(names: Iterable[str]) -> str:
    """``3 assets (20,000 partitions)``: units (``name[key]``) counted as assets, and partitions apart."""
    names = list(names)
    partitions = [n for n in names if n.endswith("]") and "[" in n]
    assets = {n.partition("[")[0] for n in names}  # a name without "[" is its own asset
    return plural(len(assets), "asset") + (f" ({plural(len(partitions), 'partition')})" if partitions else "")


def join_reasons(reasons: Iterable[str]) -> str:
    """Reasons on one line, ``; `` between them: a reason's own closing period is dropped before the next one
    (``... run assetflow materialize again; 2024-03-01 fresh``, not ``again.; 2024-03-01``)."""
    parts = [r for r in reasons if r]
    return "; ".join([_unclosed(r) for r in parts[:-1]] + parts[-1:])


def _unclosed(reason: str) -> str:
    return reason[:-1] if reason.endswith(".") and not reason.endswith("..") else reason
