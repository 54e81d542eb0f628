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
    # Statements are split on semicolons: none may appear inside a comment.
    # 3: the state model for orchestration, in one step (docs/concepts.md, "The state model").
    # A version belongs to (asset, partition); a pointer is (environment, asset, partition) -> version;
    # a check result belongs to (check fingerprint, data hash); a tick to (origin, tick time), claimed
    # in a transaction before its run starts; every run records what started it. The empty string is
    # "not partitioned", so unpartitioned assets keep exactly one key per asset.
    """
    ALTER TABLE materializations ADD COLUMN partition TEXT NOT NULL DEFAULT '';
    DROP INDEX materializations_by_recipe;
    CREATE INDEX materializations_by_recipe ON materializations (asset, partition, recipe_key);
    CREATE TABLE environments (
        name       TEXT PRIMARY KEY,
        base       TEXT,                    -- the environment it started as a view of (NULL for prod)
        created_at REAL NOT NULL
    );
    INSERT INTO environments (name, base, created_at) VALUES ('prod', NULL, strftime('%s', 'now'));
    CREATE TABLE pointers (
        env             TEXT NOT NULL REFERENCES environments (name),
        asset           TEXT NOT NULL,
        partition       TEXT NOT NULL DEFAULT '',
        materialization INTEGER NOT NULL REFERENCES materializations (id),
        PRIMARY KEY (env, asset, partition)
    );
    INSERT INTO pointers (env, asset, partition, materialization)
        SELECT 'prod', asset, '', materialization FROM current;
    DROP TABLE current;
    ALTER TABLE runs ADD COLUMN env TEXT NOT NULL DEFAULT 'prod';
    ALTER TABLE runs ADD COLUMN trigger TEXT;    -- JSON {"kind": person|schedule|sensor|condition|backfill, ...}
    ALTER TABLE events ADD COLUMN partition TEXT NOT NULL DEFAULT '';
    DROP INDEX events_by_asset;
    CREATE INDEX events_by_asset ON events (asset, partition, id);
    CREATE TABLE source_versions_v3 (
        name        TEXT NOT NULL,
        partition   TEXT NOT NULL DEFAULT '',
        data_hash   TEXT NOT NULL,
        observed_at REAL NOT NULL,
        PRIMARY KEY (name, partition)
    );
    INSERT INTO source_versions_v3 (name, partition, data_hash, observed_at)
        SELECT name, '', data_hash, observed_at FROM source_versions;
    DROP TABLE source_versions;
    ALTER TABLE source_versions_v3 RENAME TO source_versions;
    CREATE TABLE partition_keys (
        definition TEXT NOT NULL,           -- a dynamic partition definition's name
        key        TEXT NOT NULL,
        added_at   REAL NOT NULL,
        PRIMARY KEY (definition, key)
    );
    CREATE TABLE check_results (
        check_fingerprint TEXT NOT NULL,
        data_hash         TEXT NOT NULL,
        asset             TEXT NOT NULL,
        partition         TEXT NOT NULL DEFAULT '',
        check_name        TEXT NOT NULL,
        severity          TEXT NOT NULL,    -- error (blocking) | warn
        passed            INTEGER NOT NULL,
        summary           TEXT,
        findings          TEXT,             -- JSON
        metadata          TEXT,             -- JSON
        run_id            TEXT,
        at                REAL NOT NULL,
        PRIMARY KEY (check_fingerprint, data_hash)
    );
    CREATE INDEX check_results_by_asset ON check_results (asset, partition, at);
    CREATE TABLE ticks (
        origin      TEXT NOT NULL,          -- "schedule:NAME" | "sensor:NAME" | "condition:ASSET"
        tick_at     REAL NOT NULL,          -- the instant due (UTC seconds), never the cron string
        status      TEXT NOT NULL,          -- claimed | skipped | requested | started | succeeded | failed
        reason      TEXT,
        run_id      TEXT,
        definition  TEXT,                   -- the definition's fingerprint when claimed (cron, selection)
        claimed_at  REAL NOT NULL,
        finished_at REAL,
        PRIMARY KEY (origin, tick_at)
    );
    CREATE INDEX ticks_by_run ON ticks (run_id);
    CREATE TABLE cursors (
        origin     TEXT PRIMARY KEY,        -- a sensor's cursor, or a schedule's last evaluated instant
        cursor     TEXT,
        updated_at REAL NOT NULL
    );
    """,
)

LATEST_VERSION = len(MIGRATIONS)
