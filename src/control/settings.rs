//! A tenant's settings in the control plane: one JSON object per tenant of
//! the keys set explicitly (the API checks keys and values).

use super::{ControlError, ControlPlane, TenantId};

impl ControlPlane {
    /// The tenant's stored settings (only keys set explicitly).
    pub async fn tenant_settings(
        &self,
        tenant: TenantId,
    ) -> Result<serde_json::Value, ControlError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT settings FROM tenant_settings WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await?
            .map_or_else(|| serde_json::json!({}), |r| r.get(0)))
    }

    /// Replaces the tenant's stored settings.
    pub async fn set_tenant_settings(
        &self,
        tenant: TenantId,
        settings: &serde_json::Value,
    ) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO tenant_settings (tenant_id, settings) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = $2, updated_at = now()",
                &[&tenant.0, settings],
            )
            .await?;
        Ok(())
    }
}
