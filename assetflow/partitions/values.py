"""Several upstream partitions handed to one parameter: concatenated in key order, or a dict by key.

A parameter annotated as a ``dict`` receives ``{key: value}``; otherwise tables are
concatenated (polars ``vertical_relaxed``, Arrow with type promotion), an empty list of
partitions giving an empty frame.
"""

from __future__ import annotations

import inspect

from assetflow.declare import AssetSpec
from assetflow.errors import MaterializationError


def wants_dict(spec: AssetSpec, parameter: str) -> bool:
    annotation = inspect.signature(spec.fn).parameters[parameter].annotation
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
            return pl.concat(items, how="vertical_relaxed")  # type: ignore[arg-type]
        import pyarrow as pa

        if isinstance(first, pa.Table):
            return pa.concat_tables(items, promote_options="default")  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - schemas that cannot be stacked: say which asset and what to do
        raise MaterializationError(
            f"Asset {spec.name!r} reads {len(items)} partitions of {parameter!r}, whose schemas cannot be concatenated "
            f"({exc}). Annotate the parameter as a dict ({parameter}: dict) to receive them by key.", spec.name) from exc
    return items
