"""Selecting assets: names, globs, ``+name`` / ``name+`` with depth, ``tag:``, ``group:``.

Several expressions are a union; ``--exclude`` removes. (The full set algebra comes
with the inspection commands.)
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from assetflow.errors import UnknownAssetError
from assetflow.graph import AssetGraph

_TERM = re.compile(r"^(?P<up>\d*\+)?(?P<body>[^+]+?)(?P<down>\+\d*)?$")


def _depth(mark: str | None) -> int | None:
    digits = (mark or "").strip("+")
    return int(digits) if digits else None


def _base(graph: AssetGraph, body: str) -> set[str]:
    if ":" in body:
        key, _, value = body.partition(":")
        if key == "tag":
            tag, _, expected = value.partition("=")
            return {n for n, s in graph.specs.items() if tag in s.tags and (not expected or s.tags[tag] == expected)}
        if key == "group":
            return {n for n, s in graph.specs.items() if s.group == value}
        raise UnknownAssetError(f"Unknown selector {key!r} in {body!r}; use tag:NAME or group:NAME.")
    if any(ch in body for ch in "*?["):
        return set(fnmatch.filter(graph.specs, body))
    if body not in graph:
        import difflib

        close = difflib.get_close_matches(body, list(graph.specs), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownAssetError(f"Unknown asset {body!r} selected.{hint} Run `assetflow list` to see all assets.")
    return {body}


def select(graph: AssetGraph, expressions: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """The selected names in topological order; no expression selects everything."""
    expressions = [e for expr in expressions for e in expr.split()]
    chosen = set(graph.specs) if not expressions else set()
    for expression in expressions:
        chosen |= _term(graph, expression)
    for expression in (e for expr in exclude for e in expr.split()):
        chosen -= _term(graph, expression)
    return [n for n in graph.order if n in chosen]


def _term(graph: AssetGraph, expression: str) -> set[str]:
    match = _TERM.match(expression)
    if match is None:
        raise UnknownAssetError(f"Cannot parse selection {expression!r}; e.g. name, +name, name+, tag:x, group:x.")
    base = _base(graph, match["body"])
    result = set(base)
    if match["up"]:
        result |= graph.ancestors(base, _depth(match["up"]))
    if match["down"]:
        result |= graph.descendants(base, _depth(match["down"]))
    return result
