"""Asset checks (docs/checks.md): stored, judged, and only then published; cached by (check, data).

In process, on real Parquet files and the real state store; the crash battery is test_checks_crash.py.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from assetflow import api
from assetflow.checks.definitions import accepted_values, expr, not_null, relationship, row_count, schema, unique
from assetflow.checks.evaluate import run_builtins
from assetflow.cli import main
from assetflow.errors import CheckDefinitionError, DefinitionError, UnknownAssetError
from assetflow.workspace import Workspace

PIPELINE = '''
import polars as pl
from pathlib import Path
from assetflow import CheckOutcome, accepted_values, asset, check, expr, not_null, relationship, row_count, source, unique

raw = source("raw.csv")
people = source("people.csv")

@asset
def customers(people: pl.DataFrame) -> pl.DataFrame:
    return people

@asset(checks=[not_null("id"), unique("id"), accepted_values("status", ["paid", "refunded"]), row_count(min=1),
               expr(pl.col("amount") >= 0), relationship("customer_id", to="customers.id")])
def orders(raw: pl.DataFrame, customers: pl.DataFrame) -> pl.DataFrame:
    return raw

@check(asset="orders", severity="warn")
def amounts_are_small(orders: pl.DataFrame) -> CheckOutcome:
    Path("calls.txt").open("a").write("amounts_are_small\\n")
    biggest = orders["amount"].max()
    return CheckOutcome(biggest < 100, summary=f"largest amount {biggest}", metadata={"max": biggest})

@asset
def report(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.group_by("status").len().sort("status")

@asset
def roster(customers: pl.DataFrame) -> pl.DataFrame:
    return customers
'''

GOOD = "id,customer_id,status,amount\n1,1,paid,10\n2,2,refunded,20\n3,1,paid,30\n"
BAD = "id,customer_id,status,amount\n1,1,paid,10\n2,2,refunded,20\n,1,paid,30\n"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(textwrap.dedent(PIPELINE))
    (tmp_path / "raw.csv").write_text(GOOD)
    (tmp_path / "people.csv").write_text("id,name\n1,ada\n2,bob\n")
    monkeypatch.chdir(tmp_path)  # the @check above counts its calls in ./calls.txt
    return tmp_path


def _run(root: Path, **options: object) -> api.RunResult:
    ws = Workspace.load(root)
    try:
        return api.materialize(project=ws, executor="inprocess", **options)  # type: ignore[arg-type]
    finally:
        ws.close()


def _calls(root: Path) -> int:
    path = root / "calls.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_failed_blocking_check_keeps_the_previous_version_and_stops_only_downstream(root: Path) -> None:
    assert _run(root).ok
    before = api.load("orders", project=root)
    (root / "raw.csv").write_text(BAD)
    result = _run(root)
    orders, report = result.results["orders"], result.results["report"]
    assert not result.ok and orders.outcome == "failed"
    assert orders.error is not None and orders.error.splitlines()[0] == "check not_null(id): 1 null row, e.g. row 2"
    assert report.outcome == "skipped"
    assert report.reasons == ["upstream `orders` failed its check not_null(id): 1 null row, e.g. row 2"]
    assert result.results["customers"].outcome == "fresh"
    assert api.load("orders", project=root).equals(before)  # the previous version is still the current one
    rejected = json.loads(CliRunner().invoke(main, ["show", "orders", "--json", "--project", str(root)]).output)
    newest = rejected["assets"][0]["materializations"][0]
    assert newest["current"] is False
    assert api.load("orders", version=newest["id"], project=root)["id"].null_count() == 1  # kept, loadable
    status = {s.name: s for s in api.status(project=root)}
    assert status["orders"].state == "failed"
    assert "check not_null(id): 1 null row, e.g. row 2" in status["orders"].reasons[0]
    # Its downstream says why the upstream stays stale: it said 'is stale', beside an upstream shown failed.
    assert "upstream `orders` is stale (its last run failed)" in status["report"].reasons


def test_the_rejected_version_is_not_restored_on_the_next_run(root: Path) -> None:
    _run(root)
    (root / "raw.csv").write_text(BAD)
    _run(root)
    plan = _run(root, dry_run=True).results["orders"]  # the plan says what the run does: refuse it, not restore it
    assert plan.outcome == "failed" and "fails check not_null(id)" in plan.reasons[-1]
    again = _run(root)  # same data: the version is found by its recipe, judged from the cache, and refused again
    assert again.results["orders"].outcome == "failed" and again.results["orders"].attempts == 0
    assert all(v["cached"] for v in again.results["orders"].checks or [])
    (root / "raw.csv").write_text(GOOD)
    fixed = _run(root)
    assert fixed.ok and fixed.results["orders"].outcome == "fresh"


def _status_json(root: Path, name: str) -> dict[str, object]:
    out = CliRunner().invoke(main, ["status", name, "--json", "--project", str(root)])
    return json.loads(out.output)["assets"][0]  # type: ignore[no-any-return]


def test_status_json_gives_the_verdicts_that_refused_the_last_run(root: Path) -> None:
    _run(root)
    assert _status_json(root, "orders")["rejected"] is None
    (root / "raw.csv").write_text(BAD)
    for _ in range(2):  # the run that judged the version, then the one that refuses it from the cache
        _run(root)
        row = _status_json(root, "orders")
        assert row["state"] == "failed" and all(v["passed"] for v in row["checks"])  # the current version's
        assert not any("partition" in v for v in row["checks"])  # only a partitioned asset's verdicts have it
        rejected = row["rejected"]
        kept = json.loads(CliRunner().invoke(main, ["show", "orders", "--json", "--project", str(root)]).output)
        assert rejected["version"] == kept["assets"][0]["materializations"][0]["id"]
        assert [(v["check"], v["severity"], v["summary"], v["defined_at"])
                for v in rejected["checks"] if not v["passed"]] == [("not_null(id)", "error", "1 null row, e.g. row 2",
                                                                     "pipe.py:13")]
        assert {v["check"] for v in rejected["checks"]} >= {"unique(id)", "row_count(min=1)"}
    (root / "raw.csv").write_text(GOOD)
    _run(root)
    assert _status_json(root, "orders")["rejected"] is None


def test_status_says_when_the_check_that_refused_the_last_run_has_changed_since(root: Path) -> None:
    _run(root)
    (root / "raw.csv").write_text(BAD)
    _run(root)
    said = "check not_null(id) no longer declared as then: the next run judges the version under the checks of now"
    assert said not in api.status(["orders"], project=root)[0].reasons[0]
    (root / "pipe.py").write_text(textwrap.dedent(PIPELINE).replace('not_null("id")', 'not_null("customer_id")'))
    reason = api.status(["orders"], project=root)[0].reasons[0]
    assert reason.startswith("the last run failed: check not_null(id): 1 null row") and said in reason


def test_show_prints_what_a_failed_check_found_in_text(root: Path) -> None:
    (root / "pipe.py").write_text(textwrap.dedent(PIPELINE) + textwrap.dedent('''
        @check(asset="orders")
        def no_refunds(orders: pl.DataFrame) -> CheckOutcome:
            bad = orders.filter(pl.col("status") == "refunded").select("id", "status")
            return CheckOutcome(bad.is_empty(), summary=f"{bad.height} refunded", findings=bad)
    '''))
    (root / "raw.csv").write_text(BAD)
    assert not _run(root).ok
    kept = json.loads(CliRunner().invoke(main, ["show", "orders", "--json", "--project", str(root)]).output)
    version = str(kept["assets"][0]["materializations"][0]["id"])
    out = CliRunner().invoke(main, ["show", "orders", "--version", version, "--project", str(root)]).output
    found = out[out.index("FAILED  check no_refunds"):]
    assert found.splitlines()[1:4] == ["              findings (1 row):", "                id  status",
                                       "                2   refunded"], out


def test_why_of_a_fresh_asset_whose_upstream_fails_a_check_added_since_does_not_contradict_itself(root: Path) -> None:
    _run(root)
    (root / "pipe.py").write_text(textwrap.dedent(PIPELINE).replace("row_count(min=1)", "row_count(min=10)"))
    assert not _run(root).ok  # orders' current version fails the tightened check, and stays current
    out = CliRunner().invoke(main, ["why", "report", "--project", str(root)]).output
    assert out.startswith("report: fresh") and "nothing to run: it was made from the current versions" in out
    assert "must be brought up to date first" not in out
    assert "Upstream not fresh (this asset is up to date with their current versions" in out and "orders: failed" in out


def test_the_plan_fails_a_current_version_that_fails_a_check_added_since_as_the_run_does(root: Path) -> None:
    _run(root)
    (root / "pipe.py").write_text(textwrap.dedent(PIPELINE).replace("row_count(min=1)", "row_count(min=10)"))
    assert not _run(root).ok  # orders' current version fails the tightened check: every run fails it again
    plan = _run(root, dry_run=True)
    assert not plan.ok and plan.results["orders"].outcome == "failed"
    assert plan.results["orders"].reasons[-1].startswith("its current version fails a check added or changed since it "
                                                         "was made (the run fails it again): check row_count(min=10): ")
    assert plan.results["report"].outcome == "skipped"
    assert plan.results["report"].reasons == _run(root).results["report"].reasons  # in the run's words
    assert plan.results["roster"].outcome == "fresh"
    out = CliRunner().invoke(main, ["materialize", "--dry-run", "--project", str(root)])
    assert out.exit_code == 1 and "Nothing to do" not in out.output
    assert "  failed      orders: its current version fails a check added or changed" in out.output, out.output


PARTS_FED = """
import polars as pl
from assetflow import asset, expr
from assetflow.partitions import static

