-- Jobs, their per-epoch metrics and their per-update records.
-- Timestamps are RFC 3339 UTC text; specs and warnings are JSON text.

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT    NOT NULL,
    spec             TEXT    NOT NULL,
    warnings         TEXT    NOT NULL DEFAULT '[]',
    status           TEXT    NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
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
    progress_step    INTEGER NOT NULL DEFAULT 0
);

-- The claim query: queued jobs by priority, then age.
CREATE INDEX jobs_queue ON jobs (status, priority DESC, id);
CREATE INDEX jobs_name ON jobs (name, id);

CREATE TABLE epoch_metrics (
    job_id           INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch            INTEGER NOT NULL,
    train_loss       REAL    NOT NULL,
    train_acc        REAL    NOT NULL,
    test_loss        REAL    NOT NULL,
    test_acc         REAL    NOT NULL,
    lr               REAL    NOT NULL,
    lr_min           REAL    NOT NULL,
    lr_max           REAL    NOT NULL,
    seconds          REAL    NOT NULL,
    eval_seconds     REAL    NOT NULL,
    examples_per_sec REAL    NOT NULL,
    PRIMARY KEY (job_id, epoch)
) WITHOUT ROWID;

CREATE TABLE step_records (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    lr     REAL    NOT NULL,
    loss   REAL,
    PRIMARY KEY (job_id, step)
) WITHOUT ROWID;
