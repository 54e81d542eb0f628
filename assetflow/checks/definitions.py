"""Declaring checks: the built-ins passed to ``@asset(checks=[...])`` and ``@check`` functions.

Declarations only describe, like ``@asset``: each records where it was written (file and
line, for every message about it) and what it reads (columns, upstream assets), so the gate
can fuse the built-ins of one asset into one polars ``select`` and key each result by
(check fingerprint, data hash). See docs/checks.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from assetflow.errors import CheckDefinitionError, DefinitionError
from assetflow.names import validate_name
from assetflow.recorder import Recorder

SEVERITIES = ("error", "warn")  # error: blocking (the default); warn: recorded and shown, never blocking


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    """What a ``@check`` function may return instead of a bool: the verdict and what it found.

    ``summary`` is the one line shown after the check's name (``3 orders over the limit``);
    ``findings`` the offending rows or values (JSON-able, shown by ``show`` and the page);
    ``metadata`` any figures worth keeping (``{"max_amount": 812.5}``).
    """

    passed: bool
    summary: str = ""
    findings: Any = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, eq=False)
class Check:
    """One declared check of an asset. Subclasses say what it reads and how it judges."""

    severity: str = "error"
    file: str = "<unknown>"
    line: int = 0

    kind = "check"

    @property
    def name(self) -> str:
        """How the check is shown: ``not_null(id)``."""
        return self.kind

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def blocking(self) -> bool:
        return self.severity == "error"

    def columns(self) -> tuple[str, ...]:
        """The columns of the asset this check reads (a missing one is reported before running)."""
        return ()

    def upstreams(self) -> tuple[str, ...]:
        """Other assets (or sources) whose current value it reads."""
        return ()

    def identity(self) -> tuple[str, ...]:
        """Everything that defines the check, as text: part of its fingerprint."""
        return (self.kind, self.severity)


def _serialized(expression: Any) -> str:
    """The whole expression (its text form may be shortened), for the fingerprint."""
    try:
        return str(expression.meta.serialize(format="json"))
    except Exception:  # noqa: BLE001 - an expression polars cannot serialize (a Python UDF): its text
        return str(expression)


def _readable(text: str) -> str:
    """polars' ``[(col("amount")) >= (dyn int: 0)]`` as ``amount >= 0``."""
    text = re.sub(r'col\("([^"]*)"\)', r"\1", text)
    text = re.sub(r"dyn \w+: ", "", text)
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\(([\w.\"']+)\)", r"\1", text)
    return text


def _caller() -> tuple[str, int]:
    """The file and line of the user code that called the built-in (two frames up)."""
    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back if frame and frame.f_back else None
        return (caller.f_code.co_filename, caller.f_lineno) if caller else ("<unknown>", 0)
    finally:
        del frame


def _severity(value: object, what: str, where: str) -> str:
    if value not in SEVERITIES:
        raise DefinitionError(f"{what} at {where}: severity must be \"error\" (blocking, the default) or \"warn\"; "
                              f"got {value!r}.")
    return str(value)


def _column(value: object, what: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise DefinitionError(f"{what} at {where} needs a column name (a string); got {value!r}.")
    return value


@dataclasses.dataclass(frozen=True, eq=False)
class NotNull(Check):
    column: str = ""
    kind = "not_null"

    @property
    def name(self) -> str:
        return f"not_null({self.column})"

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def identity(self) -> tuple[str, ...]:
        return (*super().identity(), self.column)


@dataclasses.dataclass(frozen=True, eq=False)
class Unique(Check):
    keys: tuple[str, ...] = ()
    kind = "unique"

    @property
    def name(self) -> str:
        return f"unique({', '.join(self.keys)})"

    def columns(self) -> tuple[str, ...]:
        return self.keys

    def identity(self) -> tuple[str, ...]:
        return (*super().identity(), *self.keys)


@dataclasses.dataclass(frozen=True, eq=False)
class AcceptedValues(Check):
    column: str = ""
    values: tuple[Any, ...] = ()
    # Values written as text (a .sql header) take the column's type when judged: 1 is a number in a numeric
    # column and "1" in a text one, as a SQL literal compared with the column would be.
    as_written: bool = False
    kind = "accepted_values"

    @property
    def name(self) -> str:
        return f"accepted_values({self.column})"

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def identity(self) -> tuple[str, ...]:
        typed = ("as written",) if self.as_written else ()  # judged otherwise: verdicts of the text values do not hold
        return (*super().identity(), self.column, repr(sorted(self.values, key=repr)), *typed)


@dataclasses.dataclass(frozen=True, eq=False)
class RowCount(Check):
    min: int | None = None
    max: int | None = None
    kind = "row_count"

    @property
    def name(self) -> str:
        bounds = [f"{k}={v}" for k, v in (("min", self.min), ("max", self.max)) if v is not None]
        return f"row_count({', '.join(bounds)})"

    def identity(self) -> tuple[str, ...]:
        return (*super().identity(), repr(self.min), repr(self.max))


@dataclasses.dataclass(frozen=True, eq=False)
class Expr(Check):
    expression: Any = None  # a polars expression, true for every good row
    label: str | None = None
    kind = "expr"

    @property
    def name(self) -> str:
        return f"expr({self.label or _readable(str(self.expression))})"

    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.expression.meta.root_names()))

    def identity(self) -> tuple[str, ...]:
        return (*super().identity(), _serialized(self.expression), self.label or "")


@dataclasses.dataclass(frozen=True, eq=False)
class Schema(Check):
    dtypes: tuple[tuple[str, Any], ...] = ()  # (column, polars dtype or its name)
    kind = "schema"

    @property
    def name(self) -> str:
        return "schema"

    def identity(self) -> tuple[str, ...]:
        return (*super().identity(), *(f"{c}:{t}" for c, t in self.dtypes))


@dataclasses.dataclass(frozen=True, eq=False)
class Relationship(Check):
    column: str = ""
    to_asset: str = ""
    to_column: str = ""
    kind = "relationship"

    @property
    def name(self) -> str:
        return f"relationship({self.column} -> {self.to_asset}.{self.to_column})"

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def upstreams(self) -> tuple[str, ...]:
        return (self.to_asset,)

    def identity(self) -> tuple[str, ...]:
        return (*super().identity(), self.column, self.to_asset, self.to_column)


@dataclasses.dataclass(frozen=True, eq=False)
class PartitionColumn(Check):
    """``@asset(partition_column="day")``, as a blocking check: a run refuses a new partition's rows outside its
    window before storing them, and this judges the versions made before it was declared, as any check added since.

    Its verdict depends on the partition's window, not only on the data (two keys may share one version's data),
    so its fingerprint names the key and the definition (``keyed``).
    """

    column: str = ""
    kind = "partition_column"
    keyed = True

    @property
    def name(self) -> str:
        return f"partition_column({self.column})"

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def identity(self) -> tuple[str, ...]:
        return (*super().identity(), self.column)


@dataclasses.dataclass(frozen=True, eq=False)
class FunctionCheck(Check):
    """A ``@check`` function: its first parameter (or the one named like the asset) gets the
    asset's value, every other parameter the current value of the upstream it names."""

    fn: Callable[..., object] | None = None
    asset: str = ""
    check_name: str = ""
    value_parameter: str = ""
    parameters: tuple[str, ...] = ()  # upstream parameters, by name
    kind = "function"

    __assetflow_check__ = True

    @property
    def name(self) -> str:
        return self.check_name

    def upstreams(self) -> tuple[str, ...]:
        return self.parameters

    def identity(self) -> tuple[str, ...]:
        return (*super().identity(), self.check_name)  # its code fingerprint is added by checks.standing

    def __call__(self, *args: object, **kwargs: object) -> object:
        assert self.fn is not None
        return self.fn(*args, **kwargs)


# -- the built-ins ----------------------------------------------------------------------


def not_null(column: str, *, severity: str = "error") -> Check:
    """Every row of ``column`` has a value."""
    file, line = _caller()
    where = f"{file}:{line}"
    return NotNull(_severity(severity, "not_null", where), file, line, _column(column, "not_null", where))


def unique(*columns: str, severity: str = "error") -> Check:
    """No two rows share a value of ``columns`` (several columns: the combination)."""
    file, line = _caller()
    where = f"{file}:{line}"
    if not columns:
        raise DefinitionError(f"unique() at {where} needs at least one column, e.g. unique(\"id\").")
    keys = tuple(_column(c, "unique", where) for c in columns)
    return Unique(_severity(severity, "unique", where), file, line, keys)


def accepted_values(column: str, values: Sequence[Any], *, severity: str = "error") -> Check:
    """Every non-null value of ``column`` is one of ``values``."""
    file, line = _caller()
    where = f"{file}:{line}"
    if isinstance(values, str) or not isinstance(values, Sequence | set | frozenset) or not values:
        raise DefinitionError(f"accepted_values({column!r}) at {where} needs a non-empty list of values, "
                              f"e.g. accepted_values(\"status\", [\"paid\", \"refunded\"]); got {values!r}.")
    return AcceptedValues(_severity(severity, "accepted_values", where), file, line,
                          _column(column, "accepted_values", where), tuple(values))


def row_count(min: int | None = None, max: int | None = None, *, severity: str = "error") -> Check:  # noqa: A002 - the words users expect
    """The table has at least ``min`` and at most ``max`` rows."""
    file, line = _caller()
    where = f"{file}:{line}"
    for bound in (min, max):
        if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool) or bound < 0):
            raise DefinitionError(f"row_count at {where}: min and max are non-negative integers; got {bound!r}.")
    if min is None and max is None:
        raise DefinitionError(f"row_count() at {where} needs min=, max= or both, e.g. row_count(min=1).")
    if min is not None and max is not None and min > max:
        raise DefinitionError(f"row_count(min={min}, max={max}) at {where}: min is above max.")
    return RowCount(_severity(severity, "row_count", where), file, line, min, max)


