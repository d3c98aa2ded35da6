-- Numbered 0003: 0002 is the sweeps migration on main.
-- Leases and workers (docs/QUEUE.md). A running job's row names the worker holding it
-- (name, host, pid) and its lease: a random token that fences every write of that
-- worker, and an expiry after which any process may put the job back in the queue.
-- Lease and heartbeat instants are INTEGER milliseconds since the Unix epoch, so they
-- compare as numbers (the RFC 3339 text of the other timestamps varies in length).

ALTER TABLE jobs ADD COLUMN worker_host TEXT;
ALTER TABLE jobs ADD COLUMN worker_pid INTEGER;
ALTER TABLE jobs ADD COLUMN lease_token TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at INTEGER;

-- Jobs left running by a process older than leases hold none: queue them again, as
-- that process's own start-up would have.
UPDATE jobs SET status = 'queued', worker = NULL WHERE status = 'running';

-- The live workers, one row per worker slot, upserted by its heartbeat.
CREATE TABLE workers (
    host           TEXT    NOT NULL,
    pid            INTEGER NOT NULL,
    name           TEXT    NOT NULL,
    device         TEXT    NOT NULL,
    job_id         INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    started_at     INTEGER NOT NULL,
    last_heartbeat INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    PRIMARY KEY (host, pid, name)
) WITHOUT ROWID;
