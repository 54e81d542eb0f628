"""Why a source's file cannot be read: the source, the file and, where it can be found, the line.

polars says what is wrong with a malformed CSV but not where: its offset is that of the
chunk it was parsing. When its message names the bad value and column, or says a row has
too many fields, the file is read again with Python's ``csv`` module (only on this error
path) to find the first line that fits, so the user is sent to that line.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from assetflow.declare import SourceSpec
from assetflow.errors import SourceReadError

_BAD_VALUE = re.compile(r"could not parse `(?P<value>.*?)` as dtype `[^`]*` at column '(?P<column>[^']*)'")
_TOO_MANY = "found more fields than defined in 'Schema'"
_HINTS = {
    "csv": "Fix {it}, or tell the reader what to expect in source(...), e.g. schema_overrides={{...}}, "
           "null_values=[...], truncate_ragged_lines=True or infer_schema_length=None.",
    "parquet": "Replace the file with a complete Parquet file.",
}


def source_read_error(spec: SourceSpec, path: Path, root: Path, exc: BaseException) -> SourceReadError:
    """The error to raise when polars cannot read ``path`` of ``spec``: one line, naming everything."""
    relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    text = str(exc).strip()
    reason = text.splitlines()[0].rstrip(".") if text else type(exc).__name__
    line = _csv_line(path, text, spec.read_options) if spec.format == "csv" else None
    where = f"{relative}, line {line}" if line is not None else relative
    hint = _HINTS.get(spec.format, "Fix the file, or the source's format and reader options in source(...).").format(
        it="that line" if line is not None else "the file")
    message = (f"Source `{spec.name}` ({spec.where}) cannot read {where}: {reason} "
               f"({type(exc).__name__}). {hint}")
    return SourceReadError(message, source=spec.name or "", file=relative, line=line)


def _csv_line(path: Path, message: str, options: dict[str, Any]) -> int | None:
    """The line of ``path`` that the polars error ``message`` is about, when it can be found."""
    bad = _BAD_VALUE.search(message)
    if bad is None and _TOO_MANY not in message:
        return None
    if options.get("has_header", True) is False or options.get("skip_rows") or options.get("new_columns"):
        return None  # the header is not the first line: do not guess
    separator = str(options.get("separator", ","))
    quote = options.get("quote_char", '"')
    try:
        with open(path, newline="", encoding=str(options.get("encoding", "utf8")).replace("utf8-lossy", "utf8"),
                  errors="replace") as handle:
            rows = csv.reader(handle, delimiter=separator, quotechar=quote or '"', quoting=csv.QUOTE_MINIMAL
                              if quote else csv.QUOTE_NONE)
            header = next(rows, None)
            if header is None:
                return None
            column = header.index(bad.group("column")) if bad is not None and bad.group("column") in header else None
            if bad is not None and column is None:
                return None
            for row in rows:
                if bad is None and len(row) > len(header):
                    return rows.line_num
                if column is not None and column < len(row) and row[column] == bad.group("value"):  # type: ignore[union-attr]
                    return rows.line_num
    except (OSError, csv.Error, ValueError):
        return None
    return None


_META_PREFIX = "unreadable_source:"  # state meta key prefix: a source's last read failure


def _reader(spec: SourceSpec) -> str:
    import json

    return f"{spec.format}:{json.dumps(spec.read_options, sort_keys=True, default=repr)}"


def remembered_failure(spec: SourceSpec, data_hash: str, message: str) -> tuple[str, str]:
    """The state meta (key, value) that keeps a read failure for ``status`` (see ``recalled_failure``)."""
    import json

    return _META_PREFIX + str(spec.name), json.dumps({"data_hash": data_hash, "reader": _reader(spec), "error": message})


def recalled_failure(spec: SourceSpec, data_hash: str, value: str | None) -> str | None:
    """The remembered failure, if the source still has the same content and reader options (so it still fails)."""
    import json

    if not value:
        return None
    try:
        record = json.loads(value)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("data_hash") != data_hash or record.get("reader") != _reader(spec):
        return None
    error = record.get("error")
    return error if isinstance(error, str) else None


def failure_key(spec: SourceSpec) -> str:
    return _META_PREFIX + str(spec.name)
