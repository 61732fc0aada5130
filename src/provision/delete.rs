//! Life after creation: suspend, resume, rotate credentials, hand out a
//! connection URL, delete (with an optional export), and reconcile.

use std::path::Path;
use std::process::Stdio;

use serde_json::json;

use super::admin;
use super::sql;
use super::{ProvisionError, Provisioner};
use crate::control::{Mode, Server, Status, Step, Tenant};
use crate::secret::Secret;
use crate::sql::{Arg, Ident, render};

/// What `reconcile` did with one unsettled tenant.
#[derive(Debug, serde::Serialize)]
pub struct Reconciled {
    pub slug: String,
    pub was: Status,
    pub outcome: String,
}

impl Provisioner {
    pub async fn suspend(&self, slug: &str) -> Result<Tenant, ProvisionError> {
        self.suspend_because(slug, None).await
    }

    /// [`Self::suspend`], the reason (if any) in its audit row.
    pub async fn suspend_because(
        &self,
        slug: &str,
        reason: Option<&str>,
    ) -> Result<Tenant, ProvisionError> {
        self.change_status(
            slug,
            Status::Active,
            Status::Suspended,
            "suspend",
            "tenant.suspend",
            reason,
        )
        .await
    }

    pub async fn resume(&self, slug: &str) -> Result<Tenant, ProvisionError> {
        self.resume_because(slug, None).await
    }

    /// [`Self::resume`], the reason (if any) in its audit row.
    pub async fn resume_because(
        &self,
        slug: &str,
        reason: Option<&str>,
    ) -> Result<Tenant, ProvisionError> {
        self.change_status(
            slug,
            Status::Suspended,
            Status::Active,
            "resume",
            "tenant.resume",
            reason,
        )
        .await
    }

    async fn change_status(
        &self,
        slug: &str,
        from: Status,
        to: Status,
        action: &'static str,
        audit: &str,
        reason: Option<&str>,
    ) -> Result<Tenant, ProvisionError> {
        let tenant = self.tenant(slug).await?;
        if tenant.status == to {
            return Ok(tenant);
        }
        if tenant.status != from {
            return Err(ProvisionError::WrongStatus {
                slug: slug.to_string(),
                status: tenant.status.to_string(),
                action,
                expected: from.as_str(),
            });
        }
        self.control.set_status(tenant.id, to, None).await?;
        let detail = match reason {
            Some(why) => json!({"reason": why}),
            None => json!({}),
        };
        self.audit(audit, &tenant, detail).await?;
        self.tenant(slug).await
    }

    /// Starts a new credential generation: new connections need the new password;
    /// open ones keep working until they are recycled.
    pub async fn rotate_credentials(&self, slug: &str) -> Result<Tenant, ProvisionError> {
        let actor = self.settings.actor.clone();
        self.rotate_credentials_as(slug, &actor, json!({})).await
    }

    /// [`Self::rotate_credentials`] on behalf of `actor` (an operator),
    /// its audit row carrying `detail` (the reason) as well.
    pub async fn rotate_credentials_as(
        &self,
        slug: &str,
        actor: &str,
        mut detail: serde_json::Value,
    ) -> Result<Tenant, ProvisionError> {
        let tenant = self.tenant(slug).await?;
        if matches!(tenant.status, Status::Provisioning | Status::Deleting) {
            return Err(ProvisionError::WrongStatus {
                slug: slug.to_string(),
                status: tenant.status.to_string(),
                action: "rotate-credentials",
                expected: "active or suspended",
            });
        }
        let server = self.server_of(&tenant).await?;
        // Bump first: a crash before ALTER ROLE is repaired by rotating again.
        let generation = self.control.bump_credential_generation(tenant.id).await?;
        let client = self.admin.get(&server).await?;
        self.set_credentials(&client, &tenant, generation)
            .await
            .map_err(|e| ProvisionError::Step {
                slug: slug.to_string(),
                step: Step::Roles,
                detail: crate::pg::describe(&e),
            })?;
        detail["generation"] = generation.into();
        self.control
            .audit(actor, "tenant.rotate_credentials", Some(tenant.id), detail)
            .await?;
        self.tenant(slug).await
    }