CHECKS = [expr(pl.col("v") >= 0)]

@asset(partitions=static(["a", "b", "c"]), checks=CHECKS)
def part(partition) -> pl.DataFrame:
    return pl.DataFrame({"v": [3 if partition.key == "c" else 1]})

@asset(partitions=static(["a", "b", "c"]))
def twice(part: pl.DataFrame) -> pl.DataFrame:
    return part * 2

@asset
def total(part: pl.DataFrame) -> pl.DataFrame:
    return part.sum()
"""


def test_a_partition_whose_current_version_fails_a_check_added_since_is_failed_in_status_and_the_plan(
        tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
    path = tmp_path / "pipeline.py"
    path.write_text(PARTS_FED)
    assert _run(tmp_path).ok
    path.write_text(PARTS_FED.replace("CHECKS = [", 'CHECKS = [expr(pl.col("v") < 3, name="small"), '))
    run = _run(tmp_path)
    assert run.results["part[c]"].outcome == "failed" and run.results["total"].outcome == "skipped"
    plan = _run(tmp_path, dry_run=True)
    assert {n: r.outcome for n, r in plan.results.items()} == {
        "part[a]": "fresh", "part[b]": "fresh", "part[c]": "failed", "twice[a]": "fresh", "twice[b]": "fresh",
        "twice[c]": "skipped", "total": "skipped"}
    assert plan.results["total"].reasons == _run(tmp_path).results["total"].reasons
    row = _status_json(tmp_path, "part")
    assert row["state"] == "failed"
    assert row["partitions"] == {"a": "fresh", "b": "fresh", "c": "failed"}
    assert row["reasons"][0] == "the current version of partitions c fails check expr(small): 1 row where it is false, e.g. row 0"
    assert "c failed (its current version fails check expr(small): 1 row where it is false, e.g. row 0)" in row["reasons"][1]
    path.write_text(PARTS_FED)  # the check removed: fresh again, in the plan and in status
    assert all(r.outcome == "fresh" for r in _run(tmp_path, dry_run=True).results.values())
    assert _status_json(tmp_path, "part")["partitions"] == {"a": "fresh", "b": "fresh", "c": "fresh"}


def test_python_declarations_are_placed_from_the_project_root_as_sql_ones_are(root: Path) -> None:
    (root / "models").mkdir()
    (root / "models" / "kinds.sql").write_text("-- checks: not_null(status)\nselect status from orders\n")
    (root / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\nsql = ["models"]\n')
    spec = Workspace.load(root).graph.specs["orders"]
    assert spec.where == "pipe.py:13" and {c.where for c in spec.checks} == {"pipe.py:13", "pipe.py:14", "pipe.py:18"}
    shown = json.loads(CliRunner().invoke(main, ["show", "orders", "kinds", "--json", "--project", str(root)]).output)
    assert [a["defined_at"] for a in shown["assets"]] == ["pipe.py:13", "models/kinds.sql:1"]
    (root / "raw.csv").write_text(BAD)
    error = _run(root).results["orders"].error or ""
    assert "  error check not_null(id): 1 null row, e.g. row 2  (pipe.py:13)" in error and str(root) not in error


def test_verdicts_are_cached_and_an_edited_check_reruns_alone(root: Path) -> None:
    _run(root)
    assert _calls(root) == 1
    second = _run(root)
    assert second.results["orders"].outcome == "fresh" and _calls(root) == 1  # unchanged: not re-checked
    code = (root / "pipe.py").read_text().replace("biggest < 100", "biggest < 1000")
    (root / "pipe.py").write_text(code)
    status = {s.name: s for s in api.status(project=root)}
    assert status["orders"].state == "fresh"  # the data is; the edited check has no verdict on it yet, and says so
    assert "check amounts_are_small has no verdict on this version as it is defined now: " \
           "`assetflow check orders` judges it" in status["orders"].reasons
    assert "amounts_are_small" not in {v["check"] for v in status["orders"].checks or []}
    third = _run(root)
    orders = third.results["orders"]
    assert orders.outcome == "fresh" and orders.attempts == 0  # the asset did not run again
    assert _calls(root) == 2  # only the edited check ran
    cached = {v["check"]: v["cached"] for v in orders.checks or []}
    assert cached.pop("amounts_are_small") is False and all(cached.values())


def test_a_failed_warning_is_recorded_and_shown_but_publishes(root: Path) -> None:
    (root / "raw.csv").write_text(GOOD.replace("3,1,paid,30", "3,1,paid,300"))
    result = _run(root)
    assert result.ok and result.results["orders"].outcome == "ran"
    status = {s.name: s for s in api.status(project=root)}
    assert status["orders"].state == "fresh"
    assert "warning: check amounts_are_small: largest amount 300" in status["orders"].reasons


def test_the_run_says_which_warnings_it_found(root: Path) -> None:
    (root / "raw.csv").write_text(GOOD.replace("3,1,paid,30", "3,1,paid,300"))
    runner = CliRunner()
    first = runner.invoke(main, ["materialize", "--project", str(root), "--executor", "inprocess"])
    assert first.exit_code == 0 and "warning orders: check amounts_are_small: largest amount 300" in first.output
    again = runner.invoke(main, ["materialize", "--project", str(root), "--executor", "inprocess"])
    assert "warning orders" not in again.output  # judged before, read from the cache: status keeps saying it


def test_check_command_runs_the_checks_of_current_versions(root: Path) -> None:
    _run(root)
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "orders", "--json", "--project", str(root)])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.output)
    assert payload["ok"] and payload["counts"] == {"passed": 7, "failed": 0, "warned": 0}
    assert all(c["cached"] for c in payload["assets"][0]["checks"])
    # A new check on the current version: `check` finds it failing, exit 1, and says which and why.
    code = (root / "pipe.py").read_text().replace('row_count(min=1)', 'row_count(min=1, max=2)')
    (root / "pipe.py").write_text(code)
    failed = runner.invoke(main, ["check", "--project", str(root)])
    assert failed.exit_code == 1
    assert "check row_count(min=1, max=2): 3 rows, more than the maximum 2" in failed.output


def test_check_judges_a_stale_version_with_the_upstreams_it_was_made_from_as_status_does(root: Path) -> None:
    _run(root)
    (root / "people.csv").write_text("id,name\n1,ada\n")  # customer 2 goes: the new orders version is refused
    assert _run(root).results["orders"].outcome == "failed"
    [row] = api.status("orders", project=root)
    shown = {v["check"]: v["passed"] for v in row.checks or []}
    [judged] = api.run_checks("orders", project=root)
    assert judged.ok and {r["check"]: r["passed"] for r in judged.results} == shown  # not "failed (cached)"
    assert shown["relationship(customer_id -> customers.id)"]


def test_bad_checks_fail_with_the_check_asset_file_and_line(root: Path) -> None:
    code = (root / "pipe.py").read_text()
    code = code.replace('not_null("id")', 'not_null("idx")')
    code += textwrap.dedent('''
        @check(asset="roster")
        def explodes(roster):
            raise ValueError("no roster today")

        @check(asset="roster")
        def says_maybe(roster):
            return "maybe"
    ''')
    (root / "pipe.py").write_text(code)
    result = _run(root)
    orders, roster = result.results["orders"], result.results["roster"]
    assert orders.outcome == "failed" and orders.error is not None
    assert "check not_null(idx) of asset `orders`" in orders.error and "(pipe.py:13)" in orders.error
    assert "names column 'idx', which `orders` does not have" in orders.error
    assert roster.outcome == "failed" and roster.error is not None
    assert "check explodes of asset `roster`" in roster.error and "raised ValueError: no roster today" in roster.error
    assert 'raise ValueError("no roster today")' in roster.error  # the traceback, down to the check's line
    assert "check says_maybe of asset `roster`" in roster.error and "returned str 'maybe'" in roster.error


def test_declaration_errors_name_the_check_and_where(root: Path) -> None:
    code = (root / "pipe.py").read_text()
    (root / "pipe.py").write_text(code + '\n@check(asset="ordres")\ndef typo(ordres):\n    return True\n')
    with pytest.raises(CheckDefinitionError, match=r"Check 'typo' at .*pipe.py:\d+ is declared for asset 'ordres', "
                                                   r"which is not a declared asset"):
        Workspace.load(root)
    (root / "pipe.py").write_text(code.replace('relationship("customer_id", to="customers.id")',
                                               'relationship("customer_id", to="roster.id")'))
    with pytest.raises(CheckDefinitionError, match=r"relationship\(customer_id -> roster.id\) of asset 'orders' at "
                                                   r".*pipe.py:\d+ reads 'roster', which is not an upstream"):
        Workspace.load(root)
    with pytest.raises(DefinitionError, match="needs a polars expression"):
        expr("amount >= 0")
    with pytest.raises(DefinitionError, match="min is above max"):
        row_count(min=3, max=1)


def test_the_builtins_judge_in_one_select_with_row_numbers_and_examples() -> None:
    table = pl.LazyFrame({"id": [1, 2, 2, None, 5], "status": ["paid", "paid", "lost", "paid", None],
                          "amount": [1.0, -2.0, 3.0, 4.0, -5.0], "customer_id": [1, 2, 3, 9, None]})
    checks = [not_null("id"), unique("id"), accepted_values("status", ["paid"]), row_count(max=4),
              expr(pl.col("amount") >= 0), schema({"id": pl.Int64, "amount": pl.Int64, "nope": "String"}),
              relationship("customer_id", to="customers.id")]
    verdicts = run_builtins(checks, table, "orders", {"customers": pl.Series([1, 2, 3])})
    said = {v.check.name: (v.passed, v.summary) for v in verdicts}
    assert said == {
        "not_null(id)": (False, "1 null row, e.g. row 3"),
        "unique(id)": (False, "2 rows share a value with another, e.g. row 1 (2)"),
        "accepted_values(status)": (False, "1 row outside the accepted values, e.g. row 2 ('lost')"),
        "row_count(max=4)": (False, "5 rows, more than the maximum 4"),
        "expr(amount >= 0)": (False, "2 rows where it is false, e.g. row 1"),
        "schema": (False, "column 'amount' is Float64, expected Int64; column 'nope' is missing"),
        "relationship(customer_id -> customers.id)": (False, "1 row whose customer_id is not in customers.id, "
                                                             "e.g. row 3 (9)"),
    }
    # An expression that cannot run on this data fails alone; the others still judge.
    mixed = run_builtins([expr(pl.col("status") > 3), not_null("id")], table, "orders", {})
    assert mixed[0].error and "could not run" in mixed[0].summary and mixed[1].summary == "1 null row, e.g. row 3"


def test_unique_is_not_fooled_by_overflowing_differences_nan_or_big_unsigned_keys() -> None:
    big = 6148914691236517205
    tables = {
        "wraps around": (pl.LazyFrame({"id": [0, big, -big - 1, 0]}), False),  # differences overflow Int64
        "NaN twice": (pl.LazyFrame({"id": [1.0, float("nan"), float("nan")]}), False),
        "UInt64 above 2**63": (pl.LazyFrame({"id": pl.Series([2**64 - 1, 2**63 + 5, 7], dtype=pl.UInt64)}), True),
        "UInt64 repeated": (pl.LazyFrame({"id": pl.Series([2**64 - 1, 2**64 - 1], dtype=pl.UInt64)}), False),
        "increasing": (pl.LazyFrame({"id": [1, 5, 9]}), True),
    }
    for case, (table, unique_keys) in tables.items():
        [verdict] = run_builtins([unique("id")], table, "t", {})
        assert (verdict.passed, verdict.error) == (unique_keys, False), (case, verdict.summary)


PARTITIONED = '''
import polars as pl
from assetflow import asset, not_null, source
from assetflow.partitions import static

REGIONS = static(["eu", "us"])
regions_raw = source("data/{region}.csv", partitions=REGIONS)

@asset(partitions=REGIONS, checks=[not_null("amount")])
def sales(regions_raw: pl.DataFrame) -> pl.DataFrame:
    return regions_raw
'''


def test_partitions_are_checked_one_by_one(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(PARTITIONED)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "eu.csv").write_text("amount\n1\n2\n")
    (tmp_path / "data" / "us.csv").write_text("amount\n1\n\n")
    (tmp_path / "data" / "us.csv").write_text("amount,x\n1,a\n,b\n")
    result = _run(tmp_path)
    assert result.results["sales[eu]"].outcome == "ran"
    assert result.results["sales[us]"].outcome == "failed"
    assert (result.results["sales[us]"].error or "").startswith("check not_null(amount): 1 null row, e.g. row 1")
    runs = api.run_checks("sales", project=tmp_path)
    assert [(r.partition, r.ok) for r in runs] == [("eu", True)]  # only eu has a current version to check
    version = result.results["sales[us]"].error.split("It is kept as version ")[1].split(" ")[0]  # type: ignore[union-attr]
    with pytest.raises(UnknownAssetError) as refused:  # its only version was rejected: running again fails again
        api.load("sales", partition="us", project=tmp_path)
    assert (f"Partition 'us' of 'sales' has no current version: its version {version} (blake3:" in str(refused.value)
            and "was rejected by check not_null(amount): 1 null row, e.g. row 1. Fix the data (or the check), then "
            f"run `assetflow materialize sales --partition us`; assetflow.load('sales', version={version}, "
            "partition='us') loads the rejected version." in str(refused.value))


def _sql_project(tmp_path: Path) -> Path:
    """A project of one source and a models/ folder; returns where its `kinds` SQL asset goes."""
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\nsql = ["models"]\n')
    (tmp_path / "pipe.py").write_text('from assetflow import source\nraw = source("raw.csv")\n')
    (tmp_path / "raw.csv").write_text("kind,n\na,1\nb,2\nb,3\n")
    (tmp_path / "models").mkdir()
    sql = tmp_path / "models" / "kinds.sql"
    return sql


def test_a_sql_header_declares_simple_checks(tmp_path: Path) -> None:
    sql = _sql_project(tmp_path)
    sql.write_text("-- Totals per kind.\n-- checks: not_null(kind), unique(kind), accepted_values(kind, a, b), "
                   "row_count(min=1, max=5)\nselect kind, sum(n) as n from raw group by kind\n")
    spec = Workspace.load(tmp_path).graph.specs["kinds"]
    assert [(c.name, c.where) for c in spec.checks] == [  # type: ignore[union-attr]
        ("not_null(kind)", "models/kinds.sql:2"), ("unique(kind)", "models/kinds.sql:2"),
        ("accepted_values(kind)", "models/kinds.sql:2"), ("row_count(min=1, max=5)", "models/kinds.sql:2")]
    assert _run(tmp_path).ok
    sql.write_text(sql.read_text().replace("select kind,", "select 'a' as kind,"))
    refused = _run(tmp_path).results["kinds"]
    assert refused.outcome == "failed" and (refused.error or "").startswith("check unique(kind): 2 rows share")
    # Values written in the header take the column's type: numbers for n, text for kind ('a,b' one value).
    sql.write_text("-- checks: accepted_values(n, 1, 5), accepted_values(kind, 'a,b', b, a)\n"
                   "select kind, sum(n) as n from raw group by kind\n")
    assert _run(tmp_path).ok
    sql.write_text("-- checks: not_null(kind), between(n, 1, 3)\nselect kind from raw\n")
    with pytest.raises(DefinitionError, match=r"models/kinds.sql:1: header option checks: 'between\(n, 1, 3\)' is "
                                              r"not one of not_null"):
        Workspace.load(tmp_path)


def test_a_sql_header_check_may_be_a_warning(tmp_path: Path) -> None:
    sql = _sql_project(tmp_path)
    sql.write_text("-- checks: unique(kind, severity=warn), accepted_values(kind, 'a', 'b', 'severity=warn')\n"
                   "select kind from raw\n")
    spec = Workspace.load(tmp_path).graph.specs["kinds"]
    assert [(c.name, c.severity) for c in spec.checks] == [  # type: ignore[union-attr]
        ("unique(kind)", "warn"), ("accepted_values(kind)", "error")]  # a quoted 'severity=warn' is a value
    result = _run(tmp_path)
    assert result.ok and result.results["kinds"].outcome == "ran"  # published, with its warning
    assert "warning: check unique(kind): 2 rows share" in " ".join(api.status(["kinds"], project=tmp_path)[0].reasons)
    sql.write_text("-- checks: unique(kind, severity=loud)\nselect kind from raw\n")
    with pytest.raises(DefinitionError, match=r"models/kinds.sql:1: header option checks: severity must be"):
        Workspace.load(tmp_path)


@pytest.mark.slow  # the whole example project, SQL assets included: ~20 s
def test_the_readme_walkthrough_on_the_example_project(tmp_path: Path) -> None:
    import shutil

    example = Path(__file__).resolve().parents[1] / "example_project"
    root = tmp_path / "example"
    shutil.copytree(example, root, ignore=shutil.ignore_patterns(".assetflow", "__pycache__"))
    assert sorted(p.name for p in (root / "data" / "arrivals").iterdir()) == ["2026-10-01.csv"]  # as shipped
    assert _run(root).ok  # the README's first command stays green
    assert set(api.load("headline", project=root)) == {"total_revenue", "days_with_sales", "paying_customers"}
    before = api.load("stg_arrivals", project=root)
    shutil.copy(root / "incoming" / "2026-10-02.csv", root / "data" / "arrivals")
    refused = _run(root)
    arrivals, stock = refused.results["stg_arrivals"], refused.results["stock_received"]
    assert arrivals.outcome == "failed" and stock.outcome == "skipped"
    headline = ("check relationship(product_id -> stg_products.product_id): 1 row whose product_id is not in "
                "stg_products.product_id, e.g. row 7 (99)")
    assert (arrivals.error or "").splitlines()[0] == headline
    assert stock.reasons == [f"upstream `stg_arrivals` failed its {headline}"]
    assert {r.outcome for n, r in refused.results.items() if n not in ("stg_arrivals", "stock_received")} == {"fresh"}
    assert api.load("stg_arrivals", project=root).equals(before)
    assert all(r.ok for r in api.run_checks(project=root))  # the current versions all pass
    delivery = root / "data" / "arrivals" / "2026-10-02.csv"
    delivery.write_text(delivery.read_text().replace(",99,8\n", ",9,8\n"))  # the README's sed
    fixed = _run(root)
    assert fixed.ok and fixed.results["stg_arrivals"].outcome == "ran" and fixed.results["stock_received"].outcome == "ran"
    delivery.unlink()
    back = _run(root)
    assert back.ok and back.results["stg_arrivals"].outcome == "restored"


def test_the_example_project_declares_what_the_readme_says_it_shows() -> None:
    """README.md points at shop/marts.py for these options; a copy that lost one would leave the pointer false."""
    from assetflow.automation import on_cron
    from assetflow.partitioning import StaticPartitions

    ws = Workspace.load(Path(__file__).resolve().parents[1] / "example_project")
    try:
        specs = ws.graph.specs
        assert specs["revenue_summary"].freshness == "1d"  # type: ignore[union-attr]
        assert (specs["customer_revenue"].retries, specs["customer_revenue"].timeout) == (2, 300.0)  # type: ignore[union-attr]
        assert specs["headline"].io == "json"  # type: ignore[union-attr]
        assert isinstance(specs["headline"].automation, type(on_cron("0 7 * * *")))  # type: ignore[union-attr]
        assert isinstance(specs["category_orders"].partitions, StaticPartitions)  # type: ignore[union-attr]
    finally:
        ws.close()


def _backdate(root: Path) -> None:
    """Files written within the clock's resolution of a run are never trusted by stat (the racy-clean rule)."""
    import os
    import time

    for path in root.iterdir():
        if path.is_file():
            os.utime(path, (time.time() - 60, time.time() - 60))


