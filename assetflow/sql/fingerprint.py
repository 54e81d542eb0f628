"""A SQL asset's code fingerprint: the hash of its canonical query (see ``assetflow.sql.parse``).

Formatting, comments, keyword case and reorderings that cannot change the result leave
it alone; any other edit changes it. The canonical text is kept in ``sources`` so the
state store holds it and ``why`` shows a diff of it. ``$parameters`` are not in it:
their values are the asset's configuration (``SqlParams``), compared on their own.
"""

from __future__ import annotations

from assetflow.fingerprint.code import CodeFingerprint
from assetflow.hashing import Digest, hash_fields
from assetflow.sql.spec import SqlAssetSpec

SQL_KEY_PREFIX = "sql:"


def source_key(spec: SqlAssetSpec) -> str:
    """``sql:models/marts/daily_revenue.sql#daily_revenue``: where the query is, and whose it is."""
    return f"{SQL_KEY_PREFIX}{spec.file}#{spec.name}"


def fingerprint_sql(spec: SqlAssetSpec) -> CodeFingerprint:
    """The fingerprint of a resolved SQL asset (``version=`` replaces the query's hash, as for Python)."""
    import sqlglot

    key = source_key(spec)
    libraries = {"sqlglot": sqlglot.__version__}
    if spec.version is not None:
        return CodeFingerprint(hash_fields("code-version", spec.version), {key: spec.canonical}, libraries)
    digest = Digest("code").field(key.rpartition("#")[2]).field("sql").field(spec.canonical)
    return CodeFingerprint(digest.hexdigest(), {key: spec.canonical}, libraries)
