//! Per-tenant advisory locks in the control plane: one process at a time runs
//! a tenant's creation or deletion steps, across every bulkhead process.

use super::{ControlError, ControlPlane, TenantId};

const KEY: &str = "hashtextextended('bulkhead tenant ' || $1::text, 0)";

/// Held until [`TenantLock::release`]; if dropped instead (an error path), its
/// connection (one of its own) closes, which releases the lock.
pub struct TenantLock {
    client: Option<tokio_postgres::Client>,
    tenant: TenantId,
}

impl ControlPlane {
    /// Waits for the tenant's lock.
    pub async fn lock_tenant(&self, tenant: TenantId) -> Result<TenantLock, ControlError> {
        let client = self.dedicated().await?;
        client
            .execute(
                &format!("SELECT pg_advisory_lock({KEY})"),
                &[&tenant.0.to_string()],
            )
            .await?;
        Ok(TenantLock {
            client: Some(client),
            tenant,
        })
    }

    /// Takes the tenant's lock if nobody holds it.
    pub async fn try_lock_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Option<TenantLock>, ControlError> {
        let client = self.dedicated().await?;
        let got: bool = client
            .query_one(
                &format!("SELECT pg_try_advisory_lock({KEY})"),
                &[&tenant.0.to_string()],
            )
            .await?
            .get(0);
        Ok(got.then_some(TenantLock {
            client: Some(client),
            tenant,
        }))
    }
}

impl TenantLock {
    pub async fn release(mut self) -> Result<(), ControlError> {
        if let Some(client) = self.client.take() {
            client
                .execute(
                    &format!("SELECT pg_advisory_unlock({KEY})"),
                    &[&self.tenant.0.to_string()],
                )
                .await?;
        }
        Ok(())
    }
}

/// The fleet-wide migration lock, held on a connection of its own for the whole
/// run: if the process dies, the connection closes and the lock is free.
pub struct FleetLock {
    client: tokio_postgres::Client,
}

const FLEET_KEY: &str = "hashtextextended('bulkhead fleet migration', 0)";

impl FleetLock {
    /// Frees the lock now (dropping it frees it too, once the server notices
    /// the connection is gone).
    pub async fn release(self) -> Result<(), ControlError> {
        self.client
            .execute(&format!("SELECT pg_advisory_unlock({FLEET_KEY})"), &[])
            .await?;
        Ok(())
    }
}

impl ControlPlane {
    pub async fn try_fleet_lock(&self) -> Result<Option<FleetLock>, ControlError> {
        let client = self.dedicated().await?;
        let got: bool = client
            .query_one(&format!("SELECT pg_try_advisory_lock({FLEET_KEY})"), &[])
            .await?
            .get(0);
        Ok(got.then_some(FleetLock { client }))
    }
}