def test_status_from_the_fast_path_shows_the_same_verdicts(root: Path) -> None:
    from assetflow.api import status_fast_or_full

    _backdate(root)
    _run(root)
    full, fast_path = status_fast_or_full(project_dir=root)  # loads the project, caches the graph
    rows, fast_path = status_fast_or_full(project_dir=root)
    assert fast_path
    assert [r.checks for r in rows] == [r.checks for r in full]
    assert [v["check"] for v in next(r for r in rows if r.name == "orders").checks or []][:2] == [
        "accepted_values(status)", "amounts_are_small"]
    (root / "raw.csv").write_text(GOOD.replace("3,1,paid,30", "3,1,paid,300"))
    _backdate(root)
    _run(root)  # a failed warning: only the full path says so, so the fast path steps aside
    status_fast_or_full(project_dir=root)
    rows, fast_path = status_fast_or_full(project_dir=root)
    assert not fast_path
    assert "warning: check amounts_are_small: largest amount 300" in next(r for r in rows if r.name == "orders").reasons



PARTS_CHECKED = """
import polars as pl
from assetflow import asset, expr
from assetflow.partitions import static

CHECKS = [expr(pl.col("v") < 0, severity="warn")]

@asset(partitions=static(["a", "b", "c"]), checks=CHECKS)
def part(partition) -> pl.DataFrame:
    return pl.DataFrame({"v": [1 if partition.key != "b" else -1]})
"""


