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

/// How long a run waits for the fleet lock before reporting it held. A run
/// whose process was just killed still holds it until the server notices the
/// closed connection (milliseconds, longer on a loaded server): a resume
/// started right after the crash waits that out instead of failing.
pub const FLEET_LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

impl ControlPlane {
    /// The fleet lock, waiting up to `grace` for it; `None` if it stays held.
    pub async fn try_fleet_lock(
        &self,
        grace: std::time::Duration,
    ) -> Result<Option<FleetLock>, ControlError> {
        let client = self.dedicated().await?;
        // Advisory locks obey lock_timeout: the wait ends in 55P03.
        client
            .batch_execute(&format!("SET lock_timeout = {}", grace.as_millis().max(1)))
            .await?;
        let got = match client
            .execute(&format!("SELECT pg_advisory_lock({FLEET_KEY})"), &[])
            .await
        {
            Ok(_) => true,
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                false
            }
            Err(e) => return Err(e.into()),
        };
        client.batch_execute("RESET lock_timeout").await?;
        Ok(got.then_some(FleetLock { client }))
    }
}
