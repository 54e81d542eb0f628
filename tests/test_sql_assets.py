"""SQL assets (docs/sql.md): declared as .sql files or sql_asset(), run in DuckDB, in one graph with Python.

In-process (the Python API with the in-process executor) on real projects on disk.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from assetflow import api
from assetflow.errors import (AssetflowError, CycleError, DefinitionError, DuplicateAssetError, SqlDefinitionError,
                              UnknownAssetError)
from assetflow.sql.parse import canonical_sql, parse_query

PYPROJECT = """
[tool.assetflow]
modules = ["pipeline"]
sql = ["models"]

[tool.assetflow.vars]
min_amount = 5
"""

PIPELINE = """
import polars as pl
from assetflow import asset, source, sql_asset

orders_raw = source("data/orders.csv")


@asset
def orders(orders_raw: pl.DataFrame) -> pl.DataFrame:
    return orders_raw.filter(pl.col("amount") > 0)


big_days = sql_asset("big_days", "select day, revenue from daily_revenue where revenue > 10", io="duckdb")


@asset
def report(big_days: pl.DataFrame) -> pl.DataFrame:
    return big_days.with_columns(double=pl.col("revenue").cast(pl.Int64) * 2)
"""

DAILY = """\
-- Revenue per day.
-- assetflow: tags=tier=gold
select day, sum(amount)::bigint as revenue, count(*) as n
from orders
where amount >= $min_amount
group by day
"""

ORDERS = "day,amount\n1,10\n1,5\n2,3\n2,20\n3,-1\n"


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    write(tmp_path, "pyproject.toml", PYPROJECT)
    write(tmp_path, "pipeline.py", PIPELINE)
    write(tmp_path, "models/marts/daily_revenue.sql", DAILY)
    write(tmp_path, "data/orders.csv", ORDERS)
    return tmp_path


def run(root: Path, *select: str) -> dict[str, str]:
    result = api.materialize(list(select) or None, project=root, executor="inprocess")
    return {name: r.outcome for name, r in result.results.items()}


def states(root: Path) -> dict[str, str]:
    return {row.name: row.state for row in api.status(project=root)}


def test_sql_and_python_assets_feed_each_other(shop: Path) -> None:
    assert run(shop) == dict.fromkeys(["orders", "daily_revenue", "big_days", "report"], "ran")
    daily = api.load("daily_revenue", project=shop)
    assert daily.to_dicts() == [{"day": 1, "revenue": 15, "n": 2}, {"day": 2, "revenue": 20, "n": 1}]
    assert api.load("big_days", project=shop)["revenue"].to_list() == [15, 20]
    assert api.load("report", project=shop)["double"].to_list() == [30, 40]
    assert set(run(shop).values()) == {"fresh"}
    spec = api._workspace(shop).graph.specs["daily_revenue"]
    assert (spec.group, spec.tags, spec.description) == ("marts", {"tier": "gold"}, "Revenue per day.")
    assert spec.upstreams == ("orders",)


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("select day,", "SELECT\n    day,  -- the day\n   "),
    lambda t: t.replace("from orders", "FROM Orders").replace("group by", "GROUP   BY"),
    lambda t: "/* a new leading comment */\n" + t,
    lambda t: t.replace("-- Revenue per day.", "-- Revenue, per day."),
])
def test_formatting_comments_and_keyword_case_do_not_make_it_stale(shop: Path, edit: object) -> None:
    run(shop)
    path = shop / "models/marts/daily_revenue.sql"
    path.write_text(edit(path.read_text()))  # type: ignore[operator]
    assert states(shop)["daily_revenue"] == "fresh"


def test_reordering_and_operands_does_not_count_but_a_real_edit_does(shop: Path) -> None:
    path = shop / "models/marts/daily_revenue.sql"
    path.write_text(DAILY.replace("where amount >= $min_amount", "where amount >= $min_amount and day > 0"))
    run(shop)
    path.write_text(DAILY.replace("where amount >= $min_amount", "where 0 < day AND $min_amount <= amount"))
    assert states(shop)["daily_revenue"] == "stale"  # >= flipped to <= is a different operator: honest
    path.write_text(DAILY.replace("where amount >= $min_amount", "where (day > 0) and amount >= $min_amount"))
    assert states(shop)["daily_revenue"] == "fresh"
    path.write_text(DAILY.replace("count(*) as n", "count(*) as n_orders"))
    rows = {r.name: r for r in api.status(project=shop)}
    assert rows["daily_revenue"].state == "stale"
    assert "code changed: the asset's SQL in models/marts/daily_revenue.sql" in rows["daily_revenue"].reasons
    report = api.why("daily_revenue", project=shop)
    assert "-  COUNT(*) AS n\n" in report.code[0].diff and "+  COUNT(*) AS n_orders\n" in report.code[0].diff


def test_a_config_value_is_part_of_the_recipe(shop: Path) -> None:
    run(shop)
    (shop / "pyproject.toml").write_text(PYPROJECT.replace("min_amount = 5", "min_amount = 11"))
    rows = {r.name: r for r in api.status(project=shop)}
    assert rows["daily_revenue"].reasons == ["configuration changed"]
    assert rows["orders"].state == "fresh"
    [change] = api.why("daily_revenue", project=shop).config
    assert (change.field, change.old, change.new) == ("vars.min_amount", 5, 11)
    assert run(shop)["daily_revenue"] == "ran"
    assert api.load("daily_revenue", project=shop)["revenue"].to_list() == [20]
    (shop / "pyproject.toml").write_text(PYPROJECT.replace("min_amount = 5", "min_amount = 11.0"))
    [change] = api.why("daily_revenue", project=shop).config  # 11 -> 11.0 changes the recipe: why says where
    assert (change.field, change.old, change.new) == ("vars.min_amount", 11, 11.0)


def test_equal_results_cut_off_whatever_order_duckdb_returns_rows_in(shop: Path) -> None:
    write(shop, "data/orders.csv", "day,amount\n" + "".join(f"{d % 97},{d}\n" for d in range(1, 20000)))
    run(shop)
    first = api.load("daily_revenue", project=shop)
    assert first["day"].to_list() == sorted(first["day"].to_list())  # rows in one order: ORDER BY ALL
    path = shop / "models/marts/daily_revenue.sql"
    path.write_text(DAILY.replace("count(*)", "count(amount)"))  # new code, same result
    outcomes = run(shop)
    assert outcomes["daily_revenue"] == "ran" and outcomes["big_days"] == "cutoff"


def test_upstreams_in_duckdb_parquet_and_a_source_join_in_one_query(shop: Path) -> None:
    write(shop, "models/joined.sql", """\
        -- assetflow: io=duckdb
        select b.day, b.revenue, o.amount, r.amount as raw_amount
        from big_days b join orders o on o.day = b.day join orders_raw r on r.day = b.day
        where o.amount = r.amount
        order by 1, 3
    """)
    assert run(shop)["joined"] == "ran"
    joined = api.load("joined", project=shop)
    assert joined.to_dicts() == [
        {"day": 1, "revenue": 15, "amount": 5, "raw_amount": 5}, {"day": 1, "revenue": 15, "amount": 10, "raw_amount": 10},
        {"day": 2, "revenue": 20, "amount": 3, "raw_amount": 3}, {"day": 2, "revenue": 20, "amount": 20, "raw_amount": 20}]
    spec = api._workspace(shop).graph.specs["joined"]
    assert (spec.group, spec.io, set(spec.upstreams)) == (None, "duckdb", {"big_days", "orders", "orders_raw"})


def test_a_query_duckdb_refuses_fails_only_its_asset(shop: Path) -> None:
    write(shop, "models/broken.sql", "select no_such_column from orders\n")
    write(shop, "models/fine.sql", "select count(*) as n from orders\n")
    result = api.materialize(project=shop, executor="inprocess")
    outcomes = {n: r.outcome for n, r in result.results.items()}
    assert outcomes["broken"] == "failed" and outcomes["fine"] == "ran" and outcomes["report"] == "ran"
    error = result.results["broken"].error or ""
    assert "models/broken.sql" in error and "no_such_column" in error and "Traceback" not in error


@pytest.mark.parametrize(("text", "where", "shown"), [
    # a conversion error while the query runs, and a binder error, on a line of the file below a header
    ("-- Bad maths.\nselect day,\n   amount + 'x' as d\nfrom orders\n", "models/bad.sql:3:13:",
     "\n     amount + 'x' as d\n              ^^^\n"),
    ("select day,\n  nope\nfrom orders as o;\n-- end\n", "models/bad.sql:2:3:", "\n    nope\n    ^^^^\n"),
    # after a non-ASCII character and a table that runs under another name (quoted, with its group)
    ('select \'é\' as e from marts."daily_revenue" where "Nope" > $min_amount', "models/bad.sql:1:50:",
     '\n  select \'é\' as e from marts."daily_revenue" where "Nope" > $min_amount\n' + " " * 51 + "^^^^^^\n"),
])
def test_a_query_duckdb_refuses_is_shown_at_its_line_in_the_file(shop: Path, text: str, where: str,
                                                                   shown: str) -> None:
    write(shop, "models/bad.sql", text)
    result = api.materialize(project=shop, executor="inprocess")
    error = result.results["bad"].error or ""
    assert error.startswith(f"SqlExecutionError: {where}") and "failed in DuckDB" in error, error
    assert shown in error, error
    for internal in ("LINE 1", "__assetflow", "read_parquet", str(shop)):  # nothing the user did not write
        assert internal not in error, error


def test_a_query_duckdb_refuses_in_python_is_shown_at_its_line_in_the_module(shop: Path) -> None:
    write(shop, "pipeline.py", PIPELINE + '\nlate = sql_asset(\n    "late",\n    """\n    select day,\n'
                                          '           nope\n    from orders\n    """)\n')
    error = api.materialize(project=shop, executor="inprocess").results["late"].error or ""
    line = PIPELINE.count("\n") + 6
    assert f"pipeline.py:{line}:12:" in error and "nope" in error and "__assetflow" not in error, error


