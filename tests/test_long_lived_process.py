"""One process, many runs (a notebook, a service, ``assetflow ui``): edits to the project's files count.

The code fingerprint reads the files; the values must come from the same files, not from the
modules the process imported first, or an old result would be recorded under the new code.
"""

from __future__ import annotations

from conftest import ProjectDir

from assetflow import api

PIPELINE = '''
    import polars as pl
    from assetflow import asset
    from helpers import factor

    @asset
    def scaled() -> pl.DataFrame:
        return pl.DataFrame({"v": [VALUE * factor()]})
'''


def test_edited_modules_and_helpers_are_imported_again(project: ProjectDir) -> None:
    executor = "inprocess"  # the process pool starts workers that import the files themselves
    project.write("pipeline.py", PIPELINE.replace("VALUE", "1"))
    project.write("helpers.py", "def factor() -> int:\n    return 10\n")
    assert api.materialize(project=project.root, executor=executor).ok
    assert api.load("scaled", project=project.root)["v"].to_list() == [10]
    project.write("pipeline.py", PIPELINE.replace("VALUE", "2"))
    result = api.materialize(project=project.root, executor=executor)
    assert result.results["scaled"].outcome == "ran"
    assert api.load("scaled", project=project.root)["v"].to_list() == [20]
    project.write("helpers.py", "def factor() -> int:\n    return 100\n")
    assert api.materialize(project=project.root, executor=executor).results["scaled"].outcome == "ran"
    assert api.load("scaled", project=project.root)["v"].to_list() == [200]
    assert api.materialize(project=project.root, executor=executor).results["scaled"].outcome == "fresh"
