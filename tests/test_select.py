"""The selection language: every form, precedence, errors with a caret, and a fuzz test."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetflow import SelectionError, UnknownAssetError, asset, source
from assetflow.graph import AssetGraph
from assetflow.select import parse, select

raw = source("data/raw.csv", name="raw", group="landing")


@asset(group="staging", tags={"tier": "bronze"})
def clean(raw: object) -> object:
    return raw


@asset(group="staging", io="duckdb")
def clean_orders(raw: object) -> object:
    return raw


@asset(group="marts", tags={"tier": "gold", "pii": "no"})
def doubled(clean: object) -> object:
    return clean


@asset(group="marts", tags={"tier": "gold"})
def total(doubled: object, clean_orders: object) -> object:
    return doubled


@asset(deps=["total"])
def report() -> object:
    return None


GRAPH = AssetGraph({s.name: s for s in (raw, clean, clean_orders, doubled, total, report)})  # type: ignore[misc]
STATES = {"raw": {"observed"}, "clean": {"fresh"}, "clean_orders": {"stale", "overdue"}, "doubled": {"missing"},
          "total": {"stale"}, "report": {"failed"}}


def sel(*expressions: str, exclude: tuple[str, ...] = ()) -> set[str]:
    return set(select(GRAPH, expressions, exclude, default_io="parquet", statuses=lambda: STATES))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("clean", {"clean"}),
        ("clean*", {"clean", "clean_orders"}),
        ("c?ean", {"clean"}),
        ("[cd]*", {"clean", "clean_orders", "doubled"}),
        ("+doubled", {"doubled", "clean", "raw"}),
        ("doubled+", {"doubled", "total", "report"}),
        ("+doubled+", {"raw", "clean", "doubled", "total", "report"}),
        ("1+total", {"total", "doubled", "clean_orders"}),
        ("2+total", {"total", "doubled", "clean_orders", "clean", "raw"}),
        ("raw+1", {"raw", "clean", "clean_orders"}),
        ("tag:tier", {"clean", "doubled", "total"}),
        ("tag:tier=gold", {"doubled", "total"}),
        ("tag:pii=no", {"doubled"}),
        ("group:marts", {"doubled", "total"}),
        ("io:duckdb", {"clean_orders"}),
        ("io:parquet", {"clean", "doubled", "total", "report"}),
        ("kind:source", {"raw"}),
        ("status:stale", {"clean_orders", "total"}),
        ("status:overdue", {"clean_orders"}),
        ("status:failed", {"report"}),
        ("+tag:tier=gold", {"raw", "clean", "clean_orders", "doubled", "total"}),
        # precedence: not > intersection (',' / and) > union (space / or)
        ("clean doubled", {"clean", "doubled"}),
        ("clean or doubled", {"clean", "doubled"}),
        ("group:marts,tag:tier=gold", {"doubled", "total"}),
        ("group:marts and tag:pii", {"doubled"}),
        ("clean group:marts,tag:pii", {"clean", "doubled"}),
        ("(clean group:marts),tag:tier", {"clean", "doubled", "total"}),
        ("not group:marts", {"raw", "clean", "clean_orders", "report"}),
        ("not group:marts,kind:asset", {"clean", "clean_orders", "report"}),
        ("not not clean", {"clean"}),
        ("+total,not kind:source", {"clean", "clean_orders", "doubled", "total"}),
    ],
)
def test_selection_forms(expression: str, expected: set[str]) -> None:
    assert sel(expression) == expected


@pytest.mark.parametrize(("expression", "suggested"), [("claen*", "'clean'"), ("nothing_*", None),
                                                       ("group:marts,totl?", "'total'")])
def test_a_glob_matching_nothing_is_an_error_with_a_suggestion(expression: str, suggested: str | None) -> None:
    """Like an unknown name (exit 2), not an empty selection that silently does nothing."""
    with pytest.raises(SelectionError, match="matches no asset or source") as caught:
        sel(expression)
    message = str(caught.value)
    assert "assetflow list" in message and "^" in message
    assert (suggested in message) if suggested else "Did you mean" not in message


@pytest.mark.parametrize(("expression", "words"), [
    ("group:mart", ["No asset or source has group:mart", "Did you mean group:marts?", "groups: landing, marts, staging"]),
    ("tag:gold", ["No asset or source has tag:gold", "tag:tier"]),
    ("io:duckbd", ["io:duckbd", "ios: "]),
    ("+tag:pii=yes", ["No asset or source has tag:pii=yes", "tag:pii=no"]),
])
def test_a_tag_group_io_or_kind_no_asset_has_is_an_error_with_a_suggestion(expression: str, words: list[str]) -> None:
    """A typo in a selector is a mistake as a glob matching nothing is: `materialize group:mart` said 'Everything
    is fresh: 0 assets' (exit 0), so a job with it passed having done nothing."""
    with pytest.raises(SelectionError) as caught:
        sel(expression)
    message = str(caught.value)
    assert all(w in message for w in words) and "^" in message, message


def test_no_expression_selects_everything_in_topological_order() -> None:
    assert select(GRAPH, []) == list(GRAPH.order)
    assert select(GRAPH, ["  "]) == list(GRAPH.order)


