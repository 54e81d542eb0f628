"""The state database's schema, as an ordered list of migrations.

``PRAGMA user_version`` holds how many migrations ran. Opening a store applies the
missing ones in one transaction; a store from a newer assetflow is refused rather
than misread.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE runs (
        run_id      TEXT PRIMARY KEY,
        started_at  REAL NOT NULL,
        finished_at REAL,
        status      TEXT NOT NULL,          -- running | succeeded | failed | interrupted
        pid         INTEGER,
        host        TEXT,
        command     TEXT,
        summary     TEXT                    -- JSON counts by outcome
    );
    CREATE TABLE materializations (
        id               INTEGER PRIMARY KEY,
        asset            TEXT NOT NULL,
        run_id           TEXT NOT NULL,
        recipe_key       TEXT NOT NULL,
        data_hash        TEXT NOT NULL,
        code_fingerprint TEXT NOT NULL,
        config           TEXT NOT NULL,     -- canonical JSON
        upstream         TEXT NOT NULL,     -- JSON {name: data hash} of data-carrying upstreams
        deps             TEXT NOT NULL,     -- JSON [name] of order-only upstreams
        io               TEXT NOT NULL,
        location         TEXT NOT NULL,
        token            TEXT NOT NULL,
        rows             INTEGER,
        schema           TEXT,              -- JSON [[name, type]]
        bytes            INTEGER,
        libraries        TEXT NOT NULL,     -- JSON {distribution: version}
        started_at       REAL NOT NULL,
        finished_at      REAL NOT NULL
    );
    CREATE INDEX materializations_by_recipe ON materializations (asset, recipe_key);
    CREATE TABLE current (
        asset            TEXT PRIMARY KEY,
        materialization  INTEGER NOT NULL REFERENCES materializations (id)
    );
    CREATE TABLE events (
        id        INTEGER PRIMARY KEY,
        run_id    TEXT NOT NULL,
        asset     TEXT NOT NULL,
        outcome   TEXT NOT NULL,            -- ran | restored | fresh | cutoff | failed | skipped
        at        REAL NOT NULL,
        duration  REAL,
        detail    TEXT
    );
    CREATE INDEX events_by_asset ON events (asset, id);
    CREATE TABLE code_sources (
        fingerprint TEXT PRIMARY KEY,
        sources     TEXT NOT NULL           -- JSON {qualified name: normalised source}
    );
    CREATE TABLE source_versions (
        name        TEXT PRIMARY KEY,
        data_hash   TEXT NOT NULL,
        observed_at REAL NOT NULL
    );
    CREATE TABLE stat_cache (
        path  TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        hash  TEXT NOT NULL
    );
    """,
    # 2: small key/value facts about the project, e.g. the no-op fast path's snapshot.
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
)

LATEST_VERSION = len(MIGRATIONS)
