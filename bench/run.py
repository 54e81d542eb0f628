"""The core benchmark suite: whole-process wall time and peak memory of ``assetflow materialize``.

For each shape (chain, wide, layered; see bench/generate.py) and size N (100, 1,000, 10,000) it
generates a project and runs, each as a child process timed from outside:

- ``cold``: no state; every asset runs (checked).
- ``noop_first``: the first no-op after it (``--json``; checked: every asset fresh).
- ``noop``: nothing changed, median of 5 (text output; checked: "Everything is fresh").
- ``noop_json``: the same with ``--json``, median of 5 (checked: every asset fresh, 0 ran).
- ``noop_full``: a no-op with the fast path switched off (``ASSETFLOW_NO_FAST_PATH=1``), median of 3:
  the cost of the full check the fast path falls back to.
- ``identical``: a source rewritten with identical bytes (new inode and mtime), median of 3
  (checked: 0 ran).
- ``changed``: one value of that source changed (checked: exactly its downstream cone ran).
- ``revert``: the source's original bytes back (checked: 0 ran, the cone restored from the version store).
- ``noop_after_revert``: the next no-op (checked: every asset fresh).

The generated files are dated an hour back, as in a project that existed before the bench, so that
assetflow's "racy clean" rule (a stat token younger than ~2 s is not trusted) does not apply to them;
a rewritten source is young, as it would be for a user.

Also ``assetflow --help`` and interpreter baselines. Peak memory is the child's ``ru_maxrss`` from
``os.wait4``. Every run has a timeout (``--timeout``, default 20 min); a timeout is recorded as such.
A wrong result (a check above failing) is recorded, printed loudly, and makes the exit status 1.

Results go to bench/results/core.json (``--quick``: N=100 only, to bench/results/tmp/core-quick.json);
``--update-doc`` rewrites the generated tables in docs/benchmarks.md from them, and ``--report-only``
does only that. Run it with the project's venv: ``.venv/bin/python bench/run.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import MANIFEST, SHAPES, downstream_cone, generate, source_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "core.json"
QUICK_RESULTS = REPO / "bench" / "results" / "tmp" / "core-quick.json"
DOC = REPO / "docs" / "benchmarks.md"
DOC_START, DOC_END = "<!-- bench:core:start -->", "<!-- bench:core:end -->"
FAST_PATH_OFF = "ASSETFLOW_NO_FAST_PATH"
EXECUTOR_ENV = "ASSETFLOW_EXECUTOR"
PYCACHE = REPO / "bench" / "results" / "tmp" / "pycache"  # git-ignored
SCHEMA_VERSION = 1

# docs/concepts.md, "Performance budgets", in seconds and MB.
NOOP_BUDGET = {100: 0.15, 1000: 0.25, 10000: 1.0}
COLD_BUDGET = {100: 0.5, 1000: 2.5, 10000: 30.0}
HELP_BUDGET = 0.2
NOOP_MEMORY_BUDGET = {10000: 500.0}


class Wrong(Exception):
    """A benchmark run gave a wrong answer (ran too much, too little, or failed)."""


# -- running a child --------------------------------------------------------------------------

def child_env(bytecode_cache: bool = True, fast_path: bool = True, executor: str | None = None) -> dict[str, str]:
    """The environment for measured children.

    With ``bytecode_cache`` (the default) Python writes and reads .pyc files as it does on a user's
    machine, under a bench-private PYTHONPYCACHEPREFIX so no other folder gets __pycache__; an inherited
    PYTHONDONTWRITEBYTECODE=1 would make every run recompile assetflow, click, polars and the project.
    """
    env = dict(os.environ)
    if executor:
        env[EXECUTOR_ENV] = executor
    env.pop(FAST_PATH_OFF, None)
    if not fast_path:
        env[FAST_PATH_OFF] = "1"
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        PYCACHE.mkdir(parents=True, exist_ok=True)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def _become_subreaper() -> bool:
    """Adopt our children's orphans (Linux), so a run's worker processes are reaped, and counted, here."""
    try:
        import ctypes

        return int(ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


SUBREAPER = _become_subreaper()


def _reap_orphans(group: int, grace: float = 30.0) -> tuple[float, float, int, float]:
    """Wait for processes a run left behind (e.g. pool workers it did not join).

    Returns their CPU time, peak RSS, count, and how long after the run's exit the last one ended.
    """
    cpu, maxrss, count, lag = 0.0, 0, 0, 0.0
    start = time.monotonic()
    deadline = start + grace
    while SUBREAPER:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
            time.sleep(0.01)
            continue
        cpu += usage.ru_utime + usage.ru_stime
        maxrss = max(maxrss, usage.ru_maxrss)
        count += 1
        lag = time.monotonic() - start
    return cpu, maxrss, count, lag


def run_child(argv: list[str], timeout: float, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> dict[str, Any]:
    """Run ``argv``; its wall time from outside, CPU time and peak RSS (with its workers'), exit code, output.

    The wall time ends when the process exits. CPU and memory come from ``os.wait4``, which covers the
    processes it waited for; workers it left running are adopted (we are a child subreaper) and added.
    """
    timed_out = threading.Event()

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=cwd,
                                start_new_session=True)

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        orphan_cpu, orphan_rss, orphans, orphan_lag = _reap_orphans(proc.pid)
        out.seek(0)
        err.seek(0)
        return {
            "wall_s": round(wall, 4),
            "cpu_s": round(usage.ru_utime + usage.ru_stime + orphan_cpu, 4),  # robust to other load
            "maxrss_mb": round(max(usage.ru_maxrss, orphan_rss) * 1024 / 1e6, 1),  # Linux reports KiB
            "orphans": orphans, "orphans_lag_s": round(orphan_lag, 3),
            "returncode": proc.returncode,
            "timed_out": timed_out.is_set(),
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
        }


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class Project:
    """One generated project and the runs made on it."""

    def __init__(self, folder: Path, assetflow: str, timeout: float, bytecode_cache: bool = True,
                 executor: str | None = None) -> None:
        self.folder = folder
        self.executor = executor
        self.assetflow = assetflow
        self.timeout = timeout
        self.bytecode_cache = bytecode_cache
        self.manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        self.names = set(self.manifest["edges"])

    def materialize(self, what: str, *, as_json: bool, fast_path: bool = True) -> dict[str, Any]:
        env = child_env(self.bytecode_cache, fast_path, self.executor)
        argv = [self.assetflow, "materialize", "--project", str(self.folder)] + (["--json"] if as_json else [])
        run = run_child(argv, self.timeout, env=env, cwd=self.folder)
        if run["timed_out"]:
            raise TimeoutError(f"{what}: no result after {self.timeout:.0f} s (killed)")
        if run["returncode"] != 0:
            raise Wrong(f"{what}: exit status {run['returncode']}\n{_tail(run['stderr'] or run['stdout'])}")
        return run

    def outcomes(self, what: str, run: dict[str, Any]) -> dict[str, str]:
        """Each asset's outcome from ``--json`` output; checks every asset is reported once."""
        try:
            payload = json.loads(run["stdout"])
        except json.JSONDecodeError as exc:
            raise Wrong(f"{what}: --json output is not JSON ({exc}): {run['stdout'][:200]!r}") from exc
        run["fast_path"] = bool(payload.get("fast_path", False))
        outcomes = {a["name"]: a["outcome"] for a in payload.get("assets", [])}
        if set(outcomes) != self.names:
            missing, extra = sorted(self.names - set(outcomes)), sorted(set(outcomes) - self.names)
            raise Wrong(f"{what}: --json reports {len(outcomes)} assets, expected {len(self.names)} "
                        f"(missing {missing[:5]}, unexpected {extra[:5]})")
        return outcomes

    def source_file(self, name: str) -> Path:
        return self.folder / self.manifest["sources"][name]["path"]

    def write_source(self, name: str, *, bump: int = 0, identical: bool = False) -> None:
        """Replace a source file with a new inode: identical bytes, or row 0's ``tag`` bumped."""
        path = self.source_file(name)
        if identical:
            data = path.read_bytes()
        else:
            data = source_rows(self.manifest["sources"][name]["index"], self.manifest["rows"], bump).encode()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


def _expect(what: str, outcomes: dict[str, str], ran: set[str], restored: set[str] = frozenset()) -> None:
    """Exactly ``ran`` ran, exactly ``restored`` were restored, everything else is fresh."""
    problems = []
    for name, outcome in sorted(outcomes.items()):
        expected = "ran" if name in ran else "restored" if name in restored else "fresh"
        if outcome != expected:
            problems.append(f"{name}: {outcome} (expected {expected})")
    if problems:
        raise Wrong(f"{what}: {len(problems)} assets with the wrong outcome, e.g. " + "; ".join(problems[:8]))


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    summary: dict[str, Any] = {
        "median_s": round(statistics.median(walls), 4), "min_s": min(walls), "max_s": max(walls),
        "runs_s": walls, "cpu_median_s": round(statistics.median(r["cpu_s"] for r in runs), 4),
        "maxrss_mb": max(r["maxrss_mb"] for r in runs), "runs_maxrss_mb": [r["maxrss_mb"] for r in runs],
        "orphans": max(r["orphans"] for r in runs),
    }
    if any("fast_path" in r for r in runs):
        summary["fast_path"] = [r.get("fast_path", False) for r in runs]
    return summary


def _run_figures(run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run."""
    keys = ("wall_s", "cpu_s", "maxrss_mb", "orphans", "orphans_lag_s", "fast_path")
    return {k: run[k] for k in keys if k in run}


def bench_project(shape: str, n: int, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Generate one project and run every scenario on it; never raises for a slow or wrong run."""
    started = time.perf_counter()
    folder = workdir / f"{shape}-{n}"
    manifest = generate(folder, shape, n, seed=args.seed, per_module=args.per_module, rows=args.rows)
    changed_source = sorted(manifest["sources"])[-1]
    cone = downstream_cone(manifest["edges"], changed_source)
    entry: dict[str, Any] = {
        "shape": shape, "n": n, "modules": len(manifest["modules"]) - 1, "sources": len(manifest["sources"]),
        "edges": sum(len(u) for u in manifest["edges"].values()), "changed_source": changed_source,
        "cone": len(cone), "status": "ok", "figures": {}, "load_avg": {"before": os.getloadavg()},
    }
    figures = entry["figures"]
    project = Project(folder, args.assetflow, args.timeout, args.bytecode_cache, args.executor)
    step = "cold"

    def say(text: str) -> None:
        print(f"  [{shape} N={n}] {text}", file=sys.stderr, flush=True)

    try:
        run = project.materialize("cold run", as_json=True)
        _expect("cold run", project.outcomes("cold run", run), project.names)
        figures["cold"] = _run_figures(run)
        say(f"cold {run['wall_s']:.2f} s, {run['maxrss_mb']:.0f} MB")

        step = "noop_first"
        run = project.materialize("first no-op run after the cold run", as_json=True)
        _expect("first no-op run after the cold run", project.outcomes("first no-op run", run), set())
        figures["noop_first"] = _run_figures(run)

        step = "noop"
        runs = []
        for _ in range(args.repeat):
            run = project.materialize("no-op run", as_json=False)
            if "Everything is fresh" not in run["stdout"]:
                raise Wrong("no-op run: stdout lacks 'Everything is fresh' (if the message changed, update "
                            f"bench/run.py): {_tail(run['stdout'] + run['stderr'], 5)!r}")
            runs.append(run)
        figures["noop"] = _summary(runs)

        step = "noop_json"
        runs = []
        for _ in range(args.repeat):
            run = project.materialize("no-op run (--json)", as_json=True)
            _expect("no-op run (--json)", project.outcomes("no-op run (--json)", run), set())
            runs.append(run)
        figures["noop_json"] = _summary(runs)

        step = "noop_full"
        runs = []
        for _ in range(max(1, args.repeat - 2)):
            run = project.materialize("no-op run, fast path off", as_json=True, fast_path=False)
            _expect("no-op run, fast path off", project.outcomes("no-op run, fast path off", run), set())
            runs.append(run)
        figures["noop_full"] = _summary(runs)
        say(f"first no-op {figures['noop_first']['wall_s']:.3f} s, "
            f"no-op {figures['noop']['median_s']:.3f} s (--json {figures['noop_json']['median_s']:.3f} s, "
            f"fast path off {figures['noop_full']['median_s']:.3f} s), {figures['noop']['maxrss_mb']:.0f} MB")

        step = "identical"
        runs = []
        for _ in range(max(1, args.repeat - 2)):
            project.write_source(changed_source, identical=True)
            run = project.materialize("identical rewrite", as_json=True)
            _expect("identical rewrite", project.outcomes("identical rewrite", run), set())
            runs.append(run)
        figures["identical"] = _summary(runs)

        step = "changed"
        project.write_source(changed_source, bump=1)
        run = project.materialize("one value changed", as_json=True)
        _expect(f"one value of {changed_source} changed", project.outcomes("one value changed", run), cone)
        figures["changed"] = {**_run_figures(run), "ran": len(cone)}

        step = "revert"
        project.write_source(changed_source, bump=0)
        run = project.materialize("source reverted", as_json=True)
        _expect(f"{changed_source} reverted", project.outcomes("source reverted", run), set(), restored=cone)
        figures["revert"] = {**_run_figures(run), "restored": len(cone)}

        step = "noop_after_revert"
        run = project.materialize("no-op run after the revert", as_json=True)
        _expect("no-op run after the revert", project.outcomes("no-op run after the revert", run), set())
        figures["noop_after_revert"] = _run_figures(run)
        say(f"identical {figures['identical']['median_s']:.3f} s, changed ({len(cone)} ran) "
            f"{figures['changed']['wall_s']:.2f} s, revert {figures['revert']['wall_s']:.2f} s, "
            f"next no-op {figures['noop_after_revert']['wall_s']:.2f} s")
    except TimeoutError as exc:
        entry["status"], entry["problem"] = "timeout", f"{step}: {exc}"
        say(f"TIMEOUT: {exc}")
    except Wrong as exc:
        entry["status"], entry["problem"] = "wrong", str(exc)
        print(f"\n!!! WRONG RESULT [{shape} N={n}] {exc}\n", file=sys.stderr, flush=True)
    entry["load_avg"]["after"] = os.getloadavg()
    entry["elapsed_s"] = round(time.perf_counter() - started, 1)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return entry


# -- whole suite ------------------------------------------------------------------------------

def timed_median(argv: list[str], repeat: int, timeout: float, env: dict[str, str]) -> dict[str, Any]:
    run_child(argv, timeout, env=env)  # warm-up: fills the bytecode cache
    runs = [run_child(argv, timeout, env=env) for _ in range(repeat)]
    bad = [r for r in runs if r["returncode"] != 0 or r["timed_out"]]
    if bad:
        raise Wrong(f"{' '.join(argv)}: exit status {bad[0]['returncode']}\n{_tail(bad[0]['stderr'])}")
    return _summary(runs)


def baselines(args: argparse.Namespace) -> dict[str, Any]:
    python = str(Path(args.assetflow).with_name("python"))
    env = child_env(args.bytecode_cache)
    empty = tempfile.mkdtemp(prefix="assetflow-bench-nopyc-")  # nothing cached to read, nothing written
    no_cache = {**child_env(False), "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty}
    return {
        "help": timed_median([args.assetflow, "--help"], args.repeat, 60, env),
        "python_startup": timed_median([python, "-c", "pass"], args.repeat, 60, env),
        "import_polars": timed_median([python, "-c", "import polars"], args.repeat, 60, env),
        "import_assetflow_cli": timed_median([python, "-c", "import assetflow.cli"], args.repeat, 60, env),
        "import_polars_no_bytecode_cache": timed_median([python, "-c", "import polars"], args.repeat, 60,
                                                        no_cache),
    }


def _git(*argv: str) -> str:
    try:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    memory_gb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = round(int(line.split()[1]) / 1e6, 1)
    except OSError:
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "hostname": platform.node()}


def versions(assetflow: str) -> dict[str, Any]:
    python = Path(assetflow).with_name("python")
    code = ("import json, sys\nfrom importlib import metadata\n"
            "print(json.dumps({'python': sys.version.split()[0], **{p: metadata.version(p) for p in "
            "('assetflow', 'polars', 'pyarrow', 'duckdb', 'blake3', 'click')}}))")
    found = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    result: dict[str, Any] = json.loads(found.stdout) if found.returncode == 0 else {"error": found.stderr[-500:]}
    dirty = [line[3:] for line in _git("status", "--porcelain", "--untracked-files=no").splitlines()]
    result["git_commit"] = _git("rev-parse", "HEAD").strip()
    result["git_dirty_files"] = sorted(dirty)
    return result


def _estimate_big(entries: list[dict[str, Any]], shape: str, n: int) -> tuple[float | None, str]:
    """Extrapolate a project's total bench time from the same shape one decade smaller."""
    by_n = {e["n"]: e for e in entries if e["shape"] == shape and e["status"] == "ok"}
    smaller, smallest = by_n.get(n // 10), by_n.get(n // 100)
    if smaller is None:
        return None, f"no {shape} N={n // 10} figures to extrapolate from"
    growth = 10.0
    if smallest is not None and smallest["elapsed_s"] > 0:
        growth = max(growth, smaller["elapsed_s"] / smallest["elapsed_s"])
    estimate = smaller["elapsed_s"] * growth
    return estimate, (f"{shape} N={n // 10} took {smaller['elapsed_s']:.0f} s in all; growth x{growth:.1f} per "
                      f"decade gives ~{estimate / 60:.0f} min for N={n}")


def run_suite(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    if args.merge and args.out.exists():
        results = json.loads(args.out.read_text(encoding="utf-8"))
    results.update({
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(), "versions": versions(args.assetflow),
        "settings": {"bytecode_cache": args.bytecode_cache,
                     "inherited_PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
                     "executor": args.executor or os.environ.get(EXECUTOR_ENV) or "assetflow's default",
                     "repeat": args.repeat, "timeout_s": args.timeout, "rows": args.rows,
                     "per_module": args.per_module, "seed": args.seed, "assetflow": args.assetflow},
        "budgets": {"noop_s": NOOP_BUDGET, "cold_s": COLD_BUDGET, "help_s": HELP_BUDGET,
                    "noop_memory_mb": NOOP_MEMORY_BUDGET},
    })
    print("baselines (--help, interpreter, imports)...", file=sys.stderr, flush=True)
    results["baselines"] = baselines(args)
    help_s = results["baselines"]["help"]["median_s"]
    print(f"  assetflow --help {help_s:.3f} s", file=sys.stderr, flush=True)
    kept = [e for e in results.get("projects", []) if not (e["shape"] in args.shapes and e["n"] in args.sizes)]
    entries: list[dict[str, Any]] = []
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="assetflow-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for n in sorted(args.sizes):
            for shape in args.shapes:
                if n >= 10000 and shape not in args.big_shapes:
                    entries.append({"shape": shape, "n": n, "status": "not run",
                                    "problem": f"N={n} runs only for --big-shapes ({', '.join(args.big_shapes)})"})
                    continue
                if n >= 10000 and not args.no_guard:
                    estimate, why = _estimate_big(entries + kept, shape, n)
                    if estimate is not None and estimate > args.max_minutes * 60:
                        entries.append({"shape": shape, "n": n, "status": "not run",
                                        "problem": f"estimated too slow: {why} (> --max-minutes {args.max_minutes})"})
                        print(f"  [{shape} N={n}] not run: {why}", file=sys.stderr, flush=True)
                        continue
                print(f"{shape} N={n}...", file=sys.stderr, flush=True)
                entries.append(bench_project(shape, n, workdir, args))
                results["projects"] = kept + entries
                _write(args.out, results)
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["projects"] = sorted(kept + entries, key=lambda e: (e["n"], SHAPES.index(e["shape"])))
    _write(args.out, results)
    return results


def _write(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


# -- report -----------------------------------------------------------------------------------

def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f} s" if value < 1 else f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def _verdict(value: float | None, budget: float | None) -> str:
    if value is None or budget is None:
        return "-"
    return "PASS" if value <= budget else f"MISS (x{value / budget:.1f})"


def _wall(f: dict[str, Any], key: str) -> tuple[float | None, float | None]:
    """(wall, CPU) seconds of a figure: the median of a repeated one, else its single run."""
    fig = f.get(key, {})
    if "median_s" in fig:
        return fig["median_s"], fig.get("cpu_median_s")
    return fig.get("wall_s"), fig.get("cpu_s")


def _med(f: dict[str, Any], key: str) -> str:
    return _s(f[key]["median_s"]) if key in f else "-"


def _single(f: dict[str, Any], key: str) -> str:
    """One run's wall time, marked when the no-op fast path was not used."""
    if key not in f:
        return "-"
    return _s(f[key]["wall_s"]) + ("" if f[key].get("fast_path", True) else " (full check)")


def _one(f: dict[str, Any], key: str, count: str) -> str:
    return f"{_s(f[key]['wall_s'])} ({f[key][count]:,})" if key in f else "-"


def render_markdown(results: dict[str, Any]) -> str:
    """The generated part of docs/benchmarks.md: budgets table, all figures, run details."""
    projects = results.get("projects", [])
    lines = ["| figure | N | shape | measured: wall (CPU) | budget (docs/concepts.md) | result |", "|---|---|---|---|---|---|"]
    help_fig = results["baselines"]["help"]
    help_s, help_cpu = help_fig["median_s"], help_fig.get("cpu_median_s")
    lines.append(f"| `assetflow --help` (median of {results['settings']['repeat']}) | - | - | {_s(help_s)}"
                 + (f" (CPU {_s(help_cpu)})" if help_cpu is not None else "")
                 + f" | < {HELP_BUDGET} s | {_verdict(help_s, HELP_BUDGET)} |")
    for e in projects:
        n, shape = e["n"], e["shape"]
        f = e.get("figures", {})
        if e["status"] != "ok" and not f:
            lines.append(f"| all | {n:,} | {shape} | {e['status'].upper()}: {e.get('problem', '')} | - | - |")
            continue
        noop_b, cold_b = NOOP_BUDGET.get(n), COLD_BUDGET.get(n)

        for key, label in (("noop", "no-op peak memory"), ("noop_full", "no-op peak memory, fast path off")):
            if key in f and n in NOOP_MEMORY_BUDGET:
                mem, mem_b = f[key]["maxrss_mb"], NOOP_MEMORY_BUDGET[n]
                lines.append(f"| {label} | {n:,} | {shape} | {mem:.0f} MB | < {mem_b:.0f} MB | "
                             f"{'PASS' if mem < mem_b else 'MISS'} |")
        rows = [("no-op (median of 5)", *_wall(f, "noop"), noop_b), ("cold", *_wall(f, "cold"), cold_b)]
        if noop_b is not None and cold_b is not None:
            rows.append(("identical rewrite (derived: no-op budget)", *_wall(f, "identical"), noop_b))
            rows.append((f"one value changed, {e['cone']:,} ran (derived: no-op + cone x cold/N)",
                         *_wall(f, "changed"), noop_b + e["cone"] * cold_b / n))
        for label, value, cpu, budget in rows:
            measured = _s(value) + (f" (CPU {_s(cpu)})" if cpu is not None else "")
            lines.append(f"| {label} | {n:,} | {shape} | {measured} | "
                         f"{'-' if budget is None else '≤ ' + _s(budget)} | {_verdict(value, budget)} |")
        if e["status"] != "ok":
            lines.append(f"| rest | {n:,} | {shape} | {e['status'].upper()}: {e.get('problem', '')} | - | - |")

    lines += ["", "All figures (seconds, whole process, wall time; memory = peak RSS of the largest process, the run "
              "or a worker it started, MB; medians of 5 for no-op and no-op --json, of 3 for fast path off and "
              "identical rewrite):", "",
              "| shape | N | modules | cold | first no-op | no-op | no-op --json | no-op, fast path off | "
              "identical rewrite | one changed (ran) | revert (restored) | next no-op | RSS no-op / off / cold | "
              "status |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in projects:
        f = e.get("figures", {})
        rss = " / ".join(f"{f[k]['maxrss_mb']:.0f}" if k in f else "-" for k in ("noop", "noop_full", "cold"))
        status = e["status"] if e["status"] == "ok" else f"{e['status']}: {e.get('problem', '')}".replace("\n", " ")
        cold = _s(f["cold"]["wall_s"]) if "cold" in f else "-"
        lines.append(f"| {e['shape']} | {e['n']:,} | {e.get('modules', '-')} | {cold} | {_single(f, 'noop_first')} | "
                     f"{_med(f, 'noop')} | {_med(f, 'noop_json')} | {_med(f, 'noop_full')} | {_med(f, 'identical')} | "
                     f"{_one(f, 'changed', 'ran')} | {_one(f, 'revert', 'restored')} | "
                     f"{_single(f, 'noop_after_revert')} | {rss} | {status[:200]} |")
    b = results["baselines"]
    m, v = results["machine"], results["versions"]
    dirty = ", ".join(v.get("git_dirty_files", [])) or "none"
    lines += [
        "",
        f"Baselines (median of {results['settings']['repeat']}): `python -c pass` "
        f"{_s(b['python_startup']['median_s'])}, `python -c 'import polars'` {_s(b['import_polars']['median_s'])}, "
        f"`python -c 'import assetflow.cli'` {_s(b['import_assetflow_cli']['median_s'])}, "
        f"`assetflow --help` {_s(b['help']['median_s'])}; `import polars` without a bytecode cache "
        f"{_s(b['import_polars_no_bytecode_cache']['median_s'])}.",
        "",
        f"Run {results['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gb']} GB), {m['platform']}; "
        f"Python {v.get('python')}, assetflow {v.get('assetflow')}, polars {v.get('polars')}, "
        f"pyarrow {v.get('pyarrow')}, duckdb {v.get('duckdb')}; commit {v.get('git_commit', '')[:10]} with "
        f"uncommitted changes in: {dirty}. Executor: {results['settings'].get('executor', '-')}. Bytecode cache: "
        f"{'on' if results['settings'].get('bytecode_cache', True) else 'off (inherited environment)'}; "
        f"load average before/after each project is in the raw figures, `bench/results/core.json`.",
    ]
    return "\n".join(lines) + "\n"


def update_doc(results: dict[str, Any], doc: Path = DOC) -> None:
    write_between_markers(doc, DOC_START, DOC_END, render_markdown(results))


def write_between_markers(doc: Path, start_marker: str, end_marker: str, body: str) -> None:
    """Replace what stands between two markers of ``doc`` (a bench's table) with ``body``."""
    text = doc.read_text(encoding="utf-8")
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise SystemExit(f"{doc}: markers {start_marker} / {end_marker} not found; add them where the tables go.")
    doc.write_text(text[:start + len(start_marker)] + "\n" + body.rstrip("\n") + "\n" + text[end:], encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="N=100 only, results to bench/results/tmp/.")
    parser.add_argument("--sizes", default="100,1000,10000", help="Comma-separated N (default 100,1000,10000).")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"Comma-separated of {', '.join(SHAPES)}.")
    parser.add_argument("--big-shapes", default="layered", help="Shapes also run at N >= 10,000 (default layered).")
    parser.add_argument("--max-minutes", type=float, default=15.0,
                        help="Skip an N >= 10,000 project whose extrapolated bench time exceeds this (default 15).")
    parser.add_argument("--no-guard", action="store_true", help="Run N >= 10,000 whatever the estimate says.")
    parser.add_argument("--repeat", type=int, default=5, help="Runs per median (no-op; other medians use 2 fewer).")
    parser.add_argument("--timeout", type=float, default=1200.0, help="Seconds per child run (default 1200).")
    parser.add_argument("--no-bytecode-cache", dest="bytecode_cache", action="store_false",
                        help="Keep the inherited environment (e.g. PYTHONDONTWRITEBYTECODE=1) instead of letting "
                        "children cache .pyc files under bench/results/tmp/pycache as a user's Python does.")
    parser.add_argument("--executor", help=f"Set ${EXECUTOR_ENV} for the runs (default: assetflow's default).")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--per-module", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--assetflow", default=str(REPO / ".venv" / "bin" / "assetflow"))
    parser.add_argument("--workdir", help="Where to generate projects (default: a temporary folder, removed).")
    parser.add_argument("--keep", action="store_true", help="Keep the generated projects.")
    parser.add_argument("--out", type=Path, help="Results file (default bench/results/core.json).")
    parser.add_argument("--merge", action="store_true", help="Keep other projects' figures already in --out.")
    parser.add_argument("--update-doc", action="store_true", help="Rewrite the tables in docs/benchmarks.md.")
    parser.add_argument("--report-only", action="store_true", help="Print (and with --update-doc write) the "
                        "tables from --out; run nothing.")
    args = parser.parse_args()
    args.out = args.out or (QUICK_RESULTS if args.quick else RESULTS)
    if args.report_only:
        results = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        args.sizes = [100] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",")]
        args.shapes = [s for s in args.shapes.split(",") if s]
        args.big_shapes = [s for s in args.big_shapes.split(",") if s]
        unknown = [s for s in args.shapes + args.big_shapes if s not in SHAPES]
        if unknown:
            parser.error(f"unknown shape(s) {unknown}; use {', '.join(SHAPES)}")
        if not Path(args.assetflow).exists():
            parser.error(f"{args.assetflow} not found: run `uv sync` first, or pass --assetflow")
        results = run_suite(args)
    print(render_markdown(results))
    if args.update_doc:
        update_doc(results)
    bad = [e for e in results.get("projects", []) if e["status"] in ("wrong", "error")]
    if bad:
        print(f"!!! {len(bad)} project(s) gave WRONG results: "
              + "; ".join(f"{e['shape']} N={e['n']}: {e['problem'][:300]}" for e in bad), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