def expr(expression: Any, *, name: str | None = None, severity: str = "error") -> Check:
    """A polars expression true for every good row (``pl.col("amount") >= 0``); null counts as good."""
    file, line = _caller()
    where = f"{file}:{line}"
    if type(expression).__name__ != "Expr" or not hasattr(expression, "meta"):
        raise DefinitionError(f"expr() at {where} needs a polars expression, e.g. expr(pl.col(\"amount\") >= 0); "
                              f"got {expression!r}.")
    return Expr(_severity(severity, "expr", where), file, line, expression, name)


def schema(columns: Mapping[str, Any], *, severity: str = "error") -> Check:
    """These columns exist with these polars types (``{"id": pl.Int64}``); others may exist too."""
    file, line = _caller()
    where = f"{file}:{line}"
    if not isinstance(columns, Mapping) or not columns:
        raise DefinitionError(f"schema() at {where} needs a dict of column -> polars type, e.g. "
                              f"schema({{\"id\": pl.Int64}}); got {columns!r}.")
    dtypes = tuple((_column(c, "schema", where), t) for c, t in columns.items())
    return Schema(_severity(severity, "schema", where), file, line, dtypes)


def relationship(column: str, *, to: str, severity: str = "error") -> Check:
    """Every non-null value of ``column`` is present in ``to`` (``"customers.id"``), an upstream's column."""
    file, line = _caller()
    where = f"{file}:{line}"
    target, _, target_column = to.partition(".") if isinstance(to, str) else ("", "", "")
    if not target or not target_column:
        raise DefinitionError(f"relationship({column!r}) at {where}: to= names an upstream asset's column as "
                              f"\"asset.column\", e.g. to=\"customers.id\"; got {to!r}.")
    validate_name(target, what="Asset named by relationship(to=...)", where=where)
    return Relationship(_severity(severity, "relationship", where), file, line,
                        _column(column, "relationship", where), target, target_column)


