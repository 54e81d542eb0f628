"""assetflow-example: a storage backend for ``@asset(io="csv")``, in one module.

A complete third-party plugin, to copy when writing your own (see docs/plugins.md):

1. a backend class fulfilling ``assetflow.contracts.IOBackend`` (also ``assetflow.ext.IOBackend``);
2. a ``@hookimpl`` function ``assetflow_io_backends`` returning it;
3. an entry point in the ``assetflow`` group naming this module (pyproject.toml).

Each stored version is ``<root>/csv/<asset>/<data hash>.csv``: content-addressed, so
earlier versions stay addressable and restoring one moves only a pointer.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from assetflow.ext import (
    CheckResult,
    StorageError,
    StoredData,
    TableBackend,
    ValueKind,
    atomic_target,
    confined,
    hookimpl,
    stat_token,
)

if TYPE_CHECKING:  # pyarrow is imported where data moves: loading the plugin (every run) must not pay for it
    import pyarrow as pa

__version__ = "0.1.0"

def read_csv(data: bytes) -> pa.Table:
    import pyarrow.csv as pacsv

    # Empty unquoted fields are nulls, quoted "" is the empty string: both survive the round trip.
    options = pacsv.ConvertOptions(strings_can_be_null=True, quoted_strings_can_be_null=False)
    return pacsv.read_csv(io.BytesIO(data), convert_options=options)


class CsvBackend(TableBackend):
    """CSV files on the local file system, one per stored version."""

    name: ClassVar[str] = "csv"  # what @asset(io="csv") names
    format: ClassVar[str] = "csv"  # enters recipe keys: changing it reruns the assets

    def __init__(self, root: Path, options: dict[str, Any]) -> None:
        # ``root`` is the project's storage root; options come from [tool.assetflow.io.csv].
        self.root = root / str(options.get("folder", "csv"))

    def _path(self, location: str) -> Path:
        return confined(self.root, location)  # never outside the root, even through a symlink

    def local_file(self, location: str) -> Path:
        # Optional: the token is exactly this file's stat token, so a no-op run can
        # check it with one stat, without importing this plugin.
        return self._path(location)

    def store_table(self, asset: str, table: pa.Table, data_hash: str) -> StoredData:
        # TableBackend.store made the value a table (a clear error for any other value) and
        # hashed it with the canonical Arrow hash: equal to Parquet's for equal content.
        import pyarrow.csv as pacsv

        from assetflow.ext import table_hash

        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        data = buffer.getvalue()
        # The hash must describe what ``load`` will return. CSV loses types (a string
        # column of digits reads back as integers), so refuse what does not round-trip.
        back = read_csv(data)
        if table_hash(back) != data_hash:
            changed = [
                f"{name!r} ({table.schema.field(name).type})"
                for name in table.column_names
                if name not in back.column_names or table_hash(table.select([name])) != table_hash(back.select([name]))
            ]
            raise StorageError(
                f"Asset {asset!r} does not survive a CSV round trip unchanged: column(s) "
                f"{', '.join(changed) or '(the header)'} read back differently. Cast them (e.g. to "
                f"int64, float64 or non-numeric strings) or store the asset with io='parquet'."
            )
        location = f"{asset}/{data_hash.split(':', 1)[1]}.csv"
        final = self._path(location)
        with atomic_target(final) as temp:  # write aside, fsync, rename: all or nothing
            temp.write_bytes(data)
        schema = [(field.name, str(field.type)) for field in table.schema]
        return StoredData(data_hash, location, table.num_rows, schema, len(data), token=stat_token(final))

    def load(self, asset: str, location: str, kind: ValueKind) -> object:
        try:
            table = read_csv(self._path(location).read_bytes())
        except FileNotFoundError:
            raise StorageError(f"Stored data of asset {asset!r} is missing: {location}.") from None
        if kind == "arrow":
            return table
        import polars as pl

        return pl.from_arrow(table)

    def check(self, asset: str, location: str, data_hash: str, token: str) -> CheckResult:
        path = self._path(location)
        try:
            current = stat_token(path)  # cheap: no read while the file's stat is unchanged
            if current == token:
                return CheckResult("ok", token)
            data = path.read_bytes()
        except FileNotFoundError:
            return CheckResult("missing")
        import pyarrow as pa

        from assetflow.ext import table_hash

        try:
            intact = table_hash(read_csv(data)) == data_hash
        except pa.ArrowInvalid:  # no longer valid CSV
            intact = False
        return CheckResult("ok" if intact else "modified", current)

    def delete(self, asset: str, location: str) -> None:
        self._path(location).unlink(missing_ok=True)


@hookimpl
def assetflow_io_backends() -> list[type[CsvBackend]]:
    return [CsvBackend]
