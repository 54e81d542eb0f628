"""Judging a value: all built-in checks of an asset in one polars pass, then its ``@check`` functions.

Each built-in adds a few aggregate expressions (a count of bad rows, the first bad row,
a handful of examples) to ONE ``select`` over the asset's table, so a table is read once
however many checks it has (bench/bench_checks.py measures this against one plain scan).
Should that select fail (an ``expr`` comparing a string with a number), the checks are
judged one by one so the error lands on the check that caused it. Nothing here touches
state or storage: the gate (assetflow/execute/gate.py) loads values and records verdicts.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from assetflow.checks.definitions import (
    AcceptedValues,
    Check,
    CheckOutcome,
    Expr,
    FunctionCheck,
    NotNull,
    Relationship,
    RowCount,
    Schema,
    Unique,
)
from assetflow.errors import CheckDefinitionError

EXAMPLES = 5  # offending values kept per check, as findings


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What one check said about one value."""

    check: Check
    passed: bool
    summary: str = ""
    findings: Any = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    error: bool = False  # the check could not judge (a missing column, it raised, a bad return value)


def _rows(count: int) -> str:
    return f"{count} row{'s' if count != 1 else ''}"


def _judge_error(check: Check, asset: str, message: str) -> Verdict:
    return Verdict(check, False, message, error=True)


def _missing(check: Check, asset: str, columns: Sequence[str], have: Sequence[str]) -> Verdict | None:
    missing = [c for c in columns if c not in have]
    if not missing:
        return None
    error = CheckDefinitionError(
        f"check {check.name} of asset `{asset}` ({check.where}) names column "
        f"{', '.join(repr(c) for c in missing)}, which `{asset}` does not have (its columns: "
        f"{', '.join(have) or 'none'}). Fix the column name in the check.", check.name, asset, check.file, check.line)
    return _judge_error(check, asset, str(error))


def _orderable(dtype: Any) -> bool:
    """Keys whose order settles uniqueness when strictly monotonic: integers and times (not floats: NaN sorts
    above every number and equals itself, so [1.0, NaN, NaN] looked increasing)."""
    return dtype is not None and (dtype.is_integer() or dtype.is_temporal())


def _unique_pass(i: int, check: Unique, lf: Any) -> dict[str, Any]:
    """The key's distinct count against its rows (nulls left out); the duplicates' details only if any."""
    import polars as pl

    keys = pl.col(check.keys[0]) if len(check.keys) == 1 else pl.struct(list(check.keys))
    known = pl.all_horizontal([pl.col(k).is_not_null() for k in check.keys])
    row = _collect(lf, [known.sum().alias("rows"), keys.filter(known).n_unique().alias("distinct")])
    if row["rows"] == row["distinct"]:
        return {f"c{i}_bad": 0}
    bad = keys.is_duplicated() & known
    return _collect(lf, [bad.sum().alias(f"c{i}_bad"), bad.arg_true().first().alias(f"c{i}_first"),
                         keys.filter(bad).head(EXAMPLES).implode().alias(f"c{i}_examples")])


def _expressions(i: int, check: Check, others: Mapping[str, Any], schema: Mapping[str, Any],
                 details: bool = False) -> list[Any]:
    """The aggregates one built-in adds to the fused select, each named ``c<i>_<what>``.

    The first pass counts bad rows only; ``details`` (a second pass, for the failed checks
    alone) adds the first bad row and a few examples, so data that passes is read once.
    """
    import polars as pl

    def counted(bad: Any, example: Any) -> list[Any]:
        if not details:
            return [bad.sum().alias(f"c{i}_bad")]
        # arg_true().first(), not arg_max(): polars 2.1 rewrites arg_max of a comparison wrongly.
        return [bad.sum().alias(f"c{i}_bad"), bad.arg_true().first().alias(f"c{i}_first"),
                example.filter(bad).head(EXAMPLES).implode().alias(f"c{i}_examples")]

    if isinstance(check, NotNull):
        col = pl.col(check.column)
        first = [col.is_null().arg_true().first().alias(f"c{i}_first")] if details else []
        return [col.null_count().alias(f"c{i}_bad"), *first]
    if isinstance(check, Unique):
        # Hashing every key costs several scans, so the fused pass only asks whether a numeric or temporal
        # key is strictly monotonic (an auto-increment id, a sorted date: unique at the cost of a diff);
        # other keys are settled by _unique_pass afterwards.
        if len(check.keys) == 1 and _orderable(schema.get(check.keys[0])):
            # Each key against the one before it, compared rather than subtracted: a difference wraps around
            # for far-apart Int64 keys and cannot be taken for UInt64 keys above 2**63 (DuckDB's hash()).
            key = pl.col(check.keys[0]).drop_nulls()
            before = key.shift(1)
            return [(key > before).all().alias(f"c{i}_up"), (key < before).all().alias(f"c{i}_down")]
        return []

    if isinstance(check, AcceptedValues):
        col = pl.col(check.column)
        accepted = pl.Series(list(check.values))
        if check.as_written and schema.get(check.column) is not None:  # text from a .sql header: the column's type
            accepted = pl.Series(list(check.values), dtype=pl.String).cast(schema[check.column], strict=False)
        return counted((~col.is_in(accepted.implode())).fill_null(False), col)
    if isinstance(check, RowCount):
        return [pl.len().alias(f"c{i}_len")]
    if isinstance(check, Expr):
        return counted((~check.expression).fill_null(False), pl.int_range(pl.len()))
    if isinstance(check, Relationship):
        col = pl.col(check.column)
        target = others[check.to_asset]
        return counted((~col.is_in(target.implode())).fill_null(False), col)
    raise TypeError(f"not a fusable check: {check!r}")


