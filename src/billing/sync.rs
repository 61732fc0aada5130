//! Repairing drift (`billing sync`), ending grace periods, and giving plan
//! changes to their tenants.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{Billing, BillingError};
use crate::control::{PlanChange, Status, SubscriptionRecord, SyncChange, TenantId};
use crate::routing::TenantEntry;

/// What `billing sync` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SyncReport {
    /// Tenants checked.
    pub checked: usize,
    /// Tenants whose mirror or plan changed: slug (or id) and what.
    pub changed: Vec<(String, SyncChange)>,
    /// Tenants that could not be checked, and why.
    pub failed: Vec<(String, String)>,
}

impl SyncReport {
    /// One log line per change and failure, and a summary.
    pub fn log(&self) {
        for (tenant, change) in &self.changed {
            tracing::info!(%tenant, subscriptions = ?change.subscriptions, plan = ?change.plan, "billing sync: repaired");
        }
        for (tenant, why) in &self.failed {
            tracing::warn!(%tenant, %why, "billing sync: could not check");
        }
        tracing::info!(
            checked = self.checked,
            changed = self.changed.len(),
            failed = self.failed.len(),
            "billing sync done"
        );
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl Billing {
    /// Re-reads every subscription of every billed tenant (or one) from
    /// Stripe and makes the mirror and the plan agree with it. A tenant
    /// Stripe cannot answer for is reported and left as it was.
    pub async fn sync(&self, only: Option<TenantId>) -> Result<SyncReport, BillingError> {
        let stripe = self.stripe()?;
        let mut report = SyncReport::default();
        for (tenant, customer) in self.control.billed_tenants(only).await? {
            report.checked += 1;
            let name = match self.control.tenant(tenant).await? {
                Some(t) => t.slug.to_string(),
                None => tenant.to_string(),
            };
            let states = match stripe.subscriptions_of(&customer).await {
                Ok(states) => states,
                Err(e) => {
                    report.failed.push((name, e.to_string()));
                    continue;
                }
            };
            let records: Vec<SubscriptionRecord> = states.into_iter().map(Into::into).collect();
            let change = self
                .control
                .sync_billing(tenant, &records, unix_now(), self.settings.grace)
                .await?;
            if !change.is_empty() {
                report.changed.push((name, change));
            }
        }
        self.sweep().await?;
        Ok(report)
    }

    /// Ends the grace periods that ran out, then gives every pending plan
    /// change to its tenant.
    pub async fn sweep(&self) -> Result<(), BillingError> {
        let ended = self.control.end_billing_grace(self.settings.grace).await?;
        if !ended.is_empty() {
            tracing::info!(
                tenants = ended.len(),
                "billing: grace periods ended, back to free"
            );
        }
        self.deliver(None).await;
        Ok(())
    }

    /// Gives pending plan changes (of one tenant, or all) to their tenants:
    /// the runtime role's session limits for the new plan, and a row in the
    /// tenant's own audit log. Each is marked done only once both are; what
    /// fails stays pending for the next sweep. Returns how many were done.
    pub async fn deliver(&self, only: Option<TenantId>) -> usize {
        let changes = match self.control.claim_plan_changes(only).await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!(error = %crate::report::chain(&e), "billing: could not read pending plan changes");
                return 0;
            }
        };
        let mut done = 0;
        for change in changes {
            match self.give(&change).await {
                Ok(()) => done += 1,
                Err(e) => {
                    tracing::warn!(tenant = %change.tenant, change = change.id, error = %e, "billing: plan change not yet given to the tenant; will retry");
                }
            }
        }
        done
    }

    async fn give(&self, change: &PlanChange) -> Result<(), String> {
        let tenant = self
            .control
            .tenant(change.tenant)
            .await
            .map_err(|e| crate::report::chain(&e).to_string())?;
        let live = tenant.filter(|t| {
            !matches!(
                t.status,
                Status::Deleting | Status::Deleted | Status::Provisioning
            )
        });
        if let Some(tenant) = live {
            // The plan may have moved again since: the limits are the
            // current plan's, whatever this change says.
            self.provisioner
                .apply_limits(&tenant)
                .await
                .map_err(|e| crate::report::chain(&e).to_string())?;
            let entry = TenantEntry::from_tenant(&tenant, &self.provisioner.settings().shared_db);
            self.audit(&entry, change)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.control
            .plan_change_done(change.id)
            .await
            .map_err(|e| crate::report::chain(&e).to_string())
    }

    /// Writes the change into the tenant's audit log, once: a retry after a
    /// crash between this and `plan_change_done` finds its row.
    async fn audit(
        &self,
        tenant: &TenantEntry,
        change: &PlanChange,
    ) -> Result<(), crate::http::ApiError> {
        let pool = self.pools.pool(tenant).await?;
        let db = self.pools.connect_to(tenant, &pool).await?;
        let mut detail = change.detail.clone();
        detail["from"] = change.from.as_str().into();
        detail["to"] = change.to.as_str().into();
        detail["change"] = change.id.to_string().into();
        db.execute(
            "INSERT INTO audit_log (at, actor_label, action, object_type, object_id, detail)
             SELECT $1, $2, $6, 'plan', $3, $4
              WHERE NOT EXISTS (SELECT 1 FROM audit_log
                                 WHERE action LIKE 'billing.%' AND detail->>'change' = $5)",
            &[
                &change.at,
                &change.actor,
                &change.to.as_str(),
                &detail,
                &change.id.to_string(),
                &change.action,
            ],
        )
        .await?;
        Ok(())
    }
}
