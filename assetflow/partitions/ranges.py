"""The partition selection language: which partitions of an asset a command works on.

Grammar (``docs/partitions.md`` has the user's version)::

    selection := "all" | item ( "," item )*
    item      := "latest" | range | key
    range     := [key] ".." [key]            both ends inclusive; an open end runs to the first/last key
    key       := any text without "," or ".."  (a product key is ``first|second``)

So ``2024-01-01..2024-03-31``, ``latest``, ``eu,us``, ``2024-04-01..`` and ``all``. On a product, a
key (or a range) of one of its two dimensions selects every product key whose part in that
dimension it names: ``2024-03-02`` is ``2024-03-02|fr,2024-03-02|de``; a key of both is refused
as ambiguous.
Keys are compared by the definition's order, never as text. Every mistake raises
:class:`~assetflow.errors.PartitionKeyError` naming the asset and pointing a caret at
the offending key.
"""

from __future__ import annotations

from collections.abc import Sequence

from assetflow.errors import PartitionKeyError
from assetflow.partitioning import PartitionsDefinition, ProductPartitions, check_key

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
    if isinstance(definition, ProductPartitions) and "|" not in stripped:
        found = _one_dimension(stripped, offset, definition, keys, asset, text)
        if found is not None:
            return found
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


def _one_dimension(stripped: str, offset: int, definition: ProductPartitions, keys: Sequence[str], asset: str,
                   text: str) -> set[int] | None:
    """The product keys whose part in one dimension a key or range of that dimension selects; None when its
    ends are keys of neither dimension (the caller's error then shows the product's form)."""
    low, dots, high = stripped.partition("..")
    ends = [e.strip() for e in (low, high) if e.strip()] if dots else [stripped]
    parts = [list(dict.fromkeys(definition.split(k)[d] for k in keys)) for d in (0, 1)]
    fits = [d for d in (0, 1) if all(definition.dimensions[d].valid_key(e) for e in ends)]
    if len(fits) == 2:  # the form of both: the keys each has now decide, if they can
        fits = [d for d in fits if all(e in parts[d] for e in ends)] or fits
    if not fits:
        return None
    if len(fits) == 2:
        raise PartitionKeyError(f"Asset {asset!r}: {stripped!r} could be a key of either dimension of "
                                f"{definition.describe()}; write whole keys (first|second), e.g. {keys[0]!r}."
                                if keys else f"Asset {asset!r}: {stripped!r} could be a key of either dimension "
                                f"of {definition.describe()}; write whole keys (first|second).", asset=asset,
                                expression=text, position=offset, length=len(stripped))
    dimension = fits[0]
    inner = _item(stripped, offset, definition.dimensions[dimension], parts[dimension],
                  {k: i for i, k in enumerate(parts[dimension])}, asset, text, None)
    chosen = {parts[dimension][i] for i in inner}
    return {i for i, k in enumerate(keys) if definition.split(k)[dimension] in chosen}


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