def test_status_shows_the_verdicts_of_a_partitioned_asset(tmp_path: Path) -> None:
    from assetflow.api import status_fast_or_full

    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
    (tmp_path / "pipeline.py").write_text(PARTS_CHECKED)
    _backdate(tmp_path)
    _run(tmp_path)
    for _ in range(2):  # the full path, then the one the snapshot would allow
        [row], _fast = status_fast_or_full(project_dir=tmp_path)
        assert row.states == ("fresh",)
        assert row.reasons[0] == "warning: partitions a, c: check expr(v < 0): 1 row where it is false, e.g. row 0"
        assert sorted((v["partition"], v["passed"]) for v in row.checks or []) == [("a", False), ("b", True), ("c", False)]
        document = _status_json(tmp_path, "part")["checks"]  # what status --json and GET /api/status give
        assert sorted((v["partition"], v["passed"]) for v in document) == [("a", False), ("b", True), ("c", False)]
    path = tmp_path / "pipeline.py"  # a blocking check the current partitions a and c fail: the run refuses them
    path.write_text(path.read_text().replace("CHECKS = [", 'CHECKS = [expr(pl.col("v") < 0, name="negative"), '))
    _run(tmp_path)
    for _ in range(2):
        [row], _fast = status_fast_or_full(project_dir=tmp_path)
        assert "failed" in row.states
        assert row.reasons[0] == "the current version of partitions a, c fails check expr(negative): 1 row where it is false, e.g. row 0"
    assert api.status("status:failed", project=tmp_path)[0].name == "part"


