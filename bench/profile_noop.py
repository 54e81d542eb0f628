"""Profile one no-op ``assetflow materialize`` in process, to see where the no-op path spends its time.

Generates a benchmark project (bench/generate.py; default layered, N=1,000) and materializes it once
in a child process, unless ``--project DIR`` names one already materialized. Then, in this process,
starts cProfile *before* assetflow is imported (so imports count, as they do in a real run), calls the
CLI's ``materialize --json``, checks that nothing ran, and prints the top entries by cumulative time
(and, with ``--tottime``, by own time). ``--no-fast-path`` sets ``ASSETFLOW_NO_FAST_PATH=1`` to profile
the full check that a touched file falls back to. ``--importtime`` also prints the slowest imports of a
whole-process run (``python -X importtime``).

Run it with the project's venv: ``.venv/bin/python bench/profile_noop.py [--n 1000] [--shape layered]``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import SHAPES, generate  # noqa: E402  (stdlib only: assetflow is not imported yet)
from run import FAST_PATH_OFF, child_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REEXEC = "ASSETFLOW_BENCH_PROFILE_ENV"


def prepare(args: argparse.Namespace) -> Path:
    if args.project:
        return Path(args.project).resolve()
    folder = Path(tempfile.mkdtemp(prefix="assetflow-profile-")) / f"{args.shape}-{args.n}"
    generate(folder, args.shape, args.n)
    print(f"generated {folder}; cold run...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "assetflow", "materialize", "--project", str(folder)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"cold run {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return folder


def whole_process(folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "assetflow", "materialize", "--project", str(folder)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def import_times(folder: Path, top: int) -> None:
    found = subprocess.run([sys.executable, "-X", "importtime", "-m", "assetflow", "materialize", "--project",
                            str(folder)], capture_output=True, text=True, check=True)
    rows = []
    for line in found.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        rows.append((int(cumulative_us), int(self_us), name.strip()))
    rows.sort(reverse=True)
    print(f"\nSlowest imports of a whole-process no-op (-X importtime), top {top} by cumulative:")
    print(f"{'cumulative ms':>14} {'self ms':>8}  module")
    for cumulative, own, name in rows[:top]:
        print(f"{cumulative / 1000:14.1f} {own / 1000:8.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--project", help="An already materialized project to profile instead of a generated one.")
    parser.add_argument("--shape", choices=SHAPES, default="layered")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--tottime", action="store_true", help="Also print the top entries by own time.")
    parser.add_argument("--no-fast-path", action="store_true", help=f"Set {FAST_PATH_OFF}=1 (full check).")
    parser.add_argument("--importtime", action="store_true", help="Also print the slowest imports.")
    parser.add_argument("--no-bytecode-cache", dest="bytecode_cache", action="store_false",
                        help="Keep the inherited environment (e.g. PYTHONDONTWRITEBYTECODE=1); see bench/run.py.")
    parser.add_argument("--save", help="Write the raw profile here (for snakeviz, pstats...).")
    args = parser.parse_args()
    if "assetflow" in sys.modules:
        raise SystemExit("assetflow was imported before profiling started; the profile would miss its imports.")
    if not os.environ.get(REEXEC):  # restart with the bench's environment, as bench/run.py's children get
        env = {**child_env(args.bytecode_cache, fast_path=not args.no_fast_path), REEXEC: "1"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    folder = prepare(args)
    print(f"whole-process no-op (for comparison): {whole_process(folder):.3f} s", file=sys.stderr, flush=True)

    out = io.StringIO()
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    try:
        from assetflow.cli import main as cli

        with contextlib.redirect_stdout(out):
            cli(["materialize", "--project", str(folder), "--json"], standalone_mode=False)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        profiler.disable()
    elapsed = time.perf_counter() - start
    payload = json.loads(out.getvalue())
    outcomes = [a["outcome"] for a in payload["assets"]]
    not_fresh = len(outcomes) - outcomes.count("fresh")
    if not_fresh:
        raise SystemExit(f"not a no-op: {not_fresh} of {len(outcomes)} assets were not fresh; nothing to profile.")
    print(f"\nIn-process no-op of {folder} ({len(outcomes)} assets, fast path "
          f"{'used' if payload.get('fast_path') else 'not used'}): {elapsed:.3f} s under cProfile "
          f"(cProfile adds overhead; interpreter start-up is not included).\n")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    if args.tottime:
        stats.sort_stats("tottime").print_stats(args.top)
    if args.save:
        stats.dump_stats(args.save)
    if args.importtime:
        import_times(folder, args.top)


if __name__ == "__main__":
    main()
