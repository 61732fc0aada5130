//! Renaming a tenant's objects (roles, database or schema) from the
//! slug-derived names tenants were once given to opaque ones, so that the
//! catalogs every role can read no longer list the customers.
//!
//! Crash-safe and idempotent: the new name is recorded in the control plane
//! first, each object is renamed only if it still has its old name, and the
//! rename is marked done last; `reconcile` finishes an interrupted one.

use std::time::Duration;

use serde_json::json;

use super::admin::{database_exists, role_exists};
use super::delete::Reconciled;
use super::sql;
use super::{ProvisionError, Provisioner};
use crate::control::{Mode, PgName, Server, Status, Step, Tenant};
use crate::sql::{Arg, Ident, render};

/// What the report says of a tenant renamed.
pub const RENAMED: &str = "renamed to opaque catalog names";

/// At rest: neither being created or deleted (those steps use the name they
/// started with) nor in a fleet migration.
fn settled(tenant: &Tenant) -> bool {
    matches!(
        tenant.status,
        Status::Active | Status::Suspended | Status::MigrationFailed
    )
}

/// Where one object is in its rename.
enum Found {
    /// Still under its old name: rename it.
    Old,
    /// Under its new name already (renamed before a crash).
    New,
}

impl Provisioner {
    /// Renames every settled tenant still on slug-derived names (or half-way
    /// through its rename); one line of `report` per tenant. Skipped while a
    /// fleet migration runs (it connects by the old names), and for tenants
    /// another process is working on: the next reconcile does them.
    pub(super) async fn rename_slug_named(
        &self,
        report: &mut Vec<Reconciled>,
    ) -> Result<(), ProvisionError> {
        let pending = self.control.tenants_to_rename().await?;
        if pending.is_empty() {
            return Ok(());
        }
        let left = |tenant: &Tenant, why: &str| Reconciled {
            slug: tenant.slug.to_string(),
            was: tenant.status,
            outcome: format!("left alone: {why}; the next reconcile renames it"),
        };
        let Some(fleet) = self
            .control
            .try_fleet_lock(Duration::from_millis(1))
            .await?
        else {
            report.extend(
                pending
                    .iter()
                    .map(|t| left(t, "a fleet migration is running")),
            );
            return Ok(());
        };
        for tenant in pending {
            let Some(lock) = self.control.try_lock_tenant(tenant.id).await? else {
                report.push(left(&tenant, "another process is working on it"));
                continue;
            };
            // Re-read under the lock: it may have been renamed or deleted meanwhile.
            let current = self.control.tenant(tenant.id).await?;
            let Some(tenant) = current.filter(|t| t.needs_rename() && settled(t)) else {
                lock.release().await?;
                continue;
            };
            let result = match self.server_of(&tenant).await {
                Ok(server) => self.rename_objects(&tenant, &server).await,
                Err(e) => Err(e),
            };
            lock.release().await?;
            report.push(Reconciled {
                slug: tenant.slug.to_string(),
                was: tenant.status,
                outcome: match result {
                    Ok(_) => RENAMED.to_string(),
                    Err(e) => format!("failed: {e}"),
                },
            });
        }
        fleet.release().await?;
        Ok(())
    }