def backdate(root: Path) -> None:
    """Age the files past the racy window, as if written a while before the run (see test_fastpath)."""
    past = time.time_ns() - 60 * 10**9
    for path in [root, *root.rglob("*")]:
        os.utime(path, ns=(past, past))


def test_editing_or_adding_a_sql_file_is_seen_after_a_noop_snapshot(shop: Path) -> None:
    write(shop, "pipeline.py", PIPELINE.replace(', io="duckdb"', ""))  # a fresh DuckDB file vouches for nothing
    backdate(shop)
    run(shop)
    rows, fast = api.status_fast_or_full(project_dir=shop)
    rows, fast = api.status_fast_or_full(project_dir=shop)
    assert fast and all(r.state in ("fresh", "observed") for r in rows)
    path = shop / "models/marts/daily_revenue.sql"
    path.write_text(DAILY.replace("count(*) as n", "count(*) as k"))
    rows, fast = api.status_fast_or_full(project_dir=shop)
    assert not fast and {r.name: r.state for r in rows}["daily_revenue"] == "stale"
    path.write_text(DAILY)
    backdate(shop)
    run(shop)
    api.status_fast_or_full(project_dir=shop)
    assert api.status_fast_or_full(project_dir=shop)[1]
    write(shop, "models/marts/deeper/extra.sql", "select 1 as one\n")
    rows, fast = api.status_fast_or_full(project_dir=shop)
    assert not fast and {r.name: r.state for r in rows}["extra"] == "missing"


