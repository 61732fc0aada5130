//! Custom domains: host -> tenant, routed only once verified.

use serde::Serialize;
use time::OffsetDateTime;

use super::{ControlError, ControlPlane, TenantId};

#[derive(Debug, Clone, Serialize)]
pub struct Domain {
    pub host: String,
    pub tenant_id: uuid::Uuid,
    pub verification_token: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
}

fn domain(row: &tokio_postgres::Row) -> Domain {
    Domain {
        host: row.get(0),
        tenant_id: row.get(1),
        verification_token: row.get(2),
        verified_at: row.get(3),
    }
}

const COLUMNS: &str = "host, tenant_id, verification_token, verified_at";

impl ControlPlane {
    /// Adds a domain; `Ok(None)` if the host is already taken (by anyone).
    pub async fn insert_domain(
        &self,
        tenant: TenantId,
        host: &str,
        token: &str,
    ) -> Result<Option<Domain>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "INSERT INTO domains (host, tenant_id, verification_token) VALUES ($1, $2, $3)
                     ON CONFLICT (host) DO NOTHING RETURNING {COLUMNS}"
                ),
                &[&host, &tenant.0, &token],
            )
            .await?;
        Ok(row.as_ref().map(domain))
    }

    pub async fn domain(&self, host: &str) -> Result<Option<Domain>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM domains WHERE host = $1"),
                &[&host],
            )
            .await?;
        Ok(row.as_ref().map(domain))
    }

    pub async fn domains(&self, tenant: TenantId) -> Result<Vec<Domain>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM domains WHERE tenant_id = $1 ORDER BY host"),
                &[&tenant.0],
            )
            .await?;
        Ok(rows.iter().map(domain).collect())
    }

    pub async fn mark_domain_verified(&self, host: &str) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE domains SET verified_at = now() WHERE host = $1",
                &[&host],
            )
            .await?;
        Ok(())
    }

    pub async fn remove_domain(&self, tenant: TenantId, host: &str) -> Result<bool, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM domains WHERE host = $1 AND tenant_id = $2",
                &[&host, &tenant.0],
            )
            .await?
            == 1)
    }
}