    /// Moves the tenant's objects to an opaque name (the one recorded for an
    /// interrupted rename, else a new one) and returns the tenant as it is
    /// now. The caller holds the tenant's lock.
    pub(super) async fn rename_objects(
        &self,
        tenant: &Tenant,
        server: &Server,
    ) -> Result<Tenant, ProvisionError> {
        // 1. The target, recorded before anything is renamed.
        let to = self
            .control
            .begin_rename(tenant.id, &PgName::mint())
            .await?;
        let from = &tenant.pg_name;
        let err = |e: tokio_postgres::Error| ProvisionError::Step {
            slug: tenant.slug.to_string(),
            step: Step::Roles,
            detail: format!("renaming its objects: {}", crate::pg::describe(&e)),
        };
        let maintenance = self.admin.get(server).await?;
        // 2. Each object, unless a run before a crash has renamed it already.
        for (old, new) in [
            (from.owner_role(), to.owner_role()),
            (from.to_string(), to.to_string()),
        ] {
            let found = self.locate(
                tenant,
                "role",
                &old,
                &new,
                role_exists(&maintenance, &old).await.map_err(err)?,
                role_exists(&maintenance, &new).await.map_err(err)?,
            )?;
            if let Found::Old = found {
                let sql = render(
                    sql::ROLE_RENAME,
                    &[
                        ("from", Arg::Ident(&Ident::new(&old))),
                        ("to", Arg::Ident(&Ident::new(&new))),
                    ],
                );
                maintenance.batch_execute(&sql).await.map_err(err)?;
            }
        }
        match tenant.mode {
            Mode::Database => {
                let found = self.locate(
                    tenant,
                    "database",
                    from.as_str(),
                    to.as_str(),
                    database_exists(&maintenance, from.as_str())
                        .await
                        .map_err(err)?,
                    database_exists(&maintenance, to.as_str())
                        .await
                        .map_err(err)?,
                )?;
                if let Found::Old = found {
                    let old = Ident::new(from.as_str());
                    let close = render(sql::DATABASE_CLOSE, &[("database", Arg::Ident(&old))]);
                    sql::in_transaction(&maintenance, &close)
                        .await
                        .map_err(err)?;
                    maintenance
                        .execute(sql::DATABASE_TERMINATE, &[&from.as_str()])
                        .await
                        .map_err(err)?;
                    let rename = render(
                        sql::DATABASE_RENAME,
                        &[
                            ("from", Arg::Ident(&old)),
                            ("to", Arg::Ident(&Ident::new(to.as_str()))),
                        ],
                    );
                    maintenance.batch_execute(&rename).await.map_err(err)?;
                }
                // Always: a crash may have left it renamed but closed.
                let open = render(
                    sql::DATABASE_OPEN,
                    &[("database", Arg::Ident(&Ident::new(to.as_str())))],
                );
                sql::in_transaction(&maintenance, &open)
                    .await
                    .map_err(err)?;
            }
            Mode::Schema => {
                let shared = self
                    .admin
                    .get_db(server, Some(&self.settings.shared_db))
                    .await?;
                let exists = |name: String| {
                    let shared = &shared;
                    async move {
                        shared
                            .query_one(
                                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                                &[&name],
                            )
                            .await
                            .map(|r| r.get::<_, bool>(0))
                    }
                };
                let found = self.locate(
                    tenant,
                    "schema",
                    from.as_str(),
                    to.as_str(),
                    exists(from.to_string()).await.map_err(err)?,
                    exists(to.to_string()).await.map_err(err)?,
                )?;
                let new = Ident::new(to.as_str());
                let mut statements = String::new();
                if let Found::Old = found {
                    statements = render(
                        sql::SCHEMA_RENAME,
                        &[
                            ("from", Arg::Ident(&Ident::new(from.as_str()))),
                            ("to", Arg::Ident(&new)),
                        ],
                    );
                }
                // Always: the role's default search path names the schema.
                statements.push_str(&render(
                    sql::SCHEMA_PIN,
                    &[
                        ("runtime", Arg::Ident(&new)),
                        ("shared", Arg::Ident(&Ident::new(&self.settings.shared_db))),
                        ("schema", Arg::Ident(&new)),
                    ],
                ));
                sql::in_transaction(&shared, &statements)
                    .await
                    .map_err(err)?;
                // Open sessions keep the search path they started with, which
                // names the old schema: end them (pools reconnect).
                maintenance
                    .execute(sql::TERMINATE, &[&to.as_str()])
                    .await
                    .map_err(err)?;
            }
        }
        // 3. Done: from now on the tenant is served under its new name.
        self.control.finish_rename(tenant.id, &to).await?;
        self.audit(
            "tenant.rename_catalog_names",
            tenant,
            json!({"from": from.as_str(), "to": to.as_str()}),
        )
        .await?;
        tracing::info!(tenant = %tenant.slug, "catalog names renamed");
        self.control
            .tenant(tenant.id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownTenant(tenant.slug.to_string()))
    }

    /// Which of its two names an object has; neither or both is a state no
    /// rename leaves behind, so nothing is touched.
    fn locate(
        &self,
        tenant: &Tenant,
        what: &str,
        old: &str,
        new: &str,
        old_exists: bool,
        new_exists: bool,
    ) -> Result<Found, ProvisionError> {
        match (old_exists, new_exists) {
            (true, false) => Ok(Found::Old),
            (false, true) => Ok(Found::New),
            (both, _) => Err(ProvisionError::Step {
                slug: tenant.slug.to_string(),
                step: Step::Roles,
                detail: format!(
                    "renaming its objects: {} {what} `{old}` and `{new}`",
                    if both { "both the" } else { "neither the" }
                ),
            }),
        }
    }
}
