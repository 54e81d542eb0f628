"""The project's storage backends: built lazily by name, one instance per backend.

The contract a backend fulfils is ``assetflow.contracts.IOBackend``; the registry that
finds a backend class by name is ``assetflow.plugins``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from assetflow.contracts import IOBackend
from assetflow.errors import StorageError

__all__ = ["Backends", "refuse_unknown_options"]


def refuse_unknown_options(backend: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """A backend's options must be ones it takes: a misspelt one (``compresion``) is refused, not ignored."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise StorageError(
            f"[tool.assetflow.io.{backend}] has unknown option(s) {', '.join(map(repr, unknown))}; "
            f"the {backend} backend takes: {', '.join(allowed)}."
        )


class Backends:
    """The project's storage backends, built lazily by name from the plugin hooks."""

    def __init__(self, root: Path, options: dict[str, dict[str, Any]]) -> None:
        self._root = root
        self._options = options
        self._classes: dict[str, type[IOBackend]] | None = None
        self._instances: dict[str, IOBackend] = {}
        self._lock = threading.Lock()

    def classes(self) -> dict[str, type[IOBackend]]:
        if self._classes is None:
            from assetflow.plugins import backend_classes  # lazily: the no-op fast path loads no plugin

            self._classes = backend_classes()
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
            with self._lock:  # one instance a name, also when tasks in threads ask at once
                backend = self._instances.get(name)
                if backend is None:
                    from assetflow.plugins import find

                    cls: type[IOBackend] = find("backend", name, self.classes())
                    backend = cls(self._root, dict(self._options.get(name, {})))
                    self._instances[name] = backend
        return backend
