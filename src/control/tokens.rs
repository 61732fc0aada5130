//! API tokens: only their SHA-256 is stored; the token is shown once.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ControlError, ControlPlane, TenantId};

#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub role: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The person who minted it over HTTP (`None`: an operator, by CLI).
    pub created_by: Option<Uuid>,
}

const COLUMNS: &str = "id, tenant_id, role, name, created_at, last_used_at, revoked_at, created_by";

fn token(row: &tokio_postgres::Row) -> TokenRow {
    TokenRow {
        id: row.get(0),
        tenant_id: row.get(1),
        role: row.get(2),
        name: row.get(3),
        created_at: row.get(4),
        last_used_at: row.get(5),
        revoked_at: row.get(6),
        created_by: row.get(7),
    }
}

impl ControlPlane {
    pub async fn insert_token(
        &self,
        tenant: TenantId,
        role: &str,
        name: &str,
        hash: &[u8],
        created_by: Option<Uuid>,
    ) -> Result<TokenRow, ControlError> {
        let row = self
            .client()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO api_tokens (id, tenant_id, role, name, token_hash, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
                ),
                &[&Uuid::new_v4(), &tenant.0, &role, &name, &hash, &created_by],
            )
            .await?;
        Ok(token(&row))
    }

    /// The live (not revoked) token with this hash.
    pub async fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRow>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
                ),
                &[&hash],
            )
            .await?;
        Ok(row.as_ref().map(token))
    }

    pub async fn tokens(&self, tenant: TenantId) -> Result<Vec<TokenRow>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM api_tokens WHERE tenant_id = $1 ORDER BY created_at"
                ),
                &[&tenant.0],
            )
            .await?;
        Ok(rows.iter().map(token).collect())
    }

    /// Revokes a token of this tenant; `false` if there is none (or it was revoked).
    pub async fn revoke_token(&self, tenant: TenantId, id: Uuid) -> Result<bool, ControlError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
                &[&id, &tenant.0],
            )
            .await?;
        Ok(n == 1)
    }

    /// Revokes every live token of this tenant with this name.
    pub async fn revoke_tokens_named(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<u64, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE api_tokens SET revoked_at = now() WHERE tenant_id = $1 AND name = $2 AND revoked_at IS NULL",
                &[&tenant.0, &name],
            )
            .await?)
    }
}
