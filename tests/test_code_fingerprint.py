"""Code fingerprints (docs/concepts.md, "The three hashes"): what counts as a code change, and what does not.

Every test writes a small project into ``tmp_path``, imports it under the same module
names as its edited twin, and compares fingerprints.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from assetflow.fingerprint.code import CodeFingerprint, fingerprint_function
from assetflow.hashing import hash_fields

REPO = Path(__file__).resolve().parents[1]

Load = Callable[[dict[str, str]], tuple[ModuleType, Path]]
Fingerprint = Callable[..., CodeFingerprint]


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Load]:
    """Write ``{"assets.py": source, ...}`` into a fresh project folder and import ``assets``."""
    projects = iter(range(1_000))

    def forget() -> None:
        """Unload every module imported from ``tmp_path``, so the next project's twin is imported afresh."""
        for name, module in list(sys.modules.items()):
            if str(getattr(module, "__file__", None)).startswith(str(tmp_path)):
                del sys.modules[name]

    def _load(files: dict[str, str]) -> tuple[ModuleType, Path]:
        root = tmp_path / f"project{next(projects)}"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        forget()
        for name in files:  # a module of that name another test's project left behind (loads keep theirs)
            sys.modules.pop(name.removesuffix(".py").replace("/", "."), None)
        importlib.invalidate_caches()
        sys.path.insert(0, str(root))
        try:
            return importlib.import_module("assets"), root
        finally:
            sys.path.remove(str(root))

    yield _load
    forget()


@pytest.fixture
def fingerprint(load: Load) -> Fingerprint:
    """Fingerprint ``assets.<asset>`` of a freshly written project."""

    def _fingerprint(files: dict[str, str], asset: str = "orders", version: str | None = None) -> CodeFingerprint:
        module, root = load(files)
        return fingerprint_function(getattr(module, asset), project_root=root, version=version)

    return _fingerprint


ASSETS = '''
"""The module docstring."""
import helpers
from helpers import strip

LIMIT = 10
KEYS = {"b", "a", "c"}


def add(a, b):
    return a + b


def double(x):
    return add(x, x)


def unused():
    return 1


def orders(rows):
    """The orders docstring."""
    # a comment
    cleaned = [helpers.clean(strip(r)) for r in rows if r not in KEYS]
    return [double(len(r)) for r in cleaned][:LIMIT]
'''

HELPERS = '''
def clean(s):
    return s.lower()


def strip(s):
    return s.strip()


def never_used(s):
    return s
'''


def edited(file: str, old: str, new: str) -> dict[str, str]:
    files = {"assets.py": ASSETS, "helpers.py": HELPERS}
    assert old in files[file], f"the edit {old!r} does not apply to {file}"
    files[file] = files[file].replace(old, new)
    return files


ORIGINAL = {"assets.py": ASSETS, "helpers.py": HELPERS}


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        pytest.param("assets.py", "# a comment", "# another comment, longer", id="comment"),
        pytest.param("assets.py", "return a + b", "return (a\n        + b)  # sum", id="formatting"),
        pytest.param("assets.py", "[:LIMIT]", "[ : LIMIT ]", id="spacing"),
        pytest.param("assets.py", "The orders docstring.", "Now documented differently.", id="docstring"),
        pytest.param("assets.py", "The module docstring.", "Another module docstring.", id="module-docstring"),
        pytest.param("assets.py", "return 1", "return 2", id="unused-function"),
        pytest.param("helpers.py", "return s\n", "return s * 2\n", id="unused-helper"),
        pytest.param("assets.py", "def orders(rows):", "@functools.lru_cache(maxsize=4)\ndef orders(rows):",
                     id="third-party-decorator-on-asset"),
    ],
)
def test_edits_that_do_not_change_behaviour_keep_the_digest(
    fingerprint: Fingerprint, file: str, old: str, new: str
) -> None:
    files = edited(file, old, new)
    files["assets.py"] = "import functools\n" + files["assets.py"]

    assert fingerprint(files).digest == fingerprint({**ORIGINAL, "assets.py": "import functools\n" + ASSETS}).digest


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        pytest.param("assets.py", "[:LIMIT]", "[:LIMIT - 1]", id="asset-body"),
        pytest.param("assets.py", "return add(x, x)", "return add(x, 2 * x)", id="helper-body"),
        pytest.param("assets.py", "return a + b", "return a - b", id="transitive-helper-body"),
        pytest.param("assets.py", "LIMIT = 10", "LIMIT = 11", id="constant"),
        pytest.param("assets.py", '{"b", "a", "c"}', '{"b", "a", "d"}', id="set-constant"),
        pytest.param("helpers.py", "return s.lower()", "return s.upper()", id="module-attribute-helper"),
        pytest.param("helpers.py", "return s.strip()", "return s.rstrip()", id="from-import-helper"),
        pytest.param("assets.py", "from helpers import strip", "from helpers import clean as strip", id="rebinding"),
    ],
)
def test_edits_that_change_behaviour_change_the_digest(
    fingerprint: Fingerprint, file: str, old: str, new: str
) -> None:
    assert fingerprint(edited(file, old, new)).digest != fingerprint(ORIGINAL).digest


