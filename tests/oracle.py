"""An independent model of what ``assetflow materialize`` must run, for the property test.

It knows nothing of assetflow's code: it renders a small project (sources, assets, the
module-level constants that drive them), evaluates the assets' polars functions itself,
in this process, and decides from the staleness rules of docs/concepts.md alone what a materialize run must do:

- an asset is *fresh* when its code and the data of its inputs are exactly what its
  current version was made from, and that version's stored file is intact;
- else it is *restored* when some earlier version was made from exactly this recipe and
  its stored file is intact (stored files are content-addressed: one file per asset and
  data, so versions with equal data share one file, and deleting it loses them all);
- else it *runs*, and its downstream sees its new data (equal data: early cutoff).

The only facts about assetflow it borrows are the documented ones: a source's version
is its bytes, an asset's code version is what its function and the constants it uses
say (not their formatting), and the parquet layout ``<asset>/<hash>.parquet``.

Some assets are SQL files (``models/<asset>.sql``, docs/sql.md) computing exactly what
``combine`` computes, with ``k`` read from ``[tool.assetflow.vars]`` as ``$k_<asset>``:
their code version is what the query says (not its layout, comments or keyword case).
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

MODES = ("mul", "rmul")  # two spellings of the same arithmetic: a code change with identical output
CAPS = (7, 20, 50, 99)  # values are < 50, so 50 and 99 give identical output
STYLES = 4  # cosmetic renderings of the same code: comments, docstrings, layout, order

# The helper every asset calls, in AST-identical renderings (docstrings and comments aside).
HELPERS = (
    '''
def combine(frames, k, mode, cap):
    stacked = pl.concat([f.select("id", "v") for f in frames])
    summed = stacked.group_by("id").agg(pl.col("v").sum()).sort("id")
    scaled = pl.col("v") * k if mode == "mul" else k * pl.col("v")
    out = summed.with_columns((scaled % 50).alias("v"))
    out = out.with_columns(pl.when(pl.col("v") >= cap).then(cap).otherwise(pl.col("v")).alias("v"))
    return out.filter(pl.col("v") != 0)
''',
    '''
def combine(frames, k, mode, cap):
    """Sum the inputs per id, scale by k (two equal ways), cap, and drop zeros."""
    stacked = pl.concat([f.select("id", "v") for f in frames])  # one long frame
    summed = (
        stacked.group_by("id")
        .agg(pl.col("v").sum())
        .sort("id")
    )
    # "mul" and "rmul" compute the same values
    scaled = pl.col("v") * k if mode == "mul" else k * pl.col("v")
    out = summed.with_columns((scaled % 50).alias("v"))
    out = out.with_columns(
        pl.when(pl.col("v") >= cap)
        .then(cap)
        .otherwise(pl.col("v"))
        .alias("v")
    )
    return out.filter(pl.col("v") != 0)
''',
    '''
def combine(frames,
            k,
            mode,
            cap):
    stacked = pl.concat([f.select('id','v') for f in frames]); summed = (stacked.group_by('id')
        .agg(pl.col('v').sum()).sort('id'))
    scaled = (pl.col('v') * k) if (mode == 'mul') else (k * pl.col('v'))
    out = summed.with_columns((scaled % 50).alias('v'))
    out = out.with_columns(pl.when(pl.col('v') >= cap).then(cap).otherwise(pl.col('v')).alias('v'))  # cap
    return out.filter(pl.col('v') != 0)
''',
    '''
def combine(frames, k, mode, cap):
    # Helper shared by every asset.
    stacked = pl.concat([f.select("id", "v") for f in frames])
    summed = stacked.group_by("id").agg(pl.col("v").sum()).sort("id")

    scaled = pl.col("v") * k if mode == "mul" else k * pl.col("v")

    out = summed.with_columns((scaled % 50).alias("v"))
    out = out.with_columns(pl.when(pl.col("v") >= cap).then(cap).otherwise(pl.col("v")).alias("v"))
    return out.filter(pl.col("v") != 0)
    # end of helper
''',
)


def _evaluate_helper() -> Any:
    namespace: dict[str, Any] = {"pl": pl}
    exec(HELPERS[0], namespace)  # noqa: S102 - our own constant text, the very code the project runs
    return namespace["combine"]


combine = _evaluate_helper()


# -- the project --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AssetDecl:
    name: str
    upstreams: tuple[str, ...]  # parameter order
    sql: bool = False  # a models/<name>.sql file instead of a Python function

    def __repr__(self) -> str:
        return f"{'SQL' if self.sql else ''}AssetDecl({self.name!r}, {self.upstreams!r})"


@dataclasses.dataclass(frozen=True)
class Consts:
    """The module-level constants one asset's function uses."""

    k: int
    mode: str
    cap: int

    def __repr__(self) -> str:
        return f"C({self.k},{self.mode},{self.cap})"


