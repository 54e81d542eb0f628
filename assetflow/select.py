"""The selection language: which assets a command works on (dbt/Dagster conventions).

Grammar, loosest binding first (``docs/cli.md`` has the user's version)::

    union        := intersection ( ["or"] intersection )*     whitespace or ``or``
    intersection := unary ( ("," | "and") unary )*            a comma or ``and``
    unary        := "not"* primary                            the complement
    primary      := "(" union ")" | term
    term         := [N] "+"? base "+"? [N]                    with upstream / downstream, N levels deep
    base         := name | glob | key ":" value               key: tag, group, io, kind, status

So ``+orders tag:gold,not group:staging`` is ``+orders`` together with the gold-tagged
assets that are not in group ``staging``. Several expressions (command-line arguments)
are a union; ``exclude`` expressions are removed from it; no expression selects all.
Every mistake raises :class:`~assetflow.errors.SelectionError` pointing at the offending
character, and nothing else escapes.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from assetflow.errors import SelectionError

KEYS = ("tag", "group", "io", "kind", "status")
STATES = ("fresh", "stale", "missing", "failed", "overdue", "observed")
KINDS = ("asset", "source")
KEYWORDS = ("and", "or", "not")
MAX_NESTING = 64
MAX_DEPTH_DIGITS = 6
_NAME_CHARS = re.compile(r"[a-z0-9_*?\[\]!-]")
_GLOB_CHARS = frozenset("*?[")
_DELIMITERS = frozenset("(),")

StatusProvider = Callable[[], Mapping[str, Iterable[str]]]
"""Computes, when first needed, every asset's states (e.g. ``{"stale", "overdue"}``) by name."""


class _Spec(Protocol):  # read-only members: frozen dataclasses fulfil it
    @property
    def kind(self) -> str: ...

    @property
    def group(self) -> str | None: ...

    @property
    def tags(self) -> Mapping[str, str]: ...

    @property
    def io(self) -> str | None: ...


class SelectableGraph(Protocol):
    """What selection needs from a graph: specs by name, an order, and walks along the edges."""

    @property
    def specs(self) -> Mapping[str, _Spec]: ...  # read-only here, so a graph may hold a narrower mapping

    @property
    def order(self) -> tuple[str, ...]: ...

    def ancestors(self, names: Iterable[str], depth: int | None = None) -> set[str]: ...

    def descendants(self, names: Iterable[str], depth: int | None = None) -> set[str]: ...


# -- syntax ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Term:
    """One atom: a base selector with optional upstream/downstream closure."""

    key: str | None  # None for a name or glob
    value: str
    up: int | None  # None: not requested; -1: unlimited; else a depth
    down: int | None
    position: int  # where the base starts in the expression
    length: int


@dataclasses.dataclass(frozen=True)
class Not:
    operand: Node


@dataclasses.dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Term | Not | And | Or


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", ",", "and", "or", "not", "word", "end"
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _DELIMITERS:
            tokens.append(_Token(ch, ch, i))
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _DELIMITERS:
                i += 1
            word = text[start:i]
            tokens.append(_Token(word if word in KEYWORDS else "word", word, start))
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.nesting = 0

    def fail(self, message: str, position: int, length: int = 1) -> SelectionError:
        return SelectionError(f"Invalid selection: {message}", self.text, position, length)

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def parse(self) -> Node:
        node = self.union()
        if self.token.kind != "end":
            raise self.fail(f"unexpected {self.token.text!r}", self.token.position, len(self.token.text))
        return node

    def union(self) -> Node:
        operands = [self.intersection()]
        while True:
            if self.token.kind == "or":
                self.index += 1
                self.expect_operand("or")
            elif self.token.kind not in ("word", "not", "("):
                break
            operands.append(self.intersection())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def intersection(self) -> Node:
        operands = [self.unary()]
        while self.token.kind in (",", "and"):
            operator = self.token.text
            self.index += 1
            self.expect_operand(operator)
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def expect_operand(self, after: str) -> None:
        if self.token.kind not in ("word", "not", "("):
            what = "the end" if self.token.kind == "end" else repr(self.token.text)
            raise self.fail(f"expected a selection after {after!r}, found {what}", self.token.position,
                            len(self.token.text))

    def unary(self) -> Node:
        negations = 0
        while self.token.kind == "not":
            negations += 1
            self.index += 1
        if negations:
            self.expect_operand("not")
        node = self.primary()
        return Not(node) if negations % 2 else node  # not not x is x

    def primary(self) -> Node:
        token = self.token
        if token.kind == "(":
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise self.fail(f"parentheses nested deeper than {MAX_NESTING}", token.position)
            self.index += 1
            self.expect_operand("(")
            node = self.union()
            if self.token.kind != ")":
                raise self.fail(f"expected ')' to close the '(' at column {token.position + 1}",
                                self.token.position, len(self.token.text))
            self.index += 1
            self.nesting -= 1
            return node
        if token.kind == "word":
            self.index += 1
            return _term(token.text, token.position, self.fail)
        found = "the end" if token.kind == "end" else repr(token.text)
        raise self.fail(f"expected an asset name, glob or selector, found {found}", token.position, len(token.text))


