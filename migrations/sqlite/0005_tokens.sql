-- Tenants and tokens (docs/AUTH.md). Every job and sweep belongs to a tenant; rows older
-- than tenants belong to `default`. An Idempotency-Key is scoped to its tenant: the stored
-- key is `<tenant>:<key>` (tenant names never hold a colon), so existing keys move to
-- `default:`.

ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE sweeps ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
UPDATE jobs SET idempotency_key = 'default:' || idempotency_key WHERE idempotency_key IS NOT NULL;
UPDATE sweeps SET idempotency_key = 'default:' || idempotency_key WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_tenant ON jobs (tenant, id);
CREATE INDEX sweeps_tenant ON sweeps (tenant, id);

-- API tokens: only the SHA-256 of each token is kept (the token itself is shown once).
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    hash        TEXT    NOT NULL UNIQUE,
    created_at  TEXT    NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);
