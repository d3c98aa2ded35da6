//! API tokens (their hashes).

use chrono::Utc;

use super::SqliteStore;
use crate::store::rows::{TokenRow, TOKEN_COLUMNS};
use crate::store::{NewToken, StoreError, TokenRecord};

impl SqliteStore {
    pub(super) async fn insert_token(
        &self,
        token: NewToken<'_>,
    ) -> Result<TokenRecord, StoreError> {
        sqlx::query_as::<_, TokenRow>(&format!(
            "INSERT INTO tokens (tenant, role, hash, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(token.tenant)
        .bind(token.role.as_str())
        .bind(token.hash)
        .bind(Utc::now())
        .bind(token.expires_at)
        .fetch_one(&self.pool)
        .await?
        .try_into()
    }

    pub(super) async fn find_token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?
        .map(TokenRecord::try_from)
        .transpose()
    }

    pub(super) async fn all_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        sqlx::query_as::<_, TokenRow>(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(TokenRecord::try_from)
            .collect()
    }

    pub(super) async fn revoke(&self, id: i64) -> Result<Option<bool>, StoreError> {
        let revoked =
            sqlx::query("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(Utc::now())
                .bind(id)
                .execute(&self.pool)
                .await?;
        if revoked.rows_affected() == 1 {
            return Ok(Some(true));
        }
        let (exists,) =
            sqlx::query_as::<_, (bool,)>("SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?)")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Ok(exists.then_some(false))
    }
}
