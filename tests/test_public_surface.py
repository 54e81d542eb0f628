"""The public surfaces change only on purpose, and the layers keep their direction.

``assetflow.__all__`` is what users import; ``assetflow.api.__all__`` is the one door the CLI and
the page go through (docs/api.md); ``assetflow.ext.__all__`` is what plugins may use (docs/plugins.md). A name added or removed here is an API change: update the docs too.
The layering rules are docs/architecture.md's, checked on the source's own imports.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import assetflow
import assetflow.api
import assetflow.ext

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "assetflow"

PUBLIC = [
    "AssetSpec", "AssetflowError", "CheckDefinitionError", "CheckOutcome", "CycleError", "DefinitionError",
    "DuplicateAssetError", "ExitCode", "GraphError", "MaterializationError", "PluginError", "ProjectLoadError", "Secret",
    "SelectionError", "SourceSpec", "StateError", "StorageError", "UnknownAssetError", "accepted_values", "asset",
    "check", "expr", "hookimpl", "lineage", "load", "materialize", "not_null", "relationship", "row_count",
    "run_checks", "schema", "secret", "source", "sql_asset", "status", "unique", "why",
]
API = [
    "AssetStatus", "DoctorReport", "GcReport", "Lineage", "VersionNode", "WhyReport", "add_partitions",
    "automation", "column_lineage", "columns", "doctor", "gc", "history", "lineage", "list_assets",
    "list_partitions", "load", "logs", "materialize", "plugins", "project_config", "remove_partitions", "run_checks", "schedules",
    "selected", "sensors", "show", "status", "status_fast_or_full", "ticks", "version_tree", "why", "workspace",
]
EXT = [
    "CheckResult", "CheckStatus", "Executor", "IOBackend", "PluginError", "ProjectConfig", "StorageError",
    "StoredData", "TableBackend", "TaskTimeout", "ValueKind", "WorkerLost", "atomic_target", "confined", "hookimpl",
    "main_module_hidden", "require_table", "run_ended", "stat_token", "table_hash", "warm_up", "write_atomically",
]


@pytest.mark.parametrize(("module", "expected"), [(assetflow, PUBLIC), (assetflow.api, API), (assetflow.ext, EXT)])
def test_the_surface_is_pinned_sorted_and_every_name_resolves(module: object, expected: list[str]) -> None:
    names = list(module.__all__)  # type: ignore[attr-defined]
    assert names == expected
    assert names == sorted(names)
    for name in names:
        assert getattr(module, name) is not None, name
    assert set(names) <= set(dir(module))  # completion offers the lazily loaded names too


def test_plugins_docs_name_every_ext_name() -> None:
    text = (ROOT / "docs" / "plugins.md").read_text()
    missing = [name for name in EXT if f"`{name}" not in text]
    assert not missing, f"docs/plugins.md does not document {missing}"


def test_api_docs_name_every_api_function() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    missing = [name for name in API if f"`{name}" not in text]
    assert not missing, f"docs/api.md does not document {missing}"


FACES = ["cli.py", "cli_automation.py", "ui/app.py", "ui/export.py", "ui/project_view.py", "ui/security.py",
         "ui/serve.py"]
# The daemon's loop is a process the CLI hosts (its signals, its lock), not an operation that returns data.
HOSTED = {"cli_automation.py": {"assetflow.automation.daemon", "assetflow.automation.lock", "assetflow.project"}}


def test_the_faces_reach_the_rest_through_the_api() -> None:
    """The CLI and the page import the door (api, documents), errors and their own helpers, nothing below."""
    allowed = ("assetflow.api", "assetflow.documents", "assetflow.errors", "assetflow.secrets", "assetflow.cli",
               "assetflow.ui")
    reaching = {}
    for name in FACES:
        below = sorted(m for m in _real_modules(_imports(PACKAGE / name, typing=False))
                       if m != "assetflow" and not m.startswith(allowed) and m not in HOSTED.get(name, set()))
        if below:
            reaching[name] = below
    assert not reaching


def _imports(path: Path, typing: bool = True) -> set[str]:
    """Every ``assetflow...`` module a file imports, at the top or inside a function, typing-only too
    (unless ``typing`` is False: then what ``if TYPE_CHECKING:`` imports is left out)."""
    tree = ast.parse(path.read_text(), str(path))
    skipped: set[int] = set()
    if not typing:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                skipped.update(id(inner) for child in node.body for inner in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "assetflow" or name.startswith("assetflow.")}


def _real_modules(names: set[str]) -> set[str]:
    """Only the names that are modules (``from assetflow.x import y`` names y, a module or not)."""
    real = set()
    for name in names:
        relative = name.removeprefix("assetflow").lstrip(".").replace(".", "/")
        if (PACKAGE / f"{relative}.py").exists() or (PACKAGE / relative / "__init__.py").exists():
            real.add(name)
    return real


def test_plugins_import_only_the_public_surface() -> None:
    offenders = {}
    for path in sorted((ROOT / "plugins").glob("*/assetflow_*/**/*.py")):
        private = {m for m in _real_modules(_imports(path)) if m not in ("assetflow", "assetflow.ext")}
        if private:
            offenders[str(path.relative_to(ROOT))] = sorted(private)
    assert not offenders


# Each module (or package) may import only from those listed: the leaves import nothing of
# assetflow but the errors; nothing below the workspace reaches up into execution or inspection.
LEAVES = ["errors", "contracts", "durations", "version", "hashing", "hookspecs", "failpoints", "secrets"]
FORBIDDEN = {
    "checks": ["execute", "workspace", "plan", "api", "cli", "fastpath", "inspect", "state", "storage", "ui"],
    "declare": ["execute", "workspace", "plan", "api", "cli", "fastpath", "inspect", "state", "storage"],
    "state": ["execute", "workspace", "plan", "api", "cli", "fastpath", "inspect", "ui"],
    "storage": ["execute", "workspace", "plan", "api", "cli", "fastpath", "inspect", "state", "ui"],
    "plan": ["execute", "workspace", "api", "cli", "fastpath", "inspect", "ui"],
    "plugins": ["execute", "storage", "workspace", "api", "cli", "fastpath", "inspect", "state", "ui"],
    "workspace": ["execute", "api", "cli", "fastpath", "inspect", "ui"],
    "execute": ["api", "cli", "inspect", "ui"],
    "inspect": ["api", "cli", "execute", "ui"],
}


def _files(name: str) -> list[Path]:
    return sorted((PACKAGE / name).rglob("*.py")) if (PACKAGE / name).is_dir() else [PACKAGE / f"{name}.py"]


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaves_import_nothing_of_assetflow_but_errors(leaf: str) -> None:
    imported = _real_modules(_imports(PACKAGE / f"{leaf}.py")) - {"assetflow.errors", "assetflow.contracts"}
    assert not imported, f"{leaf}.py imports {sorted(imported)}"


@pytest.mark.parametrize("lower", sorted(FORBIDDEN))
def test_no_import_runs_back_up(lower: str) -> None:
    upward = {}
    for path in _files(lower):
        bad = sorted(m for m in _real_modules(_imports(path))
                     if any(m == f"assetflow.{h}" or m.startswith(f"assetflow.{h}.") for h in FORBIDDEN[lower]))
        if bad:
            upward[str(path.relative_to(ROOT))] = bad
    assert not upward


def test_every_module_imports_on_its_own() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if name.startswith("assetflow.ui") or name == "assetflow.__main__":
            continue  # the page needs starlette's optional pieces; __main__ runs the CLI
        importlib.import_module(name)


PROJECT_ARGS = {"project", "modules", "files"}


def _documented_signature(text: str, name: str) -> ast.arguments:
    """The signature docs/api.md gives ``name`` in its table (``| `name(...)` |``), parsed as Python."""
    for line in text.splitlines():
        start = line.find(f"`{name}(")
        if line.startswith("|") and start >= 0:
            end = line.index(")`", start)
            return ast.parse(f"def {line[start + 1:end + 1]}: pass").body[0].args  # type: ignore[attr-defined]
    raise AssertionError(f"docs/api.md has no table row giving the signature of {name}()")


@pytest.mark.parametrize("name", [n for n in API if callable(getattr(assetflow.api, n)) and n[0].islower()])
def test_api_docs_give_each_function_its_real_parameters_and_defaults(name: str) -> None:
    """Every parameter but project=/modules=/files= (said once for all), in order, with its default and kind."""
    import inspect

    documented = _documented_signature((ROOT / "docs" / "api.md").read_text(), name)
    real = [p for p in inspect.signature(getattr(assetflow.api, name)).parameters.values() if p.name not in PROJECT_ARGS]
    positional = [*documented.posonlyargs, *documented.args]
    given = [(a.arg, "POSITIONAL_OR_KEYWORD") for a in positional] + [(a.arg, "KEYWORD_ONLY") for a in documented.kwonlyargs]
    given = [(arg, kind) for arg, kind in given if arg not in PROJECT_ARGS]
    assert given == [(p.name, p.kind.name) for p in real], f"docs/api.md: {name}() parameters or their kinds differ"
    defaults = dict(zip([a.arg for a in positional][len(positional) - len(documented.defaults):],
                        documented.defaults, strict=True))
    defaults.update({a.arg: d for a, d in zip(documented.kwonlyargs, documented.kw_defaults, strict=True) if d})
    for p in real:
        if p.default is inspect.Parameter.empty:
            assert p.name not in defaults, f"docs/api.md: {name}({p.name}) has no default"
        else:
            assert p.name in defaults, f"docs/api.md: {name}() does not give the default of {p.name}"
            assert ast.literal_eval(defaults[p.name]) == p.default, f"docs/api.md: {name}({p.name}=) default"


def _cli_sections() -> dict[str, str]:
    """docs/cli.md's ``## `assetflow COMMAND ...` `` sections, by command name, heading included."""
    sections: dict[str, str] = {}
    for part in (ROOT / "docs" / "cli.md").read_text().split("\n## ")[1:]:
        heading = part.split("\n", 1)[0]
        if heading.startswith("`assetflow "):
            command = heading[len("`assetflow "):].split()[0].strip("`")
            sections[command] = sections.get(command, "") + part
    return sections


