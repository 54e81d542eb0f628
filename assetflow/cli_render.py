"""How the CLI shows results: rich tables for people, stable snake_case JSON for programs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from assetflow.cli_text import all_fresh, counted, join_reasons, plural
from assetflow.durations import format_duration

if TYPE_CHECKING:
    from assetflow.execute.results import AssetResult, RunResult
    from assetflow.inspect.status import AssetStatus
    from assetflow.inspect.versions import VersionNode
    from assetflow.inspect.why import WhyReport
    from assetflow.workspace import Workspace

_VERB = {"ran": "ran", "restored": "restored", "fresh": "fresh", "cutoff": "cut off", "waiting": "waiting",
         "failed": "FAILED", "skipped": "skipped", "may_restore": "may restore"}
_STYLE = {"fresh": "green", "stale": "yellow", "missing": "magenta", "failed": "red", "observed": "cyan",
          "overdue": "bright_red", "ran": "blue", "restored": "cyan", "cutoff": "green", "waiting": "yellow",
          "skipped": "yellow"}


class Progress:
    """How far a run is, on stderr: a live line on a terminal, else one plain line per settled asset.

    On a terminal (rich): ``12/40 settled · running: orders, customers · 0:14 elapsed · ~0:31 left``,
    redrawn as time passes. Elsewhere (CI logs, ``docker logs``): ``[12/40]      ran orders in
    0.52s: code changed``, one line as each asset settles. The estimate is the mean time of the
    assets computed so far, times those still predicted to compute, divided by the assets that run
    at once. Never used with ``--json`` (stdout is the document's alone; see ``assetflow.cli_stdout``).
    """

    def __init__(self, live: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started_at = clock()
        self.total: int | None = None
        self.to_run = 0
        self.capacity = 1
        self.settled = 0
        self.computed: list[float] = []  # durations of the assets computed so far
        self.running: dict[str, float] = {}  # name -> when it started
        self.printed_lines = not live
        self._wants_live = live
        self._live: Any = None

    def _show_live(self) -> None:
        """Draw the live line from the run's first event on, not before: a run the no-op fast
        path answers has none, and draws nothing (nor imports rich)."""
        if self._wants_live and self._live is None:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self, console=Console(stderr=True), refresh_per_second=4, transient=True)
            self._live.start()

    @classmethod
    def for_stderr(cls) -> Progress:
        return cls(live=sys.stderr.isatty())

    # -- the runner's listener --------------------------------------------------------------

    def begin(self, total: int, to_run: int, capacity: int) -> None:
        self.total, self.to_run, self.capacity = total, to_run, max(1, capacity)
        self._show_live()

    def started(self, name: str) -> None:
        self._show_live()
        self.running[name] = self.clock()

    def __call__(self, result: AssetResult) -> None:
        self.update(result)

    def update(self, result: AssetResult) -> None:
        self._show_live()
        self.settled += 1
        self.running.pop(result.name, None)
        if result.outcome in ("ran", "failed") and result.duration is not None:
            self.computed.append(result.duration)
        if self.printed_lines:
            click.echo(f"[{self.settled}/{self.total or '?'}] {self.describe(result)}", err=True)

    # -- what is shown ----------------------------------------------------------------------

    @staticmethod
    def describe(result: AssetResult) -> str:
        took = f" in {result.duration:.2f}s" if result.duration is not None else ""
        why = f": {join_reasons(result.reasons)}" if result.reasons and result.outcome != "fresh" else ""
        if result.outcome == "failed":
            why = " (its error follows when the run ends)"
        return f"{_VERB[result.outcome]:>9} {result.name}{took}{why}"

    def estimate(self) -> float | None:
        """Seconds left, or None before the first computed asset gives a pace."""
        if not self.computed:
            return None
        left = max(0, self.to_run - len(self.computed))
        pace = sum(self.computed) / len(self.computed)
        running_for = sum(self.clock() - since for since in self.running.values())
        return max(0.0, (pace * left - running_for) / self.capacity)

    def line(self) -> str:
        elapsed = format_duration(self.clock() - self.started_at)
        parts = [f"{self.settled}/{self.total if self.total is not None else '?'} settled"]
        if self.running:
            names = list(self.running)
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            parts.append(f"running: {', '.join(names[:3])}{more}")
        parts.append(f"{elapsed} elapsed")
        left = self.estimate()
        if left is not None:
            parts.append(f"~{format_duration(left)} left")
        return " · ".join(parts)

    def __rich__(self) -> str:
        from rich.markup import escape

        return "[bold]materializing[/] " + escape(self.line())

    def close(self) -> None:
        self._wants_live = False
        if self._live is not None:
            self._live.stop()
            self._live = None


_PLAN_VERB = {"ran": "run", "restored": "restore", "cutoff": "cut off", "waiting": "wait", "may_restore": "may restore"}


def render_left_out(result: RunResult) -> None:
    """The selected assets ``--partition`` names no key of: left as they are, said so (on stderr)."""
    for name, why in result.left_out.items():
        click.echo(f"  left out {name}: {why}", err=True)


def _keyless_line(result: RunResult) -> str | None:
    """``Nothing to run: `cleaned` has no partitions (see above).``: what a run of assets with no key says, not
    'Everything is fresh'."""
    from assetflow.partitions.run import NO_KEYS

    empty = [name for name, why in result.left_out.items() if why.startswith(NO_KEYS)]
    if not empty:
        return None
    names = ", ".join(f"`{n}`" for n in empty)
    return f"Nothing to run: {names} {'has' if len(empty) == 1 else 'have'} no partitions (see above)."


def _units(result: RunResult) -> str:
    """``6 partitions of 1 asset``, ``6 partitions of 2 assets and 1 unpartitioned asset``: what a plan counts."""
    partitioned = {r.asset for r in result.results.values() if r.partition}
    parts = sum(1 for r in result.results.values() if r.partition)
    plain = len(result.results) - parts
    return (f"{plural(parts, 'partition')} of {plural(len(partitioned), 'asset')}"
            + (f" and {plural(plain, 'unpartitioned asset')}" if plain else ""))


def render_plan(result: RunResult) -> None:
    render_left_out(result)
    todo = [r for r in result.results.values() if r.outcome != "fresh"]
    units = any(r.partition for r in result.results.values())  # partitions counted apart from their assets
    total = len(result.results)
    if not todo and (keyless := _keyless_line(result)):
        click.echo(keyless)
        return
    if not todo:
        click.echo(f"Nothing to do: everything selected is fresh ({_units(result)})." if units else
                   f"Nothing to do: {'the' if total == 1 else 'all'} {plural(total, 'selected asset')} "
                   f"{'is' if total == 1 else 'are'} fresh.")
        return
    click.echo(f"Plan ({len(todo)} of {'' if all(r.partition for r in result.results.values()) else f'{total}: '}"
               f"{_units(result)}; nothing was run):" if units else
               f"Plan ({len(todo)} of {plural(total, 'asset')}; nothing was run):")
    from assetflow.partitions.summary import ranges

    grouped: dict[tuple[str, str], list[tuple[str, str, str]]] = {}  # partitions as ranges, per asset and action
    for r in todo:
        action = _PLAN_VERB.get(r.outcome, r.outcome)
        grouped.setdefault((r.asset, action), []).append((r.partition, action, join_reasons(r.reasons)))
    for (asset, action), items in grouped.items():
        if items[0][0] == "":
            click.echo(f"  {action:11} {asset}: {items[0][2]}")
            continue
        for found in ranges(items, result.key_order.get(asset, {})):
            click.echo(f"  {action:11} {asset}[{found.span}] ({found.count} partitions): {found.reason}"
                       if found.count > 1 else f"  {action:11} {asset}[{found.span}]: {found.reason}")


def render_run(result: RunResult, progress_printed: bool = False) -> None:
    """The run's outcome: each asset that did something (unless progress lines said so already), errors, totals."""
    counts = result.counts()
    for r in [] if progress_printed else result.results.values():
        if r.outcome in ("ran", "restored"):
            took = f" in {r.duration:.2f}s" if r.duration is not None else ""
            click.echo(f"{_VERB[r.outcome]:>9} {r.name}{took}: {join_reasons(r.reasons)}", err=True)
        elif r.outcome == "cutoff":
            click.echo(f"{'cut off':>9} {r.name}: upstream recomputed with identical data", err=True)
        elif r.outcome == "waiting":
            click.echo(f"{'waiting':>9} {r.name}: {join_reasons(r.reasons)}", err=True)
    for r in result.by_outcome("failed"):
        click.echo(f"\nAsset {r.name!r} FAILED:\n{r.error}", err=True)
    for r in result.by_outcome("skipped"):
        click.echo(f"  skipped {r.name}: {join_reasons(r.reasons)}", err=True)
    render_left_out(result)
    warnings = _new_warnings(result)
    if warnings:
        from assetflow.checks.report import one_line
    for name, verdict in warnings:
        click.echo(f"  warning {name}: {one_line(verdict)}", err=True)
    if counts["ran"] == counts["restored"] == counts["failed"] == counts["skipped"] == counts["waiting"] == 0:
        click.echo(_keyless_line(result) or all_fresh(result.results))
        return
    parts = [f"{counts[k]} {_VERB[k] if k != 'failed' else 'failed'}" for k in
             ("ran", "restored", "cutoff", "fresh", "waiting", "failed", "skipped") if counts[k]]
    waiting = [r.name for r in result.by_outcome("waiting")]
    if not waiting:
        click.echo("Done: " + ", ".join(parts) + ".")
    elif counts["ran"] == counts["restored"] == counts["failed"] == counts["skipped"] == 0:
        # up to date with what their upstreams hold, and stale all the same: not "Everything is fresh"
        one = len({n.partition("[")[0] for n in waiting}) == 1
        click.echo(f"Nothing to run, but not fresh: {counted(waiting)} wait{'s' if one else ''} "
                   "on upstreams outside the selection (see above).")
    else:
        click.echo("Done: " + ", ".join(p + " (on upstreams outside the selection, see above)"
                                        if p.endswith(" waiting") else p for p in parts) + ".")


def _new_warnings(result: RunResult) -> list[tuple[str, dict[str, object]]]:
    """Warnings this run judged (not read from the cache) on the versions published: status keeps showing them."""
    return [(r.name, v) for r in result.results.values() if r.outcome != "failed" for v in r.checks or ()
            if not v.get("passed") and v.get("severity") != "error" and not v.get("cached")]


# -- inspection: plain aligned text (fast for 10,000 rows), coloured only on a terminal ---------


def _color() -> bool:
    return sys.stdout.isatty()


def _paint(text: str, state: str) -> str:
    return click.style(text, fg=_STYLE.get(state)) if _color() and state in _STYLE else text


_WHEN: dict[int, str] = {}


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    second = int(timestamp)
    text = _WHEN.get(second)
    if text is None:  # a run makes many versions in the same second: format each second once
        text = _WHEN[second] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
    return text


def _age(timestamp: float | None, now: float | None = None) -> str:
    return "-" if timestamp is None else format_duration(int((now or time.time()) - timestamp))  # ages in whole seconds


def _short(digest: str | None, width: int = 12) -> str:
    if not digest:
        return "-"
    algorithm, _, hexdigits = digest.partition(":")
    return f"{algorithm}:{hexdigits[:width]}" if hexdigits else digest[:width]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], states: Sequence[str] | None = None,
          state_column: int = 1) -> list[str]:
    """Left-aligned columns; the last column is not padded. ``states`` colours one column per row."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    paint = states is not None and _color()
    last = len(headers) - 1
    for index, row in enumerate(rows):
        cells = [c.ljust(widths[i]) if i < last else c for i, c in enumerate(row)]
        if paint:
            cells[state_column] = _paint(cells[state_column], states[index])  # type: ignore[index]
        lines.append("  ".join(cells).rstrip())
    return lines




def render_status(rows: list[AssetStatus]) -> None:
    now = int(time.time())
    ages: dict[int, str] = {}

    def age(timestamp: float | None) -> str:
        if timestamp is None:
            return "-"
        seconds = now - int(timestamp)
        text = ages.get(seconds)
        if text is None:
            text = ages[seconds] = format_duration(seconds)
        return text

    body = [[r.name, r.state, _when(r.updated_at), age(r.updated_at), "-" if r.rows is None else str(r.rows),
             join_reasons(r.reasons)] for r in rows]
    lines = table(("asset", "state", "last updated", "age", "rows", "why"), body, [r.state for r in rows])
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    lines.append(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing selected")
    click.echo("\n".join(lines))




def render_checks(runs: Sequence[Any]) -> None:
    """``assetflow check``: each checked version, then one line per check; the failures first."""
    from assetflow.checks.report import counts, one_line

    if not runs:
        click.echo("No checks: none of the selected assets declares any, or none has a current version.")
        return
    verdicts = []
    for run in runs:
        unit = f"{run.asset}[{run.partition}]" if run.partition else run.asset
        click.echo(f"{unit}  (version {run.materialization.id}, {_short(run.materialization.data_hash)})")
        order = sorted(run.results, key=lambda r: (r["passed"], r["severity"] != "error", r["check"]))
        for r in order:
            word = "passed" if r["passed"] else "FAILED" if r["severity"] == "error" else "warned"
            state = "fresh" if r["passed"] else "failed" if r["severity"] == "error" else "stale"
            cached = "  (cached)" if r.get("cached") else ""
            click.echo(f"  {_paint(f'{word:<6}', state)}  {one_line(r)}{cached}")
            verdicts.append(r)
    found = counts(verdicts)
    cached = sum(1 for v in verdicts if v.get("cached"))
    click.echo(f"{plural(len(runs), 'version')} checked: {found['passed']} passed, {found['failed']} failed, "
               f"{found['warned']} warned ({cached} cached).")


def _checks_cell(verdicts: list[dict[str, Any]] | None) -> str:
    """A version's verdicts in a few words: ``2 failed, 5 passed``, or ``-`` when none are known."""
    from assetflow.checks.report import counts

    found = counts(verdicts or [])
    return ", ".join(f"{found[w]} {w}" for w in ("failed", "warned", "passed") if found[w]) or "-"