def test_arguments_are_a_union_and_exclude_removes() -> None:
    assert sel("clean", "total") == {"clean", "total"}
    assert sel("+total", exclude=("kind:source", "group:staging")) == {"doubled", "total"}
    assert sel(exclude=("group:marts",)) == {"raw", "clean", "clean_orders", "report"}


def test_status_provider_is_called_lazily_and_once() -> None:
    calls: list[int] = []

    def provider() -> dict[str, set[str]]:
        calls.append(1)
        return STATES

    select(GRAPH, ["+total"], statuses=provider)
    assert calls == []
    select(GRAPH, ["status:stale", "status:fresh"], ["status:missing"], statuses=provider)
    assert calls == [1]


@pytest.mark.parametrize(
    ("expression", "message", "caret"),
    [
        ("clena", "Unknown asset 'clena' selected. Did you mean 'clean'", "^^^^^"),
        ("+dubled+", "Unknown asset 'dubled'", " ^^^^^^"),
        ("grop:marts", "unknown selector 'grop:'", "^^^^^"),
        ("status:old", "status: is one of", "       ^^^"),
        ("clean,", "expected a selection after ','", "      ^"),
        ("(clean total", "expected ')'", "            ^"),
        ("clean )", "unexpected ')'", "      ^"),
        ("a+b", "'+' belongs before or after a name", " ^"),
        ("Clean", "asset names are lower case", "^"),
        ("clean $x", "unexpected character '$'", "      ^"),
        ("tag:", "tag: needs a value", "    ^"),
        ("1clean", "a name starts with a letter", "^"),
        ("not", "expected a selection after 'not'", "   ^"),
    ],
)
def test_errors_point_at_the_offending_character(expression: str, message: str, caret: str) -> None:
    with pytest.raises(SelectionError) as info:
        sel(expression)
    text = str(info.value)
    assert message in text
    lines = text.splitlines()
    assert lines[-2] == "  " + expression
    assert lines[-1] == "  " + caret
    assert info.value.expression == expression
    assert isinstance(info.value, UnknownAssetError)  # callers catching the older type keep working


def test_status_selector_without_state_is_a_selection_error() -> None:
    with pytest.raises(SelectionError, match="status: needs the project's state"):
        select(GRAPH, ["status:stale"])


def test_deep_nesting_is_refused_cleanly() -> None:
    with pytest.raises(SelectionError, match="nested deeper"):
        parse("(" * 500 + "clean" + ")" * 500)
    assert sel("not " * 501 + "clean") == set(GRAPH.specs) - {"clean"}


# -- fuzz -------------------------------------------------------------------------------------

NAMES = sorted(GRAPH.specs)
PIECES = [*NAMES, "+", "1", "2", ",", " ", "(", ")", "and", " or ", "not ", "*", "?", "[", "]", "!", "-",
          ":", "=", "tag:", "group:", "io:", "kind:", "status:", "stale", "gold", "tier", "x", "A", "$", "\t",
          "é", "0" * 8]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join) | st.text(max_size=20))
def test_fuzz_only_selection_error_escapes(expression: str) -> None:
    try:
        result = select(GRAPH, [expression], statuses=lambda: STATES)
    except SelectionError:
        return
    assert set(result) <= set(GRAPH.specs)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NAMES), st.sampled_from(["+{}", "{}+", "+{}+", "1+{}", "{}+2"]))
def test_fuzz_closures_contain_their_asset(name: str, form: str) -> None:
    assert name in select(GRAPH, [form.format(name)])


ATOMS = ["clean", "clean*", "+doubled", "total+", "tag:tier", "group:marts", "kind:source", "status:stale",
         "io:duckdb", "1+total"]


def expressions() -> st.SearchStrategy[tuple[str, set[str]]]:
    """Random expressions rendered with every operator spelling, paired with their meaning by set algebra."""
    universe = set(GRAPH.specs)
    atom = st.sampled_from(ATOMS).map(lambda a: (a, sel(a)))

    def extend(inner: st.SearchStrategy[tuple[str, set[str]]]) -> st.SearchStrategy[tuple[str, set[str]]]:
        union = st.tuples(inner, inner, st.sampled_from([" ", " or "])).map(
            lambda t: (f"({t[0][0]}{t[2]}{t[1][0]})", t[0][1] | t[1][1]))
        inter = st.tuples(inner, inner, st.sampled_from([",", " and ", " , "])).map(
            lambda t: (f"({t[0][0]}{t[2]}{t[1][0]})", t[0][1] & t[1][1]))
        negation = inner.map(lambda t: (f"not {t[0]}", universe - t[1]))
        return union | inter | negation

    return st.recursive(atom, extend, max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(expressions())
def test_fuzz_operators_mean_set_algebra(case: tuple[str, set[str]]) -> None:
    expression, expected = case
    assert sel(expression) == expected


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ATOMS), st.sampled_from(ATOMS), st.sampled_from(ATOMS))
def test_fuzz_precedence_without_parentheses(a: str, b: str, c: str) -> None:
    assert sel(f"{a} {b},{c}") == sel(a) | (sel(b) & sel(c))
    assert sel(f"{a},{b} or {c}") == (sel(a) & sel(b)) | sel(c)
    assert sel(f"not {a},{b}") == (set(GRAPH.specs) - sel(a)) & sel(b)
    assert sel(f"not {a} {b}") == (set(GRAPH.specs) - sel(a)) | sel(b)
