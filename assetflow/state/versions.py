"""Which stored version a reference names: ``current``, ``~N``, a materialization id or a data-hash prefix.

Below inspection and partitions alike (``load``, ``show`` and the partition loader all resolve
versions), it reads the state store and nothing else.
"""

from __future__ import annotations

from assetflow.errors import UnknownAssetError
from assetflow.state.store import Materialization, StateStore

MIN_PREFIX = 4


def _earlier(store: StateStore, asset: str, n: int) -> Materialization:
    """The ``n``-th newest materialization of ``asset`` other than its current one (``~0``: the current)."""
    current = store.current().get(asset)
    if n == 0 and current is not None:
        return current
    earlier = [m for m in store.history(asset, limit=n + 1) if current is None or m.id != current.id]
    if n < 1 or len(earlier) < n:
        raise UnknownAssetError(
            f"Asset {asset!r} has {len(earlier)} earlier version(s), so there is no ~{n}. Run "
            f"`assetflow history {asset}` to see its versions."
        )
    return earlier[n - 1]


def resolve_version(store: StateStore, asset: str, version: str | int | None) -> Materialization:
    """The materialization ``version`` names: None or "current", ``~N`` (the Nth newest earlier version,
    besides the current one: ``~1`` is the one before), a materialization id, or a data-hash prefix.

    A prefix may omit the algorithm (``9f2c`` or ``blake3:9f2c``); when several versions
    share the data hash, the newest is taken.
    """
    if version is None or version == "current":
        found = store.current().get(asset)
        if found is None:
            if any(name == asset for name, _ in store.current_partitions(asset=asset)):
                raise UnknownAssetError(f"Asset {asset!r} is partitioned: each partition has its own current version. "
                                        f"Name one by its id or data hash (`assetflow show {asset}` lists them).")
            raise UnknownAssetError(f"Asset {asset!r} has no current version; run `assetflow materialize {asset}`.")
        return found
    text = str(version).strip()
    if text.startswith("~") and text[1:].isdigit():
        return _earlier(store, asset, int(text[1:]))
    if text.isdigit() and len(text) < 19:
        by_id = store.materialization(int(text))
        if by_id is not None and by_id.asset == asset:
            return by_id
    prefix = text if ":" in text else f"blake3:{text}"
    matches = store.by_data_hash(asset, prefix) if len(prefix.partition(":")[2]) >= MIN_PREFIX else []
    hashes = sorted({m.data_hash for m in matches})
    if len(hashes) > 1:
        raise UnknownAssetError(
            f"Version {text!r} of {asset!r} is ambiguous: it matches {', '.join(h[:19] for h in hashes)}. "
            f"Give more digits."
        )
    if not matches:
        raise UnknownAssetError(
            f"Asset {asset!r} has no version {text!r} (a materialization id, or a data-hash prefix of at "
            f"least {MIN_PREFIX} hex digits). "
            f"Run `assetflow history {asset}` to see its versions."
        )
    return matches[0]
