"""The contract every storage backend fulfils, and the lookup of backends by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from assetflow.errors import PluginError

ValueKind = Literal["polars", "arrow", "lazy"]  # "lazy": a polars LazyFrame (see IOBackend.load)
CheckStatus = Literal["ok", "missing", "modified"]


@dataclasses.dataclass(frozen=True)
class StoredData:
    """What a backend reports after committing a value."""

    data_hash: str
    location: str
    rows: int | None
    schema: list[tuple[str, str]]
    bytes: int | None
    token: str = ""  # a cheap change detector (e.g. inode/size/mtime) for later checks


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """Whether stored data is still what was recorded; ``token`` refreshes the recorded one."""

    status: CheckStatus
    token: str = ""
    detail: str = ""  # why, when the data cannot be read at all (e.g. a damaged backend file)


class IOBackend(Protocol):
    """A storage backend. Instances are built per project with its root and options.

    ``format`` enters every recipe key: moving an asset to another format reruns it.
    ``store`` must be atomic: the value becomes visible at ``location`` only once
    fully written (write to a temporary place, flush, then rename or commit).
    """

    name: ClassVar[str]
    format: ClassVar[str]

    def __init__(self, root: Path, options: dict[str, Any]) -> None: ...

    def store(self, asset: str, value: object) -> StoredData:
        """Write ``value`` durably and report its content hash and metadata."""
        ...

    def load(self, asset: str, location: str, kind: ValueKind) -> object:
        """Read the data at ``location`` as a polars DataFrame, an Arrow table or a LazyFrame.

        For ``"lazy"`` a backend that can scan its data returns a polars LazyFrame over it;
        one that cannot may return a DataFrame or an Arrow table, which the caller makes lazy.
        """
        ...

    def check(self, asset: str, location: str, data_hash: str, token: str) -> CheckResult:
        """Cheaply confirm the data is present and unchanged; rehash only if the token moved."""
        ...

    def delete(self, asset: str, location: str) -> None:
        """Remove stored data (garbage collection); missing data is not an error."""
        ...

    # Optional: ``activate(asset, location) -> None`` is called whenever a version becomes
    # the asset's current one (after a run or a restore), before the state records it, e.g.
    # to point a SQL view at it; an exception fails that asset and records nothing.
    # Optional: ``activate_partitions(asset, locations) -> None`` is called after a run with the
    # current versions of a partitioned asset's partitions, in key order, e.g. to switch a SQL
    # view over their union in one statement (docs/partitions.md); a failure fails the asset.
    # Optional: ``local_file(location) -> str`` for backends whose token is exactly the
    # stat token of one local file (see files.stat_token), so the no-op fast path can
    # check it with a stat and no backend import.


class Backends:
    """The project's storage backends, built lazily by name from the plugin hooks."""

    def __init__(self, root: Path, options: dict[str, dict[str, Any]]) -> None:
        self._root = root
        self._options = options
        self._classes: dict[str, type[IOBackend]] | None = None
        self._instances: dict[str, IOBackend] = {}

    def classes(self) -> dict[str, type[IOBackend]]:
        if self._classes is None:
            from assetflow.plugins import plugin_manager

            found: dict[str, type[IOBackend]] = {}
            for batch in plugin_manager().hook.assetflow_io_backends():
                for cls in batch:
                    if cls.name in found and found[cls.name] is not cls:
                        raise PluginError(
                            f"Two plugins provide a storage backend named {cls.name!r}: "
                            f"{found[cls.name].__module__} and {cls.__module__}. Uninstall one."
                        )
                    found[cls.name] = cls
            self._classes = found
        return self._classes

    def activate(self, io: str, asset: str, location: str) -> None:
        """Tell a backend that a version became current, if it cares (see ``IOBackend``)."""
        hook = getattr(self.get(io), "activate", None)
        if hook is not None:
            hook(asset, location)

    def local_file(self, io: str, location: str) -> str | None:
        hook = getattr(self.get(io), "local_file", None)
        return None if hook is None else str(hook(location))

    def get(self, name: str) -> IOBackend:
        backend = self._instances.get(name)
        if backend is None:
            classes = self.classes()
            if name not in classes:
                raise PluginError(
                    f"No storage backend named {name!r}; installed: {', '.join(sorted(classes)) or 'none'}. "
                    f"Install the plugin that provides it, or fix io={name!r}."
                )
            backend = classes[name](self._root, dict(self._options.get(name, {})))
            self._instances[name] = backend
        return backend
