"""A code edit landing during or just after a run never leaves wrong data recorded as fresh (issue 18).

One deterministic test per cause found (docs/RELIABILITY.md, "Code edits during a run"), each
staging the instant that used to go wrong, plus a slow-lane stress test that edits a project
at random instants around real runs and compares every asset called fresh with a clean build.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import py_compile
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import assetflow
from assetflow.execute import task as task_module
from assetflow.execute.task import ComputeTask, compute, register_workspace
from assetflow.fastpath import DISABLE_ENV, GRAPH_KEY, SNAPSHOT_KEY, check_snapshot, load_graph_cache, save_graph_cache
from assetflow.workspace import Workspace


def write_project(root: Path, name: str, factor: int) -> Path:
    (root / "pyproject.toml").write_text(f'[tool.assetflow]\nmodules = ["{name}"]\n')
    return write_module(root / f"{name}.py", factor)


def write_module(path: Path, factor: int, *, keep_mtime: bool = False) -> Path:
    """The module with ``FACTOR = factor``: the same size for any one-digit factor."""
    before = path.stat() if keep_mtime else None
    path.write_text(
        "from assetflow import asset\n\nFACTOR = %d\n\n\n@asset(io=\"json\")\ndef value() -> int:\n"
        "    return FACTOR * 10\n" % factor
    )
    if before is not None:  # a same-size edit within the file system's timestamp granularity
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    return path


def backdate(root: Path, seconds: int = 60) -> None:
    past = time.time_ns() - seconds * 10**9
    for path in [root, *root.rglob("*")]:
        os.utime(path, ns=(past, past))


def test_a_stale_pyc_of_the_same_size_and_mtime_is_never_run(tmp_path: Path, module_name: str) -> None:
    """CPython trusts a .pyc whose source has the same size and whole-second mtime; the project loader does not."""
    path = write_project(tmp_path, module_name, 3)
    cache = importlib.util.cache_from_source(str(path))
    py_compile.compile(str(path), cfile=cache, invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP)
    write_module(path, 4, keep_mtime=True)

    plain = importlib.util.spec_from_file_location(f"{module_name}_plain", path)
    assert plain is not None and isinstance(plain.loader, importlib.machinery.SourceFileLoader)
    stale = importlib.util.module_from_spec(plain)
    plain.loader.exec_module(stale)
    assert stale.FACTOR == 3  # the cause: Python's own loader runs the old code

    ws = Workspace.load(tmp_path)
    spec = ws.graph.specs["value"]
    assert sys.modules[module_name].FACTOR == 4
    assert spec.fn() == 40  # type: ignore[union-attr]
    assert ws.code(spec).sources[f"{module_name}.FACTOR"] == "4"


def test_the_loader_reuses_only_a_pyc_checked_against_the_bytes_it_read(
    tmp_path: Path, module_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytecode is cached (PYTHONDONTWRITEBYTECODE unset), hash-checked, so a same-instant edit is still seen."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = write_project(tmp_path, module_name, 3)
    assert Workspace.load(tmp_path).graph.specs["value"].fn() == 30  # type: ignore[union-attr]
    cache = Path(importlib.util.cache_from_source(str(path)))
    assert int.from_bytes(cache.read_bytes()[4:8], "little") == 0b11  # PEP 552: checked hash
    written = cache.stat().st_mtime_ns
    assert Workspace.load(tmp_path).graph.specs["value"].fn() == 30  # type: ignore[union-attr]
    assert cache.stat().st_mtime_ns == written  # reused, not compiled again

    write_module(path, 4, keep_mtime=True)
    ws = Workspace.load(tmp_path)
    assert ws.graph.specs["value"].fn() == 40  # type: ignore[union-attr]
    assert ws.code(ws.graph.specs["value"]).sources[f"{module_name}.FACTOR"] == "4"  # type: ignore[arg-type]


def test_the_fingerprint_reads_the_bytes_that_were_imported_not_the_file_now(tmp_path: Path, module_name: str) -> None:
    """An edit between the import and the (lazy) fingerprint must not pair new text with the old code."""
    path = write_project(tmp_path, module_name, 3)
    ws = Workspace.load(tmp_path)
    path.write_text(path.read_text().replace("FACTOR * 10", "FACTOR * 11"))
    spec = ws.graph.specs["value"]
    fingerprint = ws.code(spec)  # type: ignore[arg-type]
    assert spec.fn() == 30  # type: ignore[union-attr]
    assert "FACTOR * 10" in fingerprint.sources[f"{module_name}.value"]
    assert "FACTOR * 11" not in str(fingerprint.sources)

    fresh = Workspace.load(tmp_path)
    assert fresh.code(fresh.graph.specs["value"]).digest != fingerprint.digest  # type: ignore[arg-type]


def test_the_snapshot_and_graph_cache_vouch_for_the_stat_taken_before_the_read(
    tmp_path: Path, module_name: str
) -> None:
    """A file edited after the import, with a stat too old to look racy, must not be vouched for."""
    path = write_project(tmp_path, module_name, 3)
    backdate(tmp_path)
    ws = Workspace.load(tmp_path)
    write_module(path, 4)
    past = time.time_ns() - 30 * 10**9
    os.utime(path, ns=(past, past))  # newer than what was read, yet not racy at snapshot time

    assetflow.materialize(project=ws, executor="inprocess")
    save_graph_cache(ws)
    assert check_snapshot(ws.config, ws.store.get_meta(SNAPSHOT_KEY)) is None
    assert load_graph_cache(ws.config, ws.store.get_meta(GRAPH_KEY)) is None
    ws.close()

    rows = {row.name: row for row in assetflow.status(project=tmp_path)}
    assert rows["value"].state == "stale"  # the data is FACTOR = 3's, the code FACTOR = 4's


def test_a_module_appearing_during_the_run_is_seen_by_the_next(tmp_path: Path, module_name: str) -> None:
    """A folder vouches by its importable names as the import saw them, not by a stat taken after the run."""
    write_project(tmp_path, module_name, 3)
    backdate(tmp_path)
    ws = Workspace.load(tmp_path)
    (tmp_path / f"{module_name}_extra.py").write_text("X = 1\n")
    past = time.time_ns() - 30 * 10**9
    os.utime(tmp_path, ns=(past, past))
    assetflow.materialize(project=ws, executor="inprocess")
    assert ws.store.get_meta(SNAPSHOT_KEY) is None
    ws.close()


def test_a_worker_that_imports_other_bytes_than_were_fingerprinted_refuses(tmp_path: Path, module_name: str) -> None:
    """The same-size, same-mtime edit between the coordinator's import and a worker's: stats agree, bytes do not."""
    path = write_project(tmp_path, module_name, 3)
    ws = Workspace.load(tmp_path)
    token = register_workspace(ws)
    write_module(path, 4, keep_mtime=True)
    task_module._WORKSPACES.clear()  # as in a fresh worker process
    result = compute(ComputeTask(ws.config, "value", (), "json", token))
    assert result.stored is None
    assert result.error is not None and "changed on disk after this run started" in result.error
    assert "run `assetflow materialize` again" in result.error
    ws.close()


def test_a_worker_that_imports_the_same_bytes_runs(tmp_path: Path, module_name: str) -> None:
    path = write_project(tmp_path, module_name, 3)
    ws = Workspace.load(tmp_path)
    token = register_workspace(ws)
    os.utime(path)  # touched, not changed: the digest of its bytes is the same
    task_module._WORKSPACES.clear()
    result = compute(ComputeTask(ws.config, "value", (), "json", token))
    assert result.error is None and result.stored is not None
    ws.close()


def test_the_code_fingerprint_cache_holds_only_for_the_same_compiled_bytes(
    tmp_path: Path, module_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Digests kept across runs are reused while every module's bytes are the same, whatever the stat says."""
    path = write_project(tmp_path, module_name, 3)
    first = Workspace.load(tmp_path)
    assetflow.status(project=first)
    digest = first.code(first.graph.specs["value"]).digest  # type: ignore[arg-type]
    first.close()

    again = Workspace.load(tmp_path)
    assetflow.status(project=again)
    assert "value" not in again._code  # the walk was skipped
    assert again.code_digest(again.graph.specs["value"]) == digest  # type: ignore[arg-type]
    again.close()

    write_module(path, 4, keep_mtime=True)  # same size, same mtime: only the bytes tell
    edited = Workspace.load(tmp_path)
    rows = {row.name: row for row in assetflow.status(project=edited)}
    assert "value" in edited._code
    assert edited.code_digest(edited.graph.specs["value"]) != digest  # type: ignore[arg-type]
    assert rows["value"].state == "missing"
    edited.close()

    monkeypatch.setenv(DISABLE_ENV, "1")  # module-level values may depend on more than the files
    unsure = Workspace.load(tmp_path)
    assetflow.status(project=unsure)
    assert "value" in unsure._code
    unsure.close()


