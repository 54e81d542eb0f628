"""Opt-in formats for values that are not tables: ``io="json"`` and ``io="pickle"``.

Table backends (Parquet, DuckDB, ...) store tables only, and assetflow never falls back
to pickle on its own: an asset that returns a dict, a list or a model object to a table
backend fails with an error that names it and suggests one of these formats, which the
asset then chooses explicitly:

* ``@asset(io="json")``: JSON-serialisable values (dict with string keys, list, tuple,
  str, int, finite float, bool, None). Stored as canonical JSON (sorted keys, no
  whitespace); the data hash is the hash of that canonical text, so equal values give
  equal hashes in every process, and reformatting the file does not count as a change.
  A tuple comes back as a list.
* ``@asset(io="pickle")``: any picklable Python object. **Loading a pickle executes code
  chosen by whoever wrote the file**: use it only in projects whose storage folder you
  trust as much as the project's own code. The data hash is the hash of the pickle
  bytes; a value can pickle differently in two processes (e.g. a set of strings, whose
  order follows the hash seed), which costs an extra downstream run, never a wrong one.

Files are content-addressed like Parquet's: ``<root>/<format>/<asset>/<hash>.<ext>``
(option ``path`` moves the folder), written atomically, and always resolved inside
their folder. A downstream asset receives the loaded Python value.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any, ClassVar

from assetflow.contracts import CheckResult, StoredData, ValueKind
from assetflow.errors import StorageError
from assetflow.hashing import hash_fields, token_of
from assetflow.hookspecs import hookimpl
from assetflow.storage.base import refuse_unknown_options
from assetflow.storage.files import confined, confined_for_write, stat_token, write_atomically

__all__ = ["JsonBackend", "PickleBackend"]

PICKLE_PROTOCOL = 5  # pinned: a newer default protocol would change every pickle's hash


class _FileFormat:
    """A content-addressed file per stored version, like the Parquet backend."""

    name: ClassVar[str]
    format: ClassVar[str]
    extension: ClassVar[str]

    def __init__(self, root: Path, options: dict[str, Any]) -> None:
        refuse_unknown_options(self.name, options, ("path",))
        folder = Path(str(options.get("path", self.name))).expanduser()
        self.root = folder if folder.is_absolute() else root / folder

    def _encode(self, asset: str, value: object) -> tuple[bytes, str]:
        """The bytes to write and the data hash of ``value``."""
        raise NotImplementedError

    def _decode(self, data: bytes) -> object:
        raise NotImplementedError

    def _rehash(self, data: bytes) -> str:
        """The data hash of stored bytes, for ``check`` when the file's stat moved."""
        raise NotImplementedError

    def _path(self, location: str) -> Path:
        return confined(self.root, location)

    def local_file(self, location: str) -> Path:
        """The file whose stat token is this version's token (lets the no-op fast path skip us)."""
        return self._path(location)

    def store(self, asset: str, value: object) -> StoredData:
        data, data_hash = self._encode(asset, value)
        location = f"{asset}/{data_hash.split(':', 1)[1]}.{self.extension}"
        final = confined_for_write(self.root, location)  # a linked file is replaced, a linked folder refused
        written = write_atomically(final, data)
        return StoredData(data_hash, location, rows=None, schema=[], bytes=len(data), token=token_of(written))

    def load(self, asset: str, location: str, kind: ValueKind) -> object:
        path = self._path(location)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StorageError(
                f"Stored data of asset {asset!r} is missing: {path}. Run `assetflow materialize {asset}` to rebuild it."
            ) from None
        return self._decode(data)

    def check(self, asset: str, location: str, data_hash: str, token: str) -> CheckResult:
        path = self._path(location)
        try:
            current = stat_token(path)
            if current == token:
                return CheckResult("ok", token)
            data = path.read_bytes()
        except FileNotFoundError:
            return CheckResult("missing")
        try:
            actual = self._rehash(data)
        except ValueError:  # not JSON any more, e.g. truncated
            return CheckResult("modified", current)
        return CheckResult("ok" if actual == data_hash else "modified", current)

    def delete(self, asset: str, location: str) -> None:
        confined_for_write(self.root, location).unlink(missing_ok=True)  # a link: only the link goes


class JsonBackend(_FileFormat):
    """JSON-serialisable values as canonical JSON files (opt-in: ``@asset(io="json")``)."""

    name: ClassVar[str] = "json"
    format: ClassVar[str] = "json"
    extension: ClassVar[str] = "json"

    def _encode(self, asset: str, value: object) -> tuple[bytes, str]:
        problem = _json_problem(value, "value", set())
        if problem is not None:
            raise StorageError(
                f"Asset {asset!r} uses io='json', but {problem}. JSON stores dicts with string keys, "
                f"lists, tuples (loaded back as lists), strings, integers, finite floats, booleans and "
                f'None. Convert the value, or use @asset(io="pickle") for arbitrary objects (trusted '
                f"projects only)."
            )
        text = _canonical_json(value)
        return text + b"\n", hash_fields("json/1", text)

    def _decode(self, data: bytes) -> object:
        return json.loads(data)

    def _rehash(self, data: bytes) -> str:
        return hash_fields("json/1", _canonical_json(json.loads(data)))


def _canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _json_problem(value: object, where: str, seen: set[int]) -> str | None:
    """Why ``value`` would not come back from JSON as itself, naming the place; None if it would."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value!r}, which JSON cannot represent"
    if isinstance(value, dict | list | tuple):
        if id(value) in seen:
            return f"{where} contains itself (a reference cycle)"
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        return f"{where} has the key {key!r} of type {type(key).__name__} (JSON keys are strings)"
                    found = _json_problem(item, f"{where}[{key!r}]", seen)
                    if found is not None:
                        return found
            else:
                for index, item in enumerate(value):
                    found = _json_problem(item, f"{where}[{index}]", seen)
                    if found is not None:
                        return found
        finally:
            seen.discard(id(value))
        return None
    return f"{where} is of type {type(value).__module__}.{type(value).__qualname__}"


class PickleBackend(_FileFormat):
    """Any picklable value (opt-in: ``@asset(io="pickle")``).

    Warning: loading a pickle executes code chosen by whoever wrote the file. Use this
    backend only where the storage folder is as trusted as the project's own code.
    """

    name: ClassVar[str] = "pickle"
    format: ClassVar[str] = "pickle"
    extension: ClassVar[str] = "pkl"

    def _encode(self, asset: str, value: object) -> tuple[bytes, str]:
        try:
            data = pickle.dumps(value, protocol=PICKLE_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - pickling fails in many ways (TypeError, PicklingError, ...)
            raise StorageError(
                f"Asset {asset!r} uses io='pickle', but its value of type "
                f"{type(value).__module__}.{type(value).__qualname__} cannot be pickled: {exc}. "
                f"Return plain data (or a table for the default backend)."
            ) from None
        return data, self._rehash(data)

    def _decode(self, data: bytes) -> object:
        return pickle.loads(data)  # noqa: S301 - the documented, opt-in risk of io="pickle"

    def _rehash(self, data: bytes) -> str:
        return hash_fields("pickle/1", data)  # never unpickles: checking must not run code


@hookimpl
def assetflow_io_backends() -> list[type[_FileFormat]]:
    return [JsonBackend, PickleBackend]
