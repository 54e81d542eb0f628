"""Several upstream partitions handed to one parameter: concatenated in key order, or a dict by key.

A parameter annotated as a ``dict`` receives ``{key: value}``; otherwise tables are
concatenated (columns matched by name: polars ``diagonal_relaxed``, Arrow with permissive type promotion), an empty list of
partitions giving an empty frame.
"""

from __future__ import annotations

import datetime
from typing import Any

from assetflow.declare import AssetSpec, annotation_of
from assetflow.errors import MaterializationError


def wants_dict(spec: AssetSpec, parameter: str) -> bool:
    annotation = annotation_of(spec.fn, parameter)
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("dict", "Dict", "typing.Dict", "Mapping", "typing.Mapping", "collections.abc.Mapping")) \
        or annotation is dict


def combine(spec: AssetSpec, parameter: str, values: dict[str, object]) -> object:
    if wants_dict(spec, parameter):
        return values
    items = list(values.values())
    if not items:
        import polars as pl

        return pl.DataFrame()
    if len(items) == 1:
        return items[0]
    first = items[0]
    try:
        import polars as pl

        if isinstance(first, pl.DataFrame):
            return pl.concat(items, how="diagonal_relaxed")  # type: ignore[arg-type]  # columns matched by name
        import pyarrow as pa

        if isinstance(first, pa.Table):
            return concat_arrow(values)
    except Exception as exc:  # noqa: BLE001 - schemas that cannot be stacked: say which asset and what to do
        raise MaterializationError(
            f"Asset {spec.name!r} reads {len(items)} partitions of {parameter!r}, whose schemas cannot be concatenated "
            f"({exc}). Annotate the parameter as a dict ({parameter}: dict) to receive them by key.", spec.name) from exc
    return items


def concat_arrow(tables: dict[str, Any]) -> Any:
    """Arrow tables (by key, in key order) stacked as polars ``diagonal_relaxed`` stacks frames: columns matched by
    name, a missing one null, types widened where Arrow can (int64 and double: double). Raises a ``TypeError``
    naming the column and the two partitions whose types cannot be, instead of Arrow's 'Unable to merge'."""
    import pyarrow as pa

    try:
        return pa.concat_tables(list(tables.values()), promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise TypeError(_type_clash(tables) or str(exc)) from exc


def _type_clash(tables: dict[str, Any]) -> str | None:
    """The first column whose types in two partitions no type holds both: ``column 'n' is int64 in partition ...``."""
    import pyarrow as pa

    seen: dict[str, tuple[str, Any]] = {}
    for key, table in tables.items():
        for field in table.schema:
            first_key, first = seen.setdefault(field.name, (key, field))
            try:
                pa.unify_schemas([pa.schema([first]), pa.schema([field])], promote_options="permissive")
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                return f"column {field.name!r} is {first.type} in partition {first_key!r} and {field.type} in {key!r}"
    return None


def check_partition_column(spec: AssetSpec, key: str, value: object) -> None:
    """Refuse rows whose declared partition column contradicts the partition computed.

    A time partition accepts dates and datetimes inside its window (and its key as text);
    any other accepts exactly its key.
    """
    frame = _as_frame(value)
    if frame is not None and spec.partition_column not in frame.columns:
        raise MaterializationError(
            f"Asset {spec.name!r} declares partition_column={spec.partition_column!r}, but partition {key!r} returned "
            f"no such column (columns: {', '.join(frame.columns) or 'none'}). Return it, or fix partition_column.",
            spec.name)
    problem = partition_column_problem(spec, key, frame)
    if problem is not None:
        raise MaterializationError(
            f"Asset {spec.name!r}, partition {key!r}: {problem}. Filter the rows to the partition's key (the "
            f"`partition` parameter gives its key and window), or fix partition_column.", spec.name)


def _as_frame(value: object) -> Any:
    """``value`` as a polars DataFrame, or None when it is no table."""
    import polars as pl

    if isinstance(value, pl.DataFrame):
        return value
    try:
        return pl.from_arrow(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def partition_column_problem(spec: AssetSpec, key: str, value: object) -> str | None:
    """What contradicts the partition in ``value``'s partition column (``3 row(s) have day=...``), or None.

    Also the verdict of the ``partition_column`` check on a version stored before it was declared.
    """
    import polars as pl

    from assetflow.partitions.run import partition_of

    column = spec.partition_column
    assert column is not None
    frame = _as_frame(value)
    if frame is None:
        return None  # not a table: the backend says what it cannot store
    if column not in frame.columns:
        return f"no column {column!r} (columns: {', '.join(frame.columns) or 'none'}), which partition_column names"
    part = partition_of(spec, key)
    series = frame.get_column(column)
    if series.dtype in (pl.Date, pl.Datetime) and getattr(part, "start", None) is not None:
        start, end = part.start, part.end  # type: ignore[attr-defined]
        if series.dtype == pl.Date:
            bad = series.filter((series < start.date()) | (series >= end.date()))
        else:
            if series.dtype.time_zone:  # type: ignore[attr-defined]
                # An instant in any zone: compared as UTC with the window's ends (dropping its zone would compare
                # wall-clock digits: 04:30 UTC is 23:30 the day before in New York).
                naive = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                start, end = (moment.astimezone(datetime.UTC) for moment in (start, end))
            else:
                naive = series  # wall-clock times: read in the definition's zone
            bad = naive.filter((naive < start.replace(tzinfo=None)) | (naive >= end.replace(tzinfo=None)))
    else:
        bad = series.cast(pl.String).filter(series.cast(pl.String) != key)
    if len(bad):
        return f"{len(bad)} row(s) have {column}={bad[0]!r}, outside this partition"
    return None
