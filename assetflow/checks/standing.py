"""Which verdicts stand: a check's verdict depends on the data, the check's definition and the upstreams it reads.

Verdicts are cached by (check fingerprint, data hash) in the state store. The fingerprint covers the
asset, the check's definition (a ``@check`` function's code fingerprint) and the data hashes of the
upstreams it reads, so an unchanged asset is not re-checked and editing one check re-runs that check
alone. The publish gate (``execute.gate``) judges with these fingerprints; ``status`` and ``show``
read with them, because the latest verdict of a check on some data is not always the one that stands:
a rejected version can hold the very data of the current one, judged with other upstreams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from assetflow.checks.definitions import Check, FunctionCheck
from assetflow.checks.report import verdicts_under
from assetflow.hashing import hash_fields

__all__ = ["CheckFingerprints"]


class CheckFingerprints:
    """The fingerprints of a project's checks; a ``@check`` function's code is walked once per workspace.

    ``specs`` are the graph's specs (an ``AssetSpec`` is passed in as ``spec``), ``source_hash`` gives an
    unpartitioned source's data hash now, ``code_digest`` a function's code fingerprint (the one assets use),
    ``partition_inputs`` the hashes of the partitioned upstreams an asset's partition reads: given, not imported,
    because the declarations and the fingerprints import this package's definitions.
    """

    def __init__(self, specs: Mapping[str, Any], source_hash: Callable[[str], str],
                 code_digest: Callable[[Callable[..., Any]], str],
                 partition_inputs: Callable[[Any, str, Mapping[str, Any]], Mapping[str, str]]) -> None:
        self.specs = specs
        self.source_hash = source_hash
        self.code_digest = code_digest
        self.partition_inputs = partition_inputs
        self._code: dict[int, str] = {}

    def of(self, spec: Any, chk: Check, upstream: Mapping[str, str]) -> str:
        """What a verdict depends on besides the data: the asset, the check, the upstreams it reads."""
        code = ""
        if isinstance(chk, FunctionCheck) and chk.fn is not None:
            code = self._code.get(id(chk), "")
            if not code:
                code = self._code[id(chk)] = self.code_digest(chk.fn)
        ups = [f"{u}={upstream.get(u, 'missing')}" for u in chk.upstreams()]
        return hash_fields("check", spec.name, *chk.identity(), code, *ups)

    def all_of(self, spec: Any, key: str, current: Mapping[str, Any],
               recorded: Mapping[str, str] | None = None) -> dict[int, str]:
        """Each check's fingerprint (by ``id`` of the check) on the asset's partition ``key`` ("": unpartitioned)
        with the upstream versions ``current`` names (by unit, records with a ``data_hash``) and the sources now,
        or, for the upstreams in ``recorded``, with those hashes."""
        upstream = self.upstream_hashes(spec, key, current, recorded or {})
        return {id(c): self._keyed(spec, c, key, self.of(spec, c, upstream)) for c in spec.checks}

    @staticmethod
    def _keyed(spec: Any, chk: Check, key: str, fingerprint: str) -> str:
        """A check that judges the partition's window (``partition_column``) is another check on each key."""
        if not getattr(chk, "keyed", False):
            return fingerprint
        return hash_fields(fingerprint, key, repr(spec.partitions))

    def upstream_hashes(self, spec: Any, key: str, current: Mapping[str, Any],
                        recorded: Mapping[str, str]) -> dict[str, str]:
        """The data hash of each upstream the checks read, as the check gets it: a partitioned upstream's is the hash
        of the partitions the asset's partition reads (``partition_inputs``, as a run decides them)."""
        hashes: dict[str, str] = {}
        partitioned: Mapping[str, str] | None = None
        for chk in spec.checks:
            for up in chk.upstreams():
                upstream_spec = self.specs.get(up)
                if up in recorded:
                    hashes[up] = recorded[up]
                elif upstream_spec is not None and upstream_spec.partitions is not None:
                    if partitioned is None:
                        partitioned = self.partition_inputs(spec, key, current)
                    if up in partitioned:
                        hashes[up] = partitioned[up]
                elif upstream_spec is not None and upstream_spec.kind == "source":
                    hashes[up] = self.source_hash(up)
                elif up in current:
                    hashes[up] = current[up].data_hash
        return hashes

    def standing(self, store: Any, spec: Any, mat: Any, current: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The verdicts on version ``mat`` that stand with the checks' definitions and the upstream versions it was
        made from (its recipe's; a ``deps=`` upstream as ``current`` has it), in check name order: for a fresh
        version those a run would read from the cache, for a stale one those it was published with. A check
        without one has not judged it as it is defined now."""
        fingerprints = self.all_of(spec, mat.partition, current, mat.upstream)
        return verdicts_under(store, spec.checks, mat.data_hash, fingerprints.values())