def test_a_local_that_shadows_a_global_helper_is_not_followed(fingerprint: Fingerprint) -> None:
    source = """
    def clean(rows):
        return {}

    def orders(rows):
        clean = sorted(rows)
        return clean
    """

    def fp(body: str) -> CodeFingerprint:
        return fingerprint({"assets.py": source.format(body)})

    assert fp("1").digest == fp("2").digest
    assert list(fp("1").sources) == ["assets.orders"]


def test_sources_hold_every_dependency_and_show_what_changed(fingerprint: Fingerprint) -> None:
    before = fingerprint(ORIGINAL)
    after = fingerprint(edited("assets.py", "return a + b", "return a - b"))

    assert sorted(before.sources) == [
        "assets.KEYS", "assets.LIMIT", "assets.add", "assets.double", "assets.orders", "helpers.clean", "helpers.strip",
    ]
    assert before.sources["assets.add"].startswith("def add(a, b):\n    return a + b")
    assert before.sources["assets.LIMIT"] == "10"
    assert before.sources["assets.KEYS"] == "set{'a', 'b', 'c'}"
    assert "docstring" not in before.sources["assets.orders"]
    assert "# global double -> double" in before.sources["assets.orders"]  # named without its module:
    assert "# attr helpers.clean -> clean" in before.sources["assets.orders"]  # moving code is no change
    assert "# global helpers -> project module" in before.sources["assets.orders"]
    changed = {name for name in before.sources if before.sources[name] != after.sources[name]}
    assert changed == {"assets.add"}
    assert before.libraries == {}


CLOSURE = """
OFFSET = 1


def make(factor):
    def scaled(x, offset=OFFSET, *, scale=1.0):
        return x * factor * scale + offset
    return scaled


orders = make(3)
"""


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("make(3)", "make(4)", id="closure-value"),
        pytest.param("OFFSET = 1", "OFFSET = 2", id="positional-default"),
        pytest.param("scale=1.0", "scale=2.0", id="keyword-default"),
    ],
)
def test_closure_and_default_values_count(fingerprint: Fingerprint, old: str, new: str) -> None:
    assert old in CLOSURE

    before = fingerprint({"assets.py": CLOSURE})
    after = fingerprint({"assets.py": CLOSURE.replace(old, new)})

    assert before.digest != after.digest
    assert "# closure factor = 3" in before.sources["assets.make.<locals>.scaled"]


DECORATED = """
import functools


def traced(fn):
    calls = []
    @functools.wraps(fn)
    def wrapper(*args):
        calls.append(args)
        return fn(*args)
    return wrapper


@traced
def orders(x):
    return x
"""


@pytest.mark.parametrize("unwrap", [False, True], ids=["wrapper-passed", "original-passed"])
@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("return fn(*args)", "return fn(*args) or None", id="inner-body"),
        pytest.param("calls = []", "calls = [()]", id="outer-body"),
    ],
)
def test_a_project_local_decorators_body_counts(fingerprint: Fingerprint, unwrap: bool, old: str, new: str) -> None:
    asset = "orders.__wrapped__" if unwrap else "orders"

    def digest(source: str) -> str:
        module_files = {"assets.py": source + f"\nasset_function = {asset}\n"}
        return fingerprint(module_files, asset="asset_function").digest

    assert digest(DECORATED) != digest(DECORATED.replace(old, new))


def test_the_asset_decorators_arguments_do_not_count(fingerprint: Fingerprint) -> None:
    source = """
    import functools


    def asset(**metadata):
        return lambda fn: fn


    asset.__module__ = "assetflow.decorators"  # stands in for assetflow's own @asset


    def traced(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            return fn(*args)
        return wrapper


    @asset(description="{}")
    @functools.lru_cache(maxsize={})
    @traced
    def orders(x):
        return x
    """

    def digest(description: str, maxsize: int) -> str:
        return fingerprint({"assets.py": source.format(description, maxsize)}).digest

    assert digest("one", 1) == digest("two", 1) == digest("two", 2)