@dataclasses.dataclass(frozen=True)
class SourceText:
    rows: tuple[tuple[int, int], ...]
    trailing_newline: bool = True

    def render(self) -> bytes:
        text = "id,v\n" + "\n".join(f"{i},{v}" for i, v in self.rows)
        return (text + "\n" if self.trailing_newline else text).encode()

    def __repr__(self) -> str:
        return f"S({list(self.rows)}{'' if self.trailing_newline else ', no-newline'})"


@dataclasses.dataclass(frozen=True)
class Graph:
    sources: tuple[str, ...]
    assets: tuple[AssetDecl, ...]

    @property
    def asset_names(self) -> list[str]:
        return [a.name for a in self.assets]


@dataclasses.dataclass(frozen=True)
class ProjectState:
    """Everything the user edits: constants, source contents and the code's cosmetic style."""

    consts: Mapping[str, Consts]
    sources: Mapping[str, SourceText]
    style: int = 0

    def replace(self, **changes: Any) -> ProjectState:
        return dataclasses.replace(self, **changes)


def _constants(graph: Graph, state: ProjectState) -> list[str]:
    lines = []
    for a in graph.assets:
        if a.sql:
            continue  # its constants are in the query and in [tool.assetflow.vars]
        c = state.consts[a.name]
        if state.style == 1:
            lines += [f"# constants of {a.name}", f"K_{a.name} = {c.k}  # scale",
                      f"M_{a.name} = '{c.mode}'", f"C_{a.name} = {c.cap}", ""]
        elif state.style == 2:
            lines += [f"K_{a.name} = ({c.k})", f'M_{a.name} = ("{c.mode}")', f"C_{a.name} = ({c.cap})  # cap"]
        else:
            lines += [f"K_{a.name} = {c.k}", f'M_{a.name} = "{c.mode}"', f"C_{a.name} = {c.cap}"]
    return lines


def _asset_code(a: AssetDecl, style: int) -> str:
    params = ", ".join(f"{u}: pl.DataFrame" for u in a.upstreams)
    frames = ", ".join(a.upstreams)
    consts = f"K_{a.name}, M_{a.name}, C_{a.name}"
    if style == 1:
        return (f"@asset\ndef {a.name}({params}) -> pl.DataFrame:\n"
                f'    """Asset {a.name}: its inputs summed per id, scaled and capped."""\n'
                f"    # see combine() for what the constants do\n"
                f"    return combine(\n        [{frames}],  # inputs\n        {consts},\n    )\n")
    if style == 2:
        return f"@asset\ndef {a.name}({params}) -> pl.DataFrame: return combine([{frames}], {consts})\n"
    if style == 3:
        return (f"@asset\ndef {a.name}(\n    " + ",\n    ".join(f"{u}: pl.DataFrame" for u in a.upstreams)
                + f",\n) -> pl.DataFrame:\n    return combine([{frames},], {consts})\n")
    return f"@asset\ndef {a.name}({params}) -> pl.DataFrame:\n    return combine([{frames}], {consts})\n"


def render_module(graph: Graph, state: ProjectState) -> str:
    """The project's ``pipeline.py``: the same program in every style."""
    header = ["import polars as pl", "from assetflow import asset, source", ""]
    if state.style == 2:
        header = ["from assetflow import source, asset", "import polars as pl", "", "# sources"]
    header += [f'{s} = source("data/{s}.csv")' for s in graph.sources] + [""]
    assets = "\n\n".join(_asset_code(a, state.style) for a in graph.assets if not a.sql)
    helper = HELPERS[state.style]
    constants = "\n".join(_constants(graph, state))
    if state.style in (2, 3):  # definitions after their users: still the same program
        return "\n".join(header) + "\n\n" + assets + "\n" + helper + "\n\n" + constants + "\n"
    return "\n".join(header) + "\n" + constants + "\n\n" + helper + "\n\n" + assets


