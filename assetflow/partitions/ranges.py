"""The partition selection language: which partitions of an asset a command works on.

Grammar (``docs/partitions.md`` has the user's version)::

    selection := "all" | item ( "," item )*
    item      := "latest" | range | key
    range     := [key] ".." [key]            both ends inclusive; an open end runs to the first/last key
    key       := any text without "," or ".."  (a product key is ``first|second``)

So ``2024-01-01..2024-03-31``, ``latest``, ``eu,us``, ``2024-04-01..`` and ``all``.
Keys are compared by the definition's order, never as text. Every mistake raises
:class:`~assetflow.errors.PartitionKeyError` naming the asset and pointing a caret at
the offending key.
"""

from __future__ import annotations

from collections.abc import Sequence

from assetflow.errors import PartitionKeyError
from assetflow.partitioning import PartitionsDefinition, check_key

def select_keys(text: str, definition: PartitionsDefinition, keys: Sequence[str], asset: str,
                latest: str | None = None) -> list[str]:
    """The keys of ``keys`` (the definition's keys now, in order) that ``text`` selects, in key order.

    ``latest`` is the key ``latest`` means (the last one with data); default the last key.
    """
    if not isinstance(text, str) or not text.strip():
        raise PartitionKeyError(f"Asset {asset!r}: an empty partition selection; give a key, a range "
                                f"(2024-01-01..2024-03-31), a list (a,b), latest or all.", asset=asset)
    index = {k: i for i, k in enumerate(keys)}
    if text.strip() == "all":
        return list(keys)
    chosen: set[int] = set()
    start = 0
    for item in text.split(","):
        chosen.update(_item(item, start, definition, keys, index, asset, text, latest))
        start += len(item) + 1
    return [keys[i] for i in sorted(chosen)]


def _item(item: str, start: int, definition: PartitionsDefinition, keys: Sequence[str], index: dict[str, int],
          asset: str, text: str, latest: str | None) -> range | set[int]:
    stripped = item.strip()
    offset = start + (len(item) - len(item.lstrip()))
    if not stripped:
        raise PartitionKeyError(f"Asset {asset!r}: an empty item in the partition list; remove the extra comma.",
                                asset=asset, expression=text, position=start)
    if stripped == "latest":
        if not keys:
            raise PartitionKeyError(f"Asset {asset!r} has no partitions yet, so it has no latest one.", asset=asset)
        return {index[latest] if latest in index else len(keys) - 1}
    if ".." not in stripped:
        return {_position(stripped, definition, keys, index, asset, text, offset)}
    low, _, high = stripped.partition("..")
    if ".." in high:
        raise PartitionKeyError(f"Asset {asset!r}: a range has one '..' (first..last).", asset=asset,
                                expression=text, position=offset + len(low) + 2 + high.index(".."), length=2)
    first = _position(low.strip(), definition, keys, index, asset, text, offset) if low.strip() else 0
    last = (_position(high.strip(), definition, keys, index, asset, text, offset + len(low) + 2)
            if high.strip() else len(keys) - 1)
    if first > last:
        raise PartitionKeyError(f"Asset {asset!r}: the range {stripped!r} runs backwards; write the earlier "
                                f"key first.", asset=asset, expression=text, position=offset, length=len(stripped))
    return range(first, last + 1)


def _position(key: str, definition: PartitionsDefinition, keys: Sequence[str], index: dict[str, int],
              asset: str, text: str, offset: int) -> int:
    found = index.get(key)
    if found is not None:
        return found
    try:
        check_key(definition, key, keys, asset)
    except PartitionKeyError as exc:
        where = text.find(key, offset)
        raise PartitionKeyError(exc.reason, asset=asset, key=key, expression=text,
                                position=max(0, where), length=len(key)) from None
    raise AssertionError("check_key accepted a key that is not listed")  # pragma: no cover
