//! `bulkhead tenant ...`

use serde_json::json;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::output::{json, table, when};
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::control::{Mode, Plan, Tenant};
use crate::provision::{CreateOutcome, CreateRequest};

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create a tenant (or finish the interrupted creation of one).
    Create(CreateArgs),
    /// List live tenants.
    List {
        /// Machine-readable output.
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
        /// Include deleted tenants (tombstones).
        #[arg(long)]
        deleted: bool,
    },
    /// Show one tenant.
    Show {
        slug: String,
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
    },
    /// Stop serving a tenant (its data is kept).
    Suspend {
        slug: String,
        /// Why (kept in the platform's audit log and shown in the tenant's).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Serve a suspended tenant again.
    Resume {
        slug: String,
        /// Why (kept in the platform's audit log and shown in the tenant's).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Log every user out of a tenant (its API tokens keep working).
    /// Audited, and shown in the tenant's own audit log.
    EndSessions {
        slug: String,
        /// Why (kept in the platform's audit log and shown in the tenant's).
        #[arg(long)]
        reason: String,
    },
    /// Cancel a tenant's Stripe subscription now; its plan follows at
    /// once. Needs the Stripe settings `serve` has. Audited, and shown in
    /// the tenant's own audit log.
    CancelSubscription(super::billing::CancelArgs),
    /// Delete a tenant: suspend, export if asked, drop its database or schema and
    /// roles, keep a tombstone. The slug stays reserved for --slug-quarantine-days.
    Delete {
        slug: String,
        /// Write a `pg_dump -Fc` archive of the tenant here first.
        #[arg(long, env = "BULKHEAD_EXPORT")]
        export: Option<PathBuf>,
    },
    /// Start a new credential generation for the tenant's runtime role. New
    /// connections need the new password; open ones finish their work.
    RotateCredentials {
        slug: String,
        /// Why (kept in the platform's audit log and shown in the tenant's).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Print the runtime connection URL of a tenant (contains its password; audited).
    ConnectUrl { slug: String },
    /// Give pro without a subscription until a date ("comp"), with a
    /// reason; it ends by itself. Audited, and shown in the tenant's own
    /// audit log and billing page.
    Comp(super::billing::CompArgs),
    /// End a tenant's comp now; its plan returns to what billing says.
    Uncomp(super::billing::UncompArgs),
    /// Custom domains: add, verify, remove, list.
    #[command(subcommand)]
    Domain(DomainCommand),
}

#[derive(Subcommand, Debug)]
pub enum DomainCommand {
    /// Register a custom domain; prints the token to prove control of it.
    Add { slug: String, host: String },
    /// Prove control of the host, then it routes: a DNS TXT record
    /// `_bulkhead.<host>` holding `bulkhead-verify=<token>`, or
    /// http://<host>/.well-known/bulkhead-verify/<token> answering the token
    /// (bulkhead serves it once the host points at it).
    Verify {
        slug: String,
        host: String,
        /// Which proof to accept.
        #[arg(long, value_enum, default_value_t, env = "BULKHEAD_VERIFY_METHOD")]
        method: crate::routing::domains::Method,
        /// Fetch the HTTP token from this address instead of the host's (e.g.
        /// before the cut-over).
        #[arg(long, env = "BULKHEAD_VERIFY_CONNECT_TO")]
        connect_to: Option<std::net::SocketAddr>,
        /// Ask this DNS server (ip:port) for the TXT record instead of the
        /// system's resolvers.
        #[arg(long, env = "BULKHEAD_VERIFY_DNS_SERVER")]
        dns_server: Option<std::net::SocketAddr>,
    },
    /// Stop routing a custom domain.
    Remove { slug: String, host: String },
    /// A tenant's domains and their verification state.
    List {
        slug: String,
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// 3-32 characters: lower-case letters, digits, hyphens; starts with a letter.
    pub slug: String,
    /// Display name (defaults to the slug).
    #[arg(long, env = "BULKHEAD_TENANT_NAME")]
    pub name: Option<String>,
    /// `database`: a database of its own; `schema`: a schema in a shared database.
    #[arg(long, env = "BULKHEAD_TENANT_MODE", default_value = "database")]
    pub mode: Mode,
    /// Server to place it on (default: the open server with the most free capacity).
    #[arg(long, env = "BULKHEAD_TENANT_SERVER")]
    pub server: Option<String>,
    #[arg(long, env = "BULKHEAD_TENANT_PLAN", default_value = "free")]
    pub plan: Plan,
}

pub async fn run(app: &Bulkhead, cmd: TenantCommand) -> CliResult {
    let p = &app.provisioner;
    match cmd {
        TenantCommand::Comp(args) => super::billing::comp(app, args).await,
        TenantCommand::Uncomp(args) => super::billing::uncomp(app, args).await,
        TenantCommand::Create(args) => {
            let request = CreateRequest {
                slug: args.slug,
                display_name: args.name,
                mode: args.mode,
                plan: args.plan,
                server: args.server,
            };
            match p.create(&request).await? {
                CreateOutcome::Created(t) => println!(
                    "created tenant `{}`: {} mode on server `{}`, schema version {}, {}",
                    t.slug, t.mode, t.server, t.schema_version, t.status
                ),
                CreateOutcome::AlreadyExists(t) => println!(
                    "tenant `{}` already exists ({}, {} mode on server `{}`)",
                    t.slug, t.status, t.mode, t.server
                ),
            }
            Ok(())
        }
        TenantCommand::List {
            json: as_json,
            deleted,
        } => {
            let tenants = p.control().tenants(deleted).await.map_err(to_cli)?;
            if as_json {
                return json(&tenants);
            }
            print_tenants(&tenants);
            Ok(())
        }
        TenantCommand::Show {
            slug,
            json: as_json,
        } => {
            let tenant = live_tenant(app, &slug).await?;
            if as_json {
                return json(&tenant);
            }
            let s = p.settings();
            let fields = [
                ("id", tenant.id.to_string()),
                ("slug", tenant.slug.to_string()),
                ("name", tenant.display_name.clone()),
                ("status", tenant.status.to_string()),
                ("plan", tenant.plan.to_string()),
                ("mode", tenant.mode.to_string()),
                ("server", tenant.server.clone()),
                ("database", tenant.database(&s.shared_db)),
                ("schema", tenant.schema()),
                ("runtime role", tenant.runtime_role().to_string()),
                ("schema version", tenant.schema_version.to_string()),
                ("step", tenant.step.map_or("-".into(), |s| s.to_string())),
                (
                    "credentials",
                    format!("generation {}", tenant.credential_generation),
                ),
                (
                    "last error",
                    tenant.last_error.clone().unwrap_or_else(|| "-".into()),
                ),
                ("created", when(tenant.created_at)),
            ];
            for (k, v) in fields {
                println!("{:<15} {v}", format!("{k}:"));
            }
            Ok(())
        }
        TenantCommand::Suspend { slug, reason } => {
            let why = optional_reason(reason.as_deref())?;
            let t = p.suspend_because(&slug, why).await?;
            tenant_log(app, &t, "tenant.suspend", json!({"reason": why})).await?;
            println!("tenant `{}` is {}", t.slug, t.status);
            Ok(())
        }
        TenantCommand::Resume { slug, reason } => {
            let why = optional_reason(reason.as_deref())?;
            let t = p.resume_because(&slug, why).await?;
            tenant_log(app, &t, "tenant.resume", json!({"reason": why})).await?;
            println!("tenant `{}` is {}", t.slug, t.status);
            Ok(())
        }
        TenantCommand::EndSessions { slug, reason } => {
            let why = super::billing::reason(&reason)?;
            let t = live_tenant(app, &slug).await?;
            let control = p.control();
            let ended = control.delete_tenant_sessions(t.id).await.map_err(to_cli)?;
            let detail = json!({"reason": why, "ended": ended});
            control
                .audit(
                    &cli_actor(),
                    "tenant.end_sessions",
                    Some(t.id),
                    detail.clone(),
                )
                .await
                .map_err(to_cli)?;
            tenant_log(app, &t, "tenant.end_sessions", detail).await?;
            println!("ended {ended} session(s) of tenant `{}`", t.slug);
            Ok(())
        }
        TenantCommand::CancelSubscription(args) => {
            super::billing::cancel_subscription(app, args).await
        }
        TenantCommand::Delete { slug, export } => {
            if let Some(path) = export.as_ref().filter(|p| p.exists()) {
                return Err(CliError::Usage(format!(
                    "{} already exists: choose another export file",
                    path.display()
                )));
            }
            let t = p.delete(&slug, export.as_deref()).await?;
            if let Some(path) = export {
                println!("exported tenant `{slug}` to {}", path.display());
            }
            let until = t
                .slug_reusable_at
                .map_or_else(|| "-".to_string(), |d| d.date().to_string());
            println!("deleted tenant `{slug}`; the slug is reusable from {until}");
            Ok(())
        }
        TenantCommand::RotateCredentials { slug, reason } => {
            let why = optional_reason(reason.as_deref())?;
            let detail = json!({"reason": why});
            let t = p
                .rotate_credentials_as(&slug, &cli_actor(), detail.clone())
                .await?;
            tenant_log(app, &t, "tenant.rotate_credentials", detail).await?;
            println!(
                "tenant `{}` now uses credential generation {}",
                t.slug, t.credential_generation
            );
            Ok(())
        }
        TenantCommand::Domain(cmd) => domain(app, cmd).await,
        TenantCommand::ConnectUrl { slug } => {
            let url = p.connect_url(&slug).await?;
            println!("{}", url.expose());
            Ok(())
        }
    }
}

/// A pool router of a one-shot command's own, for the connections it makes
/// as tenants (close it with `close_all` when done).
pub(super) fn cli_pools(app: &Bulkhead) -> std::sync::Arc<crate::pools::PoolRouter> {
    let p = &app.provisioner;
    crate::pools::PoolRouter::new(
        p.control().clone(),
        p.secret().clone(),
        crate::pools::PoolSettings::default(),
    )
}

/// `cli:<OS user>`: who the platform audit log says acted.
pub(super) fn cli_actor() -> String {
    format!("cli:{}", crate::app::os_user())
}

fn optional_reason(text: Option<&str>) -> Result<Option<&str>, CliError> {
    text.map(super::billing::reason).transpose()
}

/// Writes `action` into the tenant's own audit log as
/// `platform:<OS user>` (its owners read it in `GET /api/audit`), as an
/// operator's action on the admin host does.
pub(super) async fn tenant_log(
    app: &Bulkhead,
    tenant: &Tenant,
    action: &str,
    detail: serde_json::Value,
) -> CliResult {
    let p = &app.provisioner;
    let pools = cli_pools(app);
    let entry = crate::routing::TenantEntry::from_tenant(tenant, &p.settings().shared_db);
    let written = async {
        let pool = pools.pool(&entry).await.map_err(|e| e.to_string())?;
        let db = pools
            .connect_to(&entry, &pool)
            .await
            .map_err(|e| e.to_string())?;
        db.execute(
            "INSERT INTO audit_log (actor_label, action, object_type, object_id, detail)
             VALUES ($1, $2, 'tenant', $3, $4)",
            &[
                &format!("platform:{}", crate::app::os_user()),
                &action,
                &tenant.slug.as_str(),
                &detail,
            ],
        )
        .await
        .map_err(|e| crate::pg::describe(&e))?;
        Ok::<(), String>(())
    }
    .await;
    pools.close_all().await;
    written.map_err(|e| {
        CliError::Other(format!(
            "done, but not written to tenant `{}`'s own audit log: {e}",
            tenant.slug
        ))
    })
}

fn to_cli(e: crate::control::ControlError) -> CliError {
    CliError::Provision(e.into())
}

pub fn print_tenants(tenants: &[Tenant]) {
    let rows: Vec<Vec<String>> = tenants
        .iter()
        .map(|t| {
            vec![
                t.slug.to_string(),
                t.status.to_string(),
                t.mode.to_string(),
                t.plan.to_string(),
                t.server.clone(),
                t.schema_version.to_string(),
                t.display_name.clone(),
            ]
        })
        .collect();
    table(
        &[
            "SLUG", "STATUS", "MODE", "PLAN", "SERVER", "VERSION", "NAME",
        ],
        &rows,
    );
}

/// The live tenant a command names, or the "no tenant" error (exit 2).
pub(super) async fn live_tenant(app: &Bulkhead, slug: &str) -> Result<Tenant, CliError> {
    let unknown = || {
        CliError::Provision(crate::provision::ProvisionError::UnknownTenant(
            slug.to_string(),
        ))
    };
    let parsed = crate::control::Slug::parse(slug).map_err(|_| unknown())?;
    app.provisioner
        .control()
        .tenant_by_slug(&parsed)
        .await
        .map_err(to_cli)?
        .ok_or_else(unknown)
}

async fn domain(app: &Bulkhead, cmd: DomainCommand) -> CliResult {
    use crate::routing::domains;
    let control = app.provisioner.control();
    let actor = &app.provisioner.settings().actor;
    let fail = |e: domains::DomainError| {
        if e.is_bad_input() {
            CliError::Usage(e.to_string())
        } else {
            CliError::Other(e.to_string())
        }
    };
    match cmd {
        DomainCommand::Add { slug, host } => {
            let t = live_tenant(app, &slug).await?;
            let d = domains::add(control, t.id, &host, actor)
                .await
                .map_err(fail)?;
            println!(
                "added {} to tenant `{}` (not routed until verified)",
                d.host, t.slug
            );
            println!("prove control of it, either way:");
            println!(
                "  DNS:  a TXT record {}.{} with the value {}{}",
                domains::TXT_LABEL,
                d.host,
                domains::TXT_PREFIX,
                d.verification_token
            );
            println!(
                "  HTTP: point it at bulkhead, which then serves http://{}{}{}",
                d.host,
                domains::WELL_KNOWN,
                d.verification_token
            );
            println!(
                "then run: bulkhead tenant domain verify {} {}",
                t.slug, d.host
            );
            Ok(())
        }
        DomainCommand::Verify {
            slug,
            host,
            method,
            connect_to,
            dns_server,
        } => {
            let t = live_tenant(app, &slug).await?;
            let options = domains::VerifyOptions {
                method,
                connect_to,
                dns_server,
            };
            let d = domains::verify(control, t.id, t.slug.as_str(), &host, &options, actor)
                .await
                .map_err(fail)?;
            println!("verified {}: it now routes to tenant `{}`", d.host, t.slug);
            Ok(())
        }
        DomainCommand::Remove { slug, host } => {
            let t = live_tenant(app, &slug).await?;
            domains::remove(control, t.id, t.slug.as_str(), &host, actor)
                .await
                .map_err(fail)?;
            println!("removed {host} from tenant `{}`", t.slug);
            Ok(())
        }
        DomainCommand::List {
            slug,
            json: as_json,
        } => {
            let t = live_tenant(app, &slug).await?;
            let list = control.domains(t.id).await.map_err(to_cli)?;
            if as_json {
                return json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|d| vec![d.host.clone(), d.verified_at.map_or("pending".into(), when)])
                .collect();
            table(&["HOST", "VERIFIED"], &rows);
            Ok(())
        }
    }
}
