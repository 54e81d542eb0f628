"""Property test: over random DAGs and random edit sequences, assetflow runs exactly what an
independent oracle says must run, and ends with the data a clean run from scratch produces.

the staleness rules 1-6 and 8 of docs/concepts.md, checked together: each example builds a project of 2-8 assets
over 1-2 CSV sources (each asset reads 1-3 earlier nodes through a polars helper driven by
per-asset module constants, or, for about half of them, is a SQL file computing the same
with ``k`` from ``[tool.assetflow.vars]``: SQL and Python assets feed each other), materializes it, then applies 2-5 steps of 1-2 edits each
and materializes after every step; one pinned example (``KNOWN``) always runs too.
Edits: change a constant that changes the output (``k``), change one that keeps it
(``mode``: two spellings of one computation; ``cap``: sometimes), reformat/comment/reorder
the code (``style``), change a source's rows (``source``), reorder them (``shuffle``: the
source changes, the sums downstream do not), change its bytes but not its frame
(``newline``), rewrite it with identical bytes (``touch``), delete an asset's current
stored file (``delete``) or all its files (``delete_all``), overwrite the current file
with other data (``tamper``), go back to an earlier project state (``revert``: a
restore, not a run), and let time pass before the run (``age``: the project's files get
old, so the run saves the no-op fast path's snapshot and the next one may use it).

After each run: the assets with outcome "ran" and "restored" equal the oracle's (tests/
oracle.py, which imports nothing from assetflow), nothing failed, and the data hashes
assetflow reports map one-to-one onto the oracle's data. At the end: every asset is
fresh, the stored values (``assetflow.load``) equal the oracle's, and a clean run of the
final project in a fresh folder gives every asset the same data hash.

Each example spawns 5-10 assetflow processes; ``ASSETFLOW_PROPERTY_EXAMPLES`` (default 15)
sets how many examples run. Examples are derandomized, so CI runs the same ones each time.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, event, example, given, note, settings

from conftest import ProjectDir
from oracle import (
    CAPS,
    HELPERS,
    MODES,
    STORE_EDITS,
    STYLES,
    AssetDecl,
    Consts,
    DataKey,
    Edit,
    Graph,
    Oracle,
    ProjectState,
    SourceText,
    apply_to_state,
    data_key_from_json,
    describe,
    render_module,
    render_pyproject,
    render_sql,
)

EXAMPLES = int(os.environ.get("ASSETFLOW_PROPERTY_EXAMPLES", "15"))
STORED = Path(".assetflow") / "data" / "parquet"  # <asset>/<hex of data hash>.parquet

# Status and stored values through the Python API, in one process (one import of the project).
INSPECT = """
import json, sys
import assetflow

project = sys.argv[1]
status = {row.name: {"kind": row.kind, "state": row.state, "reasons": row.reasons, "data_hash": row.data_hash}
          for row in assetflow.status(project=project)}
data = {}
for name in sys.argv[2:]:
    frame = assetflow.load(name, project=project)
    data[name] = {"schema": [[c, str(t)] for c, t in frame.schema.items()], "rows": frame.rows()}
