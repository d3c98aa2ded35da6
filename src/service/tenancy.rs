//! Tenants and tokens: who a bearer token is, which jobs and sweeps a caller may see,
//! and how many jobs a tenant may queue.
//!
//! The ownership rule lives here, once: [`Service::authorize_job`] and
//! [`Service::authorize_sweep`] answer an object of another tenant exactly as a missing
//! one ([`ServiceError::NotFound`]), so ids leak nothing. The API calls them for every
//! route that names a job or a sweep.

use chrono::Utc;

use super::{Service, ServiceError};
use crate::auth::{
    check_tenant, generate_token, hash_token, hashes_match, Caller, Role, DEFAULT_TENANT,
};
use crate::job::{JobId, JobStatus};
use crate::store::{JobFilter, NewToken, TokenRecord};
use crate::sweep::SweepId;

impl Service {
    /// `Ok` when job `id` exists and `caller` may see it; else [`ServiceError::NotFound`].
    pub async fn authorize_job(&self, caller: &Caller, id: JobId) -> Result<(), ServiceError> {
        match self.store().job_tenant(id).await? {
            Some(tenant) if caller.sees(&tenant) => Ok(()),
            _ => Err(ServiceError::NotFound(id)),
        }
    }

    /// `Ok` when sweep `id` exists and `caller` may see it; else
    /// [`ServiceError::SweepNotFound`].
    pub async fn authorize_sweep(&self, caller: &Caller, id: SweepId) -> Result<(), ServiceError> {
        match self.store().sweep_tenant(id).await? {
            Some(tenant) if caller.sees(&tenant) => Ok(()),
            _ => Err(ServiceError::SweepNotFound(id)),
        }
    }

    /// Refuses `adding` more queued jobs when `tenant` would pass its limit. The count is
    /// read before the insert, so two submissions racing at the limit may both pass: the
    /// limit protects the queue from a flood, not to the job.
    pub(super) async fn check_queue_room(
        &self,
        tenant: &str,
        adding: usize,
    ) -> Result<(), ServiceError> {
        let Some(limit) = self.0.config.max_queued_per_tenant else {
            return Ok(());
        };
        let filter = JobFilter {
            statuses: vec![JobStatus::Queued],
            tenant: Some(tenant.to_string()),
            limit: 0,
            ..JobFilter::default()
        };
        let (_, queued) = self.store().list_jobs(&filter).await?;
        let adding = i64::try_from(adding).unwrap_or(i64::MAX);
        if queued.saturating_add(adding) > i64::from(limit) {
            return Err(ServiceError::TenantQueueFull {
                tenant: tenant.to_string(),
                queued,
                limit,
            });
        }
        Ok(())
    }

    /// Creates a token for `tenant` with `role`, valid until `expires_at` (or for ever).
    /// Returns the token itself — shown once, never stored — and its record.
    pub async fn create_token(
        &self,
        tenant: &str,
        role: Role,
        expires_at: Option<chrono::DateTime<Utc>>,
    ) -> Result<(String, TokenRecord), ServiceError> {
        check_tenant(tenant)?;
        let token = generate_token();
        let record = self
            .store()
            .create_token(NewToken {
                tenant,
                role,
                hash: &hash_token(&token),
                expires_at,
            })
            .await?;
        Ok((token, record))
    }

    /// The live token record of a presented bearer token, or `None` (unknown, revoked or
    /// expired: all answered alike, 401).
    pub async fn authenticate(&self, token: &str) -> Result<Option<TokenRecord>, ServiceError> {
        let hash = hash_token(token);
        let found = self.store().token_by_hash(&hash).await?;
        Ok(found.filter(|record| hashes_match(&record.hash, &hash) && record.is_live(Utc::now())))
    }

    /// Stores an operator-chosen admin token of the default tenant (`LRLAB_BOOTSTRAP_TOKEN`)
    /// unless it is stored already; a revoked or expired one stays so.
    pub async fn ensure_bootstrap_token(&self, token: &str) -> Result<(), ServiceError> {
        let hash = hash_token(token);
        if self.store().token_by_hash(&hash).await?.is_none() {
            let record = self
                .store()
                .create_token(NewToken {
                    tenant: DEFAULT_TENANT,
                    role: Role::Admin,
                    hash: &hash,
                    expires_at: None,
                })
                .await?;
            tracing::info!(
                token = record.id,
                "stored the bootstrap admin token (LRLAB_BOOTSTRAP_TOKEN)"
            );
        }
        Ok(())
    }

    /// Every token (hashes only), oldest first.
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, ServiceError> {
        Ok(self.store().tokens().await?)
    }

    /// Revokes a token; revoking one twice is harmless.
    pub async fn revoke_token(&self, id: i64) -> Result<(), ServiceError> {
        match self.store().revoke_token(id).await? {
            Some(_) => Ok(()),
            None => Err(ServiceError::TokenNotFound(id)),
        }
    }
}
