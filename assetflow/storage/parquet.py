"""The built-in Parquet backend: one content-addressed file per stored version.

Files live at ``<root>/<asset>/<hash>.parquet``, so every version stays
addressable by its data hash and restoring an earlier one only moves a pointer.
It registers through the same hook a third-party backend would.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from assetflow.contracts import CheckResult, StoredData, ValueKind
from assetflow.errors import StorageError
from assetflow.hashing import token_of
from assetflow.hookspecs import hookimpl
from assetflow.storage.base import refuse_unknown_options
from assetflow.storage.files import (
    atomic_target,
    confined,
    confined_for_write,
    stat_token,
    unlinked,
    write_atomically,
)
from assetflow.storage.table import TableBackend

if TYPE_CHECKING:
    import pyarrow as pa

# Under this many bytes of Arrow data, ``compression = "auto"`` writes snappy rather than zstd: pyarrow's
# zstd costs ~0.3 ms more per file whatever its size (0.87 against 0.56 ms for a 1,000-row table of six
# columns, 27 against 32 KiB), a third of a small asset's storage time, for a few KiB saved.
SMALL_TABLE_BYTES = 1 << 20
# A file smaller than this is read with pyarrow and converted, polars included: below ~1 MiB that beats polars'
# own reader (a 1,000-row file: 0.49 against 0.70 ms; 10,000 rows, 250 KiB: 0.98 against 1.16), above it
# polars' parallel reader wins (2.2 MiB: 7.2 against 6.6 ms).
SMALL_FILE_BYTES = 512 * 1024
# Under "auto", a table of at most this many rows dictionary-encodes its text and bytes columns only: for its
# numbers the dictionary costs most of the write (1,000 rows of six columns: 0.38 against 0.20 ms) and saves a
# few KiB at most (a 17-value integer column of 1,000 rows: 0.7 against 1.0 KiB). With more rows a repetitive
# number column's dictionary is worth its time (20,000 rows: 1.4 against 8.2 KiB), so every column has one.
PLAIN_NUMBERS_ROWS = 4096
_DICTIONARY_TYPES = ("is_string", "is_large_string", "is_string_view", "is_binary", "is_large_binary",
                     "is_binary_view", "is_dictionary")


class ParquetBackend(TableBackend):
    """Parquet files on the local file system (the default backend)."""

    name: ClassVar[str] = "parquet"
    format: ClassVar[str] = "parquet"
    loads_as_stored: ClassVar[bool] = True  # a table read back is the one stored (``execute.handoff``)

    def __init__(self, root: Path, options: dict[str, Any]) -> None:
        refuse_unknown_options("parquet", options, ("path", "compression"))
        self.root = Path(options.get("path", root / "parquet"))
        if not self.root.is_absolute():
            self.root = root / self.root
        self.compression = str(options.get("compression", "auto"))
        self._base: Path | None = None  # the root, resolved on first read
        self._folders: dict[Path, Path] = {}  # each asset's folder, resolved on its first read
        self._checked_folders: dict[str, str] = {}  # location's folder -> that folder resolved (``_token``)

    def _path(self, location: str) -> Path:
        """Where a version is, for reading and checking: every location is resolved (a link out of
        the root is refused), the root and each folder once per backend, as the backend found them first."""
        return confined(self.root, location, self._resolved_root(), self._folders)

    def _path_for_write(self, location: str) -> Path:
        """Where a version is written: checked on every write (no folder cache), the root resolved once."""
        return confined_for_write(self.root, location, self._resolved_root())

    def _resolved_root(self) -> Path:
        if self._base is None:
            self._base = self.root.resolve()
        return self._base

    def local_file(self, location: str) -> str:
        """The version's file as the no-op snapshot stats it: where ``check`` looks (``_token``), as text,
        the form the snapshot keeps (a ``Path`` for each of 10,000 versions cost the end of a run 0.1 s)."""
        return str(self._token(location)[0])

    def store_with_table(self, asset: str, value: object) -> tuple[StoredData, pa.Table | None]:
        """A polars LazyFrame goes through polars' streaming sink (no table is held); any other value as
        every table backend does."""
        if type(value).__name__ == "LazyFrame" and type(value).__module__.startswith("polars"):
            return self._sink(asset, value), None
        return super().store_with_table(asset, value)

    def _sink(self, asset: str, frame: Any) -> StoredData:
        """Stream a LazyFrame to Parquet, then hash the file a column (or row group) at a time: the table is never held
        whole, and its data hash equals the one the collected frame would get (``parquet_file_hash``).

        The location is the hash, known only once the file is written: the sink writes a temporary file
        beside the versions (removed by the next run if this one dies), which then takes the same
        fsync-and-rename path (``atomic_target``, with its failpoints) as every stored value.
        """
        import os
        import tempfile

        import pyarrow.parquet as pq

        from assetflow.fingerprint.data import parquet_file_hash
        from assetflow.storage.files import TEMP_PREFIX

        folder = self._path_for_write(f"{asset}/{TEMP_PREFIX}sink.parquet").parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".parquet", dir=folder)
        os.close(fd)
        staging = Path(name)
        try:
            frame.sink_parquet(staging, compression=self._codec(None))
            data_hash = parquet_file_hash(staging)
            with pq.ParquetFile(staging) as parquet:
                rows, schema = parquet.metadata.num_rows, [(f.name, str(f.type)) for f in parquet.schema_arrow]
            location = f"{asset}/{data_hash.split(':', 1)[1]}.parquet"
            final = self._path_for_write(location)
            with atomic_target(final) as temp:
                os.replace(staging, temp)
        finally:
            staging.unlink(missing_ok=True)
        return StoredData(data_hash=data_hash, location=location, rows=rows, schema=schema,
                          bytes=final.stat().st_size, token=stat_token(final))

    def store_table(self, asset: str, table: pa.Table, data_hash: str) -> StoredData:
        """A small table is encoded in memory and written with one ``write`` (``write_atomically``): pyarrow's
        writer opening a file by its name costs more than encoding a 1,000-row table. A large one is written
        to its file as it is encoded, never held twice."""
        import pyarrow.parquet as pq

        location = f"{asset}/{data_hash.split(':', 1)[1]}.parquet"
        final = self._path_for_write(location)  # a linked file is replaced, a linked folder refused
        size = table.get_total_buffer_size()
        options = {"compression": self._codec(size), "use_dictionary": self._dictionary(table)}
        with _refused_by_parquet(asset, table):
            if size < SMALL_TABLE_BYTES:
                import pyarrow as pa

                encoded = pa.BufferOutputStream()
                pq.write_table(table, encoded, **options)
                written = write_atomically(final, encoded.getvalue())
            else:
                with atomic_target(final) as temp:
                    pq.write_table(table, temp, **options)
                written = os.stat(final)
        return StoredData(
            data_hash=data_hash,
            location=location,
            rows=table.num_rows,
            schema=[(f.name, str(f.type)) for f in table.schema],
            bytes=written.st_size,
            token=token_of(written),
        )

    def _codec(self, size: int | None) -> str:
        """The configured codec; for "auto" (the default), snappy for a small table (``size``: its Arrow bytes),
        zstd for a large one, whose bytes are worth the codec's fixed cost (``SMALL_TABLE_BYTES``), or one of
        unknown size (None: a streamed LazyFrame)."""
        if self.compression != "auto":
            return self.compression
        return "snappy" if size is not None and size < SMALL_TABLE_BYTES else "zstd"

    def _dictionary(self, table: pa.Table) -> bool | list[str]:
        """Which columns are dictionary-encoded: all of them (pyarrow's default), except for a table of few rows
        under "auto", where only its text and bytes columns are (``PLAIN_NUMBERS_ROWS``). An encoding only: the
        file reads back as the same table, and its data hash is the same."""
        if self.compression != "auto" or table.num_rows > PLAIN_NUMBERS_ROWS:
            return True
        import pyarrow.types

        wanted = [getattr(pyarrow.types, name) for name in _DICTIONARY_TYPES]
        return [field.name for field in table.schema if any(is_kind(field.type) for is_kind in wanted)]

    def load(self, asset: str, location: str, kind: ValueKind) -> object:
        path = self._path(location)
        try:
            size = path.stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise StorageError(
                f"Stored data of asset {asset!r} is missing: {path}. Run `assetflow materialize {asset}` to rebuild it."
            ) from None
        if kind == "arrow":
            return _read_table(path, small=size < SMALL_FILE_BYTES)
        import polars as pl

        if kind == "lazy":
            return pl.scan_parquet(path)  # the file is immutable (content-addressed): safe to scan later
        if size < SMALL_FILE_BYTES:
            return pl.from_arrow(_read_table(path, small=True))
        return pl.read_parquet(path)

    def _token(self, location: str) -> tuple[Path | str, str | None]:
        """A version's path and stat token (None: no such file), as ``check`` needs them.

        A plain file in a folder without links (``files.unlinked``) or already resolved costs one
        ``lstat`` and no ``Path``: a full check stats every asset's version, 10,000 of them on
        every tick of a daemon that must assess a large selection, and in every new process.
        """
        plain = self._plain_file(location)
        if plain is not None:
            try:
                st = os.lstat(plain)
            except (FileNotFoundError, NotADirectoryError):  # no such file (a file where its folder should be)
                return plain, None
            if not stat.S_ISLNK(st.st_mode):
                return plain, token_of(st)
        path = self._path(location)  # resolves the folder (refusing one outside the root) and follows a link
        folder = location.rpartition("/")[0]
        resolved = self._folders.get(self._resolved_root() / folder)
        if resolved is not None:
            self._checked_folders[folder] = str(resolved)
        try:
            return path, stat_token(path)
        except FileNotFoundError:
            return path, None

    def _plain_file(self, location: str) -> str | None:
        """``location`` under its folder as already resolved or found without links, as text; None when
        the folder has a link or ``..`` or the name is not a file name: then ``_path`` decides."""
        folder, _, name = location.rpartition("/")
        if name in ("", ".", ".."):
            return None
        known = self._checked_folders.get(folder)
        if known is None:
            known = unlinked(self._resolved_root(), folder)
            if known is None:
                return None
            self._checked_folders[folder] = known
        return f"{known}/{name}"

    def check(self, asset: str, location: str, data_hash: str, token: str) -> CheckResult:
        path, current = self._token(location)
        if current is None:
            return CheckResult("missing")
        if current == token:
            return CheckResult("ok", token)
        try:
            from assetflow.fingerprint.data import table_hash

            actual = table_hash(_read_table(path, small=False))
        except Exception:  # noqa: BLE001 - a truncated or garbled file is simply not intact
            return CheckResult("modified", current)
        return CheckResult("ok" if actual == data_hash else "modified", current)

    def delete(self, asset: str, location: str) -> None:
        self._path_for_write(location).unlink(missing_ok=True)  # a link: only the link goes


def _read_table(path: Path | str, *, small: bool) -> pa.Table:
    """One Parquet file as an Arrow table, through ``ParquetFile`` rather than ``pq.read_table``: for a
    single file the same table, without the dataset layer's ~0.35 ms a read (0.64 against 0.28 ms for a
    1,000-row file), a quarter of a small asset's time when its input comes from another worker. A
    ``small`` file (``SMALL_FILE_BYTES``) is read whole and parsed from memory on this thread; a large
    one is read by pyarrow's threads, never held twice."""
    import pyarrow.parquet as pq

    if not small:
        with pq.ParquetFile(path) as parquet:
            return parquet.read(use_threads=True)
    import pyarrow as pa

    with open(path, "rb") as handle:  # read whole, then parsed from memory (0.16 against 0.33 ms)
        data = handle.read()
    with pq.ParquetFile(pa.py_buffer(data)) as parquet:
        return parquet.read(use_threads=False)