LOST_LINES = '''
import polars as pl
from assetflow import asset, check, source

raw = source("raw.csv")
products = source("products.csv")

@asset
def orders(raw: pl.DataFrame) -> pl.DataFrame:
    return raw

@asset
def lines(orders: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    return orders.join(products, on="product_id", how="inner").sort("order_id")

@check(asset="lines")
def no_line_lost(lines: pl.DataFrame, orders: pl.DataFrame) -> bool:
    return lines.height == orders.height
'''


def test_status_shows_the_verdict_of_the_upstreams_now_not_the_latest_on_the_same_data(tmp_path: Path) -> None:
    """A rejected version can hold the very data of the current one (an order with an unknown product drops out of
    the join), judged with other upstreams: its failed verdict is the latest on that data hash. Once the order is
    gone again the run judges the current version with the upstreams it has now (passed), and status and show
    must say that, not the newer verdict of a state that no longer holds."""
    from assetflow.api import status_fast_or_full
    from assetflow.inspect.show import show

    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(LOST_LINES)
    (tmp_path / "products.csv").write_text("product_id,name\n1,tea\n2,jam\n")
    good = "order_id,product_id\n1,1\n2,2\n"
    (tmp_path / "raw.csv").write_text(good)
    assert _run(tmp_path).ok
    (tmp_path / "raw.csv").write_text(good + "3,9\n")
    rejected = _run(tmp_path)
    assert rejected.results["lines"].outcome == "failed"  # its data equals the current version's
    (tmp_path / "raw.csv").write_text(good)
    _backdate(tmp_path)
    back = _run(tmp_path)
    assert back.ok and back.results["orders"].outcome == "restored"
    assert [(v["check"], v["passed"]) for v in back.results["lines"].checks or []] == [("no_line_lost", True)]
    paths = []
    for fast in (False, True):  # the full check, then the fast path, from the verdicts the run judged with
        with pytest.MonkeyPatch.context() as env:
            if not fast:
                env.setenv("ASSETFLOW_NO_FAST_PATH", "1")
            rows, fast_path = status_fast_or_full(project_dir=tmp_path)
        paths.append(fast_path)
        lines = next(r for r in rows if r.name == "lines")
        assert lines.state == "fresh", lines.reasons
        assert [(v["check"], v["passed"]) for v in lines.checks or []] == [("no_line_lost", True)]
    assert paths == [False, True]
    ws = Workspace.load(tmp_path)
    try:
        shown = show(ws, "lines")
    finally:
        ws.close()
    assert [(v["check"], v["passed"]) for v in shown["current"]["checks"]] == [("no_line_lost", True)]


