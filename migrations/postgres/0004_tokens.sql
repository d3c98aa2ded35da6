-- Tenants and tokens: the same tables and meaning as migrations/sqlite/0004_tokens.sql.
-- Every job and sweep belongs to a tenant (`default` for older rows); stored
-- Idempotency-Keys are scoped as `<tenant>:<key>`.

ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE sweeps ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
UPDATE jobs SET idempotency_key = 'default:' || idempotency_key WHERE idempotency_key IS NOT NULL;
UPDATE sweeps SET idempotency_key = 'default:' || idempotency_key WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_tenant ON jobs (tenant, id);
CREATE INDEX sweeps_tenant ON sweeps (tenant, id);

CREATE TABLE tokens (
    id          BIGSERIAL   PRIMARY KEY,
    tenant      TEXT        NOT NULL,
    role        TEXT        NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    hash        TEXT        NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