@hookimpl
def assetflow_io_backends() -> list[type[ParquetBackend]]:
    return [ParquetBackend]


@contextmanager
def _refused_by_parquet(asset: str, table: pa.Table) -> Iterator[None]:
    """A table Parquet cannot hold, as the asset's error: which columns, and what to do, not Arrow's traceback.

    The one kind met so far: a value of no type that may not be null, nested in a column, which DuckDB gives an
    empty ``map()`` literal (``map<null, null>``, its keys "null not null")."""
    import pyarrow as pa

    try:
        yield
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        untyped = [f"{f.name} ({f.type})" for f in table.schema if _typeless(f)]
        if untyped:
            raise StorageError(
                f"Parquet cannot store asset {asset!r}: column {', '.join(untyped)} holds values of no type that may "
                f"not be null (an empty map() or list literal has no element type). Cast it to a type, e.g. "
                f"map()::MAP(VARCHAR, INTEGER) in SQL or .cast(...) in polars. ({exc})") from None
        raise StorageError(f"Parquet cannot store asset {asset!r}: {exc}. Cast the columns it names to a type "
                           f"Parquet holds, or store the asset with io=\"pickle\".") from None


def _typeless(field: pa.Field) -> bool:
    """Whether ``field`` or a field nested in it is of the null type and may not be null: what Parquet refuses."""
    import pyarrow as pa

    if pa.types.is_null(field.type) and not field.nullable:
        return True
    return any(_typeless(field.type.field(i)) for i in range(field.type.num_fields))