# -- bad input ------------------------------------------------------------------------------------------


def test_a_column_may_name_its_table_with_its_group(shop: Path) -> None:
    write(shop, "models/top.sql", "select marts.daily_revenue.revenue as r from marts.daily_revenue order by 1")
    run(shop)
    assert api.load("top", project=shop)["r"].to_list() == [15, 20]


def test_a_quoted_table_name_is_resolved_in_any_case_as_duckdb_does(shop: Path) -> None:
    write(shop, "models/top.sql", 'select "Orders".amount as a from "Orders" join "Marts"."Daily_Revenue" d using (day)')
    run(shop)
    assert api._workspace(shop).graph.specs["top"].upstreams == ("orders", "daily_revenue")
    assert sorted(api.load("top", project=shop)["a"].to_list()) == [3, 5, 10, 20]
    write(shop, "models/top.sql", "select orders.amount as a from orders join marts.daily_revenue d using (day)")
    assert states(shop)["top"] == "fresh"  # the same query to DuckDB


def test_a_values_list_is_a_query(shop: Path) -> None:
    write(shop, "models/pairs.sql", "values (1, 'a'), (2, 'b')")
    run(shop)
    assert api.load("pairs", project=shop).rows() == [(1, "a"), (2, "b")]


@pytest.mark.parametrize(("text", "error", "words"), [
    ("select a,\n  from (x\n", SqlDefinitionError, ["models/bad.sql:2:", "not valid SQL"]),
    ("select 1 as a;\n  select 2 as b", SqlDefinitionError, ["models/bad.sql:2:3:", "2 statements", "one query"]),
    ("select 1 as a; -- one\n\nselect 2 as b; -- two", SqlDefinitionError, ["models/bad.sql:3:1:", "2 statements"]),
    ("-- only a comment;\n; /* and this */", SqlDefinitionError, ["models/bad.sql", "holds no query"]),
    ("create table t as select 1 as a", SqlDefinitionError, ["CREATE statement, not a query"]),
    ("insert into orders select * from orders", SqlDefinitionError, ["INSERT statement"]),
    ("drop table orders", SqlDefinitionError, ["DROP statement"]),
    ("attach 'other.db' as other", SqlDefinitionError, ["ATTACH statement"]),
    ("select * from 'data/orders.csv'", SqlDefinitionError, ["file path 'data/orders.csv'", "source("]),
    ("select * from read_csv('data/orders.csv')", SqlDefinitionError, ["table function read_csv", "source()"]),
    ("select *\nfrom glob('data/*')", SqlDefinitionError, ["models/bad.sql:2:9", "table function glob(...)"]),
    ("-- checks: row_count(min=5, max=1)\nselect 1 as x", SqlDefinitionError, ["min is above max. Fix the value"]),
    ("select * from pg.public.orders", SqlDefinitionError, ["'pg.public.orders'", "did not declare"]),
    ("select * from other.orders", SqlDefinitionError, ["'other.orders'", "in no group"]),
    ("select * from ordres", UnknownAssetError, ["models/bad.sql:1:15", "Did you mean 'orders'"]),
    ('select day\nfrom "ordres"', UnknownAssetError, ["models/bad.sql:2:6:", "'ordres'"]),  # at its opening quote
    ("select * from orders where amount > $min_amont", SqlDefinitionError, ["$min_amont", "Did you mean $min_amount"]),
    ("select o.day, r.day from orders o join orders_raw r on o.day = r.day", SqlDefinitionError,
     ["models/bad.sql:1:17", "two result columns named 'day'", "Alias one of them"]),
    ("select day, amount as DAY from orders order by 1", SqlDefinitionError, ["1:23", "columns named 'DAY'"]),
    ("-- assetflow: colour=blue\nselect 1 as a", SqlDefinitionError, ["models/bad.sql:1", "unknown assetflow option 'colour'"]),
    ("-- assetflow: retries=many\nselect 1 as a", SqlDefinitionError, ["header option retries", "whole number"]),
    ("-- assetflow: io=Not-A-Name\nselect 1 as a", DefinitionError, ["models/bad.sql:1", "Storage (io)"]),
    # a mistyped option would be description text: its checks lost without a word
    ("-- Checks: not_null(day)\nselect 1 as day", SqlDefinitionError,
     ["models/bad.sql:1:", "option `checks:`", "no check would run", "Did you mean `-- checks: not_null(day)`"]),
    ("-- Days.\n-- check: unique(day)\nselect 1 as day", SqlDefinitionError, ["models/bad.sql:2:", "`-- checks: unique(day)`"]),
    ("-- Owner: sales@example.com\nselect 1 as a", SqlDefinitionError, ["option `owners:`", "would be ignored"]),
    ("-- assetflow: grup=marts\nselect 1 as a", SqlDefinitionError, ["'grup'", "Did you mean 'group'?"]),
    ("select 1 as day\n  -- checks: unique(day)\n", SqlDefinitionError, ["models/bad.sql:2:", "is not read", "header"]),
])
def test_bad_sql_is_a_clear_error_naming_the_file(shop: Path, text: str, error: type, words: list[str]) -> None:
    write(shop, "models/bad.sql", text)
    with pytest.raises(error) as caught:
        api.status(project=shop)
    for word in words:
        assert word in str(caught.value), str(caught.value)