    /// The runtime connection URL of a tenant, for operators. Audited.
    pub async fn connect_url(&self, slug: &str) -> Result<Secret<String>, ProvisionError> {
        let tenant = self.tenant(slug).await?;
        let server = self.server_of(&tenant).await?;
        let config = self.runtime_config(&tenant, &server)?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "localhost".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let password = self
            .secret
            .tenant_password(tenant.id.0, tenant.credential_generation);
        self.audit("tenant.connect_url", &tenant, json!({})).await?;
        // The search path pinned at connection start, as the pool router pins it.
        let options = config.get_options().unwrap_or_default();
        // The server's TLS settings too, so that libpq clients use them.
        let tls: String = config
            .libpq_tls_params()
            .iter()
            .map(|(k, v)| format!("&{k}={}", percent_encode(v)))
            .collect();
        Ok(Secret::new(format!(
            "postgres://{}:{}@{host}:{port}/{}?options={}{tls}",
            tenant.runtime_role(),
            password.expose(),
            tenant.database(&self.settings.shared_db),
            percent_encode(options),
        )))
    }

    /// Deletes a tenant: stop serving it, export it if asked, drop its database
    /// (or schema) and roles, and leave a tombstone whose slug stays reserved.
    pub async fn delete(
        &self,
        slug: &str,
        export: Option<&Path>,
    ) -> Result<Tenant, ProvisionError> {
        let tenant = self.tenant(slug).await?;
        let lock = self.control.lock_tenant(tenant.id).await?;
        // Re-read under the lock: another process may have moved it on.
        let tenant = self.tenant(slug).await?;
        let first = if tenant.status == Status::Deleting {
            tenant.step.unwrap_or(Step::Drop)
        } else {
            let step = if export.is_some() {
                Step::Export
            } else {
                Step::Drop
            };
            self.control
                .set_status(tenant.id, Status::Deleting, Some(step))
                .await?;
            self.audit(
                "tenant.delete",
                &tenant,
                json!({"export": export.is_some()}),
            )
            .await?;
            step
        };
        self.finish_delete(&tenant, first, export, self.settings.slug_quarantine_days)
            .await?;
        lock.release().await?;
        self.control
            .tenant(tenant.id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownTenant(slug.to_string()))
    }

    async fn finish_delete(
        &self,
        tenant: &Tenant,
        first: Step,
        export: Option<&Path>,
        quarantine_days: i32,
    ) -> Result<(), ProvisionError> {
        let server = self.server_of(tenant).await?;
        let steps = [Step::Export, Step::Drop, Step::Tombstone];
        let start = steps.iter().position(|s| *s == first).unwrap_or(1);
        for &step in &steps[start..] {
            self.control.set_step(tenant.id, step).await?;
            let result = match step {
                Step::Export => match export {
                    Some(path) => self.export(tenant, &server, path).await,
                    None => Ok(()),
                },
                Step::Drop => self.drop_storage(tenant, &server).await,
                Step::Tombstone => {
                    self.control.tombstone(tenant.id, quarantine_days).await?;
                    Ok(())
                }
                _ => unreachable!("not a deletion step"),
            };
            self.record_failure(tenant, result).await?;
            if step != Step::Tombstone {
                self.check_injected(step)?;
            }
        }
        tracing::info!(tenant = %tenant.slug, "tenant deleted");
        Ok(())
    }

