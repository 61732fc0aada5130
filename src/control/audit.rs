//! The platform audit log: who did what to which tenant, when.

use serde_json::Value;

use super::{ControlError, ControlPlane, TenantId};

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub tenant_id: Option<uuid::Uuid>,
    pub detail: Value,
}

impl ControlPlane {
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        tenant: Option<TenantId>,
        detail: Value,
    ) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO audit_log (actor, action, tenant_id, detail) VALUES ($1, $2, $3, $4)",
                &[&actor, &action, &tenant.map(|t| t.0), &detail],
            )
            .await?;
        Ok(())
    }

    /// The newest audit entries about one tenant (or all, with `None`).
    pub async fn audit_entries(
        &self,
        tenant: Option<TenantId>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), actor, action, tenant_id, detail
                   FROM audit_log WHERE $1::uuid IS NULL OR tenant_id = $1
                  ORDER BY id DESC LIMIT $2",
                &[&tenant.map(|t| t.0), &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at: r.get(0),
                actor: r.get(1),
                action: r.get(2),
                tenant_id: r.get(3),
                detail: r.get(4),
            })
            .collect())
    }
}