def test_a_header_line_like_no_option_is_description(shop: Path) -> None:
    write(shop, "models/noted.sql", "-- Note: one row per day.\n-- Grain: day\nselect 1 as day\n-- group: by day\n")
    assert api._workspace(shop).graph.specs["noted"].description == "Note: one row per day.\nGrain: day"


@pytest.mark.parametrize("order", ["", " order by o.amount"])
def test_a_star_giving_two_columns_of_one_name_fails_its_asset_and_stores_nothing(shop: Path, order: str) -> None:
    write(shop, "models/both.sql", f"select\n  * from orders o join orders_raw r on o.day = r.day{order}\n")
    result = api.materialize(project=shop, executor="inprocess")
    assert result.results["both"].outcome == "failed"
    error = result.results["both"].error or ""  # not stored as day, amount, day_1, amount_1, nor with two 'day'
    assert "models/both.sql:2:3" in error and "two result columns named 'day'" in error and "Alias one" in error
    assert "Traceback" not in error and states(shop)["both"] == "failed"
    with pytest.raises(AssetflowError, match="no current version"):
        api.load("both", project=shop)


def test_a_column_of_no_type_parquet_cannot_store_says_which_and_what_to_do(shop: Path) -> None:
    write(shop, "models/mapped.sql", "select day, map() as tags from orders\n")  # DuckDB: map<null, null>
    result = api.materialize(project=shop, executor="inprocess")
    error = result.results["mapped"].error or ""
    assert result.results["mapped"].outcome == "failed" and "Traceback" not in error, error
    assert "column tags (map<null, null>)" in error and "map()::MAP(VARCHAR, INTEGER)" in error
    write(shop, "models/mapped.sql", "select day, map()::MAP(VARCHAR, INTEGER) as tags from orders\n")
    assert api.materialize(project=shop, executor="inprocess").results["mapped"].outcome == "ran"


