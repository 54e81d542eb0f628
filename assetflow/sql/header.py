"""The options header of a ``.sql`` file: what ``@asset(...)`` options say for a Python asset.

Grammar (the comment lines before the query's first token)::

    header  := { comment }
    comment := "--" text NEWLINE | "/*" text "*/"
    line    := "assetflow:" KEY "=" VALUE { "," KEY "=" VALUE }     inline form, several per line
             | KEY ":" VALUE                                        block form, one per line
             | anything else                                        part of the description

    -- Revenue per day, net of refunds.            <- description
    -- assetflow: io=duckdb, group=marts           <- inline form
    -- tags: tier=gold, domain=sales               <- block form

A line is an option only when KEY is a registered option (see ``OPTIONS``); other text
is the description (blank lines kept as paragraph breaks). Values are text, turned into
what ``sql_asset()`` takes by the option's parser, so a feature that adds an ``@asset``
option (``checks``, partitions, ...) makes it available here with one
``register_option(name, parser)`` call. An inline ``assetflow:`` line holding an
unknown key is an error (it is clearly meant as an option); a bad value is an error
naming the file and line. So is a ``Key: value`` line whose key is an option in another
case or nearly one (``Checks:``, ``check:``, ``grup:``): read as description, its option
would be lost without a word (checks that never run). An ``assetflow:`` or ``checks:``
comment after the query's first token is an error too: only the header is read.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable

from assetflow.errors import SqlDefinitionError

Parser = Callable[[str], object]


@dataclasses.dataclass(frozen=True)
class Header:
    """The options and description read from a ``.sql`` file's leading comments."""

    options: dict[str, object]
    description: str | None


def _text(value: str) -> str:
    return value.strip()


def _name_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _mapping(value: str) -> dict[str, str]:
    """``tier=gold, domain=sales`` (``:`` works as the separator too)."""
    result: dict[str, str] = {}
    for part in _name_list(value):
        key, separator, item = part.partition("=") if "=" in part else part.partition(":")
        if not separator or not key.strip():
            raise ValueError(f"expected key=value pairs separated by commas, got {part!r}")
        result[key.strip()] = item.strip()
    return result


def _integer(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {value.strip()!r}") from None


def _checks(value: str) -> object:
    from assetflow.checks.definitions import parse_checks

    return parse_checks(value)


OPTIONS: dict[str, Parser] = {
    "checks": _checks,
    "io": _text,
    "group": _text,
    "tags": _mapping,
    "description": _text,
    "owners": _name_list,
    "deps": _name_list,
    "freshness": _text,
    "retries": _integer,
    "retry_delay": _text,
    "timeout": _text,
    "pool": _name_list,
    "version": _text,
}
"""Option name -> parser of its text value into the ``sql_asset()`` keyword argument."""


def register_option(name: str, parser: Parser) -> None:
    """Make ``name`` a header option whose text value ``parser`` turns into ``sql_asset(name=...)``.

    The parser raises ``ValueError`` with a short reason for a bad value.
    """
    OPTIONS[name] = parser


_INLINE = re.compile(r"assetflow\s*:\s*(.*)\Z", re.IGNORECASE)
_BLOCK = re.compile(r"([a-z_][a-z0-9_]*)\s*:\s*(.*)\Z")
_KEY_LIKE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)\s*:\s*(.*)\Z")  # a one-word key, in any case