# -- @check functions -----------------------------------------------------------------------

_declared: Recorder[FunctionCheck] = Recorder("assetflow_declared_checks")


def recording_checks() -> contextlib.AbstractContextManager[list[FunctionCheck]]:
    """Collect every ``@check`` function declared inside the block (while a project is imported)."""
    return _declared.recording()


def check(fn: Callable[..., object] | None = None, /, *, asset: Any = None, name: str | None = None,
          severity: str = "error") -> Any:
    """Declare a function of an asset's value as a check of that asset.

    ``asset`` is the asset (or its name). The first parameter, or the one named like the
    asset, receives its new value (a polars DataFrame for tables); any other parameter
    names an upstream of the asset and receives that upstream's current value. Return a
    bool or a ``CheckOutcome``. ``severity="warn"`` records a failure without blocking.
    """
    def decorate(func: Callable[..., object]) -> FunctionCheck:
        code = getattr(func, "__code__", None)
        file, line = (code.co_filename, code.co_firstlineno) if code else ("<unknown>", 0)
        where = f"{file}:{line}"
        target = getattr(asset, "name", asset)
        if not isinstance(target, str) or not target:
            raise DefinitionError(f"@check at {where} needs asset=, the asset it checks (its name or the "
                                  f"asset itself), e.g. @check(asset=\"orders\"); got {asset!r}.")
        if code is None:
            raise DefinitionError(f"@check decorates plain functions; got {func!r}.")
        check_name = name or func.__name__
        parameters = list(inspect.signature(func).parameters.values())
        if not parameters or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            raise CheckDefinitionError(
                f"Check {check_name!r} of asset {target!r} at {where} must take the asset's value as a named "
                f"parameter (e.g. def {check_name}({target}): ...), and no *args or **kwargs.",
                check_name, target, file, line)
        names = [p.name for p in parameters]
        value = target if target in names else names[0]
        spec = FunctionCheck(_severity(severity, f"@check {check_name!r}", where), file, line, func, target,
                             check_name, value, tuple(n for n in names if n != value))
        return _declared.note(spec)

    if fn is not None:
        return decorate(fn)
    return decorate