@pytest.mark.parametrize("text", ["select 1 as a;\n-- end of model\n", "select 1 as a; /* end */", "select 1 as a;\n;\n"])
def test_comments_and_semicolons_after_the_query_are_not_statements(text: str) -> None:
    parsed = parse_query(text, file="x.sql", asset="x")
    assert parsed.tree.sql() == "SELECT 1 AS a"


def test_a_sql_asset_reading_a_value_that_is_no_table_says_what_to_do(shop: Path) -> None:
    write(shop, "pipeline.py", PIPELINE + """

@asset(io="json")
def cfg() -> dict:
    return {"a": 1}


from_cfg = sql_asset("from_cfg", "select * from cfg")
""")
    result = api.materialize(project=shop, executor="inprocess")
    assert result.results["cfg"].outcome == "ran" and result.results["from_cfg"].outcome == "failed"
    error = result.results["from_cfg"].error or ""
    assert "Traceback" not in error and "__assetflow" not in error, error
    assert "SQL asset 'from_cfg'" in error and "reads 'cfg', which is stored with io='json'" in error
    assert "io='parquet'" in error


def test_a_cycle_through_sql_and_python_names_the_sql_file(shop: Path) -> None:
    write(shop, "pipeline.py", PIPELINE.replace("return orders_raw.filter", "return big_days.join(orders_raw, on='day').filter")
          .replace("def orders(orders_raw: pl.DataFrame)", "def orders(orders_raw: pl.DataFrame, big_days: pl.DataFrame)"))
    with pytest.raises(CycleError) as caught:
        api.status(project=shop)
    assert "models/marts/daily_revenue.sql" in str(caught.value) and "daily_revenue" in caught.value.cycle