def leading_comments(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each comment line before the first token, markers removed."""
    lines: list[tuple[int, str]] = []
    in_block = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_block:
            body, closed, rest = line.partition("*/")
            lines.append((number, body.strip().lstrip("*").strip()))
            if closed:
                in_block = False
                if rest.strip():
                    break
            continue
        if not line:
            lines.append((number, ""))
        elif line.startswith("--"):
            lines.append((number, line[2:].strip()))
        elif line.startswith("/*"):
            body, closed, rest = line[2:].partition("*/")
            lines.append((number, body.strip()))
            if not closed:
                in_block = True
            elif rest.strip():
                break
        else:
            break
    return lines


def parse_header(text: str, file: str) -> Header:
    """Read the options and the description from the comments a ``.sql`` file starts with."""
    options: dict[str, object] = {}
    description: list[str] = []
    comments = leading_comments(text)
    for number, line in comments:
        inline = _INLINE.match(line)
        if inline:
            for pair in _split_pairs(inline.group(1)):
                key, separator, value = pair.partition("=")
                key = key.strip()
                if not separator or key not in OPTIONS:
                    meant = _meant_option(key)
                    hint = f" Did you mean {meant!r}?" if meant else ""
                    raise SqlDefinitionError(
                        f"{file}:{number}: unknown assetflow option {key!r} in the header.{hint} Known options: "
                        f"{', '.join(sorted(OPTIONS))}. Write `-- assetflow: io=duckdb, group=marts`.",
                        file, number, 0)
                options[key] = _parse_value(key, value, file, number)
            continue
        block = _BLOCK.match(line)
        if block and block.group(1) in OPTIONS:
            options[block.group(1)] = _parse_value(block.group(1), block.group(2), file, number)
            continue
        _refuse_near_option(line, file, number)
        description.append(line)
    _refuse_options_after_header(text, len(comments), file)
    text_description = "\n".join(description).strip()
    if "description" not in options and text_description:
        options["description"] = re.sub(r"\n{3,}", "\n\n", text_description)
    return Header(options, text_description or None)


def _meant_option(key: str) -> str | None:
    """The option ``key`` is probably a misspelling of (``Checks``, ``check``, ``retry-delay``), or None."""
    folded = key.lower().replace("-", "_")
    if folded in OPTIONS:
        return folded
    close = difflib.get_close_matches(folded, list(OPTIONS), n=1, cutoff=0.8)
    return close[0] if close else None


def _refuse_near_option(line: str, file: str, number: int) -> None:
    """A ``Key: value`` line whose key is nearly an option: refused, not kept as description (its option lost)."""
    match = _KEY_LIKE.match(line)
    meant = _meant_option(match.group(1)) if match else None
    if match is None or meant is None:
        return
    lost = "no check would run" if meant == "checks" else f"the option {meant} would be ignored"
    raise SqlDefinitionError(
        f"{file}:{number}: header line `{match.group(1)}: ...` reads like the option `{meant}:`, but options are "
        f"spelled exactly, in lower case; as written it is description text, and {lost}. Did you mean "
        f"`-- {meant}: {match.group(2)}`? If the line is description, reword it so it does not start with "
        f"`{match.group(1)}:`.", file, number, 0)


def _refuse_options_after_header(text: str, header_lines: int, file: str) -> None:
    """An ``assetflow:`` or ``checks:`` comment below the query's first token: only the header is read."""
    for number, raw in enumerate(text.splitlines()[header_lines:], start=header_lines + 1):
        comment = raw.strip()
        match = _KEY_LIKE.match(comment[2:].strip()) if comment.startswith("--") else None
        if match is not None and match.group(1).lower() in ("assetflow", "checks"):
            raise SqlDefinitionError(
                f"{file}:{number}: a `-- {match.group(1)}:` line below the query's first line is not read: options "
                f"and checks go in the header, the comment lines before the query. Move it above the query.",
                file, number, 0)


def _split_pairs(text: str) -> list[str]:
    """``io=duckdb, tags=a=1, b=2`` -> ``["io=duckdb", "tags=a=1, b=2"]``: a comma starts a pair only before ``key=``."""
    pairs: list[str] = []
    for piece in text.split(","):
        key = piece.partition("=")[0].strip()
        if pairs and (key not in OPTIONS or "=" not in piece):
            pairs[-1] += "," + piece
        elif piece.strip():
            pairs.append(piece.strip())
    return pairs


def _parse_value(key: str, value: str, file: str, line: int) -> object:
    try:
        parsed = OPTIONS[key](value)
    except ValueError as exc:
        raise SqlDefinitionError(f"{file}:{line}: header option {key}: {str(exc).rstrip('.')}. Fix the value.", file, line, 0) from None
    if isinstance(parsed, list) and parsed and all(hasattr(p, "where") and dataclasses.is_dataclass(p) for p in parsed):
        parsed = [dataclasses.replace(p, file=file, line=line) for p in parsed]  # checks: where the header says them
    return parsed
