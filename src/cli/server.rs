//! `bulkhead server ...`: the database servers tenants are placed on.

use clap::Subcommand;

use super::output::{json, table};
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::provision::{AddServer, ProvisionError};
use crate::secret::Secret;

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Register a PostgreSQL server tenants can be placed on. The admin URL must log
    /// in as a superuser; it is checked now and never printed. A host other than
    /// this machine gets `sslmode=verify-full` unless the URL has an `sslmode`.
    Add {
        name: String,
        /// postgres://user:password@host:port/maintenance-db[?sslmode=...&sslrootcert=ca.pem]
        #[arg(long, env = "BULKHEAD_SERVER_ADMIN_URL", hide_env_values = true)]
        admin_url: String,
        /// How many tenants may be placed on it.
        #[arg(long, env = "BULKHEAD_SERVER_CAPACITY", default_value_t = 1000)]
        capacity: i32,
        /// Serving connections all its tenants' pools may hold together (keep it
        /// below the server's max_connections).
        #[arg(long, env = "BULKHEAD_SERVER_BUDGET", default_value_t = 80)]
        budget: i32,
        /// Succeed, changing nothing, if a server of this name is already
        /// registered (its admin URL, capacity and budget are left as they are):
        /// for start-up scripts that register the same server on every start.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List servers with their load (admin URLs masked).
    List {
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
    },
    /// Stop placing new tenants on a server.
    Drain { name: String },
}

/// An admin URL with its password replaced by `***`.
pub fn mask_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable URL>".into(),
    }
}

/// The `sslmode` a server's connections use (libpq's default: `prefer`).
fn tls_mode(url: &str) -> String {
    match crate::pg::split_tls(url) {
        Ok((_, tls)) => tls.mode.unwrap_or(crate::pg::SslMode::Prefer).to_string(),
        Err(_) => "invalid".into(),
    }
}

pub async fn server(app: &Bulkhead, cmd: ServerCommand) -> CliResult {
    let p = &app.provisioner;
    match cmd {
        ServerCommand::Add {
            name,
            admin_url,
            capacity,
            budget,
            if_not_exists,
        } => {
            let added = p
                .add_server(&AddServer {
                    name: name.clone(),
                    admin_url: Secret::new(admin_url),
                    capacity,
                    budget,
                })
                .await;
            if if_not_exists && matches!(added, Err(ProvisionError::ServerExists(_))) {
                println!("server `{name}` already exists; left as it is");
                return Ok(());
            }
            added?;
            println!(
                "added server `{name}` (capacity {capacity} tenants, budget {budget} connections)"
            );
            Ok(())
        }
        ServerCommand::List { json: as_json } => {
            let servers = p
                .control()
                .servers()
                .await
                .map_err(|e| CliError::Provision(e.into()))?;
            if as_json {
                let list: Vec<_> = servers
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "name": s.name, "admin_url": mask_url(s.admin_url.expose()),
                            "state": s.state, "capacity": s.capacity, "budget": s.budget,
                            "tls": tls_mode(s.admin_url.expose()),
                            "tenants": s.tenants, "template_version": s.template_version,
                        })
                    })
                    .collect();
                return json(&list);
            }
            let rows: Vec<Vec<String>> = servers
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.state.to_string(),
                        format!("{}/{}", s.tenants, s.capacity),
                        s.budget.to_string(),
                        s.template_version.map_or("-".into(), |v| v.to_string()),
                        tls_mode(s.admin_url.expose()),
                        mask_url(s.admin_url.expose()),
                    ]
                })
                .collect();
            table(
                &[
                    "NAME",
                    "STATE",
                    "TENANTS",
                    "BUDGET",
                    "TEMPLATE",
                    "TLS",
                    "ADMIN URL",
                ],
                &rows,
            );
            Ok(())
        }
        ServerCommand::Drain { name } => {
            p.drain_server(&name).await?;
            println!("server `{name}` is draining: no new tenants will be placed on it");
            Ok(())
        }
    }
}