def _term(word: str, at: int, fail: Callable[..., SelectionError]) -> Term:
    """Split ``2+name+1`` into its depths and base, checking every character."""
    up: int | None = None
    start = 0
    match = re.match(r"(\d*)\+", word)
    if match:
        up = _depth(match[1], at, fail)
        start = match.end()
    end = len(word)
    down: int | None = None
    match = re.search(r"\+(\d*)\Z", word[start:])
    if match:
        down = _depth(match[1], at + start + match.start() + 1, fail)
        end = start + match.start()
    base = word[start:end]
    if not base:
        raise fail("expected an asset name, glob or selector", at + start, max(1, len(word) - start))
    plus = base.find("+")
    if plus >= 0:
        raise fail("'+' belongs before or after a name (+name, name+, 2+name, name+1)", at + start + plus)
    key: str | None = None
    value = base
    value_at = at + start
    if ":" in base:
        key, _, value = base.partition(":")
        value_at += len(key) + 1
        if key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" Did you mean {close[0]}:?" if close else ""
            raise fail(f"unknown selector {key + ':'!r}; use one of {', '.join(k + ':' for k in KEYS)}.{hint}",
                       at + start, len(key) + 1)
        if not value:
            raise fail(f"{key}: needs a value, e.g. {key}:{_EXAMPLE[key]}", value_at)
        allowed = {"status": STATES, "kind": KINDS}.get(key)
        if allowed is not None and value not in allowed:
            raise fail(f"{key}: is one of {', '.join(allowed)}", value_at, len(value))
    else:
        for offset, ch in enumerate(value):
            if not _NAME_CHARS.match(ch):
                hint = " (asset names are lower case)" if ch.isupper() else ""
                raise fail(f"unexpected character {ch!r} in a name or glob{hint}", value_at + offset)
        if value[0].isdigit():
            raise fail("a name starts with a letter or underscore; a depth needs '+' (2+name, name+1)", value_at)
    return Term(key, value, up, down, value_at, len(value))


def _depth(digits: str, at: int, fail: Callable[..., SelectionError]) -> int:
    if not digits:
        return -1
    if len(digits) > MAX_DEPTH_DIGITS:
        raise fail(f"a depth has at most {MAX_DEPTH_DIGITS} digits", at, len(digits))
    return int(digits)


_EXAMPLE = {"tag": "gold", "group": "marts", "io": "duckdb", "kind": "source", "status": "stale"}


def parse(expression: str) -> Node:
    """Parse one selection expression; raises SelectionError with the offending position."""
    if not isinstance(expression, str):
        raise SelectionError(f"Invalid selection: expected a string, got {type(expression).__name__}")
    if not expression.strip():
        raise SelectionError("Invalid selection: the expression is empty", expression, 0)
    return _Parser(expression).parse()


# -- evaluation -----------------------------------------------------------------------------