def _commands() -> list[tuple[str, object]]:
    import click

    import assetflow.cli  # noqa: F401 - registers every command on the group
    from assetflow.cli_base import main

    found: list[tuple[str, object]] = []
    for name, command in sorted(main.commands.items()):
        found.append((name, command))
        if isinstance(command, click.Group):
            found += [(name, sub) for _, sub in sorted(command.commands.items())]
    return found


@pytest.mark.parametrize(("name", "command"), _commands(), ids=lambda v: v if isinstance(v, str) else v.name)
def test_cli_docs_have_a_section_for_each_command_naming_each_of_its_options(name: str, command: object) -> None:
    """docs/cli.md is the command reference: what `assetflow COMMAND --help` offers, it documents (the project
    options -m/-f/--project are said once for all)."""
    import click

    assert isinstance(command, click.Command)
    section = _cli_sections().get(name)
    assert section is not None, f"docs/cli.md has no section headed `assetflow {name} ...`"
    if name != command.name:
        assert f"{name} {command.name}" in section, f"docs/cli.md: `assetflow {name} {command.name}` not documented"
    for option in command.params:
        if isinstance(option, click.Option) and option.name not in {"help", "modules", "files", "project_dir"}:
            flag = max(option.opts, key=len)
            assert flag in section, f"docs/cli.md, section `assetflow {name}`: option {flag} is not documented"
