"""Secrets (issue 6 item 9): planted canaries never reach output, metadata or the state store.

A configuration field declared ``secret("ENV")`` is read by the asset through ``.value``;
a connection string with a password sits in a configuration default and in a module
constant; one asset fails with both in its exception message. After every command with
and without ``--json``, the canaries appear in no output and in no byte under the state
folder (the SQLite file and its WAL, stored files, the lock file).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
from pathlib import Path

import pytest

from assetflow import Secret, secret
from assetflow.plan import canonical_config
from assetflow.secrets import redact
from reliability_harness import FULL, RAW_A, Project

SECRET_CANARY = "canary-secret-5b1f0e"
DSN_CANARY = "canary-dsnpw-93c2d7"
ENV = "RELIABILITY_PG_PASSWORD"

PIPELINE = f'''
    import dataclasses
    import polars as pl
    from assetflow import Secret, asset, secret

    WAREHOUSE = "postgresql://loader:{DSN_CANARY}@db.internal:5432/warehouse"


    @dataclasses.dataclass
    class Connection:
        password: Secret = secret("{ENV}")
        dsn: str = "postgresql://reader:{DSN_CANARY}@db.internal/warehouse?sslmode=require"
        options: str = "host=db.internal password={DSN_CANARY} user=reader"


    @asset(config=Connection())
    def loaded(config: Connection) -> pl.DataFrame:
        assert config.password.value.startswith("canary-secret-")  # the value itself is never in the code
        return pl.DataFrame({{"host": [WAREHOUSE.split("@")[1]], "length": [len(config.password.value)]}})


    @asset(config=Connection())
    def leaky(config: Connection, loaded: pl.DataFrame) -> pl.DataFrame:
        raise RuntimeError(f"cannot connect to {{WAREHOUSE}} as {{config.dsn}} with {{config.password.value}}")
'''


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [c for c in (SECRET_CANARY, DSN_CANARY) if c.encode() in data]


def test_canaries_never_leave_the_process(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "p", RAW_A, pipeline=PIPELINE)
    env = {ENV: SECRET_CANARY}
    commands = [
        ("materialize", "--json"), ("materialize", "--executor", "processes"), ("status", "--json"), ("status",),
        ("doctor", "--json"),
    ]
    if FULL:
        commands += [("materialize",), ("materialize", "--dry-run", "--json"), ("list", "--json"),
                     ("gc", "--keep", "0"), ("materialize", "--json", "--executor", "processes")]
    outputs = []
    for command in commands:
        proc = project.run(*command, env=env)
        assert "Traceback" not in proc.stderr or command[0] == "materialize", proc.stderr
        outputs.append((command, proc.stdout + proc.stderr))
    for extra in ("show", "history", "why", "lineage") if FULL else ("why",):  # inspection commands
        for args in ((extra, "leaky", "--json"), (extra, "leaky")):
            proc = project.run(*args, env=env)
            outputs.append((args, proc.stdout + proc.stderr))
    failed = next(text for command, text in outputs if command == ("materialize", "--json"))
    assert "cannot connect to postgresql://loader:***@db.internal" in failed  # the error is kept, masked
    assert "with ***" in failed
    for command, text in outputs:
        assert leaks(text) == [], f"{' '.join(command)} printed a secret:\n{text}"
    for path in sorted(project.state.rglob("*")):
        if path.is_file():
            assert leaks(path.read_bytes()) == [], f"{path} holds a secret"
    assert project.db_path.exists() and any(project.state.rglob("*.parquet"))


def test_secret_is_masked_and_hashed_by_name_only() -> None:
    os.environ[ENV] = SECRET_CANARY
    try:
        value = secret(ENV)
        assert value.value == SECRET_CANARY
        for text in (repr(value), str(value), f"{value}", f"{value!r:>40}", str([value]), str({"k": value})):
            assert SECRET_CANARY not in text and ENV in text
        assert copy.deepcopy(value) is value
        assert SECRET_CANARY.encode() not in pickle.dumps(value)  # workers read the environment themselves
        assert pickle.loads(pickle.dumps(value)) == value

        @dataclasses.dataclass
        class Config:
            password: Secret = secret(ENV)

        text = canonical_config(Config())
        assert SECRET_CANARY not in text and f"secret('{ENV}')" in text
        os.environ[ENV] = "another-password"
        assert canonical_config(Config()) == text  # a new password makes nothing stale
        assert canonical_config(Config(secret("OTHER_VARIABLE"))) != text  # another secret does
    finally:
        os.environ.pop(ENV, None)


def test_unset_secret_names_the_variable() -> None:
    with pytest.raises(KeyError, match="RELIABILITY_UNSET_VARIABLE"):
        secret("RELIABILITY_UNSET_VARIABLE").value  # noqa: B018


@pytest.mark.parametrize("name", ["", "1ABC", "A-B", "a b", "$X"])
def test_secret_needs_a_variable_name(name: str) -> None:
    with pytest.raises(ValueError, match="environment variable name"):
        secret(name)


@pytest.mark.parametrize(("text", "masked"), [
    ("postgresql://bob:hunter22@db:5432/x", "postgresql://bob:***@db:5432/x"),
    ("mysql+pymysql://u:p%40ss@h/d", "mysql+pymysql://u:***@h/d"),
    ("s3://KEY:SECRETKEY@bucket/x", "s3://KEY:***@bucket/x"),
    ("host=h password=abc123 user=x", "host=h password=*** user=x"),
    ("password='a b c' port=5", "password=*** port=5"),
    ("PWD=xyz;Server=s", "PWD=***;Server=s"),
    ("https://example.com/a:b@c", "https://example.com/a:b@c"),  # a path, not credentials
    ("no secrets here", "no secrets here"),
    ("PassWd = 'q' and s3://a:b@c", "PassWd = *** and s3://a:***@c"),
    ("pa\u017f\u017fword=hidden", "pa\u017f\u017fword=***"),  # long s: case-insensitively an "s", not ASCII
    ("caf\u00e9 postgresql://bob:hunter22@db/x", "caf\u00e9 postgresql://bob:***@db/x"),
])
def test_connection_string_passwords_are_masked(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_masking_skips_only_the_scans_that_cannot_match() -> None:
    """Text without "://" or a password word is not scanned (recorded code passes here): the result
    is always that of both scans, upper or lower case, ASCII or not."""
    from assetflow.secrets import _KV_PASSWORD, _URI_PASSWORD, MASK, redact_passwords

    texts = ["def f(x):\n    return x + 1\n", "url = 'postgresql://u:pw@h/d'", "Password=1", "pWd=2",
             "passwd = \"x y\"", "pass_through(x)", "a://b", "pa\u017f\u017fword=3", "\u00e9 pwd=4 x://y:z@w"]
    for text in texts:
        scanned = _KV_PASSWORD.sub(rf"\g<1>{MASK}", _URI_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", text))
        assert redact_passwords(text) == scanned, text


def test_explicit_value_is_masked_wherever_it_appears() -> None:
    value = Secret("VAULT_TOKEN", value="tok-8d7e6f5a")
    assert redact("header: Bearer tok-8d7e6f5a") == "header: Bearer ***"
    assert "tok-8d7e6f5a" not in repr(value)


def test_command_line_and_event_details_are_masked_in_the_state(tmp_path: Path) -> None:
    from assetflow.state.store import StateStore

    store = StateStore(tmp_path)
    store.begin_run("r1", f"assetflow materialize --address tcp://u:{DSN_CANARY}@scheduler:8786", 1, "h")
    with store.transaction() as db:
        store.add_events(db, [("r1", "a", "failed", None, f"postgresql://u:{DSN_CANARY}@h/db")])
        store.save_code_sources(db, "blake3:x", {"m.DSN": f"'postgresql://u:{DSN_CANARY}@h/db'"})
    store.close()
    for path in tmp_path.iterdir():
        assert leaks(path.read_bytes()) == [], path
