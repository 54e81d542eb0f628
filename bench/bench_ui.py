"""The web page's benchmark (issue 7): how fast ``assetflow ui`` shows a project, in headless Chromium.

For generated layered projects (bench/generate.py) of N = 100, 1,000 and 10,000 assets,
materialized first so that every node has a real state:

- ``server_start_s``: ``assetflow ui`` started until it prints its address (imports the project).
- ``api_first_s``: the first ``/api/list`` and ``/api/status`` (the server builds its documents).
- ``first_view_s``: navigation until the first view is drawn and coloured (``body[data-ready]``),
  documents already built by the server, as for anyone opening the page of a running server;
  the median of ``--loads`` fresh page loads (the first load of all is reported too).
- ``open_cluster_s``: past 400 nodes the page shows clusters; a real mouse click on one until
  its assets are laid out and drawn (median of 3).
- ``select_s``: a selection typed in the box (``1+<asset>+1``) until it is drawn (median of 3).
- ``pan_frame_ms``: the mean time of a frame while panning the view in 30 steps.

Results go to bench/results/ui.json; ``--update-doc`` rewrites the table in docs/ui.md.
Usage: ``python bench/bench_ui.py [--sizes 100 1000 10000] [--loads 5] [--update-doc]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))

from browser_support import chromium, ui_server  # noqa: E402 - the tests' browser and server helpers

RESULTS = HERE / "results" / "ui.json"
DOC = REPO / "docs" / "ui.md"
BEGIN, END = "<!-- bench_ui:begin -->", "<!-- bench_ui:end -->"


def materialized_project(folder: Path, n: int) -> Path:
    root = folder / f"layered-{n}"
    subprocess.run([sys.executable, str(HERE / "generate.py"), str(root), "--shape", "layered", "--n", str(n)],
                   check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "assetflow", "materialize", "--project", str(root)], check=True,
                   capture_output=True)
    print(f"  materialized {n} assets in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return root


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        response.read()
    return time.perf_counter() - started


def drawn(page: Any) -> int:
    return int(page.get_attribute("body", "data-drawn") or 0)


def wait_drawn(page: Any, before: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while drawn(page) <= before:
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not redraw")
        time.sleep(0.01)


def measure(browser: Any, url: str, loads: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    page = browser.new_page(viewport={"width": 1400, "height": 850})
    times = []
    for _ in range(loads + 1):
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        times.append(time.perf_counter() - started)
    figures["first_load_s"] = round(times[0], 3)
    figures["first_view_s"] = round(statistics.median(times[1:]), 3)
    graph = page.evaluate("({clustered: window.assetflowGraph.clustered, rows: window.assetflowGraph.rows, "
                          "drawn: window.assetflowGraph.cy.nodes().length})")
    figures.update(clustered=graph["clustered"], nodes_drawn=graph["drawn"])
    if graph["clustered"]:
        opens = []
        for index in range(3):
            x, y = page.evaluate("""(i) => { const n = window.assetflowGraph.cy.nodes('.cluster')[i + 1];
                const p = n.renderedPosition(); const r = document.getElementById('graph').getBoundingClientRect();
                return [p.x + r.left, p.y + r.top]; }""", index)
            before = drawn(page)
            started = time.perf_counter()
            page.mouse.click(x, y)
            wait_drawn(page, before)
            opens.append(time.perf_counter() - started)
            figures["opened_cluster_nodes"] = page.evaluate("window.assetflowGraph.cy.nodes().length")
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        figures["open_cluster_s"] = round(statistics.median(opens), 3)
    middle = json.loads(urllib.request.urlopen(url + "api/list").read())["assets"]
    target = middle[len(middle) // 2]["name"]
    selects = []
    for _ in range(3):
        before = drawn(page)
        page.fill("#selection", f"1+{target}+1")
        started = time.perf_counter()
        page.click("#selection-form button[type=submit]")
        wait_drawn(page, before)
        selects.append(time.perf_counter() - started)
    figures["select_s"] = round(statistics.median(selects), 3)
    figures["selected_nodes"] = page.evaluate("window.assetflowGraph.cy.nodes().not('.group').length")
    page.click("#clear-selection")
    page.wait_for_timeout(500)
    figures["pan_frame_ms"] = round(page.evaluate("""async () => {
        const cy = window.assetflowGraph.cy; const frame = () => new Promise((r) => requestAnimationFrame(r));
        await frame(); const start = performance.now();
        for (let i = 0; i < 30; i++) { cy.panBy({x: 15, y: 3}); await frame(); }
        return (performance.now() - start) / 30; }"""), 1)
    page.close()
    return figures


def run(sizes: list[int], loads: int) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="assetflow-bench-ui-") as tmp, chromium() as browser:
        for n in sizes:
            print(f"N={n}", file=sys.stderr)
            root = materialized_project(Path(tmp), n)
            started = time.perf_counter()
            with ui_server(root) as url:
                server_start = time.perf_counter() - started
                api_first = timed_get(url + "api/list") + timed_get(url + "api/status")
                row = {"n": n, "server_start_s": round(server_start, 3), "api_first_s": round(api_first, 3),
                       "load_before": os.getloadavg()[0], **measure(browser, url, loads),
                       "load_after": os.getloadavg()[0]}
            print(f"  {row}", file=sys.stderr)
            rows.append(row)
    chromium_version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "browser": chromium_version.strip()},
            "loads": loads, "rows": rows}


def table(results: dict[str, Any]) -> str:
    lines = [f"Measured {results['date'][:10]} on {results['machine']['cpus']} cores, "
             f"{results['machine']['browser']}, headless; median of {results['loads']} page loads.", "",
             "| N assets | first view | first load | view | open a cluster | select `1+x+1` | pan frame "
             "| server start | first API docs | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        view = f"{r['nodes_drawn']} clusters" if r["clustered"] else f"{r['nodes_drawn']} nodes"
        opened = f"{r['open_cluster_s']} s ({r['opened_cluster_nodes']} nodes)" if r["clustered"] else "-"
        lines.append(f"| {r['n']:,} | **{r['first_view_s']} s** | {r['first_load_s']} s | {view} | {opened} | "
                     f"{r['select_s']} s ({r['selected_nodes']} nodes) | {r['pan_frame_ms']} ms | "
                     f"{r['server_start_s']} s | {r['api_first_s']} s | {r['load_before']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--update-doc", action="store_true", help="Rewrite the table in docs/ui.md.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = run(args.sizes, args.loads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    if args.update_doc:
        text = DOC.read_text()
        head, rest = text.split(BEGIN, 1)
        DOC.write_text(head + BEGIN + "\n" + table(results) + "\n" + END + rest.split(END, 1)[1])


if __name__ == "__main__":
    main()