class _Evaluator:
    def __init__(self, graph: SelectableGraph, expression: str, default_io: str | None,
                 statuses: StatusProvider | None) -> None:
        self.graph = graph
        self.expression = expression
        self.default_io = default_io
        self.statuses = statuses
        self._states: dict[str, set[str]] | None = None

    def evaluate(self, node: Node) -> set[str]:
        if isinstance(node, Term):
            return self.term(node)
        if isinstance(node, Not):
            return set(self.graph.specs) - self.evaluate(node.operand)
        sets = [self.evaluate(operand) for operand in node.operands]
        return set.intersection(*sets) if isinstance(node, And) else set.union(*sets)

    def term(self, term: Term) -> set[str]:
        base = self.base(term)
        result = set(base)
        if term.up is not None:
            result |= self.graph.ancestors(base, None if term.up < 0 else term.up)
        if term.down is not None:
            result |= self.graph.descendants(base, None if term.down < 0 else term.down)
        return result

    def base(self, term: Term) -> set[str]:
        specs = self.graph.specs
        value = term.value
        if term.key in ("tag", "group", "io", "kind"):
            return self.attribute(term)
        if term.key == "status":
            return {n for n, states in self.states(term).items() if value in states}
        if _GLOB_CHARS & set(value):
            try:
                matched = {n for n in specs if fnmatch.fnmatchcase(n, value)}
            except re.error as exc:
                raise SelectionError(f"Invalid selection: bad glob ({exc})", self.expression, term.position,
                                     term.length) from None
            if not matched:
                literal = "".join(ch for ch in value if ch not in "*?[]")
                close = difflib.get_close_matches(literal, list(specs), n=3, cutoff=0.5) if literal else []
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise SelectionError(f"The glob {value!r} matches no asset or source.{hint} Run `assetflow list` "
                                     f"to see all assets.", self.expression, term.position, term.length)
            return matched
        if value not in specs:
            close = difflib.get_close_matches(value, list(specs), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise SelectionError(f"Unknown asset {value!r} selected.{hint} Run `assetflow list` to see all assets.",
                                 self.expression, term.position, term.length)
        return {value}

    def attribute(self, term: Term) -> set[str]:
        """The assets and sources with a tag, group, io or kind. One that none has is a typo, as a glob that
        matches nothing is: a job selecting ``group:mart`` for ``group:marts`` must not pass having done nothing."""
        specs, value = self.graph.specs, term.value
        if term.key == "tag":
            tag, has_value, expected = value.partition("=")
            found = {n for n, s in specs.items() if tag in s.tags and (not has_value or s.tags[tag] == expected)}
            known = sorted({t for s in specs.values() for t in s.tags} |
                           {f"{t}={v}" for s in specs.values() for t, v in s.tags.items()})
        elif term.key == "group":
            found = {n for n, s in specs.items() if s.group == value}
            known = sorted({s.group for s in specs.values() if s.group})
        elif term.key == "io":
            found = {n for n, s in specs.items() if s.kind == "asset" and (s.io or self.default_io) == value}
            known = sorted({s.io or self.default_io or "" for s in specs.values() if s.kind == "asset"} - {""})
        else:
            found = {n for n, s in specs.items() if s.kind == value}
            known = sorted({s.kind for s in specs.values()})
        if found:
            return found
        close = difflib.get_close_matches(value, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(f'{term.key}:{c}' for c in close)}?" if close else ""
        listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "") if known else "none"
        raise SelectionError(f"No asset or source has {term.key}:{value}.{hint} The project's {term.key}s: {listed}.",
                             self.expression, term.position, term.length)

    def states(self, term: Term) -> dict[str, set[str]]:
        if self._states is None:
            if self.statuses is None:
                raise SelectionError("status: needs the project's state, which this command does not read",
                                     self.expression, term.position, term.length)
            self._states = {n: set(s) for n, s in self.statuses().items()}
        return self._states


def select(
    graph: SelectableGraph,
    expressions: Iterable[str] = (),
    exclude: Iterable[str] = (),
    *,
    default_io: str | None = None,
    statuses: StatusProvider | None = None,
) -> list[str]:
    """The selected names in topological order.

    ``expressions`` are unioned (no expression, or only blank ones, selects everything);
    ``exclude`` expressions are removed. ``default_io`` is what ``io:`` matches for assets
    declared without ``io=``; ``statuses`` is called at most once, and only if a ``status:``
    selector is used.
    """
    provider = _memoize(statuses)
    included = [e for e in _as_list(expressions) if e.strip()]
    chosen = set(graph.specs) if not included else set()
    for expression in included:
        chosen |= _Evaluator(graph, expression, default_io, provider).evaluate(parse(expression))
    for expression in (e for e in _as_list(exclude) if e.strip()):
        chosen -= _Evaluator(graph, expression, default_io, provider).evaluate(parse(expression))
    return [n for n in graph.order if n in chosen]


def _as_list(expressions: Iterable[str] | str | None) -> list[str]:
    if expressions is None:
        return []
    if isinstance(expressions, str):
        return [expressions]
    items = list(expressions)
    for item in items:
        if not isinstance(item, str):
            raise SelectionError(f"Invalid selection: expected strings, got {type(item).__name__} {item!r}")
    return items


def _memoize(provider: StatusProvider | None) -> StatusProvider | None:
    if provider is None:
        return None
    cache: list[Mapping[str, Iterable[str]]] = []

    def once() -> Mapping[str, Iterable[str]]:
        if not cache:
            cache.append(provider())
        return cache[0]

    return once
