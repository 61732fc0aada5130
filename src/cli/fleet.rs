//! `bulkhead server ...`, `bulkhead reconcile`, `bulkhead dev`.

use clap::{Args, Subcommand};

use super::output::{json, table};
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::control::{Mode, Plan};
use crate::provision::{AddServer, CreateOutcome, CreateRequest};
use crate::secret::Secret;

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Register a PostgreSQL server tenants can be placed on. The admin URL must log
    /// in as a superuser; it is checked now and never printed.
    Add {
        name: String,
        /// postgres://user:password@host:port/maintenance-db
        #[arg(long, env = "BULKHEAD_SERVER_ADMIN_URL", hide_env_values = true)]
        admin_url: String,
        /// How many tenants may be placed on it.
        #[arg(long, env = "BULKHEAD_SERVER_CAPACITY", default_value_t = 1000)]
        capacity: i32,
        /// Serving connections all its tenants' pools may hold together (keep it
        /// below the server's max_connections).
        #[arg(long, env = "BULKHEAD_SERVER_BUDGET", default_value_t = 80)]
        budget: i32,
    },
    /// List servers with their load (admin URLs masked).
    List {
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
    },
    /// Stop placing new tenants on a server.
    Drain { name: String },
}

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    /// Undo stuck creations (drop what they made, free the slug) instead of finishing them.
    #[arg(long)]
    pub rollback: bool,
    #[arg(long, env = "BULKHEAD_JSON")]
    pub json: bool,
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

pub async fn server(app: &Bulkhead, cmd: ServerCommand) -> CliResult {
    let p = &app.provisioner;
    match cmd {
        ServerCommand::Add {
            name,
            admin_url,
            capacity,
            budget,
        } => {
            p.add_server(&AddServer {
                name: name.clone(),
                admin_url: Secret::new(admin_url),
                capacity,
                budget,
            })
            .await?;
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

pub async fn reconcile(app: &Bulkhead, args: ReconcileArgs) -> CliResult {
    let report = app.provisioner.reconcile(args.rollback).await?;
    if args.json {
        return json(&report);
    }
    if report.is_empty() {
        println!("nothing to reconcile: no tenant is stuck in provisioning or deleting");
        return Ok(());
    }
    for r in &report {
        println!("{} (was {}): {}", r.slug, r.was, r.outcome);
    }
    if report.iter().any(|r| r.outcome.starts_with("failed")) {
        return Err(CliError::Other(
            "some tenants could not be reconciled".into(),
        ));
    }
    Ok(())
}

/// `bulkhead dev`: the demo fleet. Serving arrives with the serving issue; until
/// then this boots everything, creates the demo tenants and prints the fleet.
pub async fn dev(app: &Bulkhead) -> CliResult {
    let p = &app.provisioner;
    for (slug, name, mode) in [
        ("acme", "Acme Corporation", Mode::Database),
        ("globex", "Globex Inc.", Mode::Schema),
    ] {
        let outcome = p
            .create(&CreateRequest {
                slug: slug.into(),
                display_name: Some(name.into()),
                mode,
                plan: Plan::Pro,
                server: None,
            })
            .await?;
        match outcome {
            CreateOutcome::Created(t) => {
                println!("created demo tenant `{}` ({} mode)", t.slug, t.mode)
            }
            CreateOutcome::AlreadyExists(t) => println!(
                "demo tenant `{}` ready ({}, {} mode)",
                t.slug, t.status, t.mode
            ),
        }
    }
    if let Some(cluster) = &app.cluster {
        println!(
            "\nembedded PostgreSQL {} on 127.0.0.1:{} (data in {})",
            cluster.binaries.major,
            cluster.port,
            cluster.data_directory().display()
        );
    }
    println!();
    let tenants = p
        .control()
        .tenants(false)
        .await
        .map_err(|e| CliError::Provision(e.into()))?;
    super::tenant::print_tenants(&tenants);
    println!(
        "\nTry: bulkhead tenant show acme · bulkhead tenant connect-url acme · bulkhead server list"
    );
    Ok(())
}
