-- Sweeps: the same tables and meaning as migrations/sqlite/0002_sweeps.sql. A sweep owns
-- member jobs (one per config and seed), the observations its early-stopping rule was fed
-- and the decisions it took, in order. Jobs gain their sweep, their config, the epoch a
-- member pauses at (an ASHA rung), a flag for an early stop, and two statuses (`paused`,
-- `stopped_early`).

CREATE TABLE sweeps (
    id               BIGSERIAL   PRIMARY KEY,
    name             TEXT        NOT NULL,
    -- The canonical request, read back byte for byte: JSON (not JSONB) keeps the grid's
    -- key order, which is the order configs expand in.
    request          JSON        NOT NULL,
    warnings         JSONB       NOT NULL DEFAULT '[]',
    status           TEXT        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    max_concurrent   BIGINT,
    idempotency_key  TEXT        UNIQUE,
    request_hash     TEXT,
    cancel_requested BOOLEAN     NOT NULL DEFAULT false,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ
);

CREATE INDEX sweeps_unfinished ON sweeps (id) WHERE status IN ('queued', 'running');

ALTER TABLE jobs
    ADD COLUMN sweep_id             BIGINT  REFERENCES sweeps (id),
    ADD COLUMN sweep_config         BIGINT,
    ADD COLUMN run_until_epoch      BIGINT,
    ADD COLUMN stop_early_requested BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT jobs_sweep_config CHECK ((sweep_id IS NULL) = (sweep_config IS NULL)),
    DROP CONSTRAINT jobs_status_check,
    ADD CONSTRAINT jobs_status_check
        CHECK (status IN ('queued', 'running', 'paused', 'succeeded', 'failed', 'canceled',
                          'stopped_early'));

-- A sweep's members, and the claim's count of its running ones.
CREATE INDEX jobs_sweep ON jobs (sweep_id, sweep_config) WHERE sweep_id IS NOT NULL;

-- Observations fed to a sweep's early-stopping rule and the decisions it took, in the
-- order they happened; replaying them rebuilds the rule's state after a restart. Bodies
-- are JSON (not JSONB), read back as written: JSONB would rewrite the numbers' text.
CREATE TABLE sweep_events (
    sweep_id   BIGINT      NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    seq        BIGINT      NOT NULL,
    kind       TEXT        NOT NULL CHECK (kind IN ('observation', 'decision')),
    body       JSON        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (sweep_id, seq)
);
