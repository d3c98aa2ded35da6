-- Jobs, their per-epoch metrics and per-update records, and the live workers: the
-- same tables and meaning as migrations/sqlite/ (docs/QUEUE.md). Specs and warnings
-- are JSONB, so operators can query them (`spec->>'name'`); every instant is
-- TIMESTAMPTZ on the database's clock, which is also the one leases are counted on.

CREATE TABLE jobs (
    id               BIGSERIAL        PRIMARY KEY,
    name             TEXT             NOT NULL,
    spec             JSONB            NOT NULL,
    warnings         JSONB            NOT NULL DEFAULT '[]',
    status           TEXT             NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    priority         BIGINT           NOT NULL DEFAULT 0,
    idempotency_key  TEXT             UNIQUE,
    request_hash     TEXT,
    created_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ      NOT NULL DEFAULT now(),
    -- Claims so far: 2 after one expired lease or one restart.
    attempts         BIGINT           NOT NULL DEFAULT 0,
    -- The worker holding (or last holding) the job: its slot, machine and process.
    worker           TEXT,
    worker_host      TEXT,
    worker_pid       BIGINT,
    device           TEXT,
    -- The lease: every write of the worker carries the token; past the expiry any
    -- process may put the job back in the queue.
    lease_token      TEXT,
    lease_expires_at TIMESTAMPTZ,
    cancel_requested BOOLEAN          NOT NULL DEFAULT false,
    error_code       TEXT,
    error_message    TEXT,
    epochs           BIGINT           NOT NULL,
    total_steps      BIGINT           NOT NULL,
    progress_epoch   BIGINT           NOT NULL DEFAULT 0,
    progress_step    BIGINT           NOT NULL DEFAULT 0
);

-- The claim and the queue position: queued jobs by priority, then age.
CREATE INDEX jobs_queue ON jobs (priority DESC, id) WHERE status = 'queued';
-- The expiry sweep: running jobs by lease expiry.
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE status = 'running';
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_name ON jobs (name, id);

CREATE TABLE epoch_metrics (
    job_id           BIGINT           NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    epoch            BIGINT           NOT NULL,
    train_loss       DOUBLE PRECISION NOT NULL,
    train_acc        DOUBLE PRECISION NOT NULL,
    test_loss        DOUBLE PRECISION NOT NULL,
    test_acc         DOUBLE PRECISION NOT NULL,
    lr               DOUBLE PRECISION NOT NULL,
    lr_min           DOUBLE PRECISION NOT NULL,
    lr_max           DOUBLE PRECISION NOT NULL,
    seconds          DOUBLE PRECISION NOT NULL,
    eval_seconds     DOUBLE PRECISION NOT NULL,
    examples_per_sec DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, epoch)
);

-- A non-finite batch loss (a diverged batch) is stored as NULL, as in SQLite.
CREATE TABLE step_records (
    job_id BIGINT           NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    step   BIGINT           NOT NULL,
    lr     DOUBLE PRECISION NOT NULL,
    loss   DOUBLE PRECISION,
    PRIMARY KEY (job_id, step)
);

-- The live workers, one row per worker slot, upserted by its heartbeat.
CREATE TABLE workers (
    host           TEXT        NOT NULL,
    pid            BIGINT      NOT NULL,
    name           TEXT        NOT NULL,
    device         TEXT        NOT NULL,
    job_id         BIGINT      REFERENCES jobs (id) ON DELETE SET NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    last_heartbeat TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (host, pid, name)
);