def _verdict_lines(verdicts: list[dict[str, Any]]) -> list[str]:
    """One line per verdict (failures first), then what a failed one found."""
    from assetflow.checks.report import one_line

    lines = []
    for v in sorted(verdicts, key=lambda v: (v["passed"], v["severity"] != "error", v["check"])):
        word = "passed" if v["passed"] else "FAILED" if v["severity"] == "error" else "warned"
        lines.append(f"    {_paint(f'{word:<6}', 'fresh' if v['passed'] else 'failed')}  {one_line(v)}")
        if not v["passed"]:
            lines += ["            " + line for line in _findings_lines(v.get("findings"))]
    return lines


_FINDING_ROWS = 5  # rows of a @check's findings shown in text; --json has all that were kept (up to 100)


def _findings_lines(findings: Any) -> list[str]:
    """What a failed verdict found: a built-in's example values, a ``@check``'s rows as a small table, its
    list or mapping on one line (a traceback or a built-in's counts are in its summary already)."""
    import json

    if isinstance(findings, dict):
        if findings.get("examples"):
            return [f"examples: {', '.join(repr(x) for x in findings['examples'])}"]
        if not findings or {"traceback", "problems"} & set(findings) or set(findings) <= {"rows", "first_row"}:
            return []
        return [f"findings: {_clipped(json.dumps(findings, default=str), 160)}"]
    if not isinstance(findings, list) or not findings:
        return []
    if all(isinstance(row, dict) for row in findings):
        shown = findings[:_FINDING_ROWS]
        columns = list(dict.fromkeys(key for row in shown for key in row))
        rows = [[_clipped("null" if row.get(c) is None else str(row.get(c)), 40) for c in columns] for row in shown]
        more = len(findings) - len(shown)
        return [f"findings ({plural(len(findings), 'row')}):", *("  " + line for line in table(columns, rows)),
                *([f"  ... {more} more: `--json` lists them"] if more > 0 else [])]
    return [f"findings: {_clipped(', '.join(repr(x) for x in findings), 160)}"]