def _verdict(i: int, check: Check, row: Mapping[str, Any]) -> Verdict:
    if isinstance(check, RowCount):
        count = row[f"c{i}_len"]
        low = check.min is not None and count < check.min
        high = check.max is not None and count > check.max
        summary = (f"{_rows(count)}, fewer than the minimum {check.min}" if low else
                   f"{_rows(count)}, more than the maximum {check.max}" if high else _rows(count))
        return Verdict(check, not (low or high), summary, metadata={"rows": count})
    bad = int(row[f"c{i}_bad"] or 0)
    first = row.get(f"c{i}_first")
    examples = row.get(f"c{i}_examples")
    examples = list(examples) if examples is not None else []
    findings = {"rows": bad, "first_row": first if bad else None}
    if bad == 0:
        return Verdict(check, True, "0 bad rows", findings={"rows": 0})
    where = f"e.g. row {first}"
    if isinstance(check, NotNull):
        summary = f"{bad} null {'row' if bad == 1 else 'rows'}, {where}"
    elif isinstance(check, Unique):
        summary = f"{_rows(bad)} share a value with another, {where} ({_show(examples[:1])})"
    elif isinstance(check, AcceptedValues):
        summary = f"{_rows(bad)} outside the accepted values, {where} ({_show(examples[:1])})"
    elif isinstance(check, Relationship):
        summary = (f"{_rows(bad)} whose {check.column} is not in {check.to_asset}.{check.to_column}, "
                   f"{where} ({_show(examples[:1])})")
    else:  # Expr: the examples are row numbers
        summary = f"{_rows(bad)} where it is false, {where}"
    findings["examples"] = [_json(v) for v in examples]
    return Verdict(check, False, summary, findings=findings)


def _show(values: Sequence[Any]) -> str:
    return ", ".join(repr(_json(v)) for v in values)


def _json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    return str(value)


def _schema_verdict(check: Schema, schema: Mapping[str, Any]) -> Verdict:
    problems = []
    for column, expected in check.dtypes:
        actual = schema.get(column)
        if actual is None:
            problems.append(f"column {column!r} is missing")
        elif not _same_type(actual, expected):
            problems.append(f"column {column!r} is {actual}, expected {expected}")
    if problems:
        return Verdict(check, False, "; ".join(problems), findings={"problems": problems})
    return Verdict(check, True, f"{len(check.dtypes)} columns as declared")


def _same_type(actual: Any, expected: Any) -> bool:
    if isinstance(expected, str):
        return str(actual) == expected or type(actual).__name__ == expected
    try:
        return bool(actual == expected)
    except Exception:  # noqa: BLE001 - a type that cannot be compared is not the declared one
        return False