def test_version_replaces_the_code_hash(fingerprint: Fingerprint) -> None:
    v2 = fingerprint(ORIGINAL, version="2")
    v2_edited = fingerprint(edited("assets.py", "[:LIMIT]", "[:LIMIT - 1]"), version="2")
    v3 = fingerprint(ORIGINAL, version="3")

    assert v2.digest == v2_edited.digest == hash_fields("code-version", "2")
    assert v3.digest != v2.digest
    assert list(v2.sources) == ["assets.orders"]


def test_third_party_libraries_are_recorded_not_walked(fingerprint: Fingerprint) -> None:
    fp = fingerprint({"assets.py": """
        import polars as pl

        def orders(df):
            return df.filter(pl.col("amount") > 0)
        """})

    assert fp.libraries == {"polars": importlib.metadata.version("polars")}
    assert list(fp.sources) == ["assets.orders"]
    assert "# global pl -> external polars" in fp.sources["assets.orders"]


def test_code_in_a_venv_inside_the_project_is_not_project_code(
    fingerprint: Fingerprint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [*sys.path])  # the module below extends it
    files = {
        ".venv/pyvenv.cfg": "home = /usr\n",
        ".venv/lib/vendored.py": "def helper(x):\n    return x\n",
        "assets.py": """
            import sys, pathlib
            sys.path.insert(0, str(pathlib.Path(__file__).parent / ".venv" / "lib"))
            import vendored

            def orders(x):
                return vendored.helper(x)
            """,
    }

    fp = fingerprint(files)

    assert list(fp.sources) == ["assets.orders"]


def test_other_assets_count_by_name_only(fingerprint: Fingerprint) -> None:
    source = """
    class Spec:
        __assetflow_asset__ = True

        def __init__(self, name, fn):
            self.name, self.fn = name, fn

    def _raw():
        return {body}

    raw = Spec("{name}", _raw)

    def orders():
        return raw
    """

    def digest(name: str, body: str) -> str:
        return fingerprint({"assets.py": source.replace("{name}", name).replace("{body}", body)}).digest

    assert digest("raw", "1") == digest("raw", "2")
    assert digest("raw", "1") != digest("raw_v2", "1")


def test_mutual_recursion_terminates_and_hashes_each_function_once(fingerprint: Fingerprint) -> None:
    fp = fingerprint({"assets.py": """
        def is_even(n):
            return n == 0 or is_odd(n - 1)

        def is_odd(n):
            return n != 0 and is_even(n - 1)

        def orders(n):
            return is_even(n)
        """})

    assert sorted(fp.sources) == ["assets.is_even", "assets.is_odd", "assets.orders"]


def test_classes_count_with_their_methods_globals(fingerprint: Fingerprint) -> None:
    source = """
    RATE = {rate}

    class Pricer:
        def price(self, x):
            return x * RATE

    def orders(x):
        return Pricer().price(x)
    """

    def fp(rate: str) -> CodeFingerprint:
        return fingerprint({"assets.py": source.format(rate=rate)})

    assert fp("2").digest != fp("3").digest
    assert "assets.Pricer" in fp("2").sources


def test_functions_without_source_fall_back_to_bytecode() -> None:
    def compiled(body: str) -> Callable[..., object]:
        namespace: dict[str, object] = {}
        exec(compile(f"def orders(x):\n    return {body}\n", "<string>", "exec"), namespace)  # noqa: S102
        return namespace["orders"]  # type: ignore[return-value]

    fp = fingerprint_function(compiled("x + 1"), project_root=Path.cwd())

    assert "source unavailable" in fp.sources["__main__.orders"]
    assert fp.digest == fingerprint_function(compiled("x + 1"), project_root=Path.cwd()).digest
    assert fp.digest != fingerprint_function(compiled("x + 2"), project_root=Path.cwd()).digest