def test_a_run_keeps_the_code_digests_it_walked_for_the_next_full_check(tmp_path: Path, module_name: str) -> None:
    """A cold run fingerprints each asset at its turn (its upstreams were missing when it was planned);
    those digests are kept, so the next full check walks no code (it used to walk every asset again)."""
    (tmp_path / "pyproject.toml").write_text(f'[tool.assetflow]\nmodules = ["{module_name}"]\n')
    (tmp_path / f"{module_name}.py").write_text(
        "from assetflow import asset\n\n\n@asset(io=\"json\")\ndef first() -> int:\n    return 1\n\n\n"
        "@asset(io=\"json\")\ndef second(first: int) -> int:\n    return first + 1\n\n\n"
        "@asset(io=\"json\")\ndef third(second: int) -> int:\n    return second + 1\n")
    ws = Workspace.load(tmp_path)
    result = assetflow.materialize(project=ws, executor="inprocess")
    assert {n: r.outcome for n, r in result.results.items()} == dict.fromkeys(["first", "second", "third"], "ran")
    walked = {n: ws._code[n].digest for n in ("first", "second", "third")}
    ws.close()

    again = Workspace.load(tmp_path)
    verdicts = again.assess_all()
    assert {n: v.state for n, v in verdicts.items()} == dict.fromkeys(walked, "fresh")
    assert again._code == {}  # every digest came from the cache: no asset's code was walked
    assert {n: again.code_digest(again.graph.specs[n]) for n in walked} == walked  # type: ignore[arg-type]
    again.close()