PARTITIONED_INPUTS = '''
import polars as pl
from assetflow import asset, check, source
from assetflow.partitions import daily

DAYS = daily("2024-03-01", end="2024-03-02")
raw = source("data/{date}.csv", partitions=DAYS)

@asset(partitions=DAYS)
def sales(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.filter(pl.col("amount") > 0)

@check(asset="sales")
def nothing_dropped(sales: pl.DataFrame, raw: pl.DataFrame) -> bool:
    return sales.height == raw.height
'''


def test_a_partition_check_reads_the_upstream_partition_its_asset_read(tmp_path: Path) -> None:
    """A ``@check`` of a partitioned asset gets each upstream as that partition received it (here the day's file of
    a partitioned source), and its verdict is keyed by that input: a new row the asset filters out leaves the
    partition's data as it was, yet the check runs again on the new input and refuses it."""
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(PARTITIONED_INPUTS)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "2024-03-01.csv").write_text("amount\n1\n2\n")
    (tmp_path / "data" / "2024-03-02.csv").write_text("amount\n3\n")
    first = _run(tmp_path)
    assert first.ok, {n: r.error for n, r in first.results.items() if r.error}
    assert [(v["check"], v["passed"]) for v in first.results["sales[2024-03-01]"].checks or []] == [
        ("nothing_dropped", True)]
    (tmp_path / "data" / "2024-03-01.csv").write_text("amount\n1\n2\n-5\n")
    second = _run(tmp_path)
    day = second.results["sales[2024-03-01]"]
    assert day.outcome == "failed" and (day.error or "").startswith("check nothing_dropped: returned False")
    assert second.results["sales[2024-03-02]"].outcome == "fresh"
    assert not any(v.get("cached") for v in day.checks or [])  # judged again on the new input, not from the cache