def validate_checks(value: object, asset_name: str, where: str) -> tuple[Check, ...]:
    """``@asset(checks=...)``: a list of built-ins (``not_null("id")``, ...)."""
    if value is None:
        return ()
    items = list(value) if isinstance(value, Sequence | tuple) and not isinstance(value, str) else None
    if items is None or not all(isinstance(c, Check) for c in items):
        raise DefinitionError(f"Asset {asset_name!r} at {where}: checks must be a list of checks, e.g. "
                              f"checks=[not_null(\"id\"), unique(\"id\")]; got {value!r}.")
    return tuple(items)


def attach_checks(specs: Mapping[str, Any], declared: Sequence[FunctionCheck]) -> None:
    """Give each asset its ``@check`` functions, and refuse checks that name what cannot be read.

    Raised here, at load: a check of an unknown asset, a relationship or a check parameter
    naming an asset that is not an upstream of the checked asset.
    """
    seen: set[int] = set()
    for fc in declared:
        if id(fc) in seen:
            continue
        seen.add(id(fc))
        spec = specs.get(fc.asset)
        if spec is None or getattr(spec, "kind", "") != "asset":
            what = "a source (checks judge assets)" if spec is not None else "not a declared asset"
            raise CheckDefinitionError(
                f"Check {fc.name!r} at {fc.where} is declared for asset {fc.asset!r}, which is {what}. "
                f"Fix asset= to name one of the project's assets (`assetflow list`).", fc.name, fc.asset,
                fc.file, fc.line)
        if any(c.name == fc.name for c in spec.checks):
            raise CheckDefinitionError(
                f"Asset {fc.asset!r} has two checks named {fc.name!r} (the second at {fc.where}); rename one "
                f"(@check(name=...)).", fc.name, fc.asset, fc.file, fc.line)
        spec.checks = (*spec.checks, fc)
    for spec in specs.values():
        for chk in getattr(spec, "checks", ()):
            for up in chk.upstreams():
                if up not in spec.inputs:
                    raise CheckDefinitionError(
                        f"Check {chk.name} of asset {spec.name!r} at {chk.where} reads {up!r}, which is not an "
                        f"upstream of {spec.name!r} (its upstreams: {', '.join(spec.inputs) or 'none'}). A check "
                        f"may read only what the asset is built from; add {up!r} to the asset's deps=[...] or "
                        f"parameters, or check it elsewhere.", chk.name, spec.name, chk.file, chk.line)


