"""Generate benchmark projects: N small polars assets over a few ~1,000-row CSV sources.

Shapes (docs/concepts.md, "Performance budgets" measures "projects of small polars assets"):

- ``chain``: ``src_0 -> a00000 -> a00001 -> ... -> a(N-1)``; the other sources join the chain at
  1/4, 2/4 and 3/4 of its length, so the last source's downstream cone is the last quarter.
- ``wide``: one source fanning out to N independent assets.
- ``layered``: a DAG of ~sqrt(N) layers of ~sqrt(N) assets; layer 0 reads the sources (each source
  feeds a contiguous quarter of it), every later asset reads 1-3 assets of the previous layer near its
  own position, so lineage stays local as in a real project and a source's cone widens layer by layer.

Every asset is one small transform (``with_columns``, ``filter``, ``select``, or a join of its
upstreams through a project-local helper, which assetflow's code fingerprint follows). Tables keep
one schema (id, key, cat, v, w, tag). Row id 0 survives every filter and join, and ``tag`` is carried
through every asset (joins add it modulo a prime), so changing one source's row-0 ``tag`` changes the
data of exactly that source's downstream cone: no early cutoff can hide part of it. The bench relies
on that to check that exactly the cone ran.

Assets are split over modules of ``--per-module`` assets (default 250) in a package ``benchproj``,
listed in ``[tool.assetflow] modules``. ``bench-manifest.json`` in the project records the shape, the
edges and the source files for ``bench/run.py``.

Usage: ``python bench/generate.py DIR --shape layered --n 1000 [--seed 1] [--per-module 250]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

SHAPES = ("chain", "wide", "layered")
PACKAGE = "benchproj"
MANIFEST = "bench-manifest.json"
TAG_MODULUS = 1_000_000_007
CATEGORIES = ("garden", "kitchen", "toys", "books", "tools", "sport")

_HELPERS = f'''"""Project-local helpers used by the generated assets (assetflow fingerprints them too)."""

import polars as pl

TAG_MODULUS = {TAG_MODULUS}


def scale(column: str, factor: float, offset: float) -> pl.Expr:
    return pl.col(column) * factor + offset


def combine(base: pl.DataFrame, *others: pl.DataFrame, weight: float) -> pl.DataFrame:
    """Inner-join the others on id, folding their v and tag into the base's."""
    out = base
    for i, other in enumerate(others):
        v, tag = f"v_{{i}}", f"tag_{{i}}"
        out = out.join(other.select("id", pl.col("v").alias(v), pl.col("tag").alias(tag)), on="id", how="inner")
        out = out.with_columns(
            v=pl.col("v") + pl.col(v) * weight,
            tag=(pl.col("tag") + pl.col(tag)) % TAG_MODULUS,
        ).drop(v, tag)
    return out