    /// `pg_dump -Fc` of the tenant's database (or schema) into `path`, written to
    /// a temporary file first so that a failed export never looks complete.
    async fn export(
        &self,
        tenant: &Tenant,
        server: &Server,
        path: &Path,
    ) -> Result<(), ProvisionError> {
        let fail = |detail: String| ProvisionError::Export {
            slug: tenant.slug.to_string(),
            detail,
        };
        let db = tenant.database(&self.settings.shared_db);
        let config = admin::admin_config(&server.admin_url, &server.name, Some(&db))?;
        let pg_dump = match &self.settings.pg_bindir {
            Some(dir) => dir.join("pg_dump"),
            None => crate::pg::Binaries::find()
                .map_err(|e| fail(e.to_string()))?
                .tool("pg_dump"),
        };
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let partial = path.with_extension("partial");
        let mut cmd = tokio::process::Command::new(pg_dump);
        cmd.arg("--format=custom")
            .arg("--file")
            .arg(&partial)
            .arg("--host")
            .arg(host)
            .arg("--port")
            .arg(
                config
                    .get_ports()
                    .first()
                    .copied()
                    .unwrap_or(5432)
                    .to_string(),
            )
            .arg("--username")
            .arg(config.get_user().unwrap_or("postgres"))
            .arg("--dbname")
            .arg(&db)
            .stdin(Stdio::null());
        if tenant.mode == Mode::Schema {
            cmd.arg("--schema").arg(tenant.schema());
        }
        for (key, value) in config.libpq_tls_params() {
            cmd.env(format!("PG{}", key.to_uppercase()), value);
        }
        if let Some(password) = config.get_password() {
            // Through the environment, never the command line (visible in ps).
            cmd.env("PGPASSWORD", String::from_utf8_lossy(password).to_string());
        }
        let out = cmd
            .output()
            .await
            .map_err(|e| fail(format!("running pg_dump: {e}")))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&partial);
            return Err(fail(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        std::fs::rename(&partial, path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
        Ok(())
    }

    async fn drop_storage(&self, tenant: &Tenant, server: &Server) -> Result<(), ProvisionError> {
        // An interrupted rename is finished first: then each object has one name.
        let renamed;
        let tenant = match tenant.pg_name_next {
            Some(_) => {
                renamed = self.rename_objects(tenant, server).await?;
                &renamed
            }
            None => tenant,
        };
        let err = |e: tokio_postgres::Error| ProvisionError::Step {
            slug: tenant.slug.to_string(),
            step: Step::Drop,
            detail: crate::pg::describe(&e),
        };
        let owner = Ident::new(&tenant.owner_role());
        let runtime_name = tenant.runtime_role();
        let runtime = Ident::new(runtime_name);
        let maintenance = self.admin.get(server).await?;
        maintenance
            .execute(sql::TERMINATE, &[&runtime_name])
            .await
            .map_err(err)?;
        match tenant.mode {
            Mode::Database => {
                let database = Ident::new(&tenant.database(&self.settings.shared_db));
                let sql = render(sql::DATABASE_DROP, &[("database", Arg::Ident(&database))]);
                maintenance.batch_execute(&sql).await.map_err(err)?;
            }
            Mode::Schema => {
                let client = admin::connect_to(server, &self.settings.shared_db).await?;
                if admin::role_exists(&client, &tenant.owner_role())
                    .await
                    .map_err(err)?
                    && admin::role_exists(&client, runtime_name)
                        .await
                        .map_err(err)?
                {
                    let sql = render(
                        sql::SCHEMA_DROP,
                        &[
                            ("schema", Arg::Ident(&Ident::new(&tenant.schema()))),
                            ("owner", Arg::Ident(&owner)),
                            ("runtime", Arg::Ident(&runtime)),
                        ],
                    );
                    sql::in_transaction(&client, &sql).await.map_err(err)?;
                }
            }
        }
        let sql = render(
            sql::ROLES_DROP,
            &[
                ("owner", Arg::Ident(&owner)),
                ("runtime", Arg::Ident(&runtime)),
            ],
        );
        maintenance.batch_execute(&sql).await.map_err(err)
    }

    /// Finishes every tenant stuck half-way through creation or deletion; with
    /// `rollback`, stuck creations are undone instead (and their slug freed).
    /// Then renames the objects of tenants still named from their slug (see
    /// `rename.rs`), and gives every tenant's runtime role its plan's
    /// session limits where they differ (see `limits.rs`).
    pub async fn reconcile(&self, rollback: bool) -> Result<Vec<Reconciled>, ProvisionError> {
        let mut report = Vec::new();
        for server in self.control.servers().await? {
            if let Err(e) = self.lockdown_server(&server.name).await {
                tracing::warn!(server = %server.name, error = %crate::report::chain(&e), "could not lock down server");
            }
        }
        for tenant in self.control.unsettled_tenants().await? {
            let was = tenant.status;
            let slug = tenant.slug.to_string();
            let Some(lock) = self.control.try_lock_tenant(tenant.id).await? else {
                report.push(Reconciled {
                    slug,
                    was,
                    outcome: "left alone: another process is working on it".into(),
                });
                continue;
            };
            // Re-read under the lock: it may have settled meanwhile.
            let Some(tenant) = self.control.tenant(tenant.id).await? else {
                continue;
            };
            let result = match (was, tenant.step) {
                (Status::Provisioning, _) if rollback => {
                    self.control
                        .set_status(tenant.id, Status::Deleting, Some(Step::Drop))
                        .await?;
                    self.finish_delete(&tenant, Step::Drop, None, 0)
                        .await
                        .map(|_| "rolled back".to_string())
                }
                (Status::Provisioning, _) => self
                    .finish_create(tenant)
                    .await
                    .map(|_| "created".to_string()),
                // The export destination is not recorded: finishing here would
                // drop data its operator wanted kept.
                (Status::Deleting, Some(Step::Export)) => Ok(format!(
                    "left alone: interrupted during its export; run `bulkhead tenant delete {slug} --export FILE` again"
                )),
                (Status::Deleting, step) => self
                    .finish_delete(
                        &tenant,
                        step.unwrap_or(Step::Drop),
                        None,
                        self.settings.slug_quarantine_days,
                    )
                    .await
                    .map(|_| "deleted".to_string()),
                _ => {
                    lock.release().await?;
                    continue;
                }
            };
            lock.release().await?;
            let outcome = result.unwrap_or_else(|e| format!("failed: {e}"));
            report.push(Reconciled { slug, was, outcome });
        }
        self.rename_slug_named(&mut report).await?;
        self.reconcile_limits(&mut report).await?;
        Ok(report)
    }
}

/// What one tenant runtime role can reach, from `provisioning/privilege_audit.sql`.
#[derive(Debug, serde::Serialize)]
pub struct RolePrivileges {
    pub role: String,
    pub connectable: i32,
    pub databases: Vec<String>,
    pub temp: bool,
    pub memberships: i32,
    pub privileged: bool,
}

impl RolePrivileges {
    /// The isolation contract: one database, no TEMP, no membership, no privilege.
    pub fn is_isolated(&self) -> bool {
        self.connectable == 1 && !self.temp && self.memberships == 0 && !self.privileged
    }
}

impl Provisioner {
    /// Audits every tenant runtime role (`t_*`) on a server.
    pub async fn privilege_audit(
        &self,
        server: &str,
    ) -> Result<Vec<RolePrivileges>, ProvisionError> {
        let client = self.admin_of(server).await?;
        let rows = client.query(sql::PRIVILEGE_AUDIT, &[]).await.map_err(|e| {
            ProvisionError::ServerUnreachable {
                server: server.to_string(),
                detail: crate::pg::describe(&e),
            }
        })?;
        Ok(rows
            .iter()
            .map(|r| RolePrivileges {
                role: r.get("role"),
                connectable: r.get("connectable"),
                databases: r
                    .get::<_, Option<Vec<String>>>("databases")
                    .unwrap_or_default(),
                temp: r.get::<_, Option<bool>>("temp").unwrap_or(false),
                memberships: r.get("memberships"),
                privileged: r.get("privileged"),
            })
            .collect())
    }
}

/// `text` with every byte but RFC 3986's unreserved ones percent-encoded, for
/// a URL's query.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
