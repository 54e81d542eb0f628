"""Secret configuration values, and masking secrets out of everything assetflow writes.

A configuration field holding a password, token or key is declared with
``assetflow.secret("ENV_VAR")``: a :class:`Secret` that knows the *name* of an
environment variable and reads its value only when the asset asks
(``config.password.value``). Its ``repr``, ``str`` and format are masked; the recipe's
configuration hash, the state store, ``--json`` and every message see only
``secret('ENV_VAR')``. Changing the password therefore does not make anything stale;
renaming the variable does, like any configuration change.

:func:`redact` masks, in any text, every secret value this process has read and the
password of any connection string (``scheme://user:PASSWORD@host``,
``password=PASSWORD``). assetflow applies it to asset tracebacks, error messages, the
command line and code sources it records, and event details before they reach output or
the state store.
"""

from __future__ import annotations

import os
import re

MASK = "***"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_URI_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s'\"]*:)([^@\s'\"/]+)(@)")
_KV_PASSWORD = re.compile(r"\b((?:password|passwd|pwd)\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&'\"\\]+)",
                          re.IGNORECASE)
_MIN_MASKED_LENGTH = 4  # shorter values are masked where they stand in a DSN, not everywhere

_revealed: set[str] = set()


class Secret:
    """A configuration value that is never shown, hashed or stored; only its name is.

    ``Secret("PG_PASSWORD")`` reads ``$PG_PASSWORD`` when ``.value`` is used.
    ``Secret("api_key", value="...")`` holds a value obtained elsewhere (a vault); it is
    still identified, hashed and shown by its name only.
    """

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str | None = None) -> None:
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise ValueError(f"secret({name!r}): the name must be an environment variable name, e.g. 'PG_PASSWORD'.")
        self.name = name
        self._value = value
        if value is not None:
            _register(value)

    @property
    def value(self) -> str:
        """The secret itself; from the environment unless given. Never log it."""
        if self._value is not None:
            return self._value
        found = os.environ.get(self.name)
        if found is None:
            raise KeyError(
                f"Secret {self.name!r} is not set: export {self.name}=... in the environment that "
                f"runs assetflow (and its workers)."
            )
        _register(found)
        return found

    def __repr__(self) -> str:
        return f"secret({self.name!r})"

    def __str__(self) -> str:
        return f"secret({self.name!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("assetflow.Secret", self.name))

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self  # dataclasses.asdict deep-copies config fields; the value must not be touched

    def __reduce__(self) -> tuple[object, ...]:
        # Workers read the environment themselves; an explicit value travels (in memory only).
        return (Secret, (self.name,) if self._value is None else (self.name, self._value))


def secret(name: str) -> Secret:
    """A configuration value read from the environment variable ``name`` when used."""
    return Secret(name)


def _register(value: str) -> None:
    if len(value) >= _MIN_MASKED_LENGTH:
        _revealed.add(value)


def register_secret(value: str) -> None:
    """Mask ``value`` wherever assetflow writes text in this process (e.g. a plugin's password)."""
    _register(value)


def redact(text: str) -> str:
    """``text`` with every known secret value and every connection-string password masked."""
    if not text:
        return text
    for value in sorted(_revealed, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return redact_passwords(text)


def redact_passwords(text: str) -> str:
    """``text`` with the password of every connection string masked; the same in every process.

    Deterministic (it does not depend on which secrets this process has read), so it can
    be applied to what is hashed, such as an asset's configuration.
    """
    if not text.isascii():  # case-insensitive matching reaches beyond ASCII (``ſ`` matches ``s``): scan it all
        return _KV_PASSWORD.sub(rf"\g<1>{MASK}", _URI_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text))
    # Each scan only where it can match: the sources of every asset recorded pass here (~17 us a scan
    # of 400 characters, against ~1 us for these tests).
    if "://" in text:
        text = _URI_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    lowered = text.lower()
    if "pass" in lowered or "pwd" in lowered:
        text = _KV_PASSWORD.sub(rf"\g<1>{MASK}", text)
    return text
