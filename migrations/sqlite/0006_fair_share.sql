-- Fair share between tenants (docs/QUEUE.md): every claim stamps its job with the next
-- claim number, so the claim can serve first the tenant that was served least recently.
-- Jobs claimed before this migration have none (their tenants count as never served).

ALTER TABLE jobs ADD COLUMN claim_seq INTEGER;
CREATE INDEX jobs_claim_seq ON jobs (claim_seq);
CREATE INDEX jobs_tenant_claim ON jobs (tenant, claim_seq);
CREATE INDEX jobs_tenant_status ON jobs (tenant, status);