# -- the SQL header's ``checks:`` option ---------------------------------------------------------

_HEADER_CHECKS = ("not_null(col), unique(col[, col...]), accepted_values(col, a, b, ...), row_count(min=N[, max=M]), "
                  "each with an optional last argument severity=warn")
_SEVERITY = re.compile(r"(?:^|,)\s*severity\s*=\s*([A-Za-z_]*)\s*\Z")  # unquoted, last: a quoted value is a value


def parse_checks(text: str) -> list[Check]:
    """``-- checks: not_null(id), unique(id), row_count(min=1)`` in a ``.sql`` file's header.

    Only the simple built-ins, with plain arguments; the header parser stamps each with the
    header's file and line. Raises ``ValueError`` with the reason for anything else.
    """
    found: list[Check] = []
    for item in _top_level(text):
        match = re.fullmatch(r"([a-z_]+)\s*\((.*)\)", item.strip(), re.DOTALL)
        if match is None or match.group(1) not in ("not_null", "unique", "accepted_values", "row_count"):
            raise ValueError(f"{item.strip()!r} is not one of {_HEADER_CHECKS}; write a @check function for others")
        kind, written_args = match.group(1), match.group(2)
        severity = _SEVERITY.search(written_args)
        if severity is not None:
            written_args = written_args[:severity.start()]
        args, level = _header_arguments(written_args), severity.group(1) if severity else "error"
        try:
            if kind == "row_count":
                bounds = dict(a.replace(" ", "").split("=", 1) for a in args)
                unknown = set(bounds) - {"min", "max"}
                if unknown or not bounds:
                    raise ValueError(f"row_count takes min= and max=, got {match.group(2)!r}")
                low, high = bounds.get("min"), bounds.get("max")
                found.append(row_count(min=None if low is None else int(low), max=None if high is None else int(high),
                                       severity=level))
            elif kind == "not_null" and len(args) == 1:
                found.append(not_null(args[0], severity=level))
            elif kind == "unique" and args:
                found.append(unique(*args, severity=level))
            elif kind == "accepted_values" and len(args) >= 2:
                written = accepted_values(args[0], args[1:], severity=level)
                assert isinstance(written, AcceptedValues)
                found.append(dataclasses.replace(written, as_written=True))
            else:
                raise ValueError(f"{item.strip()!r} has the wrong arguments; expected {_HEADER_CHECKS}")
        except DefinitionError as exc:
            raise ValueError(str(exc).split(": ", 1)[-1]) from None
    return found


def _header_arguments(text: str) -> list[str]:
    """A header check's arguments as written: a quoted one without its quotes, a comma inside it included
    (SQL's '' is a quote); an unquoted one stripped."""
    found: list[str] = []
    for single, double, plain in re.findall(r"\s*(?:'((?:[^']|'')*)'|\"([^\"]*)\"|([^,]+?))\s*(?:,|$)", text):
        found.append(plain.strip() if plain else single.replace("''", "'") if single or not double else double)
    return found


def _top_level(text: str) -> list[str]:
    """Split on the commas outside parentheses."""
    items, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    return [i for i in (*items, current) if i.strip()]
