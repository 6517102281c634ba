-- Ferry's run ledger. Portable SQL: the same file migrates SQLite and PostgreSQL.

-- Every event of every run, as it was published (the envelope's JSON), once per event id.
CREATE TABLE ledger_events (
    event_id    TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    project     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    environment TEXT,
    time_ms     BIGINT NOT NULL,
    envelope    TEXT NOT NULL,
    recorded_ms BIGINT NOT NULL
);
CREATE INDEX ledger_events_by_run ON ledger_events (run_id, time_ms);

-- One row per run, kept up to date as its events are recorded: what lists read.
CREATE TABLE ledger_runs (
    run_id    TEXT PRIMARY KEY,
    project   TEXT NOT NULL,
    first_ms  BIGINT NOT NULL,
    last_ms   BIGINT NOT NULL,
    revision  TEXT,
    last_kind TEXT NOT NULL,
    events    BIGINT NOT NULL
);
CREATE INDEX ledger_runs_by_project ON ledger_runs (project, first_ms);
CREATE INDEX ledger_runs_by_first ON ledger_runs (first_ms);

-- Where recording from a stream goes on after a restart (the history stream's next offset).
CREATE TABLE ledger_cursors (
    name        TEXT PRIMARY KEY,
    next_offset BIGINT NOT NULL
);