def render_pyproject(graph: Graph, state: ProjectState) -> str:
    """``pyproject.toml``: the module, the SQL folder, and each SQL asset's ``k`` as a var."""
    lines = ["[tool.assetflow]", 'modules = ["pipeline"]', 'sql = ["models"]', "", "[tool.assetflow.vars]"]
    lines += [f"k_{a.name} = {state.consts[a.name].k}" for a in graph.assets if a.sql]
    return "\n".join(lines) + "\n"


def render_sql(a: AssetDecl, state: ProjectState) -> str:
    """``models/<name>.sql``: ``combine`` in SQL, in ``STYLES`` renderings of one canonical query."""
    c = state.consts[a.name]
    scaled = f"$k_{a.name} * s" if c.mode == "mul" else f"s * $k_{a.name}"
    if state.style == 1:
        inputs = "\n    UNION ALL\n    ".join(f"SELECT id, v FROM {u}" for u in a.upstreams)
        return (f"-- {a.name}: its inputs summed per id, scaled and capped.\n"
                f"SELECT id, v\nFROM (\n  SELECT id,\n    CASE WHEN ({scaled}) % 50 >= {c.cap} THEN {c.cap}\n"
                f"         ELSE ({scaled}) % 50 END AS v  -- capped\n"
                f"  FROM (SELECT id, SUM(v)::BIGINT AS s FROM (\n    {inputs}\n  ) GROUP BY id)\n)\n"
                f"WHERE v <> 0\nORDER BY id\n")
    inputs = " union all ".join(f"select id, v from {u}" for u in a.upstreams)
    if state.style == 2:
        return (f"/* {a.name} */ select id, v from (select id, case when ({scaled}) % 50 >= {c.cap} then {c.cap} "
                f"else ({scaled}) % 50 end as v from (select id, sum(v)::bigint as s from ({inputs}) "
                f"group by id)) where 0 <> v order by id")
    if state.style == 3:
        return (f"select id, v\n  from (select id, case when ({scaled}) % 50 >= {c.cap}\n"
                f"                         then {c.cap} else ({scaled}) % 50 end as v\n"
                f"        from (select id, sum(v)::bigint as s\n                from ({inputs})\n"
                f"               group by id))\n where v <> 0\n order by id;\n")
    return (f"select id, v from (\n    select id, case when ({scaled}) % 50 >= {c.cap} then {c.cap} "
            f"else ({scaled}) % 50 end as v\n    from (select id, sum(v)::bigint as s from ({inputs}) group by id)\n"
            f")\nwhere v <> 0\norder by id\n")


# -- data -----------------------------------------------------------------------------------------

Schema = tuple[tuple[str, str], ...]
DataKey = tuple[Schema, tuple[tuple[Any, ...], ...]]


def data_key(frame: pl.DataFrame) -> DataKey:
    """A hashable identity of a frame's content: column names, types and rows, in order."""
    return tuple((name, str(dtype)) for name, dtype in frame.schema.items()), tuple(frame.rows())


def data_key_from_json(payload: Mapping[str, Any]) -> DataKey:
    return tuple((n, t) for n, t in payload["schema"]), tuple(tuple(r) for r in payload["rows"])


def read_source(content: bytes) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(content))


def shuffled(text: SourceText, seed: int) -> SourceText:
    rows = list(text.rows)
    random.Random(seed).shuffle(rows)
    return dataclasses.replace(text, rows=tuple(rows))


# -- the oracle -----------------------------------------------------------------------------------

Recipe = tuple[Any, ...]


@dataclasses.dataclass
class Version:
    recipe: Recipe
    data: DataKey


