"""Where the connection string comes from, and keeping its secrets out of every message.

The DSN is read from the option ``dsn`` or from the environment variable named by the
option ``dsn_env`` (default ``ASSETFLOW_POSTGRES_DSN``). It is held in memory only: never
logged, never put in a location, a token or the state store, and masked in every error
message this plugin raises (the password, and the whole DSN should a driver echo it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from assetflow.ext import StorageError

DEFAULT_DSN_ENV = "ASSETFLOW_POSTGRES_DSN"
MASK = "***"
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)


def resolve_dsn(options: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> str:
    """The DSN from the options or the environment; a clear error (with no secret) if none."""
    if options.get("dsn"):
        return str(options["dsn"])
    variable = str(options.get("dsn_env") or DEFAULT_DSN_ENV)
    dsn = environ.get(variable, "")
    if not dsn:
        raise StorageError(
            f"The postgres storage backend has no connection string: the environment variable "
            f"{variable} is not set. Export {variable}=postgresql://USER:PASSWORD@HOST:PORT/DB, or name "
            f"another variable with dsn_env = \"...\" under [tool.assetflow.io.postgres]."
        )
    return dsn


def secrets_of(dsn: str) -> list[str]:
    """The strings that must never appear in output: the DSN itself and its password."""
    found = [dsn]
    try:
        parts = urlsplit(dsn)
        if parts.scheme.startswith("postgres") and parts.password:
            found += [parts.password, unquote(parts.password)]
    except ValueError:
        pass
    for match in _KV_PASSWORD.finditer(dsn):
        value = match.group(2)
        found += [value, value.strip("'")]
    # A password shorter than 3 characters is masked where it stands in a DSN (the patterns
    # below), not everywhere: replacing every "a" in a message would make it unreadable.
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def mask(text: str, dsn: str | None = None) -> str:
    """``text`` with any password (and ``dsn`` itself) replaced by ``***``."""
    if dsn:
        for secret in secrets_of(dsn):
            text = text.replace(secret, MASK)
    text = _URI_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text)
    return _KV_PASSWORD.sub(rf"\g<1>{MASK}", text)


def describe(dsn: str) -> str:
    """A safe description of where a DSN points (host, port, database), for messages."""
    try:
        parts = urlsplit(dsn)
        if parts.scheme.startswith("postgres"):
            host = parts.hostname or "localhost"
            return f"{host}:{parts.port or 5432}{parts.path or '/'}"
    except ValueError:
        pass
    fields = dict(re.findall(r"(host|port|dbname)\s*=\s*(\S+)", dsn))
    return f"{fields.get('host', 'localhost')}:{fields.get('port', '5432')}/{fields.get('dbname', '')}"
