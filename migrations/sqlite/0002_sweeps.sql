-- Sweeps: a sweep owns member jobs (one per config and seed), the observations its
-- early-stopping rule was fed and the decisions it took, in order. Jobs gain their
-- sweep, their config, the epoch a member pauses at (an ASHA rung), and two statuses
-- (`paused`, `stopped_early`); SQLite cannot alter a CHECK constraint, so the jobs
-- table is rebuilt (SQLite's documented procedure). Migrations run on a connection with
-- foreign keys off (see store/sqlite/mod.rs), so dropping the old table keeps its metrics.

CREATE TABLE sweeps (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    request          TEXT    NOT NULL,
    warnings         TEXT    NOT NULL DEFAULT '[]',
    status           TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    max_concurrent   INTEGER,
    idempotency_key  TEXT    UNIQUE,
    request_hash     TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    finished_at      TEXT
);

CREATE TABLE jobs_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    spec             TEXT    NOT NULL,
    warnings         TEXT    NOT NULL DEFAULT '[]',
    status           TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'paused', 'succeeded', 'failed',
                                       'canceled', 'stopped_early')),
    priority         INTEGER NOT NULL DEFAULT 0,
    idempotency_key  TEXT    UNIQUE,
    request_hash     TEXT,
    created_at       TEXT    NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    updated_at       TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    worker           TEXT,
    device           TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    error_code       TEXT,
    error_message    TEXT,
    epochs           INTEGER NOT NULL,
    total_steps      INTEGER NOT NULL,
    progress_epoch   INTEGER NOT NULL DEFAULT 0,
    progress_step    INTEGER NOT NULL DEFAULT 0,
    sweep_id         INTEGER REFERENCES sweeps (id),
    sweep_config     INTEGER,
    run_until_epoch  INTEGER,
    stop_early_requested INTEGER NOT NULL DEFAULT 0
);

INSERT INTO jobs_new (id, name, spec, warnings, status, priority, idempotency_key, request_hash,
    created_at, started_at, finished_at, updated_at, attempts, worker, device, cancel_requested,
    error_code, error_message, epochs, total_steps, progress_epoch, progress_step)
SELECT id, name, spec, warnings, status, priority, idempotency_key, request_hash,
    created_at, started_at, finished_at, updated_at, attempts, worker, device, cancel_requested,
    error_code, error_message, epochs, total_steps, progress_epoch, progress_step
FROM jobs;

DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;

CREATE INDEX jobs_queue ON jobs (status, priority DESC, id);
CREATE INDEX jobs_name ON jobs (name, id);
CREATE INDEX jobs_sweep ON jobs (sweep_id, sweep_config);

-- Observations fed to a sweep's early-stopping rule and the decisions it took, in the
-- order they happened; replaying them rebuilds the rule's state after a restart.
CREATE TABLE sweep_events (
    sweep_id   INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('observation', 'decision')),
    body       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (sweep_id, seq)
) WITHOUT ROWID;