def test_sql_asset_in_python_reports_errors_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.assetflow]\nmodules = ["pipeline"]\n')
    write(tmp_path, "pipeline.py", 'from assetflow import sql_asset\n\n\nbad = sql_asset("bad", "select (1")\n')
    with pytest.raises(Exception) as caught:
        api.status(project=tmp_path)
    assert "pipeline.py:4:" in str(caught.value) and "not valid SQL" in str(caught.value)
    write(tmp_path, "pipeline.py", 'from assetflow import sql_asset\n\nlate = sql_asset(\n    "late",\n    """\n'
                                   '    select order_id\n    from ordrs\n    """)\n')
    with pytest.raises(Exception) as caught:  # the query's lines, not the call's: the typo is on line 7
        api.status(project=tmp_path)
    assert "pipeline.py:7:" in str(caught.value) and "'ordrs'" in str(caught.value)


def test_a_sql_file_and_a_python_asset_of_one_name_are_a_duplicate(shop: Path) -> None:
    write(shop, "models/orders.sql", "select 1 as a")
    with pytest.raises(DuplicateAssetError) as caught:
        api.status(project=shop)
    assert "'orders' is defined twice" in str(caught.value) and "models/orders.sql" in str(caught.value)


# -- canonical form ------------------------------------------------------------------------------------


def canonical(text: str) -> str:
    return canonical_sql(parse_query(text, file="x.sql", asset="x").tree)


@pytest.mark.parametrize(("left", "right", "same"), [
    ("select a from t where x = 1 and y = 2", "SELECT a FROM t WHERE y = 2 AND x = 1", True),
    ("select a from t where x = 1 or (y = 2 and z)", "select a from t where (z and 2 = y) or 1 = x", True),
    ("select a from t where k in (3, 1, 2)", "select a from t where k in (1, 2, 3)", True),
    ("select a, b, count(*) as n from t group by a, b", "select a, b, count(*) as n from t group by b, a", True),
    ("select a /* c */ from t -- d", "select\n  a\nfrom\n  t", True),
    # DuckDB resolves table names, aliases and qualifiers in any case, quoted or not; a column's name keeps its case
    ('select "T".a, "X".b from "T" join u as "X" using (k)', "select t.a, x.b from t join u as x using (k)", True),
    ('select "A" from t', "select a from t", False),
    ('select "T".a + 1 from "T"', "select t.a + 1 from t", False),  # the result column is named after the text
    ("select a, b from t", "select b, a from t", False),
    ("select a as x from t", "select a as y from t", False),
    ("select a from t order by a, b", "select a from t order by b, a", False),
    ("select a from t where x = 1 and (y or z)", "select a from t where (x = 1 and y) or z", False),
    ("select a from t where x < 1", "select a from t where x > 1", False),
    # an unaliased expression's text is its result column's name (DuckDB's): its order is part of the result
    ("select x = 1 and y = 2 from t", "select y = 2 and x = 1 from t", False),
    ("select k in (3, 1) from t", "select k in (1, 3) from t", False),
    ("select x = 1 and y = 2 as both from t", "select y = 2 and x = 1 as both from t", True),
    ("select a from t where x = 1 and y = 2 union all select x = 1 and y = 2 from u",
     "select a from t where y = 2 and x = 1 union all select y = 2 and x = 1 from u", True),
])
def test_canonical_form(left: str, right: str, same: bool) -> None:
    assert (canonical(left) == canonical(right)) is same


def test_sql_asset_value_is_usable_with_polars(shop: Path) -> None:
    run(shop)
    assert isinstance(api.load("daily_revenue", project=shop), pl.DataFrame)


# -- column lineage -------------------------------------------------------------------------------------

