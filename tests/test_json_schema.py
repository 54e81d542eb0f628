"""Every command's --json prints only keys docs/json-schema.md documents, with the documented header."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import ProjectDir

DOC = Path(__file__).resolve().parent.parent / "docs" / "json-schema.md"

PIPELINE = '''
    import polars as pl
    from assetflow import asset, source

    raw = source("data/raw.csv", freshness="1d")


    @asset(tags={"tier": "gold"}, owners=["data"])
    def clean(raw: pl.DataFrame) -> pl.DataFrame:
        """Positive rows."""
        return raw.filter(pl.col("value") > 0)


    @asset(deps=["clean"])
    def report() -> pl.DataFrame:
        return pl.DataFrame({"n": [1]})
'''


def documented() -> dict[str, tuple[set[str], dict[str, str]]]:
    """Command -> (documented key paths, path -> type), from the doc's tables."""
    sections: dict[str, tuple[set[str], dict[str, str]]] = {}
    command = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"## `(\w+)`", line)
        if heading:
            command = heading[1]
            sections[command] = (set(), {})
        row = re.match(r"\| `([^`]+)` \| (\w+) \|", line)
        if row and command:
            sections[command][0].add(row[1])
            sections[command][1][row[1]] = row[2]
    return sections


def paths(value: Any, types: dict[str, str], prefix: str = "") -> set[str]:
    """Key paths of a JSON value, not descending into documented maps."""
    found: set[str] = set()
    kind = types.get(normalise(prefix))
    if isinstance(value, dict) and kind not in ("map", "any"):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else key
            found.add(path)
            found |= paths(inner, types, path)
    elif isinstance(value, list) and kind not in ("map", "any"):
        for item in value:
            found |= paths(item, types, prefix + "[]")
    return found


def normalise(path: str) -> str:
    path = path.replace("assets[].materializations[]", "assets[].current")
    while "version.upstream[]." in path:
        path = path.replace("version.upstream[].", "version.", 1)
    return path


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    project = ProjectDir(tmp_path_factory.mktemp("schema"), ["pipeline"])
    project.write("pipeline.py", PIPELINE)
    project.write("data/raw.csv", "id,value\n1,3\n2,-1\n")
    runs = [("materialize",), ("materialize", "--dry-run"), ("status",), ("status", "--check"), ("list",),
            ("why", "clean"), ("lineage", "clean"), ("lineage", "report", "--version", "current"),
            ("lineage", "clean.value"),
            ("show", "clean", "raw"), ("history",), ("history", "clean"), ("plugins",)]
    result: dict[str, list[dict[str, Any]]] = {}
    for args in runs:
        proc = project.run(*args, "--json")
        assert proc.returncode in (0, 1), proc.stderr
        result.setdefault(args[0], []).append(json.loads(proc.stdout))
    project.write("pipeline.py", PIPELINE.replace("> 0", "> 1"))
    project.write("data/raw.csv", "id,value\n1,3\n2,-1\n3,5\n")
    result["why"].append(json.loads(project.run("why", "clean", "--json").stdout))
    return result


@pytest.mark.parametrize("command", ["materialize", "status", "list", "why", "lineage", "show", "history", "plugins"])
def test_output_matches_the_documented_schema(outputs: dict[str, list[dict[str, Any]]], command: str) -> None:
    keys, types = documented()[command]
    for payload in outputs[command]:
        assert payload["schema_version"] == 1 and payload["command"] == command
        body = {k: v for k, v in payload.items() if k not in ("schema_version", "command")}
        found = {normalise(p) for p in paths(body, types)}
        assert found - keys == set(), f"undocumented keys in `{command} --json`: {sorted(found - keys)}"
        top = {k for k in keys if "." not in k and "[]" not in k and k != "fast_path"}
        if command == "lineage" and "version" in body:
            top = {"version"}
        elif command == "lineage" and "column" in body:  # ASSET.COLUMN: column lineage
            top = {"column", "nodes", "edges", "notes"}
        elif command == "lineage":
            top -= {"version", "column", "notes"}
        assert top <= set(body), f"`{command} --json` lacks documented keys {sorted(top - set(body))}"
    assert keys, f"docs/json-schema.md has no section for `{command}`"


def test_every_command_with_json_is_documented() -> None:
    from click import Context

    from assetflow.cli import main

    with_json = {name for name, cmd in main.commands.items()
                 if any(p.name == "as_json" for p in cmd.get_params(Context(cmd)))}
    missing = with_json - set(documented())
    assert not missing, f"commands with --json lack a section in docs/json-schema.md: {sorted(missing)}"