class Oracle:
    """What must run, from the rules alone; also the data every asset must hold."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.current: dict[str, Version] = {}
        self.history: dict[str, dict[Recipe, DataKey]] = {a: {} for a in graph.asset_names}
        self.files: dict[tuple[str, DataKey], str] = {}  # "ok" | "missing" | "modified"
        self.frames: dict[DataKey, pl.DataFrame] = {}

    def _intact(self, asset: str, data: DataKey) -> bool:
        return self.files.get((asset, data)) == "ok"

    def materialize(self, state: ProjectState) -> dict[str, str]:
        """Every asset's outcome: "ran", "restored" or "unchanged" (fresh or cut off)."""
        outcomes: dict[str, str] = {}
        inputs: dict[str, tuple[Any, pl.DataFrame]] = {}
        for name in self.graph.sources:
            content = state.sources[name].render()
            inputs[name] = (("bytes", content), read_source(content))
        for decl in self.graph.assets:
            c = state.consts[decl.name]
            code = (decl.upstreams, c.k, c.mode, c.cap)
            recipe = (code, tuple((u, inputs[u][0]) for u in decl.upstreams))
            current = self.current.get(decl.name)
            earlier = self.history[decl.name].get(recipe)
            if current is not None and current.recipe == recipe and self._intact(decl.name, current.data):
                outcomes[decl.name] = "unchanged"
            elif earlier is not None and self._intact(decl.name, earlier):
                outcomes[decl.name] = "restored"
                self.current[decl.name] = Version(recipe, earlier)
            else:
                outcomes[decl.name] = "ran"
                frame = combine([inputs[u][1] for u in decl.upstreams], c.k, c.mode, c.cap)
                key = data_key(frame)
                self.frames.setdefault(key, frame)
                self.history[decl.name][recipe] = key
                self.files[(decl.name, key)] = "ok"
                self.current[decl.name] = Version(recipe, key)
            data = self.current[decl.name].data
            inputs[decl.name] = (data, self.frames[data])
        return outcomes

    def delete_current(self, asset: str) -> None:
        self.files[(asset, self.current[asset].data)] = "missing"

    def delete_all(self, asset: str) -> None:
        for key in self.files:
            if key[0] == asset:
                self.files[key] = "missing"

    def tamper(self, asset: str) -> None:
        self.files[(asset, self.current[asset].data)] = "modified"


# -- edits ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Edit:
    """One user action between runs (see the test's docstring for the kinds).

    ``target`` names the asset or source it touches; ``value`` is the new constant, source
    text, style or shuffle seed, or for ``revert`` which earlier state (1 = the latest).
    """

    kind: str
    target: str = ""
    value: Any = None

    def __repr__(self) -> str:
        parts = [self.kind, self.target, "" if self.value is None else repr(self.value)]
        return "<" + " ".join(p for p in parts if p) + ">"


STORE_EDITS = frozenset({"delete", "delete_all", "tamper"})


def apply_to_state(edit: Edit, state: ProjectState, snapshots: Sequence[ProjectState]) -> ProjectState:
    """The project state after a project edit (store edits leave it as it is)."""
    if edit.kind in ("k", "mode", "cap"):
        c = state.consts[edit.target]
        new = {"k": lambda: dataclasses.replace(c, k=edit.value),
               "mode": lambda: dataclasses.replace(c, mode=MODES[1 - MODES.index(c.mode)]),
               "cap": lambda: dataclasses.replace(c, cap=edit.value)}[edit.kind]()
        return state.replace(consts={**state.consts, edit.target: new})
    if edit.kind == "style":
        return state.replace(style=edit.value)
    if edit.kind == "source":
        return state.replace(sources={**state.sources, edit.target: edit.value})
    if edit.kind == "shuffle":
        return state.replace(sources={**state.sources, edit.target: shuffled(state.sources[edit.target], edit.value)})
    if edit.kind == "newline":
        text = state.sources[edit.target]
        flipped = dataclasses.replace(text, trailing_newline=not text.trailing_newline)
        return state.replace(sources={**state.sources, edit.target: flipped})
    if edit.kind == "revert":  # to the ``value``-th most recent earlier state that differs from this one
        earlier: list[ProjectState] = []
        for snapshot in reversed(snapshots):
            if snapshot != state and snapshot not in earlier:
                earlier.append(snapshot)
        return earlier[(edit.value - 1) % len(earlier)] if earlier else state
    return state


def describe(state: ProjectState) -> str:
    return json.dumps({"style": state.style, "consts": {k: repr(v) for k, v in state.consts.items()},
                       "sources": {k: repr(v) for k, v in state.sources.items()}})