TOP = """\
with d as (select * from daily_revenue)
select d.day, d.revenue + 1 as revenue_plus, n * 2 as twice, 'x' as constant from d
"""


def test_column_lineage_goes_through_several_sql_assets_and_python_ones(shop: Path) -> None:
    write(shop, "models/top_days.sql", TOP)
    run(shop)
    trail = api.column_lineage("top_days", "revenue_plus", project=shop)
    edges = {(f"{e.upstream[0]}.{e.upstream[1]}", f"{e.downstream[0]}.{e.downstream[1]}", e.how) for e in trail.edges}
    assert edges == {("daily_revenue.revenue", "top_days.revenue_plus", "sql"),
                     ("orders.amount", "daily_revenue.revenue", "sql"),
                     ("orders_raw.amount", "orders.amount", "name")}
    assert trail.nodes[("daily_revenue", "revenue")] == "CAST(SUM(orders.amount) AS BIGINT)"
    assert trail.kinds == {"top_days": "sql", "daily_revenue": "sql", "orders": "python", "orders_raw": "source"}
    assert "report.double (python): made by the Python code" in api.column_lineage("report", "double", project=shop).render("text")
    assert "made by" not in trail.render("text")
    constant = api.column_lineage("top_days", "constant", project=shop)
    assert constant.edges == () and constant.nodes[("top_days", "constant")] == "'x'"
    down = api.column_lineage("orders", "amount", upstream=False, downstream=True, project=shop)
    assert {f"{a}.{c}" for a, c in down.nodes} == {"orders.amount", "daily_revenue.revenue", "big_days.revenue",
                                                   "report.revenue", "top_days.revenue_plus"}


def test_column_lineage_of_a_sql_asset_never_materialized_comes_from_its_query(shop: Path) -> None:
    run(shop)
    write(shop, "models/top_days.sql", TOP)
    trail = api.column_lineage("top_days", "twice", project=shop)
    assert [(e.upstream, e.downstream) for e in trail.edges] == [(("daily_revenue", "n"), ("top_days", "twice"))]


def test_column_lineage_matches_names_in_any_case_and_shows_them_as_stored(shop: Path) -> None:
    write(shop, "pipeline.py", PIPELINE + """

@asset
def cased(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.rename({"amount": "Amount"})
""")
    run(shop)
    write(shop, "models/q.sql", 'select day as "DayNo", day as Stat, "Amount", amount * 2 as dbl from cased\n')
    expected = {"DayNo": [("cased", "day")], "Stat": [("cased", "day")], "Amount": [("cased", "Amount")],
                "dbl": [("cased", "Amount")]}
    for _ in ("from the query", "from the stored schema"):
        columns = api.columns("q", project=shop).columns or ()
        assert {c.name: list(c.origins) for c in columns} == expected
        run(shop)
    assert api.load("q", project=shop).columns == ["DayNo", "Stat", "Amount", "dbl"]
    down = api.column_lineage("cased", "Amount", upstream=False, downstream=True, project=shop)
    assert set(down.nodes) == {("cased", "Amount"), ("q", "Amount"), ("q", "dbl")}
    trail = api.column_lineage("q", "stat", project=shop)  # DuckDB's names are case-insensitive
    assert trail.root == ("q", "Stat") and ("cased", "day") in trail.nodes


def test_lineage_cli_renders_a_column_trail_in_every_format(shop: Path) -> None:
    import json

    from click.testing import CliRunner

    from assetflow.cli import main

    run(shop)
    runner = CliRunner()
    args = ["lineage", "big_days.revenue", "--project", str(shop)]
    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "big_days.revenue (sql)" in text.output and "orders_raw.amount (source)" in text.output
    payload = json.loads(runner.invoke(main, [*args, "--format", "json"]).output)
    assert payload["column"] == "big_days.revenue"
    assert {"upstream": "orders.amount", "downstream": "daily_revenue.revenue", "how": "sql"} in payload["edges"]
    assert "orders.amount" in runner.invoke(main, [*args, "--format", "mermaid"]).output
    typo = runner.invoke(main, ["lineage", "big_dyas.revenue", "--project", str(shop)])
    assert typo.exit_code == 2 and "No asset named 'big_dyas'" in typo.output and "Did you mean 'big_days'" in typo.output
    assert '"orders.amount" -> "daily_revenue.revenue";' in runner.invoke(main, [*args, "--format", "dot"]).output
    wrong = runner.invoke(main, ["lineage", "big_days.revenu", "--project", str(shop)])
    assert wrong.exit_code == 2 and "Did you mean 'revenue'" in wrong.output


