"""An independent model of what ``materialize`` must do with partitions, for the property test.

It imports nothing from assetflow. A project is a partitioned source (one CSV file per day,
4 days) and a few assets, each partitioned by the same days or not, reading earlier nodes
through the documented mappings: ``identity`` and ``window(-1, 0)`` between partitioned
assets, all partitions (concatenated in key order) or ``latest`` for an unpartitioned
reader, and the whole of an unpartitioned upstream for a partitioned reader.

Per unit (an unpartitioned asset, or one partition) it applies docs/partitions.md and the
staleness rules: a unit whose recipe (code constant, key, and the data of exactly the
upstream units it reads) equals its current version's is fresh; else restored if an
earlier version of that unit had this recipe; else it runs. A key whose source file is
absent has no data: its unit, and every unit reading it, is left out. A unit reading an
upstream unit that is not in the run and never had a version is skipped.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence

import polars as pl

KEYS = ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
SOURCE = "src"


@dataclasses.dataclass(frozen=True)
class Decl:
    name: str
    partitioned: bool
    inputs: tuple[tuple[str, str], ...]  # (upstream, mapping): identity | window | all | latest | whole


def render(decls: Sequence[Decl], consts: dict[str, int]) -> str:
    lines = ["import polars as pl", "from assetflow import asset, source",
             "from assetflow.partitions import daily, latest, window", "",
             f'DAYS = daily("{KEYS[0]}", end="{KEYS[-1]}")',
             f'{SOURCE} = source("data/src/{{date}}.csv", partitions=DAYS)', ""]
    lines += [f"K_{d.name.upper()} = {consts[d.name]}" for d in decls]
    lines += ["", "def combine(frames, k):",
              "    stacked = pl.concat([f.select('id', 'v') for f in frames])",
              "    out = stacked.group_by('id').agg(pl.col('v').sum()).sort('id')",
              "    return out.with_columns(((pl.col('v') * k) % 50).alias('v')).filter(pl.col('v') != 0)", ""]
    for d in decls:
        options = ["partitions=DAYS"] if d.partitioned else []
        maps = {u: m for u, m in d.inputs if m in ("window", "latest")}
        if maps:
            rendered = ", ".join(f'"{u}": {"window(-1, 0)" if m == "window" else "latest()"}' for u, m in maps.items())
            options.append(f"mappings={{{rendered}}}")
        params = ", ".join(f"{u}: pl.DataFrame" for u, _ in d.inputs)
        lines += [f"@asset({', '.join(options)})", f"def {d.name}({params}) -> pl.DataFrame:",
                  f"    return combine([{', '.join(u for u, _ in d.inputs)}], K_{d.name.upper()})", ""]
    return "\n".join(lines)


def frame_of(csv: str) -> pl.DataFrame:
    return pl.read_csv(io.StringIO(csv))


def combine(frames: list[pl.DataFrame], k: int) -> pl.DataFrame:
    stacked = pl.concat([f.select("id", "v") for f in frames])
    out = stacked.group_by("id").agg(pl.col("v").sum()).sort("id")
    return out.with_columns(((pl.col("v") * k) % 50).alias("v")).filter(pl.col("v") != 0)


def rows(frame: pl.DataFrame) -> tuple[tuple[int, int], ...]:
    return tuple(frame.select("id", "v").iter_rows())


Recipe = tuple[object, ...]


class Oracle:
    """Current and earlier versions of every unit, and the decision for each run."""

    def __init__(self, decls: Sequence[Decl]) -> None:
        self.decls = list(decls)
        self.partitioned = {d.name: d.partitioned for d in decls} | {SOURCE: True}
        self.current: dict[str, tuple[Recipe, tuple]] = {}  # unit -> (recipe, data rows)
        self.seen: dict[str, set[Recipe]] = {}  # unit -> every recipe it had a version of

    @staticmethod
    def unit(name: str, key: str) -> str:
        return f"{name}[{key}]" if key else name

    def mapped(self, decl: Decl, up: str, mapping: str, key: str, available: dict[str, list[str]]) -> list[str]:
        """The upstream units unit (decl, key) reads (keys of ``up``, or [""] when unpartitioned)."""
        if not self.partitioned[up]:
            return [""]
        if mapping == "identity":
            return [key]
        if mapping == "window":
            at = KEYS.index(key)
            return list(KEYS[max(0, at - 1): at + 1])
        present = available[up]
        return present if mapping == "all" else present[-1:]

    def _buildable(self, decl: Decl, key: str, available: dict[str, list[str]]) -> bool:
        for up, mapping in decl.inputs:
            ukeys = self.mapped(decl, up, mapping, key, available)
            if not ukeys or (self.partitioned[up] and any(k not in available[up] for k in ukeys)):
                return False
        return True

    def run(self, sources: dict[str, str], consts: dict[str, int], selected: set[str] | None = None,
            keys: Sequence[str] | None = None) -> dict[str, str]:
        """The outcome of every unit in the run: ran, restored, fresh or skipped."""
        available: dict[str, list[str]] = {SOURCE: [k for k in KEYS if k in sources]}
        data: dict[str, tuple] = {self.unit(SOURCE, k): rows(frame_of(sources[k])) for k in available[SOURCE]}
        outcomes: dict[str, str] = {}
        for decl in self.decls:
            if decl.partitioned:
                available[decl.name] = [k for k in KEYS if self._buildable(decl, k, available)]
            chosen = available[decl.name] if decl.partitioned else [""]
            in_run = (selected is None or decl.name in selected)
            for key in chosen:
                unit = self.unit(decl.name, key)
                if not in_run or (key and keys is not None and key not in keys):
                    if unit in self.current:
                        data[unit] = self.current[unit][1]
                    continue
                parts, skipped = [], False
                for up, mapping in decl.inputs:
                    ukeys = self.mapped(decl, up, mapping, key, available)
                    found = []
                    for uk in ukeys:
                        u = self.unit(up, uk)
                        if outcomes.get(u) == "skipped" or u not in data:
                            skipped = True
                        else:
                            found.append((uk, data[u]))
                    parts.append((up, tuple(found)))
                if skipped:
                    outcomes[unit] = "skipped"
                    continue
                recipe: Recipe = (consts[decl.name], key, tuple(parts))
                now = self.current.get(unit)
                if now is not None and now[0] == recipe:
                    outcomes[unit] = "fresh"
                    data[unit] = now[1]
                    continue
                frames = [pl.DataFrame(list(d), schema=["id", "v"], orient="row") for _, found in parts
                          for _, d in found]
                value = rows(combine(frames, consts[decl.name]))
                outcomes[unit] = "restored" if recipe in self.seen.get(unit, set()) else "ran"
                self.current[unit] = (recipe, value)
                self.seen.setdefault(unit, set()).add(recipe)
                data[unit] = value
        return outcomes
