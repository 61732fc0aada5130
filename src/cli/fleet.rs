//! `bulkhead server ...`, `bulkhead reconcile`, `bulkhead dev`.

use clap::{Args, Subcommand};

use super::output::{json, table};
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::control::{Mode, Plan};
use crate::provision::{AddServer, CreateOutcome, CreateRequest, ProvisionError};
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

/// `dev`'s serve settings: `serve`'s options with dev's defaults (loopback,
/// `localhost`, cookies without `Secure`: dev serves plain HTTP).
pub fn dev_settings(
    args: &super::DevArgs,
    outbox: std::path::PathBuf,
) -> Result<crate::serve::ServeSettings, CliError> {
    let defaults = super::serve::ServeDefaults {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
        base_domain: Some("localhost"),
    };
    let mut serve = args.serve.clone();
    serve.insecure_cookies = true;
    let mut settings = serve.settings(&defaults)?;
    settings.outbox = Some(outbox);
    Ok(settings)
}

/// `bulkhead dev`: the demo fleet, served on localhost.
pub async fn dev(
    app: &Bulkhead,
    args: &super::DevArgs,
    mut settings: crate::serve::ServeSettings,
) -> CliResult {
    let p = &app.provisioner;
    let mut tokens = Vec::new();
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
        let tenant = match outcome {
            CreateOutcome::Created(t) | CreateOutcome::AlreadyExists(t) => t,
        };
        seed_demo_data(app, slug).await?;
        // A fresh token each run: the previous one cannot be shown again.
        let control = p.control();
        let map = |e: crate::control::ControlError| CliError::Provision(e.into());
        control
            .revoke_tokens_named(tenant.id, "dev")
            .await
            .map_err(map)?;
        let (_, token) = crate::auth::Tokens::create(control, tenant.id, "admin", "dev")
            .await
            .map_err(|e| CliError::Other(e.to_string()))?;
        tokens.push((slug, mode, token));
    }
    if let Some(cluster) = &app.cluster {
        println!(
            "embedded PostgreSQL {} on 127.0.0.1:{} (data in {})",
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
    let port = settings.listen.port();
    let base = &settings.base_domain;
    println!();
    for (slug, mode, token) in &tokens {
        println!("{slug} ({mode} mode): http://{slug}.{base}:{port}");
        println!(
            "  curl -H 'Authorization: Bearer {}' http://{slug}.{base}:{port}/api/projects",
            token.expose()
        );
    }
    if args.no_serve {
        return Ok(());
    }
    if let Some(outbox) = &settings.outbox {
        println!("mail (invitations) is written to {}", outbox.display());
    }
    // The default metrics address may be taken (a second `dev`): say so and
    // serve without it. An address given explicitly must be had.
    if args.serve.metrics_listen.is_none()
        && let Some(at) = settings.metrics_listen
        && std::net::TcpListener::bind(at).is_err()
    {
        println!("metrics: {at} is taken, /metrics is off (set BULKHEAD_METRICS_LISTEN)");
        settings.metrics_listen = None;
    }
    println!("\nserving on http://{} (Ctrl-C to stop)", settings.listen);
    super::serve::serve(app, &settings).await
}

/// A few projects and tasks per demo tenant, written once, as the tenant.
async fn seed_demo_data(app: &Bulkhead, slug: &str) -> CliResult {
    let url = app.provisioner.connect_url(slug).await?;
    let config: tokio_postgres::Config = url
        .expose()
        .parse()
        .map_err(|e: tokio_postgres::Error| CliError::Other(e.to_string()))?;
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| CliError::Other(crate::pg::describe(&e)))?;
    tokio::spawn(connection);
    let sql = "DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM projects) THEN
            INSERT INTO projects (name, description) VALUES
                ('Website relaunch', 'New site before the spring campaign'),
                ('Customer onboarding', 'Make the first week delightful');
            INSERT INTO tasks (project_id, title, status, due_date)
            SELECT p.id, t.title, t.status, current_date + t.days
              FROM projects p
              CROSS JOIN (VALUES ('Draft the plan', 'done', 0), ('Review with the team', 'doing', 7),
                                 ('Ship it', 'todo', 14)) AS t(title, status, days);
        END IF;
    END $$";
    client
        .batch_execute(sql)
        .await
        .map_err(|e| CliError::Other(crate::pg::describe(&e)))
}