def test_show_lists_columns_with_origins_and_what_python_added_and_dropped(shop: Path) -> None:
    from assetflow.inspect.show import show

    run(shop)
    ws = api._workspace(shop)
    daily = show(ws, "daily_revenue")["columns"]
    assert daily["known"] and [c["name"] for c in daily["list"]] == ["day", "revenue", "n"]
    assert daily["list"][1]["origins"] == [{"asset": "orders", "column": "amount"}]
    report = show(ws, "report")["columns"]
    assert {c["name"]: c["status"] for c in report["list"]} == {"day": "kept", "revenue": "kept", "double": "added"}
    orders = show(ws, "orders")["columns"]
    assert orders["dropped"] == [] and {c["status"] for c in orders["list"]} == {"kept"}
    write(shop, "pipeline.py", PIPELINE + """

@asset
def slim(orders: pl.DataFrame) -> pl.DataFrame:
    return orders.drop("day")
""")
    run(shop)
    slim = show(api._workspace(shop), "slim")["columns"]
    assert slim["dropped"] == [{"asset": "orders", "column": "day"}] and [c["name"] for c in slim["list"]] == ["amount"]


def test_a_sql_asset_reads_every_partition_of_a_partitioned_upstream(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", '[tool.assetflow]\nmodules = ["pipeline"]\nsql = ["models"]\n')
    write(tmp_path, "pipeline.py", """
        import polars as pl
        from assetflow import asset, source
        from assetflow.partitions import static

        KEYS = static(["a", "b"])
        events = source("data/{key}.csv", partitions=KEYS)


        @asset(partitions=KEYS)
        def cleaned(events: pl.DataFrame) -> pl.DataFrame:
            return events.filter(pl.col("n") > 0)
    """)
    write(tmp_path, "data/a.csv", "user,n\nx,1\ny,0\n")
    write(tmp_path, "data/b.csv", "user,n\nx,2\nz,5\n")
    write(tmp_path, "models/per_user.sql", "select user, sum(n)::bigint as n from cleaned group by user\n")
    write(tmp_path, "models/raw_count.sql", "select count(*) as rows from events\n")
    assert run(tmp_path)["per_user"] == "ran"
    assert api.load("per_user", project=tmp_path).to_dicts() == [{"user": "x", "n": 3}, {"user": "z", "n": 5}]
    assert api.load("raw_count", project=tmp_path)["rows"].to_list() == [4]
    trail = api.column_lineage("per_user", "n", project=tmp_path)  # through a partitioned asset and source
    assert {(f"{e.upstream[0]}.{e.upstream[1]}", e.how) for e in trail.edges} == {("cleaned.n", "sql"), ("events.n", "name")}
    with pytest.raises(DefinitionError, match="partitions are not supported on SQL assets"):
        from assetflow.partitions import static
        from assetflow.sql.spec import sql_asset

        sql_asset("bad", "select 1 as a", partitions=static(["a"]))


def test_show_prints_where_each_column_comes_from(shop: Path) -> None:
    from click.testing import CliRunner

    from assetflow.cli import main

    run(shop)
    shown = CliRunner().invoke(main, ["show", "daily_revenue", "report", "--project", str(shop)])
    assert shown.exit_code == 0, shown.output
    assert "revenue: int64  <- CAST(SUM(orders.amount) AS BIGINT) from orders.amount" in shown.output
    assert "double: int64  <- added" in shown.output and "day: int64  <- big_days.day (kept)" in shown.output
