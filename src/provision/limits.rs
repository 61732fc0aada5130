//! The bounds a tenant's runtime role starts every session with, by plan: a
//! statement's time, a transaction's idle time, a query's temporary files.
//! Set when the role is made; `reconcile` gives them to roles that lack
//! them (made before they existed, or whose plan changed) and takes back any
//! a role changed on itself.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio_postgres::Client;

use super::delete::Reconciled;
use super::sql;
use super::{ProvisionError, Provisioner};
use crate::control::{Plan, Status, Tenant};
use crate::sql::{Arg, Ident, render};

/// One plan's session limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLimits {
    /// `statement_timeout`: the longest one statement runs.
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: the longest a transaction may
    /// sit open with nothing running before the server ends the session.
    pub idle_in_transaction: Duration,
    /// `temp_file_limit`: the most temporary file space one query may use, in kB.
    pub temp_file_limit_kb: i64,
}

impl SessionLimits {
    pub fn of(plan: Plan) -> Self {
        match plan {
            Plan::Free => Self {
                statement_timeout: Duration::from_secs(5),
                idle_in_transaction: Duration::from_secs(10),
                temp_file_limit_kb: 256 * 1024,
            },
            Plan::Pro => Self {
                statement_timeout: Duration::from_secs(30),
                idle_in_transaction: Duration::from_secs(60),
                temp_file_limit_kb: 4 * 1024 * 1024,
            },
        }
    }

    /// As `pg_db_role_setting` keeps them once `runtime_limits.sql` has set them.
    pub fn settings(&self) -> [String; 3] {
        [
            format!("statement_timeout={}", self.statement_timeout.as_millis()),
            format!(
                "idle_in_transaction_session_timeout={}",
                self.idle_in_transaction.as_millis()
            ),
            format!("temp_file_limit={}", self.temp_file_limit_kb),
        ]
    }

    fn sql(&self, runtime: &str) -> String {
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        render(
            sql::RUNTIME_LIMITS,
            &[
                ("runtime", Arg::Ident(&Ident::new(runtime))),
                (
                    "statement_timeout_ms",
                    Arg::Int(millis(self.statement_timeout)),
                ),
                (
                    "idle_in_transaction_ms",
                    Arg::Int(millis(self.idle_in_transaction)),
                ),
                ("temp_file_limit_kb", Arg::Int(self.temp_file_limit_kb)),
            ],
        )
    }
}

impl Provisioner {
    /// Gives the tenant's runtime role its plan's session limits (on
    /// `client`, a superuser connection to its server). Idempotent; new
    /// sessions get them, open ones keep what they started with.
    pub(super) async fn set_limits(
        &self,
        client: &Client,
        tenant: &Tenant,
    ) -> Result<(), tokio_postgres::Error> {
        let limits = SessionLimits::of(tenant.plan);
        sql::in_transaction(client, &limits.sql(tenant.runtime_role())).await
    }

    /// Gives a tenant its plan's session limits now (after its plan changed).
    pub async fn apply_limits(&self, tenant: &Tenant) -> Result<(), ProvisionError> {
        let server = self.server_of(tenant).await?;
        let client = self.admin.get(&server).await?;
        self.set_limits(&client, tenant)
            .await
            .map_err(|e| ProvisionError::ServerUnreachable {
                server: server.name.clone(),
                detail: crate::pg::describe(&e),
            })
    }

    /// `reconcile`: every settled tenant whose runtime role's limits differ
    /// from its plan's gets its plan's, one query per server to find them.
    /// A server out of reach is skipped (and logged): the next run does it.
    pub(super) async fn reconcile_limits(
        &self,
        report: &mut Vec<Reconciled>,
    ) -> Result<(), ProvisionError> {
        let mut by_server: BTreeMap<String, Vec<Tenant>> = BTreeMap::new();
        for tenant in self.control.tenants(false).await? {
            // Those being made get theirs at step `roles`; those being
            // deleted need none.
            if !matches!(
                tenant.status,
                Status::Provisioning | Status::Deleting | Status::Deleted
            ) {
                by_server
                    .entry(tenant.server.clone())
                    .or_default()
                    .push(tenant);
            }
        }
        for (server, tenants) in by_server {
            if let Err(e) = self.reconcile_limits_on(&server, &tenants, report).await {
                tracing::warn!(%server, error = %crate::report::chain(&e), "could not check the session limits of its tenants");
            }
        }
        Ok(())
    }

    async fn reconcile_limits_on(
        &self,
        server: &str,
        tenants: &[Tenant],
        report: &mut Vec<Reconciled>,
    ) -> Result<(), ProvisionError> {
        let client = self.admin_of(server).await?;
        let roles: Vec<&str> = tenants.iter().map(Tenant::runtime_role).collect();
        let rows = client
            .query(sql::ROLE_SETTINGS, &[&roles])
            .await
            .map_err(|e| ProvisionError::ServerUnreachable {
                server: server.to_string(),
                detail: crate::pg::describe(&e),
            })?;
        let settings: HashMap<String, Vec<String>> = rows
            .iter()
            .map(|r| (r.get("role"), r.get("settings")))
            .collect();
        for tenant in tenants {
            // No role: not this step's to make (`tenant create` or a restore does).
            let Some(has) = settings.get(tenant.runtime_role()) else {
                continue;
            };
            let wanted = SessionLimits::of(tenant.plan).settings();
            if wanted.iter().all(|w| has.contains(w)) {
                continue;
            }
            let outcome = match self.set_limits(&client, tenant).await {
                Ok(()) => format!("session limits set to the {} plan's", tenant.plan),
                Err(e) => format!("failed: session limits: {}", crate::pg::describe(&e)),
            };
            report.push(Reconciled {
                slug: tenant.slug.to_string(),
                was: tenant.status,
                outcome,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_as_the_catalog_keeps_them() {
        let free = SessionLimits::of(Plan::Free);
        assert_eq!(
            free.settings(),
            [
                "statement_timeout=5000",
                "idle_in_transaction_session_timeout=10000",
                "temp_file_limit=262144",
            ]
        );
        let sql = free.sql("t_x");
        assert!(sql.contains("ALTER ROLE \"t_x\" SET statement_timeout = 5000;"));
        assert!(sql.contains("SET temp_file_limit = 262144;"));
        assert!(SessionLimits::of(Plan::Pro).statement_timeout > free.statement_timeout);
    }
}
