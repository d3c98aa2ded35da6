-- Fair share between tenants: the same column and meaning as
-- migrations/sqlite/0006_fair_share.sql. Claim numbers come from a sequence, so concurrent
-- claims never wait for each other to number themselves.

CREATE SEQUENCE job_claims;
ALTER TABLE jobs ADD COLUMN claim_seq BIGINT;
CREATE INDEX jobs_tenant_claim ON jobs (tenant, claim_seq);
CREATE INDEX jobs_tenant_running ON jobs (tenant) WHERE status = 'running';