def run_builtins(checks: Sequence[Check], table: Any, asset: str, others: Mapping[str, Any]) -> list[Verdict]:
    """Judge every built-in over ``table`` (a polars LazyFrame) in one ``select``.

    ``others`` maps each relationship's target asset to the target column's values (a Series).
    """
    import polars as pl

    if not checks:
        return []
    if not isinstance(table, pl.LazyFrame | pl.DataFrame):
        return [_judge_error(c, asset, f"check {c.name} of asset `{asset}` ({c.where}) needs a table, but `{asset}` "
                                       f"is a {type(table).__name__}; use a @check function for other values.")
                for c in checks]
    lf = table.lazy()
    schema = dict(lf.collect_schema())
    verdicts: dict[int, Verdict] = {}
    fused: list[tuple[int, Check]] = []
    for i, chk in enumerate(checks):
        if isinstance(chk, Schema):
            verdicts[i] = _schema_verdict(chk, schema)
            continue
        missing = _missing(chk, asset, chk.columns(), list(schema))
        if missing is None and isinstance(chk, Relationship):
            target = others.get(chk.to_asset)
            if target is None:
                missing = _judge_error(chk, asset, f"check {chk.name} of asset `{asset}` ({chk.where}): "
                                                   f"`{chk.to_asset}` has no column {chk.to_column!r} (or no current "
                                                   f"version). Fix to=\"asset.column\".")
        if missing is not None:
            verdicts[i] = missing
        else:
            fused.append((i, chk))
    if fused:
        try:
            row = _collect(lf, [e for i, c in fused for e in _expressions(i, c, others, schema)])
            row = {**row, **_details(fused, row, lf, others, schema)}
            for i, chk in fused:
                verdicts[i] = _verdict(i, chk, _settled(i, chk, row, lf))
        except Exception:  # noqa: BLE001 - one bad check (an expr over the wrong type): judge each alone
            for i, chk in fused:
                try:
                    alone = _collect(lf, _expressions(i, chk, others, schema, details=True) or [pl.len().alias("_")])
                    verdicts[i] = _verdict(i, chk, _settled(i, chk, alone, lf))
                except Exception as exc:  # noqa: BLE001 - this check cannot run on this data
                    verdicts[i] = _judge_error(chk, asset, f"check {chk.name} of asset `{asset}` ({chk.where}) "
                                                           f"could not run: {type(exc).__name__}: {exc}")
    return [verdicts[i] for i in range(len(checks))]


def _details(fused: list[tuple[int, Check]], row: Mapping[str, Any], lf: Any, others: Mapping[str, Any],
             schema: Mapping[str, Any]) -> dict[str, Any]:
    """The first bad row and examples of every check the counting pass found failing, in one more pass."""
    failing = [(i, c) for i, c in fused if not isinstance(c, Unique | RowCount) and row.get(f"c{i}_bad")]
    if not failing:
        return {}
    return _collect(lf, [e for i, c in failing for e in _expressions(i, c, others, schema, details=True)])


def _settled(i: int, chk: Check, row: dict[str, Any], lf: Any) -> dict[str, Any]:
    """The fused pass's row, completed for a unique check it could not settle (a key not monotonic)."""
    if isinstance(chk, Unique) and not (row.get(f"c{i}_up") or row.get(f"c{i}_down")):
        return {**row, **_unique_pass(i, chk, lf)}
    if isinstance(chk, Unique):
        return {**row, f"c{i}_bad": 0}
    return row


def _collect(lf: Any, expressions: list[Any]) -> dict[str, Any]:
    return lf.select(expressions).collect().row(0, named=True)  # type: ignore[no-any-return]


def run_function(check: FunctionCheck, value: Any, upstreams: Mapping[str, Any], asset: str) -> Verdict:
    """Call a ``@check`` function; whatever it raises or returns amiss is its failed verdict, not a crash."""
    assert check.fn is not None
    kwargs = {check.value_parameter: value, **{p: upstreams[p] for p in check.parameters}}
    try:
        returned = check.fn(**kwargs)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the check's failure is its verdict
        return Verdict(check, False, f"check {check.name} of asset `{asset}` ({check.where}) raised "
                                     f"{type(exc).__name__}: {exc}", findings={"traceback": _traceback(exc)},
                       error=True)
    if isinstance(returned, CheckOutcome):
        return Verdict(check, bool(returned.passed), returned.summary or ("passed" if returned.passed else "failed"),
                       _json_deep(returned.findings), {k: _json_deep(v) for k, v in dict(returned.metadata).items()})
    if type(returned).__name__ in ("bool", "bool_", "bool8"):
        return Verdict(check, bool(returned), "passed" if returned else "returned False")
    error = CheckDefinitionError(
        f"check {check.name} of asset `{asset}` ({check.where}) returned {type(returned).__name__} "
        f"{_short(returned)}; a check returns True, False or CheckOutcome(passed=..., summary=..., findings=...).",
        check.name, asset, check.file, check.line)
    return Verdict(check, False, str(error), error=True)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_deep(value: Any) -> Any:
    """Findings and metadata as JSON: tables become lists of rows (at most 100), the rest plain values."""
    to_dicts = getattr(value, "to_dicts", None)
    if callable(to_dicts):
        head = getattr(value, "head", None)
        value = to_dicts() if head is None else head(100).to_dicts()
    if isinstance(value, Mapping):
        return {str(k): _json_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_deep(v) for v in value]
    return _json(value)


def _traceback(exc: BaseException) -> str:
    """The check's own frames, without this module's."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))