print(json.dumps({"status": status, "data": data}))
"""


# -- strategies -----------------------------------------------------------------------------------

rows = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30)), min_size=1, max_size=5).map(tuple)
source_texts = st.builds(SourceText, rows)
consts = st.builds(Consts, st.integers(1, 6), st.sampled_from(MODES), st.sampled_from(CAPS))


def edits(assets: list[str], sources: list[str]) -> st.SearchStrategy[Edit]:
    asset, src = st.sampled_from(assets), st.sampled_from(sources)
    changes = st.builds(Edit, st.just("k"), asset, st.integers(1, 6))
    reverts = st.builds(Edit, st.just("revert"), st.just(""), st.integers(1, 4))  # to the Nth latest other state
    kinds = [
        changes,
        changes,  # twice as likely: output changes make the earlier versions that reverts restore
        st.builds(Edit, st.just("mode"), asset),
        st.builds(Edit, st.just("cap"), asset, st.sampled_from(CAPS)),
        st.builds(Edit, st.just("style"), st.just(""), st.integers(0, STYLES - 1)),
        st.builds(Edit, st.just("source"), src, source_texts),
        st.builds(Edit, st.just("shuffle"), src, st.integers(0, 1000)),
        st.builds(Edit, st.just("newline"), src),
        st.builds(Edit, st.just("touch"), src),
        st.builds(Edit, st.just("delete"), asset),
        st.builds(Edit, st.just("delete_all"), asset),
        st.builds(Edit, st.just("tamper"), asset),
        st.just(Edit("age")),
        reverts,
        reverts,  # twice as likely: restores need an earlier state to go back to
    ]
    return st.sampled_from(kinds).flatmap(lambda kind: kind)  # one_of() would merge the repeated branches


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Graph, ProjectState, list[list[Edit]]]:
    sources = tuple(f"src{i}" for i in range(draw(st.integers(1, 2))))
    assets: list[AssetDecl] = []
    for i in range(draw(st.integers(2, 8))):
        earlier = [*sources, *(a.name for a in assets)]
        ups = draw(st.lists(st.sampled_from(earlier), min_size=1, max_size=min(3, len(earlier)), unique=True))
        assets.append(AssetDecl(f"a{i}", tuple(ups), sql=draw(st.booleans())))
    graph = Graph(sources, tuple(assets))
    state = ProjectState(
        consts={a.name: draw(consts) for a in assets},
        sources={s: draw(source_texts) for s in sources},
        style=draw(st.integers(0, STYLES - 1)),
    )
    steps = draw(st.lists(st.lists(edits(graph.asset_names, list(sources)), min_size=1, max_size=2),
                          min_size=2, max_size=5))
    return graph, state, steps


# -- driving the project --------------------------------------------------------------------------


def write_project(project: ProjectDir, graph: Graph, state: ProjectState, old: ProjectState | None) -> None:
    """Write what differs from ``old`` (everything when None).

    Unchanged files are left alone, so a step whose edits cancel out (or that only touches
    stored data) meets the no-op fast path's snapshot of stats, which must notice the latter.
    """
    if old is None or render_module(graph, old) != render_module(graph, state):
        (project.root / "pipeline.py").write_text(render_module(graph, state))
    if old is None or render_pyproject(graph, old) != render_pyproject(graph, state):
        (project.root / "pyproject.toml").write_text(render_pyproject(graph, state))
    (project.root / "models").mkdir(exist_ok=True)
    for decl in graph.assets:
        if decl.sql and (old is None or render_sql(decl, old) != render_sql(decl, state)):
            (project.root / "models" / f"{decl.name}.sql").write_text(render_sql(decl, state))
    for name, text in state.sources.items():
        if old is None or old.sources[name].render() != text.render():
            path = project.root / "data" / f"{name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.render())


class Hashes:
    """assetflow's data hashes must map one-to-one onto the oracle's data."""

    def __init__(self) -> None:
        self.of_data: dict[DataKey, str] = {}
        self.of_hash: dict[str, DataKey] = {}

    def check(self, asset: str, data: DataKey, data_hash: str | None) -> None:
        assert data_hash is not None, f"{asset}: no data hash reported"
        known = self.of_data.setdefault(data, data_hash)
        assert known == data_hash, f"{asset}: data {data} had hash {known}, now {data_hash}"
        seen = self.of_hash.setdefault(data_hash, data)
        assert seen == data, f"{asset}: hash {data_hash} stands for {seen} and for {data}"


def stored_path(project: ProjectDir, asset: str, data_hash: str) -> Path:
    return project.root / STORED / asset / f"{data_hash.split(':', 1)[1]}.parquet"


def apply_store_edit(edit: Edit, project: ProjectDir, oracle: Oracle, hashes: Hashes) -> None:
    asset = edit.target
    if edit.kind == "delete_all":
        for path in (project.root / STORED / asset).glob("*.parquet"):
            path.unlink()
        oracle.delete_all(asset)
        return
    path = stored_path(project, asset, hashes.of_data[oracle.current[asset].data])
    if edit.kind == "delete":
        path.unlink(missing_ok=True)
        oracle.delete_current(asset)
    else:  # tamper: other data (every real value is < 50) in the current version's file
        pl.DataFrame({"id": [999], "v": [999]}).write_parquet(path)
        oracle.tamper(asset)


def age(project: ProjectDir, since_ns: int) -> None:
    """Time passes before the run: the files written since ``since_ns`` (the last run) become seconds
    old, so the run may save the no-op fast path's snapshot (a file younger than the racy-clean
    window never vouches for itself). Files the last run saw keep their stat."""
    past = time.time_ns() - 5_000_000_000
    files = sorted(p for p in project.root.rglob("*") if p.is_file() and ".assetflow" not in p.parts)
    for offset, path in enumerate(f for f in files if f.stat().st_mtime_ns >= since_ns):
        os.utime(path, ns=(past + offset, past + offset))


def touch(project: ProjectDir, source: str) -> None:
    path = project.root / "data" / f"{source}.csv"
    content = path.read_bytes()
    path.unlink()
    path.write_bytes(content)  # a new inode and mtime, the same bytes


def materialize(project: ProjectDir) -> dict[str, Any]:
    """``materialize --json`` as {asset: outcome} plus the payload under "_"; a crash shows its stderr."""
    proc = project.run("materialize", "--json")
    try:
        payload = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"materialize --json exited {proc.returncode} without JSON:\n{proc.stdout}\n{proc.stderr}") from None
    return {"_": payload, **{a["name"]: a["outcome"] for a in payload["assets"]}}


def check_run(step: str, result: dict[str, Any], expected: dict[str, str], oracle: Oracle, hashes: Hashes) -> None:
    payload = result["_"]
    outcomes = {n: o for n, o in result.items() if n != "_"}
    detail = "\n".join(f"  {a['name']}: {a['outcome']} {a['reasons']} {a.get('error') or ''}"
                       for a in payload["assets"])
    message = f"{step}\nassetflow said:\n{detail}\noracle said: {expected}"
    assert set(outcomes) == set(expected), message
    assert not [n for n, o in outcomes.items() if o in ("failed", "skipped")], message
    for kind in ("ran", "restored"):
        got = {n for n, o in outcomes.items() if o == kind}
        want = {n for n, o in expected.items() if o == kind}
        assert got == want, f"{kind}: assetflow {sorted(got)} != oracle {sorted(want)}\n{message}"
    if payload.get("fast_path"):
        event("no-op fast path")
    for row in payload["assets"]:
        event(f"outcome: {row['outcome']}")
        if "data_hash" in row or not payload.get("fast_path"):  # the fast path's rows have no hash (see below)
            hashes.check(row["name"], oracle.current[row["name"]].data, row["data_hash"])


def inspect(project: ProjectDir, names: list[str]) -> tuple[dict[str, dict[str, Any]], dict[str, DataKey]]:
    """``assetflow.status()`` rows and ``assetflow.load()`` values of a project."""
    proc = subprocess.run([sys.executable, "-c", INSPECT, str(project.root), *names], capture_output=True,
                          text=True, cwd=project.root, timeout=300, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout)
    return payload["status"], {name: data_key_from_json(value) for name, value in payload["data"].items()}


def test_every_style_is_the_same_program() -> None:
    """The premise of ``style`` edits: renderings differ only in comments, docstrings, layout and order."""

    def definitions(text: str) -> list[str]:
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and isinstance(node.body[0], ast.Expr) \
                    and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str):
                node.body = node.body[1:]  # the docstring
        return sorted(ast.dump(n) for n in tree.body if isinstance(n, ast.FunctionDef | ast.Assign))

    graph = Graph(("src0",), (AssetDecl("a0", ("src0",)), AssetDecl("a1", ("a0", "src0")),
                              AssetDecl("a2", ("a1", "src0"), sql=True)))
    state = ProjectState({"a0": Consts(2, "mul", 7), "a1": Consts(3, "rmul", 99), "a2": Consts(4, "rmul", 20)},
                         {"src0": SourceText(((1, 2),))})
    programs = {tuple(definitions(render_module(graph, state.replace(style=style)))) for style in range(STYLES)}
    assert len(programs) == 1
    assert len({tuple(definitions(helper)) for helper in HELPERS}) == 1
    from assetflow.sql.parse import canonical_sql, parse_query

    queries = {canonical_sql(parse_query(render_sql(graph.assets[2], state.replace(style=style)), file="a2.sql",
                                         asset="a2").tree) for style in range(STYLES)}
    assert len(queries) == 1, queries


# -- the property ---------------------------------------------------------------------------------

# Always run, whatever the generator draws: every outcome (ran, restored, cutoff, fresh) and every edit.
KNOWN = (
    Graph(("src0", "src1"), (AssetDecl("a0", ("src0",)), AssetDecl("a1", ("a0",)),
                             AssetDecl("a2", ("a0", "src1"), sql=True))),
    ProjectState({"a0": Consts(2, "mul", 99), "a1": Consts(3, "mul", 20), "a2": Consts(1, "rmul", 50)},
                 {"src0": SourceText(((1, 4), (2, 9), (1, 3))), "src1": SourceText(((2, 5),))}),
    [
        [Edit("k", "a0", 3)],  # all run
        [Edit("revert", "", 1), Edit("age")],  # all restored; the run saves a fast-path snapshot
        [Edit("delete", "a0")],  # the fast path must notice: a0 runs, the rest is cut off
        [Edit("age")],  # nothing changed: the fast path
        [Edit("shuffle", "src0", 2), Edit("cap", "a2", 99)],  # a0 runs to equal data: a1 cut off; a2 runs
        [Edit("style", "", 1), Edit("touch", "src1")],  # nothing runs
        [Edit("tamper", "a1"), Edit("newline", "src1"), Edit("mode", "a0")],
        [Edit("delete_all", "a2"), Edit("revert", "", 2), Edit("source", "src1", SourceText(((3, 3),)))],
    ],
)


def test_fast_path_json_has_the_keys_of_a_full_run(project: ProjectDir) -> None:
    """Found by the property test: a consumer reading ``data_hash`` or ``counts["ran"]`` gets a KeyError."""
    write_project(project, KNOWN[0], KNOWN[1], None)
    for path in [*project.root.glob("*.*"), *project.root.glob("data/*"), *project.root.glob("models*"),
                 *project.root.glob("models/*")]:
        os.utime(path, ns=(1, 1))  # old enough for the snapshot to vouch for them (no racy-clean wait)
    full = materialize(project)["_"]
    fast = materialize(project)["_"]
    if not fast.get("fast_path") or full.get("fast_path"):
        pytest.fail(f"expected a full run, then the fast path: {full}, {fast}")
    assert set(fast) - {"fast_path"} == set(full) - {"fast_path"}
    assert set(fast["counts"]) == set(full["counts"]), (fast["counts"], full["counts"])
    assert {frozenset(row) for row in fast["assets"]} == {frozenset(row) for row in full["assets"]}, (fast, full)
    assert {r["name"]: r["data_hash"] for r in fast["assets"]} == {r["name"]: r["data_hash"] for r in full["assets"]}


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate, Phase.shrink),  # no "explain": it reruns a failure ~100 times
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
@example(KNOWN)
def test_runs_exactly_what_the_oracle_says_and_ends_like_a_clean_run(
    scenario: tuple[Graph, ProjectState, list[list[Edit]]],
) -> None:
    graph, state, steps = scenario
    with tempfile.TemporaryDirectory(prefix="assetflow-prop-") as tmp:
        project = ProjectDir(Path(tmp) / "incremental", ["pipeline"])
        oracle, hashes = Oracle(graph), Hashes()
        write_project(project, graph, state, None)
        note(f"graph: {graph}\nstart: {describe(state)}")
        check_run("initial run", materialize(project), oracle.materialize(state), oracle, hashes)
        last_run_ns = time.time_ns()
        snapshots = [state]
        for number, step in enumerate(steps, 1):
            before = state
            for edit in step:
                event(f"edit: {edit.kind}")
                if edit.kind in STORE_EDITS:
                    apply_store_edit(edit, project, oracle, hashes)
                elif edit.kind == "touch":
                    touch(project, edit.target)
                elif edit.kind == "age":
                    pass  # after the step's files are written, below
                else:
                    state = apply_to_state(edit, state, snapshots)
            write_project(project, graph, state, before)
            if any(edit.kind == "age" for edit in step):
                age(project, last_run_ns)
            snapshots.append(state)
            note(f"step {number}: {step} -> {describe(state)}")
            check_run(f"step {number}: {step}", materialize(project), oracle.materialize(state), oracle, hashes)
            last_run_ns = time.time_ns()

        status, loaded = inspect(project, graph.asset_names)
        assert {n: s["state"] for n, s in status.items() if s["kind"] == "asset"} == dict.fromkeys(
            graph.asset_names, "fresh"), status
        for name in graph.asset_names:
            assert loaded[name] == oracle.current[name].data, f"{name}: stored {loaded[name]} != oracle"

        clean = ProjectDir(Path(tmp) / "clean", ["pipeline"])
        shutil.copy(project.root / "pipeline.py", clean.root / "pipeline.py")
        shutil.copy(project.root / "pyproject.toml", clean.root / "pyproject.toml")
        shutil.copytree(project.root / "data", clean.root / "data")
        shutil.copytree(project.root / "models", clean.root / "models")
        result = materialize(clean)
        assert {n: o for n, o in result.items() if n != "_"} == dict.fromkeys(graph.asset_names, "ran"), result
        clean_hashes = {a["name"]: a["data_hash"] for a in result["_"]["assets"]}
        incremental = {n: status[n]["data_hash"] for n in graph.asset_names}
        assert incremental == clean_hashes