def test_the_digest_does_not_depend_on_the_hash_seed(load: Load) -> None:
    module, root = load(ORIGINAL)
    script = (
        "import sys; from pathlib import Path; from assetflow.fingerprint.code import fingerprint_function;"
        f"import assets; print(fingerprint_function(assets.orders, project_root=Path({str(root)!r})).digest)"
    )

    def digest_in_subprocess(seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": os.pathsep.join([str(root), str(REPO)])}
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    digests = {digest_in_subprocess(seed) for seed in ("0", "1", "12345")}

    assert digests == {fingerprint_function(module.orders, project_root=root).digest}


def test_a_library_is_found_by_its_own_name_before_every_installed_distribution_is_scanned() -> None:
    """Scanning every installed distribution costs ~0.1 s once per process: a tenth of a run that
    recomputes a few dozen small assets. A module named like its distribution is confirmed from that
    distribution's own files, and gives what the full scan gives; any other name falls back to the scan."""
    from assetflow.fingerprint import code

    code._distributions.cache_clear()
    code._distributions_of.cache_clear()
    try:
        named = {top: code._distributions_of(top) for top in ("polars", "pyarrow", "click")}  # pyarrow, click: no top_level.txt
        assert code._distributions.cache_info().currsize == 0, "the fast path scanned every distribution"
        assert named == {"polars": ("polars",), "pyarrow": ("pyarrow",), "click": ("click",)}
        assert code._distributions_of("yaml") == ("PyYAML",)  # import name != distribution name: the scan
        assert code._distributions.cache_info().currsize == 1
        scanned = importlib.metadata.packages_distributions()
        assert all(named[top] == tuple(sorted(set(scanned[top]))) for top in named)
    finally:
        code._distributions.cache_clear()
        code._distributions_of.cache_clear()


NESTED = '''
import sys

try:
    import json
except ImportError:  # pragma: no cover
    json = None

if sys.version_info >= (3, 8):
    def shape(x):
        """Defined in an if block."""
        return x + 1
else:  # pragma: no cover
    def shape(x):
        return x

with open(__file__) as _handle:
    class Tool:
        """Defined in a with block."""
        factor = 3

        def apply(self, x):
            return x * self.factor

halve = lambda x: x / 2  # noqa: E731
pair = (lambda x: x + 1, lambda x: x - 1)  # noqa: E731


def orders(rows):
    return [halve(shape(Tool().apply(r))) + pair[0](r) for r in rows]
'''


@pytest.mark.parametrize(
    ("old", "new", "changes"),
    [
        pytest.param("return x + 1", "return x + 2", True, id="def-in-if-block"),
        pytest.param("Defined in an if block.", "Docs moved.", False, id="docstring-of-def-in-if-block"),
        pytest.param("return x * self.factor", "return x * self.factor * 2", True, id="method-of-class-in-with-block"),
        pytest.param("Defined in a with block.", "Other docs.", False, id="docstring-of-class-in-with-block"),
        pytest.param("lambda x: x / 2", "lambda x: x / 4", True, id="module-lambda"),
        pytest.param("lambda x: x - 1", "lambda x: x - 3", True, id="second-lambda-on-a-line"),
    ],
)
def test_definitions_inside_blocks_and_lambdas_are_fingerprinted(
    fingerprint: Fingerprint, old: str, new: str, changes: bool
) -> None:
    """Definitions are found by walking statement blocks and lambdas by a walk of the whole file (on demand)."""
    assert old in NESTED
    before = fingerprint({"assets.py": NESTED})
    after = fingerprint({"assets.py": NESTED.replace(old, new)})
    assert (before.digest != after.digest) is changes
    assert {"assets.shape", "assets.Tool", "assets.<lambda>"} <= set(before.sources)


def test_project_files_are_told_through_links_as_a_full_resolve_tells_them(tmp_path: Path) -> None:
    """``is_project_file`` resolves each module's folder once per process: a folder linked into the project, a file
    linked out of it, a file linked in from outside and a venv inside the root are told as ``Path.resolve`` tells them."""
    from assetflow.fingerprint.imports import _real_path, is_project_file

    root, outside = tmp_path / "project", tmp_path / "elsewhere"
    (root / "pkg").mkdir(parents=True)
    (root / "venv" / "lib").mkdir(parents=True)
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    outside.mkdir()
    for path in (root / "pkg" / "mod.py", outside / "lib.py", root / "venv" / "lib" / "dep.py"):
        path.write_text("X = 1\n")
    (outside / "into_project").symlink_to(root / "pkg")  # a folder outside that is the project's
    (outside / "linked_in.py").symlink_to(root / "pkg" / "mod.py")  # a file outside that is the project's
    (root / "pkg" / "linked_out.py").symlink_to(outside / "lib.py")  # a file inside that is not
    cases = {
        root / "pkg" / "mod.py": True,
        outside / "into_project" / "mod.py": True,
        outside / "linked_in.py": True,
        root / "pkg" / "linked_out.py": False,
        outside / "lib.py": False,
        root / "venv" / "lib" / "dep.py": False,
        root / "pkg" / ".." / "pkg" / "mod.py": True,
        outside / "into_project" / ".." / "lib.py": True,  # ".." of the link's target (pkg): the project's root
    }
    for path, expected in cases.items():
        assert _real_path(str(path)) == str(path.resolve()), path
        assert is_project_file(str(path), root) is expected, path
