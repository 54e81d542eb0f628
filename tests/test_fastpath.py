"""The no-op fast path: used only when it can prove nothing changed, never when anything did."""

from __future__ import annotations

import os
import textwrap
import time

import pytest

from conftest import ProjectDir

PIPELINE = '''
    import polars as pl
    from assetflow import asset, source

    parts = source("data/parts/*.csv")


    @asset
    def combined(parts: pl.DataFrame) -> pl.DataFrame:
        return parts.sort("id")
'''


@pytest.fixture
def built(project: ProjectDir) -> ProjectDir:
    project.write("pipeline.py", PIPELINE)
    project.write("data/parts/a.csv", "id\n1\n")
    backdate(project)
    assert project.ran() == {"combined"}
    return project


def backdate(project: ProjectDir) -> None:
    """Age the files past the racy window, as if written a while before the run."""
    past = time.time_ns() - 60 * 10**9
    for path in project.root.rglob("*"):
        os.utime(path, ns=(past, past))


def test_files_written_just_before_the_run_are_trusted_by_content_only(project: ProjectDir) -> None:
    """A file younger than the racy-clean window cannot be vouched for by its stat token; the snapshot
    vouches for it by the content that was read, re-hashed by the check (only that file, not a full check)."""
    project.write("pipeline.py", PIPELINE)
    csv = project.write("data/parts/a.csv", "id\n1\n")
    pyproject = project.root / "pyproject.toml"
    soon = time.time_ns() + 600 * 10**9
    for path in (csv, project.root / "pipeline.py", pyproject):
        os.utime(path, ns=(soon, soon))  # young for the whole test, however slow the machine
    assert project.ran() == {"combined"}
    assert fast(project)  # young files, unchanged content: the fast path holds
    edits = ((csv, "id\n2\n"), (project.root / "pipeline.py", textwrap.dedent(PIPELINE).replace('"id"', "'id'")),
             (pyproject, pyproject.read_text().replace('"pipeline"', "'pipeline'")))
    for path, text in edits:
        before = path.stat()
        path.write_text(text)  # same size, same mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the stat token cannot tell
        assert not fast(project), path.name


def fast(project: ProjectDir) -> bool:
    result = project.materialize()
    assert result["combined"] in ("fresh", "ran")
    return bool(result["_"].get("fast_path"))


def test_complete_run_enables_fast_path(built: ProjectDir) -> None:
    assert fast(built)
    assert fast(built)


def test_touched_files_are_hashed_again_and_keep_the_fast_path(built: ProjectDir) -> None:
    """A touched file, or one rewritten with the same bytes, moves its stat token but not its content:
    the check hashes it again (only it) and the snapshot still vouches."""
    os.utime(built.root / "pipeline.py", ns=(10**18, 10**18))
    assert fast(built)
    csv = built.root / "data/parts/a.csv"
    csv.write_text(csv.read_text())
    os.utime(csv, ns=(10**18 + 5, 10**18 + 5))
    assert fast(built)
    assert built.status()["combined"]["state"] == "fresh"


def test_moved_tokens_with_new_bytes_fall_back_then_recover(built: ProjectDir) -> None:
    csv = built.root / "data/parts/a.csv"
    csv.write_text("id\n7\n")  # same size, new bytes, new mtime
    assert built.ran() == {"combined"}
    (built.root / "pipeline.py").write_text(textwrap.dedent(PIPELINE).replace('"id"', "'id'"))
    assert not fast(built)  # new code bytes: the full check (which finds the change harmless)
    assert fast(built)  # the full check wrote a new snapshot


def test_new_file_matching_glob_is_seen(built: ProjectDir) -> None:
    built.write("data/parts/b.csv", "id\n2\n")
    assert built.ran() == {"combined"}


def test_new_module_beside_project_code_is_not_trusted(built: ProjectDir) -> None:
    built.write("polars_shadow.py", "X = 1\n")
    assert not fast(built)


def test_tampered_stored_file_is_seen(built: ProjectDir) -> None:
    stored = next((built.root / ".assetflow" / "data" / "parquet" / "combined").glob("*.parquet"))
    stored.write_bytes(stored.read_bytes()[:-20])  # truncated
    assert built.ran() == {"combined"}


def test_disabled_by_environment(built: ProjectDir) -> None:
    proc = built.run("materialize", "--json", env={"ASSETFLOW_NO_FAST_PATH": "1"})
    assert '"fast_path"' not in proc.stdout


def test_no_snapshot_vouches_for_a_pyproject_edited_after_it_was_parsed(tmp_path) -> None:
    """The configuration a run used came from the bytes it parsed: an edit landing between that read and
    the snapshot must not be vouched for by the stat token the file has when the snapshot is written."""
    from assetflow.fastpath import build_snapshot, verified_snapshot
    from assetflow.project import load_config

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.assetflow]\nmodules = ["pipeline"]\n')
    past = time.time_ns() - 60 * 10**9
    os.utime(pyproject, ns=(past, past))
    config = load_config(tmp_path)
    assert verified_snapshot(config, build_snapshot(config, {}, {}, [], time.time_ns())) is not None
    pyproject.write_text('[tool.assetflow]\nmodules = ["pipelin2"]\n')  # after the parse, before the snapshot
    os.utime(pyproject, ns=(past + 10**9, past + 10**9))  # an old mtime: no longer too young for its stat
    assert verified_snapshot(config, build_snapshot(config, {}, {}, [], time.time_ns())) is None
