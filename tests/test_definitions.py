"""Bad definitions fail early with exit code 2 and a message that says what to do."""

from __future__ import annotations

import json

import pytest

from conftest import ProjectDir


def test_cycle_prints_the_whole_cycle(project: ProjectDir) -> None:
    project.write("pipeline.py", '''
        from assetflow import asset

        @asset
        def a(c): return c

        @asset
        def b(a): return a

        @asset
        def c(b): return b
    ''')
    proc = project.run("materialize", check=False)
    assert proc.returncode == 2
    assert "cycle: a -> b -> c -> a" in proc.stderr
    assert "pipeline.py:4" in proc.stderr


def test_missing_upstream_names_parameter_file_line_and_suggestion(project: ProjectDir) -> None:
    project.write("pipeline.py", '''
        from assetflow import asset

        @asset
        def orders(): return None

        @asset
        def revenue(ordrs): return ordrs
    ''')
    proc = project.run("status", check=False)
    assert proc.returncode == 2
    assert "'revenue'" in proc.stderr and "parameter 'ordrs'" in proc.stderr
    assert "pipeline.py:7" in proc.stderr
    assert "Did you mean 'orders'?" in proc.stderr


def test_duplicate_name_shows_both_definitions(project: ProjectDir) -> None:
    project.write("pyproject.toml", '[tool.assetflow]\nmodules = ["one", "two"]\n')
    project.write("one.py", "from assetflow import asset\n\n@asset\ndef orders(): return None\n")
    project.write("two.py", "from assetflow import asset\n\n\n@asset\ndef orders(): return None\n")
    proc = project.run("list", check=False)
    assert proc.returncode == 2
    assert "defined twice" in proc.stderr
    assert "one.py:3" in proc.stderr and "two.py:4" in proc.stderr


@pytest.mark.parametrize("name", ["Orders", "../x", "a-b", "a.b", "x" * 64, "con"])
def test_unsafe_names_are_refused_at_declaration(project: ProjectDir, name: str) -> None:
    project.write("pipeline.py", f'''
        from assetflow import asset

        @asset(name={name!r})
        def orders(): return None
    ''')
    proc = project.run("list", check=False)
    assert proc.returncode == 2
    assert repr(name) in proc.stderr and "pipeline.py" in proc.stderr


def test_import_error_reports_module_and_traceback(project: ProjectDir) -> None:
    project.write("pipeline.py", "import helpers\n")
    project.write("helpers.py", "def f():\n    return 1\n\nraise RuntimeError('boom in helpers')\n")
    proc = project.run("materialize", check=False)
    assert proc.returncode == 2
    assert "Importing module 'pipeline'" in proc.stderr
    assert "helpers.py\", line 4" in proc.stderr and "RuntimeError: boom in helpers" in proc.stderr
    assert "assetflow/project.py" not in proc.stderr


def test_no_project_found_says_how_to_declare_one(tmp_path) -> None:
    project = ProjectDir(tmp_path, [])
    (tmp_path / "pyproject.toml").unlink()
    proc = project.run("list", check=False)
    assert proc.returncode == 2
    assert "[tool.assetflow]" in proc.stderr and "-m MODULE" in proc.stderr


def test_failure_fails_only_its_downstream(project: ProjectDir) -> None:
    project.write("pipeline.py", '''
        import polars as pl
        from assetflow import asset

        @asset
        def good() -> pl.DataFrame:
            return pl.DataFrame({"x": [1]})

        @asset
        def bad() -> pl.DataFrame:
            raise ValueError("bad data in row 3")

        @asset
        def after_bad(bad: pl.DataFrame) -> pl.DataFrame:
            return bad

        @asset
        def after_good(good: pl.DataFrame) -> pl.DataFrame:
            return good
    ''')
    proc = project.run("materialize", "--json", check=False)
    assert proc.returncode == 1
    outcomes = {a["name"]: a for a in json.loads(proc.stdout)["assets"]}
    assert outcomes["good"]["outcome"] == outcomes["after_good"]["outcome"] == "ran"
    assert outcomes["bad"]["outcome"] == "failed"
    assert "ValueError: bad data in row 3" in outcomes["bad"]["error"]
    assert 'pipeline.py", line 11, in bad' in outcomes["bad"]["error"]
    assert outcomes["after_bad"]["outcome"] == "skipped"
    human = project.run("materialize", check=False)
    assert human.returncode == 1
    assert "Asset 'bad' FAILED" in human.stderr and "ValueError: bad data in row 3" in human.stderr
    status = project.status()
    assert status["bad"]["state"] == "failed"
    assert status["good"]["state"] == "fresh"


def test_non_table_value_fails_with_advice(project: ProjectDir) -> None:
    project.write("pipeline.py", '''
        from assetflow import asset

        @asset
        def settings():
            return {"threshold": 3}
    ''')
    result = project.materialize()
    assert result["settings"] == "failed"
    error = result["_"]["assets"][0]["error"]
    assert "dict" in error


def test_same_name_twice_in_one_module_is_a_duplicate(tmp_path) -> None:
    """The second ``def orders`` used to replace the first silently (exit 0, wrong data)."""
    from assetflow.errors import DuplicateAssetError
    from assetflow.workspace import Workspace

    project = ProjectDir(tmp_path, ["pipeline"])
    project.write("pipeline.py", '''
        from assetflow import asset

        @asset
        def orders(): return 1

        @asset
        def revenue(orders): return orders

        @asset(name="orders")
        def orders_again(): return 2
    ''')
    with pytest.raises(DuplicateAssetError) as caught:
        Workspace.load(tmp_path)
    message = str(caught.value)
    assert "'orders' is defined twice" in message
    assert "pipeline.py:4" in message and "pipeline.py:10" in message
    project.write("pipeline.py", '''
        from assetflow import asset

        @asset
        def orders(): return 1

        @asset
        def orders(): return 2
    ''')
    with pytest.raises(DuplicateAssetError, match=r"(?s)pipeline\.py:4.*pipeline\.py:7"):
        Workspace.load(tmp_path)


def _plain(a: int, b: "pl.DataFrame", /, c: str = "x", *rest: int, d: bytes, config: object, **more: str) -> None:
    """Every kind of parameter."""


def _no_rest(partition, up_one, up_two: "pa.Table") -> None:  # noqa: ANN001 - unannotated on purpose
    pass


def _wrapped() -> object:
    import functools

    @functools.wraps(_no_rest)
    def wrapper(*args: object, **kwargs: object) -> None:
        return _no_rest(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("fn", [_plain, _no_rest, _wrapped(), lambda x, *y: None, print],
                         ids=["all-kinds", "no-rest", "functools.wraps", "lambda", "builtin"])
def test_parameters_are_read_as_inspect_signature_reads_them(fn: object) -> None:
    """The @asset decorator reads a plain function's parameters from its code object (inspect.signature
    costs a quarter of declaring an asset); a wrapped function and anything else go through inspect."""
    import inspect

    from assetflow.declare import _parameters, annotation_of

    signature = inspect.signature(fn)  # type: ignore[arg-type]
    expected = [(p.name, p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)) for p in signature.parameters.values()]
    assert _parameters(fn) == expected  # type: ignore[arg-type]
    for name, parameter in signature.parameters.items():
        assert annotation_of(fn, name) == parameter.annotation  # type: ignore[arg-type]