def test_check_judges_a_stale_partition_with_the_upstream_partitions_it_read(tmp_path: Path) -> None:
    """``assetflow check`` on a partition left stale by its upstream partition's new version judged it against that
    new version (FAILED, though nothing it was made from changed), where docs/checks.md says a partition's check
    gets what it read; as for an unpartitioned asset, it keeps the verdict it was published with."""
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(textwrap.dedent('''
        import polars as pl
        from assetflow import asset, check
        from assetflow.partitions import static

        SCALE = 1

        @asset(partitions=static(["a", "b"]))
        def up(partition) -> pl.DataFrame:
            return pl.DataFrame({"n": [SCALE]})

        @asset(partitions=static(["a", "b"]))
        def down(up: pl.DataFrame) -> pl.DataFrame:
            return up

        @check(asset="down")
        def copies_up(down: pl.DataFrame, up: pl.DataFrame) -> bool:
            return down.equals(up)
    '''))
    assert _run(tmp_path).ok
    (tmp_path / "pipe.py").write_text((tmp_path / "pipe.py").read_text().replace("SCALE = 1", "SCALE = 2"))
    assert _run(tmp_path, select="up").ok  # down stays stale: made from up's earlier partitions
    runs = api.run_checks("down", project=tmp_path)
    assert [(r.partition, [v["passed"] for v in r.results]) for r in runs] == [("a", [True]), ("b", [True])]
    assert {r.name: r.state for r in api.status(project=tmp_path)}["down"] == "stale"


