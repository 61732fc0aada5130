//! Per-server databases the tenants depend on: the template every
//! database-mode tenant is cloned from, and the shared database of the
//! schema-mode tenants. Both are created on first use.

use super::admin::{self, database_exists, role_exists};
use super::sql;
use super::{ProvisionError, Provisioner};
use crate::control::Server;
use crate::sql::{Arg, Ident, render};

impl Provisioner {
    /// Advisory lock key (on the maintenance database) guarding the template:
    /// exclusive while it is created or migrated, shared while it is cloned.
    pub(crate) fn template_lock_key(&self) -> String {
        format!("template:{}", self.settings.template_db)
    }

    /// The NOLOGIN role owning the template's objects.
    pub fn template_owner(&self) -> String {
        format!("{}_owner", self.settings.template_db)
    }

    fn server_error(server: &Server) -> impl Fn(tokio_postgres::Error) -> ProvisionError + '_ {
        move |e| ProvisionError::ServerUnreachable {
            server: server.name.clone(),
            detail: crate::pg::describe(&e),
        }
    }

    /// Makes sure `server` has the template database, created at the tenant
    /// schema's latest version if it is missing. An existing template is left at
    /// its version: moving it is the fleet migrator's job.
    pub(super) async fn ensure_template(&self, server: &Server) -> Result<(), ProvisionError> {
        let err = Self::server_error(server);
        let maintenance = self.admin.get(server).await?;
        if server.template_version.is_some()
            && database_exists(&maintenance, &self.settings.template_db)
                .await
                .map_err(&err)?
        {
            return Ok(());
        }
        // One creator per server, across processes.
        let lock_key = self.template_lock_key();
        maintenance
            .execute("SELECT pg_advisory_lock(hashtext($1))", &[&lock_key])
            .await
            .map_err(&err)?;
        // Another process may have finished it while we waited for the lock.
        let fresh = self.control.server(&server.name).await?;
        let done = fresh.is_some_and(|s| s.template_version.is_some())
            && database_exists(&maintenance, &self.settings.template_db)
                .await
                .map_err(&err)?;
        let result = if done {
            Ok(())
        } else {
            self.create_template(server, &maintenance).await
        };
        maintenance
            .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&lock_key])
            .await
            .map_err(&err)?;
        result
    }

    async fn create_template(
        &self,
        server: &Server,
        maintenance: &tokio_postgres::Client,
    ) -> Result<(), ProvisionError> {
        let err = Self::server_error(server);
        let template = Ident::new(&self.settings.template_db);
        let owner_name = self.template_owner();
        let owner = Ident::new(&owner_name);
        if !role_exists(maintenance, &owner_name).await.map_err(&err)? {
            let sql = render(
                sql::TEMPLATE_OWNER,
                &[("template_owner", Arg::Ident(&owner))],
            );
            maintenance.batch_execute(&sql).await.map_err(&err)?;
        }
        if !database_exists(maintenance, &self.settings.template_db)
            .await
            .map_err(&err)?
        {
            let sql = render(sql::TEMPLATE_CREATE, &[("template", Arg::Ident(&template))]);
            maintenance.batch_execute(&sql).await.map_err(&err)?;
        }
        // Always: a crash may have left it created but closed.
        let sql = render(sql::DATABASE_OPEN, &[("database", Arg::Ident(&template))]);
        sql::in_transaction(maintenance, &sql).await.map_err(&err)?;
        let mut client = admin::connect_to(server, &self.settings.template_db).await?;
        let sql = render(
            sql::TEMPLATE_LOCKDOWN,
            &[
                ("template", Arg::Ident(&template)),
                ("template_owner", Arg::Ident(&owner)),
            ],
        );
        sql::in_transaction(&client, &sql).await.map_err(&err)?;
        let version = self
            .schema
            .apply(&mut client, &owner_name, "public", None)
            .await
            .map_err(|e| ProvisionError::Step {
                slug: self.settings.template_db.clone(),
                step: crate::control::Step::Migrate,
                detail: e.to_string(),
            })?;
        // Cloning fails while anyone is connected to the template: close first.
        drop(client);
        wait_for_no_sessions(maintenance, &self.settings.template_db)
            .await
            .map_err(&err)?;
        self.control
            .set_template_version(&server.name, version)
            .await?;
        tracing::info!(server = %server.name, version, "template database ready");
        Ok(())
    }

    /// Makes sure `server` has the shared database of schema-mode tenants.
    pub(super) async fn ensure_shared(&self, server: &Server) -> Result<(), ProvisionError> {
        let err = Self::server_error(server);
        let maintenance = self.admin.get(server).await?;
        // Open means created and past database_open.sql (a crash may leave
        // it created but closed: then finish it below).
        let open: Option<bool> = maintenance
            .query_opt(
                "SELECT datallowconn FROM pg_database WHERE datname = $1",
                &[&self.settings.shared_db],
            )
            .await
            .map_err(&err)?
            .map(|r| r.get(0));
        if open == Some(true) {
            return Ok(());
        }
        let lock_key = format!("shared:{}", self.settings.shared_db);
        maintenance
            .execute("SELECT pg_advisory_lock(hashtext($1))", &[&lock_key])
            .await
            .map_err(&err)?;
        let result = async {
            let shared = Ident::new(&self.settings.shared_db);
            if !database_exists(&maintenance, &self.settings.shared_db)
                .await
                .map_err(&err)?
            {
                let sql = render(sql::SHARED_CREATE, &[("shared", Arg::Ident(&shared))]);
                maintenance.batch_execute(&sql).await.map_err(&err)?;
            }
            let sql = render(sql::DATABASE_OPEN, &[("database", Arg::Ident(&shared))]);
            sql::in_transaction(&maintenance, &sql)
                .await
                .map_err(&err)?;
            let client = admin::connect_to(server, &self.settings.shared_db).await?;
            let sql = render(sql::SHARED_LOCKDOWN, &[("shared", Arg::Ident(&shared))]);
            sql::in_transaction(&client, &sql).await.map_err(&err)
        }
        .await;
        maintenance
            .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&lock_key])
            .await
            .map_err(&err)?;
        result
    }
}

/// A closed connection's backend may linger for a moment after the client is
/// dropped; `CREATE DATABASE ... TEMPLATE` would then fail.
pub(crate) async fn wait_for_no_sessions(
    client: &tokio_postgres::Client,
    db: &str,
) -> Result<(), tokio_postgres::Error> {
    for _ in 0..100 {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&db],
            )
            .await?
            .get(0);
        if n == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}