'''


def source_rows(index: int, rows: int, bump: int = 0) -> str:
    """The CSV text of source ``index``; ``bump`` changes the one value ``tag`` of row id 0."""
    rng = random.Random(f"source-{index}")
    lines = ["id,key,cat,v,w,tag"]
    for i in range(rows):
        w = 0.0 if i == 0 else rng.random()  # row 0 passes every filter (they all keep w < threshold)
        tag = rng.randrange(TAG_MODULUS) + (bump if i == 0 else 0)
        lines.append(f"{i},{i % 17},{CATEGORIES[rng.randrange(len(CATEGORIES))]},"
                     f"{rng.uniform(0, 1000):.4f},{w:.6f},{tag}")
    return "\n".join(lines) + "\n"


def source_path(index: int) -> str:
    return f"data/src_{index}.csv"


def _layer_sizes(n: int) -> list[int]:
    layers = max(1, round(math.sqrt(n)))
    base, extra = divmod(n, layers)
    return [base + (1 if i < extra else 0) for i in range(layers)]


def build_edges(shape: str, n: int, sources: int, rng: random.Random) -> dict[str, list[str]]:
    """Each asset's upstreams (sources are ``src_K``), in topological order of the assets."""
    names = [f"a{i:05d}" for i in range(n)]
    edges: dict[str, list[str]] = {}
    if shape == "wide":
        for name in names:
            edges[name] = ["src_0"]
    elif shape == "chain":
        joins = {(k * n) // sources: f"src_{k}" for k in range(1, sources) if 0 < (k * n) // sources < n}
        for i, name in enumerate(names):
            edges[name] = ["src_0"] if i == 0 else [names[i - 1]]
            if i in joins:
                edges[name].append(joins[i])
    elif shape == "layered":
        previous: list[str] = []
        start = 0
        for depth, size in enumerate(_layer_sizes(n)):
            layer = names[start:start + size]
            start += size
            for j, name in enumerate(layer):
                if depth == 0:
                    edges[name] = [f"src_{min(sources - 1, j * sources // size)}"]
                    continue
                centre = round((j + 0.5) * len(previous) / size - 0.5)
                window = [previous[k] for k in range(max(0, centre - 1), min(len(previous), centre + 2))]
                edges[name] = sorted(rng.sample(window, rng.randint(1, min(3, len(window)))))
            previous = layer
    else:
        raise ValueError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")
    return edges


def _asset_code(name: str, ups: list[str], rng: random.Random) -> str:
    params = ", ".join(f"{u}: pl.DataFrame" for u in ups)
    first = ups[0]
    if len(ups) > 1:
        body = f"helpers.combine({', '.join(ups)}, weight={rng.uniform(0.1, 0.9):.3f})"
    else:
        kind = rng.randrange(3)
        if kind == 0:
            body = (f"{first}.with_columns(v=helpers.scale(\"v\", {rng.uniform(0.999, 1.001):.5f}, "
                    f"{rng.uniform(-1, 1):.3f}), key=(pl.col(\"key\") + {rng.randint(1, 9)}) % 17)")
        elif kind == 1:
            body = f"{first}.filter(pl.col(\"w\") < {rng.uniform(0.95, 0.999):.4f})"
        else:
            body = (f"{first}.select(\"id\", \"key\", \"cat\", (pl.col(\"v\") * {rng.uniform(0.99, 1.01):.4f})"
                    f".alias(\"v\"), \"w\", \"tag\")")
    return f"\n\n@asset\ndef {name}({params}) -> pl.DataFrame:\n    return {body}\n"


def generate(
    folder: Path | str, shape: str, n: int, *, seed: int = 1, per_module: int = 250, rows: int = 1000,
    sources: int | None = None, age_s: float = 3600.0,
) -> dict[str, Any]:
    """Write a project of ``n`` assets into ``folder`` (emptied first); return its manifest.

    Every file's mtime is set ``age_s`` seconds in the past, as in a project that existed before
    the bench: assetflow does not trust a stat token younger than its "racy clean" window.
    """
    folder = Path(folder)
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")
    if n < 1:
        raise ValueError("n must be at least 1")
    n_sources = 1 if shape == "wide" else (sources or 4)
    rng = random.Random(f"{seed}-{shape}-{n}")
    edges = build_edges(shape, n, n_sources, rng)
    if folder.exists():
        shutil.rmtree(folder)
    package = folder / PACKAGE
    (folder / "data").mkdir(parents=True)
    package.mkdir()
    for k in range(n_sources):
        (folder / source_path(k)).write_text(source_rows(k, rows), encoding="utf-8")
    (package / "__init__.py").write_text('"""A generated assetflow benchmark project."""\n', encoding="utf-8")
    (package / "helpers.py").write_text(_HELPERS, encoding="utf-8")
    (package / "sources.py").write_text(
        '"""The raw CSV sources."""\n\nfrom assetflow import source\n\n'
        + "".join(f'src_{k} = source("{source_path(k)}")\n' for k in range(n_sources)),
        encoding="utf-8",
    )
    names = list(edges)
    modules = [f"{PACKAGE}.sources"]
    module_count = max(2, math.ceil(n / per_module)) if n > 1 else 1
    chunk = math.ceil(n / module_count)
    for m in range(module_count):
        part = names[m * chunk:(m + 1) * chunk]
        if not part:
            continue
        module = f"assets_{m:03d}"
        header = (f'"""Generated assets {part[0]}..{part[-1]} ({shape}, N={n})."""\n\n'
                  f"import polars as pl\n\nfrom assetflow import asset\nfrom {PACKAGE} import helpers\n")
        code = "".join(_asset_code(name, edges[name], rng) for name in part)
        (package / f"{module}.py").write_text(header + code, encoding="utf-8")
        modules.append(f"{PACKAGE}.{module}")
    (folder / "pyproject.toml").write_text(
        f"# A generated assetflow benchmark project: {shape}, {n} assets.\n"
        f'[project]\nname = "bench-{shape}-{n}"\nversion = "0"\n\n'
        f"[tool.assetflow]\nmodules = {json.dumps(modules)}\n"
        f'state = ".assetflow"\ndefault_io = "parquet"\n',
        encoding="utf-8",
    )
    manifest = {
        "shape": shape, "n": n, "seed": seed, "rows": rows, "per_module": per_module,
        "modules": modules,
        "sources": {f"src_{k}": {"path": source_path(k), "index": k} for k in range(n_sources)},
        "edges": edges,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    if age_s:
        then = time.time() - age_s
        for path in sorted(folder.rglob("*"), reverse=True):  # files before their folders
            os.utime(path, (then, then))
        os.utime(folder, (then, then))
    return manifest


def downstream_cone(edges: dict[str, list[str]], start: str) -> set[str]:
    """Every asset that reads ``start`` directly or transitively."""
    children: dict[str, list[str]] = {}
    for name, ups in edges.items():
        for up in ups:
            children.setdefault(up, []).append(name)
    cone: set[str] = set()
    todo = [start]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in cone:
                cone.add(child)
                todo.append(child)
    return cone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="Where to write the project (emptied first).")
    parser.add_argument("--shape", choices=SHAPES, default="layered")
    parser.add_argument("--n", type=int, default=100, help="Number of assets (sources not counted).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-module", type=int, default=250, help="Assets per module.")
    parser.add_argument("--rows", type=int, default=1000, help="Rows per source CSV.")
    args = parser.parse_args()
    manifest = generate(args.folder, args.shape, args.n, seed=args.seed, per_module=args.per_module, rows=args.rows)
    print(f"{args.folder}: {args.shape}, {args.n} assets in {len(manifest['modules']) - 1} modules, "
          f"{len(manifest['sources'])} sources")


if __name__ == "__main__":
    main()