def _clipped(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def render_list(payload: dict[str, Any]) -> None:
    rows = [[a["name"], a["kind"], a["group"] or "-", ", ".join(a["upstream"]) or "-"] for a in payload["assets"]]
    click.echo("\n".join(table(("name", "kind", "group", "upstream"), rows)))


def _time_and_age(timestamp: float | None) -> str:
    return "unknown time" if timestamp is None else f"{_when(timestamp)}, {_age(timestamp)} ago"


def render_why(report: WhyReport) -> None:
    status = report.status
    out = [f"{report.name}: {_paint(status.state, status.state)}"
           + (f" (also {', '.join(s for s in status.states if s != status.state)})" if len(status.states) > 1 else "")]
    if report.materialization_id is not None:
        out.append(f"  current version: materialization {report.materialization_id}, made "
                   f"{_time_and_age(report.materialized_at)}")
    out += [f"  - {reason}" for reason in status.reasons] or ["  nothing to run: it was made from the current "
                                                               "versions of its upstreams"]
    if status.checks:
        out.append("\nChecks of the current version:")
        out += _verdict_lines(status.checks)
    if report.upstream_not_fresh:
        # a fresh asset's upstream can be failed and still current (a check added since fails it): nothing to wait for
        waits = any(s in status.states for s in ("stale", "missing", "failed"))
        out.append("\nUpstream that must be brought up to date first (see `assetflow why NAME`):" if waits
                   else "\nUpstream not fresh (this asset is up to date with their current versions; see "
                        "`assetflow why NAME`):")
        out += [f"  {name}: {state}" for name, state in report.upstream_not_fresh.items()]
    if report.inputs:
        out.append("\nInputs:")
        for change in report.inputs:
            out.append(f"  {change.name} ({change.kind}): {change.change}")
            out.append(f"    was {_short(change.old_hash)}" + (f" made {_time_and_age(change.old_at)}" if change.old_hash and change.old_at else ""))
            out.append(f"    now {_short(change.new_hash)}" + (f" {'made' if change.kind == 'asset' else 'modified'} {_time_and_age(change.new_at)}" if change.new_hash and change.new_at else ""))
    if report.code or not report.code_sources_known:
        out.append("\nCode (normalised: comments, docstrings and layout do not count):")
        if not report.code_sources_known:
            out.append("  the old code's sources are no longer stored, so no diff can be shown")
        for change in report.code:
            out.append(f"  {change.description}")
            out.append("".join(f"    {line}" for line in change.diff.splitlines(keepends=True)).rstrip("\n"))
    if report.config:
        out.append("\nConfiguration:")
        out += [f"  {c.field}: {c.old!r} -> {c.new!r}" for c in report.config]
    if report.libraries:
        out.append("\nLibrary drift (reported only; it does not make the asset stale):")
        out += [f"  {d.distribution}: {d.old or 'not used'} -> {d.new or 'not used'}" for d in report.libraries]
    click.echo("\n".join(out))


def render_version_tree(tree: VersionNode) -> None:
    lines: list[str] = []

    def label(node: VersionNode) -> str:
        mat = node.materialization
        where = f"materialization {mat.id}, {_when(mat.finished_at)}" if mat else (
            "source data" if node.kind == "source" else "no longer recorded")
        mark = "current" if node.current else "not current"
        return f"{node.name} @ {_short(node.data_hash)}  ({where}; {mark})"

    def walk(node: VersionNode, prefix: str, last: bool, top: bool) -> None:
        lines.append(label(node) if top else f"{prefix}{'└── ' if last else '├── '}{label(node)}")
        inner = "" if top else prefix + ("    " if last else "│   ")
        for i, up in enumerate(node.upstream):
            walk(up, inner, i == len(node.upstream) - 1, False)

    walk(tree, "", True, True)
    click.echo("\n".join(lines))


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _column_origin(column: dict[str, Any]) -> str:
    """Where a column comes from, for ``show`` (see docs/sql.md): upstream columns, or "added"."""
    if column["status"] == "added":
        return "added"
    origins = ", ".join(f"{o['asset']}.{o['column']}" for o in column["origins"])
    if column["status"] == "kept":
        return f"{origins} (kept)"
    if column.get("expression"):
        return column["expression"] + (f" from {origins}" if origins else "")
    return origins


def render_show(details: list[dict[str, Any]]) -> None:
    out: list[str] = []
    for d in details:
        if out:
            out.append("")
        out.append(f"{d['name']} ({d['kind']}): {_paint(d['state'], d['state'])}")
        for reason in d["reasons"]:
            out.append(f"  - {reason}")
        if d["description"]:
            out += [f"  {line}" for line in d["description"].splitlines()]
        fields = [("defined at", d["defined_at"]), ("group", d["group"]),
                  ("tags", ", ".join(f"{k}={v}" for k, v in d["tags"].items())),
                  ("owners", ", ".join(d.get("owners", []))), ("freshness", d["freshness"]),
                  ("upstream", ", ".join(d["upstream"])), ("downstream", ", ".join(d["downstream"]))]
        if d["kind"] == "source":
            fields += [("path", d["path"]), ("format", d["format"]), ("data hash", d["data_hash"]),
                       ("updated", _time_and_age(d["updated_at"]))]
        else:
            fields += [("io", d["io"]), ("code fingerprint now", d["code_fingerprint"])]
            cur = d["current"]
            if cur:
                fields += [("current version", f"materialization {cur['id']} (run {cur['run_id']})"),
                           ("data hash", cur["data_hash"]), ("recipe key", cur["recipe_key"]),
                           ("code fingerprint", cur["code_fingerprint"]), ("config", cur["config"]),
                           ("made", f"{_time_and_age(cur['finished_at'])}, took {cur['duration_s']:.2f}s"),
                           ("rows", cur["rows"]), ("bytes", _size(cur["bytes"])),
                           ("stored at", f"{cur['io']}: {cur['location']}")]
        out += [f"  {k + ':':22} {v}" for k, v in fields if v not in (None, "")]
        if d["kind"] == "source":
            out += [f"    {f['path']}  {_short(f['hash'])}  {_when(f['modified_at'])}" for f in d["files"]]
        elif d["current"] and d["current"]["schema"]:
            out.append("  schema:")
            origins = {c["name"]: _column_origin(c) for c in (d.get("columns") or {}).get("list", [])}
            out += [f"    {c['name']}: {c['type']}" + (f"  <- {origins[c['name']]}" if origins.get(c["name"]) else "")
                    for c in d["current"]["schema"]]
            dropped = (d.get("columns") or {}).get("dropped") or []
            if dropped:
                out.append("  dropped: " + ", ".join(f"{x['asset']}.{x['column']}" for x in dropped))
        if d["kind"] == "asset" and d["current"] and d["current"].get("checks"):
            out.append("  checks of the current version:")
            out += _verdict_lines(d["current"]["checks"])
        chosen = d.get("version")
        if chosen:
            out.append(f"  version {chosen['id']} (run {chosen['run_id']}{', current' if chosen['current'] else ''}):")
            out += [f"    {k + ':':20} {v}" for k, v in (
                ("data hash", chosen["data_hash"]), ("recipe key", chosen["recipe_key"]),
                ("code fingerprint", chosen["code_fingerprint"]), ("made", _time_and_age(chosen["finished_at"])),
                ("rows", chosen["rows"]), ("stored at", f"{chosen['io']}: {chosen['location']}")) if v not in (None, "")]
            if chosen.get("checks"):
                out.append("    checks:")
                out += ["  " + line for line in _verdict_lines(chosen["checks"])]
        if d["kind"] in ("asset", "removed") and d["materializations"]:
            out.append("  last materializations:")
            keyed = any(m.get("partition") for m in d["materializations"])
            checked = any(m.get("checks") is not None for m in d["materializations"])
            rows = [[str(m["id"]), *([m.get("partition") or ""] if keyed else []), _when(m["finished_at"]),
                     _short(m["data_hash"]), str(m["rows"]), f"{m['duration_s']:.2f}s",
                     *([_checks_cell(m.get("checks"))] if checked else []), "current" if m["current"] else ""]
                    for m in d["materializations"]]
            heads = ("id", *(("partition",) if keyed else ()), "made", "data hash", "rows", "took",
                     *(("checks",) if checked else ()), "")
            out += ["    " + line for line in table(heads, rows)]
    click.echo("\n".join(out))


def _trigger(trigger: dict[str, Any] | None) -> str:
    """What started a run, in a few words (nothing for a person at the command line)."""
    if not trigger or trigger.get("kind") in (None, "person"):
        return ""
    what = trigger.get("name") or ", ".join(trigger.get("assets") or [])
    return f"  [{trigger['kind']} {what}" + (" resumed" if trigger.get("resumes") else "") + "]"


def render_history(payload: dict[str, Any]) -> None:
    out: list[str] = []
    for run in payload["runs"]:
        took = f", {run['duration_s']:.2f}s" if run["duration_s"] is not None else ""
        counts = ", ".join(f"{n} {'cut off' if k == 'cutoff' else k}" for k, n in (run["counts"] or {}).items() if n)
        out.append(f"run {run['run_id']}  {_when(run['started_at'])}  {_paint(run['status'], 'failed' if run['status'] != 'succeeded' else 'fresh')}{took}"
                   + (f"  ({counts})" if counts else "") + _trigger(run.get("trigger")))
        for event in run["assets"]:
            took = f" {event['duration_s']:.2f}s" if event["duration_s"] is not None else ""
            data = f" -> {_short(event['data_hash'])}" if event["data_hash"] else ""
            shown = f"{event['asset']}[{event['partition']}]" if event.get("partition") else event["asset"]
            out.append(f"  {_VERB.get(event['outcome'], event['outcome']):>8} {shown}{took}{data}")
            if event["error"]:
                out += [f"           {line}" for line in event["error"].strip().splitlines()[-3:]]
            if event.get("log"):
                out.append("           output:")
                out += [f"             {line}" for line in event["log"].rstrip("\n").splitlines()]
    click.echo("\n".join(out) if out else "No runs yet.")


def render_tick_line(tick: dict[str, Any]) -> str:
    """One tick of ``assetflow ticks``: when, origin, verdict, reason, run.

    Every line's instant is in the machine's zone, so the list reads in one zone and its order is the times' order; a
    schedule declared in another zone also shows its own wall clock beside its name (``schedule:daily (06:00 CEST)``),
    the time its cron names."""
    from assetflow.cron import local_time

    when = local_time(tick["tick_at"])
    run = f" run {tick['run_id']}" if tick.get("run_id") else ""
    return f"{when}  {tick['origin'] + _own_clock(tick, when):<28} {tick['status']}: {tick.get('reason') or ''}{run}"


def _own_clock(tick: dict[str, Any], when: str | None) -> str:
    """`` (06:00 CEST)``: a tick's instant on its schedule's clock, when that zone's offset differs from ``when``'s
    (the date too when it differs); empty for sensors, conditions and schedules in the machine's zone."""
    import datetime

    from assetflow.cron import CronError, zone

    name = (tick.get("definition") or {}).get("timezone")
    try:
        tz = zone(name) if isinstance(name, str) else None
    except CronError:
        return ""
    if tz is None or when is None:
        return ""
    own = datetime.datetime.fromtimestamp(tick["tick_at"], tz)
    if own.isoformat(timespec="seconds")[19:] == when[19:]:  # the same UTC offset: the same wall clock
        return ""
    return f" ({own.strftime('%H:%M %Z' if own.date().isoformat() == when[:10] else '%Y-%m-%d %H:%M %Z')})"


def render_last_tick(last: dict[str, Any] | None) -> str:
    """The ``last:`` line of a schedule, sensor or automated asset in their listings."""
    if last is None:
        return "  last: never ticked"
    from assetflow.cron import local_time

    run = f", run {last['run_id']} ({last.get('run_status')})" if last.get("run_id") else ""
    return (f"  last: {local_time(last['tick_at'], last['definition'].get('timezone'))} {last['status']}: "
            f"{last.get('reason') or ''}{run}")




def render_daemon_health(health: dict[str, Any]) -> str:
    """The first line of ``schedules``, ``sensors`` and ``automation``: whether a daemon acts on what they list."""
    from assetflow.cron import local_time

    if not health["running"]:
        return ("daemon: not running; nothing here runs until `assetflow daemon` (or `assetflow serve`) does "
                "(docs/automation.md)")
    who = f"daemon: pid {health['pid']} on {health['host']}, running since {local_time(health['since'])}"
    failing = health.get("failing")
    if failing:
        error = "\n".join(f"  {line}" for line in str(failing["error"]).splitlines())
        return (f"{who}; its evaluations FAIL since {local_time(failing['since'])}, so nothing is claimed or run "
                f"until it is fixed:\n{error}")
    last = local_time(health["last_evaluated"]) if health["last_evaluated"] else "not yet"
    return f"{who}; last evaluated {last}"