def test_a_partition_relationship_looks_in_the_upstream_partition_it_read(tmp_path: Path) -> None:
    """A ``relationship`` of a partition looks for its values in what that partition read, not in every partition
    of the upstream: day 1's 3 exists only in day 2's file."""
    pipeline = PARTITIONED_INPUTS.replace("from assetflow import asset, check, source",
                                          "from assetflow import asset, check, relationship, source")
    pipeline = pipeline.replace('@asset(partitions=DAYS)\ndef sales(raw: pl.DataFrame) -> pl.DataFrame:\n'
                                '    return raw.filter(pl.col("amount") > 0)',
                                '@asset(partitions=DAYS, checks=[relationship("amount", to="raw.amount")])\n'
                                'def sales(raw: pl.DataFrame) -> pl.DataFrame:\n    return raw + 1')
    assert "relationship(" in pipeline and "raw + 1" in pipeline
    (tmp_path / "pyproject.toml").write_text('[tool.assetflow]\nmodules = ["pipe"]\n')
    (tmp_path / "pipe.py").write_text(pipeline)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "2024-03-01.csv").write_text("amount\n1\n2\n")  # sales 2, 3: 3 is not in this file
    (tmp_path / "data" / "2024-03-02.csv").write_text("amount\n3\n4\n5\n")  # sales 4, 5, 6: 6 is not either
    result = _run(tmp_path)
    for day in ("2024-03-01", "2024-03-02"):
        error = result.results[f"sales[{day}]"].error or ""
        assert result.results[f"sales[{day}]"].outcome == "failed", day
        assert error.startswith("check relationship(amount -> raw.amount): 1 row whose amount is not in raw.amount"), error
