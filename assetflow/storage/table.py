"""The base of storage backends that keep tables: a value becomes an Arrow table and is hashed once.

Every table backend must refuse non-table values with the same clear error and must report
the same data hash for equal content (the canonical Arrow hash of
``assetflow.fingerprint.data``), or restoring and early cutoff would differ between
backends. ``TableBackend.store`` does both, then hands the table and its hash to the
backend's ``store_table``. Plugins reach it as ``assetflow.ext.TableBackend``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from assetflow.contracts import StoredData
from assetflow.errors import StorageError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TableBackend", "require_table"]

_TABLE_TYPES = "a polars DataFrame or LazyFrame, a pyarrow Table, a DuckDB relation or a pandas DataFrame"


class TableBackend:
    """A backend that stores tables. Subclasses implement ``store_table`` (and the rest of ``IOBackend``)."""

    name: ClassVar[str]
    format: ClassVar[str]
    # True when ``load`` returns exactly the table ``store_table`` wrote, for the column types Parquet keeps
    # exactly: a process may then hand that table to the next asset instead of reading it back
    # (``assetflow.execute.handoff``). Off by default: a database may convert types on the way back.
    loads_as_stored: ClassVar[bool] = False

    def store(self, asset: str, value: object) -> StoredData:
        """Turn ``value`` into an Arrow table (or refuse it), hash it, and store it with ``store_table``."""
        return self.store_with_table(asset, value)[0]

    def store_with_table(self, asset: str, value: object) -> tuple[StoredData, pa.Table | None]:
        """``store``, and the Arrow table it stored (None when the value was never held as one): a process
        may hand that table to the next asset instead of loading it (``assetflow.execute.handoff``)."""
        from assetflow.fingerprint.data import table_hash

        table = require_table(asset, value, self.name)
        return self.store_table(asset, table, table_hash(table)), table

    def store_table(self, asset: str, table: pa.Table, data_hash: str) -> StoredData:
        """Write ``table`` (whose canonical hash is ``data_hash``) atomically and report it."""
        raise NotImplementedError(f"{type(self).__name__} must implement store_table")


def require_table(asset: str, value: object, io: str) -> pa.Table:
    """``value`` as an Arrow table (any kind ``storage.values`` accepts), or a ``StorageError``
    that names the asset and says what to do instead. For table backends: never falls back to pickle."""
    from assetflow.storage.values import as_table

    table = as_table(value)
    if table is not None:
        return table
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    hint = (
        'to store another kind of value, choose a format for it explicitly: @asset(io="json") for '
        'JSON-serialisable data (dicts, lists, numbers, strings), or @asset(io="pickle") for any '
        "Python object (trusted projects only: loading a pickle runs code)."
    )
    raise StorageError(
        f"Asset {asset!r} returned a value of type {kind}, but its storage io={io!r} stores tables "
        f"only ({_TABLE_TYPES}); {hint}"
    )
