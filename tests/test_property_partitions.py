"""Property test: partitioned graphs against an independent oracle (tests/partition_oracle.py).

Random projects of 2-5 assets over a partitioned source (4 daily files), each asset
partitioned or not, reading earlier nodes by identity, window(-1, 0), all partitions or
latest; then random steps of edits, each followed by a run: a source file changed,
rewritten with identical bytes, deleted (its day has no data) or brought back, an asset's
constant changed, the whole project reverted to an earlier state, and runs that are
backfills of a random range of the partitioned assets. After every run the units assetflow
ran, restored and skipped equal the oracle's (0 unsound skips, 0 needless runs); at the
end every available unit's stored value equals the oracle's, and equals a clean backfill.

In process (the Python API, the in-process executor): ``ASSETFLOW_PROPERTY_EXAMPLES``
(default 10) sets how many examples run; derandomized, so CI runs the same ones.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import hypothesis.strategies as st
from hypothesis import HealthCheck, example, given, note, settings

from assetflow import api
from assetflow.workspace import Workspace
from partition_oracle import KEYS, SOURCE, Decl, Oracle, render, rows

EXAMPLES = int(os.environ.get("ASSETFLOW_PROPERTY_EXAMPLES", "10"))


def _graph(rng: random.Random) -> list[Decl]:
    decls: list[Decl] = []
    for i in range(rng.randint(2, 5)):
        partitioned = rng.random() < 0.7
        nodes = [(SOURCE, True)] + [(d.name, d.partitioned) for d in decls]
        inputs = []
        for up, up_partitioned in rng.sample(nodes, k=min(len(nodes), rng.randint(1, 2))):
            if not up_partitioned:
                mapping = "whole"
            elif partitioned:
                mapping = rng.choice(["identity", "window"])
            else:
                mapping = rng.choice(["all", "latest"])
            inputs.append((up, mapping))
        decls.append(Decl(f"a{i}", partitioned, tuple(inputs)))
    return decls


def _csv(rng: random.Random) -> str:
    ids = rng.sample(range(1, 6), k=rng.randint(1, 3))
    return "id,v\n" + "".join(f"{i},{rng.randint(1, 30)}\n" for i in sorted(ids))


def _write(root: Path, decls: list[Decl], consts: dict[str, int], sources: dict[str, str]) -> None:
    (root / "pipe.py").write_text(render(decls, consts))
    folder = root / "data" / "src"
    folder.mkdir(parents=True, exist_ok=True)
    for key in KEYS:
        path = folder / f"{key}.csv"
        if key in sources:
            if not path.exists() or path.read_text() != sources[key]:
                path.write_text(sources[key])
        elif path.exists():
            path.unlink()


def _materialize(root: Path, **options: object) -> dict[str, str]:
    ws = Workspace.load(root)
    try:
        result = api.materialize(project=ws, executor="inprocess", **options)  # type: ignore[arg-type]
    finally:
        ws.close()
    assert not result.by_outcome("failed"), [r.error for r in result.by_outcome("failed")]
    return {n: {"cutoff": "fresh", "waiting": "fresh"}.get(r.outcome, r.outcome) for n, r in result.results.items()}


def _values(root: Path, oracle: Oracle, available_keys: list[str]) -> dict[str, tuple]:
    ws = Workspace.load(root)
    found = {}
    try:
        for decl in oracle.decls:
            if decl.partitioned:
                for key in ws.partition_plan.units_of(decl.name):
                    part = key.split("[")[1].rstrip("]")
                    found[key] = rows(api.load(decl.name, project=ws, partition=part))
            else:
                found[decl.name] = rows(api.load(decl.name, project=ws))
    finally:
        ws.close()
    return found


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
@example(seed=7)
def test_partitioned_graphs_match_the_oracle(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / f"p{seed}"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    (root / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    decls = _graph(rng)
    note(f"graph: {decls}")
    consts = {d.name: rng.randint(1, 9) for d in decls}
    sources = {k: _csv(rng) for k in KEYS if k == KEYS[0] or rng.random() < 0.8}
    history = [(dict(consts), dict(sources))]
    oracle = Oracle(decls)
    _write(root, decls, consts, sources)
    expected = oracle.run(sources, consts)
    assert _materialize(root) == expected
    for step in range(rng.randint(2, 5)):
        edit = rng.choice(["source", "touch", "delete", "add", "const", "revert"])
        key = rng.choice(KEYS[1:]) if edit in ("delete", "add") else rng.choice(sorted(sources))
        if edit == "source":
            sources[key] = _csv(rng)
        elif edit == "touch":
            (root / "data" / "src" / f"{key}.csv").write_text(sources[key])  # identical bytes, new stat
        elif edit == "delete":
            sources.pop(key, None)
        elif edit == "add":
            sources[key] = sources.get(key) or _csv(rng)
        elif edit == "const":
            name = rng.choice(decls).name
            consts[name] = rng.choice([c for c in range(1, 10) if c != consts[name]])
        else:
            consts, sources = (dict(x) for x in rng.choice(history))
        history.append((dict(consts), dict(sources)))
        _write(root, decls, consts, sources)
        partitioned = [d.name for d in decls if d.partitioned]
        if partitioned and rng.random() < 0.4:  # a backfill of a range of the partitioned assets
            first = rng.randrange(len(KEYS))
            last = rng.randrange(first, len(KEYS))
            text = f"{KEYS[first]}..{KEYS[last]}"
            note(f"step {step}: {edit} {key}, backfill {text}")
            expected = oracle.run(sources, consts, set(partitioned), KEYS[first:last + 1])
            actual = _materialize(root, select=partitioned, partition=text)
        else:
            note(f"step {step}: {edit} {key}, materialize")
            expected = oracle.run(sources, consts)
            actual = _materialize(root)
        assert actual == expected, f"step {step} ({edit})"
    expected = oracle.run(sources, consts)
    assert _materialize(root) == expected
    assert set(expected.values()) <= {"fresh", "ran", "restored"}
    values = _values(root, oracle, sorted(sources))
    assert values == {unit: oracle.current[unit][1] for unit in values}
    clean = tmp_path / f"clean{seed}"
    if clean.exists():
        shutil.rmtree(clean)
    clean.mkdir()
    (clean / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    _write(clean, decls, consts, sources)
    _materialize(clean)
    assert _values(clean, oracle, sorted(sources)) == values  # equal to a clean backfill
