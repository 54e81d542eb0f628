"""Content hashing primitives shared by every fingerprint.

Every hash assetflow stores is built here so that one algorithm, one prefix and one
framing rule hold everywhere: each field is length-prefixed, so ("ab", "c") and
("a", "bc") can never produce the same digest.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import Self

import blake3

ALGORITHM = "blake3"
_LENGTH = struct.Struct("<Q")


class Digest:
    """An incremental, domain-separated, length-prefixed hash.

    The domain names what is being hashed ("recipe", "code", "table"...), so two
    different kinds of object can never share a digest by accident.
    """

    __slots__ = ("_hasher",)

    def __init__(self, domain: str) -> None:
        self._hasher = blake3.blake3()
        self.field(domain)

    def field(self, data: bytes | bytearray | memoryview | str) -> Self:
        """Add one framed field: its length, then its bytes."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self._hasher.update(_LENGTH.pack(len(view)))
        self._hasher.update(view)
        return self

    def field_parts(
        self, parts: Iterable[bytes | bytearray | memoryview], length: int | None = None
    ) -> Self:
        """Add one framed field given as pieces, hashed without joining them.

        Exactly like ``field(b"".join(parts))``, with no copy, so the framing rule holds:
        bulk data (e.g. the chunks of an Arrow column) is preceded by its total length.
        Given ``length``, ``parts`` may be a lazy iterable, each piece hashed as it comes
        (so a computed piece is hashed while still in cache); if the pieces do not add up
        to ``length`` this raises ValueError and the digest must be discarded.
        """
        if length is None:
            views = [memoryview(part).cast("B") for part in parts]
            length = sum(view.nbytes for view in views)
            parts = views
        self._hasher.update(_LENGTH.pack(length))
        hashed = 0
        for part in parts:
            view = memoryview(part).cast("B")
            self._hasher.update(view)
            hashed += view.nbytes
        if hashed != length:
            raise ValueError(f"field_parts was promised {length} bytes but given {hashed}")
        return self

    def fields(self, *items: bytes | str) -> Self:
        """Add each item as one framed field: the same digest as ``field`` on each, in one update.

        A recipe key is about ten short fields; framing them into one buffer halves the cost
        of planning a project whose every asset is current (docs/benchmarks.md).
        """
        framed: list[bytes] = []
        for item in items:
            data = item.encode("utf-8") if isinstance(item, str) else item
            if not isinstance(data, bytes):  # a buffer of another item size: framed by its bytes
                self._hasher.update(b"".join(framed))
                framed.clear()
                self.field(data)
                continue
            framed.append(_LENGTH.pack(len(data)))
            framed.append(data)
        self._hasher.update(b"".join(framed))
        return self

    def hexdigest(self) -> str:
        """The digest with its algorithm prefix, e.g. ``blake3:9f2c...``."""
        return f"{ALGORITHM}:{self._hasher.hexdigest()}"


def hash_fields(domain: str, *items: bytes | str) -> str:
    """Hash a fixed sequence of fields in one call."""
    return Digest(domain).fields(*items).hexdigest()


def code_bytes_digest(data: bytes) -> str:
    """The digest of a code or configuration file's bytes: what the fingerprint, the workers'
    agreement on code and the no-op snapshot compare, so one formula for all of them."""
    return hash_fields("source", data)


def stat_token(path: str | os.PathLike[str]) -> str:
    """A cheap change detector for a file: device, inode, size and mtime in nanoseconds.

    Equal tokens mean the file was not touched, so its last content hash still holds;
    a different token only means "hash it again" (the bytes may well be identical).
    """
    return token_of(os.stat(path))


def token_of(st: os.stat_result) -> str:
    """The stat token of a stat already taken (e.g. before reading the file it vouches for)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


RACY_WINDOW_NS = 2_000_000_000  # coarser than any file system's timestamp granularity


def is_racy(token: str, now_ns: int) -> bool:
    """Whether a file's mtime is too recent to trust its stat token (git's "racy clean").

    A file modified again within the file system's timestamp granularity, at the same
    size, would keep its token; so a token this fresh must not vouch for content later.
    """
    mtime_ns = int(token.rsplit(":", 1)[1])
    return mtime_ns >= now_ns - RACY_WINDOW_NS
