"""Which stored version a reference names: ``current``, ``~N``, a materialization id or a data-hash prefix.

Below inspection and partitions alike (``load``, ``show`` and the partition loader all resolve
versions), it reads the state store and nothing else.
"""

from __future__ import annotations

from assetflow.errors import UnknownAssetError
from assetflow.state.store import Materialization, StateStore

MIN_PREFIX = 4


def _earlier(store: StateStore, asset: str, n: int, partition: str | None) -> Materialization:
    """The ``n``-th newest materialization of ``asset`` (of its ``partition``) other than its current one (``~0``: the
    current). A partitioned asset's versions are counted within one partition: without one, ``~N`` names nothing."""
    if partition is None:
        _refuse_partitioned(store, asset, f"`~{n}` counts the versions of one partition")
    current = _current(store, asset, partition)
    if n == 0 and current is not None:
        return current
    earlier = [m for m in store.history(asset, limit=n + 1, partition=partition) if current is None or m.id != current.id]
    if n < 1 or len(earlier) < n:
        whose = f"Partition {partition!r} of {asset!r}" if partition else f"Asset {asset!r}"
        raise UnknownAssetError(
            f"{whose} has {len(earlier)} earlier version(s), so there is no ~{n}. Run "
            f"`assetflow history {asset}` to see its versions."
        )
    return earlier[n - 1]


def _current(store: StateStore, asset: str, partition: str | None) -> Materialization | None:
    if partition is None:
        return store.current().get(asset)
    return store.current_partitions(asset=asset).get((asset, partition))


def _refuse_partitioned(store: StateStore, asset: str, why: str) -> None:
    """Raise when ``asset`` is partitioned (its partitions have current versions, it has none of its own)."""
    if asset not in store.current() and any(name == asset for name, _ in store.current_partitions(asset=asset)):
        raise UnknownAssetError(f"Asset {asset!r} is partitioned: {why}. Name a version by its id or data hash "
                                f"(`assetflow show {asset}` lists them with their partition), or, in Python, the "
                                f"partition too: assetflow.load({asset!r}, version=..., partition=KEY).")


def _rejected(store: StateStore, asset: str, partition: str | None) -> str | None:
    """Why an asset (or partition) with no current version has none, when its newest version failed a blocking
    check: that version and the check, since running it again only fails the check again."""
    newest = store.history(asset, limit=1, partition=partition if partition is not None else "")
    if not newest or newest[0].id is None:
        return None
    mat = newest[0]
    failed = [r for r in store.checks_of(asset, mat.data_hash) if not r["passed"] and r["severity"] == "error"]
    if not failed:
        return None
    whose = f"Partition {partition!r} of {asset!r}" if partition else f"Asset {asset!r}"
    part = f", partition={partition!r}" if partition else ""
    first = failed[0]
    return (f"{whose} has no current version: its version {mat.id} ({mat.data_hash[:19]}) was rejected by check "
            f"{first['check']}: {first['summary']}" + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else "")
            + f". Fix the data (or the check), then run `assetflow materialize {asset}"
            + (f" --partition {partition}" if partition else "") + f"`; assetflow.load({asset!r}, version={mat.id}"
            f"{part}) loads the rejected version.")


def resolve_version(store: StateStore, asset: str, version: str | int | None,
                    partition: str | None = None) -> Materialization:
    """The materialization ``version`` names: None or "current", ``~N`` (the Nth newest earlier version,
    besides the current one: ``~1`` is the one before), a materialization id, or a data-hash prefix.

    A prefix may omit the algorithm (``9f2c`` or ``blake3:9f2c``); when several versions
    share the data hash, the newest is taken. A version of a partitioned asset belongs to one
    partition: with ``partition``, "current" and ``~N`` are that partition's and a version of
    another partition is refused; without it, an id or hash names its partition's version, and
    "current" and ``~N``, which would name one per partition, are refused.
    """
    if version is None or version == "current":
        found = _current(store, asset, partition)
        if found is None:
            rejected = _rejected(store, asset, partition)
            if rejected is not None:
                raise UnknownAssetError(rejected)
            if partition is not None:
                raise UnknownAssetError(f"Partition {partition!r} of {asset!r} has no current version; run "
                                        f"`assetflow materialize {asset} --partition {partition}`.")
            _refuse_partitioned(store, asset, "each partition has its own current version")
            raise UnknownAssetError(f"Asset {asset!r} has no current version; run `assetflow materialize {asset}`.")
        return found
    text = str(version).strip()
    if text.startswith("~") and text[1:].isdigit():
        return _earlier(store, asset, int(text[1:]), partition)
    matches = _named(store, asset, text)
    if partition is not None and matches and all(m.partition != partition for m in matches):
        other = matches[0].partition
        raise UnknownAssetError(
            f"Version {text!r} of {asset!r} is a version of partition {other!r}, not {partition!r}. "
            f"Load it with partition={other!r}, or name a version of {partition!r} (`assetflow show {asset}` lists "
            f"each version's partition)." if other else
            f"Version {text!r} of {asset!r} was made before it was partitioned: it has no partition {partition!r}. "
            f"Load it without partition=."
        )
    if partition is not None:
        matches = [m for m in matches if m.partition == partition]
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


def _named(store: StateStore, asset: str, text: str) -> list[Materialization]:
    """The versions of ``asset`` a materialization id or a data-hash prefix names, newest first."""
    if text.isdigit() and len(text) < 19:
        by_id = store.materialization(int(text))
        if by_id is not None and by_id.asset == asset:
            return [by_id]
    prefix = text if ":" in text else f"blake3:{text}"
    return store.by_data_hash(asset, prefix) if len(prefix.partition(":")[2]) >= MIN_PREFIX else []