def test_a_rerun_records_the_cached_code_without_walking_it_and_with_the_libraries_installed_now(
    tmp_path: Path, module_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An asset rerun because its input changed, its code unchanged, records the cached digest, the same
    libraries at today's versions, and no second copy of its sources; code that changed is walked."""
    from assetflow.fingerprint import code as code_module

    (tmp_path / "pyproject.toml").write_text(f'[tool.assetflow]\nmodules = ["{module_name}"]\n')
    (tmp_path / "numbers.csv").write_text("n\n1\n")
    (tmp_path / f"{module_name}.py").write_text(
        "import polars as pl\nfrom assetflow import asset, source\n\nnumbers = source('numbers.csv')\n\n\n"
        "@asset\ndef doubled(numbers: pl.DataFrame) -> pl.DataFrame:\n    return numbers.with_columns(pl.col('n') * 2)\n")
    ws = Workspace.load(tmp_path)
    assetflow.materialize(project=ws, executor="inprocess")
    first = ws.store.current()["doubled"]
    ws.close()
    assert "polars" in first.libraries

    (tmp_path / "numbers.csv").write_text("n\n2\n")
    monkeypatch.setattr(code_module, "_version", lambda name: f"{name}-upgraded")  # installed versions moved
    again = Workspace.load(tmp_path)
    result = assetflow.materialize(project=again, executor="inprocess")
    assert result.results["doubled"].outcome == "ran"
    second = again.store.current()["doubled"]
    assert "doubled" not in again._code  # recorded without walking the code
    assert second.code_fingerprint == first.code_fingerprint
    assert second.libraries == {name: f"{name}-upgraded" for name in first.libraries}
    assert again.store.code_sources(second.code_fingerprint) is not None
    again.close()

    source = (tmp_path / f"{module_name}.py").read_text()
    (tmp_path / f"{module_name}.py").write_text(source.replace("* 2", "* 3"))
    edited = Workspace.load(tmp_path)
    assetflow.materialize(project=edited, executor="inprocess")
    third = edited.store.current()["doubled"]
    assert third.code_fingerprint != first.code_fingerprint
    assert "* 3" in json.dumps(edited.store.code_sources(third.code_fingerprint))
    edited.close()


def test_a_load_caught_in_an_in_place_save_is_tried_again(tmp_path: Path, module_name: str) -> None:
    """An editor saving in place (truncate, then write) can be caught half-way: the import fails and the file
    moves once the save lands. The load looks again instead of failing the command (it used to exit 2)."""
    from assetflow.project import SAVE_PAUSE_S, load_config, load_specs

    path = write_project(tmp_path, module_name, 3)
    path.write_text("from assetflow import asset\n\nFACTOR = 4\n\n\n@asset(io=\"json\")\ndef value() -> int:\n")
    pauses: list[float] = []

    def the_save_lands(seconds: float) -> None:
        pauses.append(seconds)
        write_module(path, 4)

    specs = load_specs(load_config(tmp_path), pause=the_save_lands)
    assert pauses == [SAVE_PAUSE_S]
    assert specs["value"].fn() == 40  # type: ignore[union-attr]


def test_an_import_error_in_files_that_stay_put_is_reported_after_one_look(tmp_path: Path, module_name: str) -> None:
    from assetflow.errors import ProjectLoadError
    from assetflow.project import SAVE_PAUSE_S, load_config, load_specs

    path = write_project(tmp_path, module_name, 3)
    path.write_text("from assetflow import asset\n\ndef broken(:\n")
    pauses: list[float] = []
    with pytest.raises(ProjectLoadError, match="SyntaxError"):
        load_specs(load_config(tmp_path), pause=pauses.append)
    assert pauses == [SAVE_PAUSE_S]  # one look: nothing moved, so the error is the user's


def test_a_daemon_reloads_after_an_edit_that_landed_during_its_load(
    tmp_path: Path, module_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon compares the code with the stat taken before it was read, so an edit between its import and its
    own bookkeeping is seen at the next tick (it used to stat after the import, and never reloaded)."""
    from assetflow.automation.daemon import Daemon

    path = write_project(tmp_path, module_name, 3)
    backdate(tmp_path)
    load = Workspace.load.__func__  # type: ignore[attr-defined]

    def load_then_edit(cls: type[Workspace], *args: object, **kwargs: object) -> Workspace:
        ws = load(cls, *args, **kwargs)
        write_module(path, 4)  # lands after the import, before the daemon records what it loaded
        return ws

    monkeypatch.setattr(Workspace, "load", classmethod(load_then_edit))
    daemon = Daemon(tmp_path, executor="inprocess").open()  # type: ignore[arg-type]
    monkeypatch.undo()
    assert daemon._code_changed()
    daemon.close()


def test_the_project_finder_answers_only_for_project_sources(tmp_path: Path, module_name: str) -> None:
    """Anything else is left to the usual finders and hooks (pytest's assertion rewriting, editable installs)."""
    from assetflow.fingerprint.imports import ProjectFinder, ProjectLoader

    write_project(tmp_path, module_name, 3)
    Workspace.load(tmp_path)
    assert ProjectFinder in sys.meta_path
    spec = ProjectFinder.find_spec(module_name)
    assert spec is not None and isinstance(spec.loader, ProjectLoader)
    assert ProjectFinder.find_spec("textwrap") is None  # the standard library: not the project's
    assert ProjectFinder.find_spec("pytest") is None  # a site-packages distribution
    assert ProjectFinder.find_spec("json.decoder", [str(Path(json.__file__).parent)]) is None


# -- the stress test: random edits around real runs -------------------------------------------------------

STRESS_RUNS_ENV = "ASSETFLOW_EDIT_STRESS_RUNS"  # materialize runs in all (default below); 600 for a long local run
STRESS_SEED_ENV = "ASSETFLOW_EDIT_STRESS_SEED"
KNOBS = {  # file -> (template, the two values an edit switches between: equal sizes)
    "consts.py": ("FACTOR = {}\n", (3, 4)),
    "helpers.py": ("def bump(x):\n    return x + {}\n", (5, 6)),
    "body.py": ('from assetflow import asset\n\n\n@asset(io="json")\ndef body(base):\n    return sum(base) * {}\n',
                (7, 8)),
}
PIPELINE_STRESS = '''
import time

import consts
from assetflow import asset
from body import body
from helpers import bump


@asset(io="json")
def base():
    return [1, 2, 3]


@asset(io="json")
def scaled(base):
    return [v * consts.FACTOR for v in base]


@asset(io="json")
def bumped(scaled):
    return [bump(v) for v in scaled]


@asset(io="json")
def total(bumped, body):
    return sum(bumped) + body


@asset(io="json")
def count(base):
    time.sleep(0.02)
    return len(base)
'''
PIPELINE_STRESS += "".join(
    f'\n\n@asset(io="json")\ndef slow_{i}(scaled, body):\n    time.sleep(0.02)\n'
    f'    return [bump(v) + body for v in scaled]\n'
    for i in range(4)
)


class StressProject:
    """The stressed project, its current knob values, and clean builds of each combination (shared, computed once)."""

    clean: dict[tuple[int, ...], dict[str, str]] = {}
    clean_lock = threading.Lock()

    def __init__(self, root: Path, clean_root: Path) -> None:
        self.root = root
        self.clean_root = clean_root
        self.values = {name: values[0] for name, (_, values) in KNOBS.items()}
        root.mkdir()
        self.write_all(root, self.values)

    @staticmethod
    def write_all(root: Path, values: dict[str, int]) -> None:
        (root / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
        (root / "pipeline.py").write_text(PIPELINE_STRESS)
        for name, (template, _) in KNOBS.items():
            (root / name).write_text(template.format(values[name]))

    def edit(self, rng: random.Random) -> None:
        """Switch one knob, in place (truncate and write, as most editors save) or by rename (atomic save)."""
        name = rng.choice(sorted(KNOBS))
        template, (a, b) = KNOBS[name]
        self.values[name] = b if self.values[name] == a else a
        text = template.format(self.values[name])
        if rng.random() < 0.8:
            (self.root / name).write_text(text)
        else:
            temporary = self.root / f".{name}.swp"
            temporary.write_text(text)
            os.replace(temporary, self.root / name)

    def expected(self) -> dict[str, str]:
        """Every asset's data hash in a clean build of the code as it is now (in a new folder, no .pyc)."""
        key = tuple(self.values[name] for name in sorted(KNOBS))
        with self.clean_lock:
            if key not in self.clean:
                folder = self.clean_root / "-".join(map(str, key))
                folder.mkdir(parents=True)
                self.write_all(folder, dict(zip(sorted(KNOBS), key, strict=True)))
                run(folder, "materialize", "--executor", "inprocess", check=True)
                rows = json.loads(run(folder, "status", "--json", check=True).stdout)["assets"]
                assert all(r["state"] == "fresh" for r in rows), rows
                self.clean[key] = {r["name"]: r["data_hash"] for r in rows}
            return self.clean[key]


def run(root: Path, *args: str, check: bool = False,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "assetflow", *args], cwd=root, capture_output=True, text=True,
                          timeout=120, env=env or _env(write_bytecode=False))
    if check and proc.returncode != 0:
        raise AssertionError(f"assetflow {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _env(*, write_bytecode: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.mark.slow
def test_random_edits_around_runs_never_leave_stale_data_fresh(tmp_path: Path) -> None:
    """Edits of equal size (a constant, a helper, an asset's body) land at random instants before, during and just
    after runs of both executors; after each run, every asset ``status`` calls fresh holds what a clean build of the
    code as it is now holds. A run may refuse an asset ("changed on disk after this run started"), never mislabel it.

    Two projects are stressed side by side (a thread each), alternating the processes and inprocess executors.
    """
    runs = int(os.environ.get(STRESS_RUNS_ENV, "140"))
    seed = int(os.environ.get(STRESS_SEED_ENV, "18"))
    tallies: list[dict[str, int]] = []
    mislabelled: list[str] = []
    errors: list[BaseException] = []

    def stream(k: int) -> None:
        try:
            tallies.append(_stress(StressProject(tmp_path / f"project{k}", tmp_path / "clean"),
                                   random.Random(seed * 10 + k), runs // 2 + (k < runs % 2), mislabelled))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    tally = {key: sum(t[key] for t in tallies) for key in tallies[0]}
    print(f"\nedit stress: {tally}")
    assert tally["runs"] == runs
    assert not mislabelled, f"{tally}\n" + "\n".join(mislabelled)


def _stress(project: StressProject, rng: random.Random, runs: int, mislabelled: list[str]) -> dict[str, int]:
    run(project.root, "materialize", "--executor", "inprocess", check=True)
    durations = {"processes": 2.0, "inprocess": 1.0}
    tally = {"runs": 0, "edits": 0, "fresh checked": 0, "refused": 0, "torn save": 0, "stale but fresh": 0}
    for index in range(runs):
        executor = ("processes", "inprocess")[index % 2]
        env = _env(write_bytecode=rng.random() < 0.8)
        # Instants from just before the run starts to half a second after it typically ends.
        delays = sorted(rng.uniform(-0.05, durations[executor] + 0.5) for _ in range(rng.choice((1, 1, 2))))
        started = time.monotonic()
        if delays[0] < 0:
            project.edit(rng)
            delays = delays[1:]
            tally["edits"] += 1
        editor = threading.Thread(target=_edit_at, args=(project, random.Random(rng.random()), started, delays))
        editor.start()
        command = [sys.executable, "-m", "assetflow", "materialize", "--executor", executor, "--json"]
        proc = subprocess.run([*command, *(["--jobs", "2"] if executor == "processes" else [])],
                              cwd=project.root, capture_output=True, text=True, timeout=120, env=env)
        durations[executor] = 0.8 * durations[executor] + 0.2 * (time.monotonic() - started)
        editor.join()
        tally["runs"] += 1
        tally["edits"] += len(delays)
        assert proc.returncode in (0, 1, 2), f"materialize exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        if proc.returncode == 2:
            # An in-place save caught between its truncate and its write: the module cannot be imported
            # (a name it defines is missing), so the run refuses to load the project and records nothing.
            assert '"ProjectLoadError"' in proc.stdout and "ImportError" in proc.stdout, proc.stdout + proc.stderr
            tally["torn save"] += 1
        elif proc.returncode == 1:
            assert "changed on disk after this run started" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
            tally["refused"] += 1
        rows = json.loads(run(project.root, "status", "--json", env=env).stdout)["assets"]
        expected = project.expected()
        for row in rows:
            if row["state"] != "fresh":
                continue
            tally["fresh checked"] += 1
            if row["data_hash"] != expected[row["name"]]:
                tally["stale but fresh"] += 1
                mislabelled.append(
                    f"{project.root.name} run {index} ({executor}): {row['name']}, knobs {project.values}")
    return tally


def _edit_at(project: StressProject, rng: random.Random, started: float, delays: list[float]) -> None:
    for delay in delays:
        time.sleep(max(0.0, started + delay - time.monotonic()))
        project.edit(rng)
