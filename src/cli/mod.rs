//! The `bulkhead` command line. `main.rs` only calls [`run`], so tests drive
//! exactly what the binary runs.

mod billing;
mod dev;
mod migrate;
mod operator;
mod output;
mod reconcile;
mod serve;
mod server;
mod tenant;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::OpenError;
use crate::config::GlobalArgs;
use crate::provision::ProvisionError;

// No `Debug` here, on `GlobalArgs`, `ServeArgs` or `ServeSettings`: they
// hold the master secret, the control plane's URL and the SMTP relay's
// password, and what cannot be formatted cannot be logged by accident.
#[derive(Parser)]
#[command(
    name = "bulkhead",
    version,
    about = "Database-per-tenant isolation for PostgreSQL",
    long_about = "bulkhead gives every tenant its own PostgreSQL database (or schema), its own \
login role with no privilege anywhere else, and its own connection pool.\n\n\
With no BULKHEAD_CONTROL_URL, every command uses a private PostgreSQL cluster under \
BULKHEAD_HOME (default ./.bulkhead), created and started on first use and left running."
)]
/// The command line (see `bulkhead --help`).
pub struct Cli {
    /// What every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

// The doc comments are `--help` text, where `<slug>` is a placeholder.
/// A `bulkhead` command (each variant's text is its `--help`).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Subcommand)]
pub enum Command {
    /// Run it locally: boot the embedded cluster, create the demo tenants `acme`
    /// (database mode) and `globex` (schema mode) with the product's demo data,
    /// print an API token for each, and serve http://<slug>.localhost:8080.
    Dev(DevArgs),
    /// Serve HTTP: every tenant at <slug>.<base domain> and its verified custom domains.
    Serve(serve::ServeArgs),
    /// API tokens for machine clients.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// The embedded PostgreSQL cluster.
    #[command(subcommand)]
    Pg(PgCommand),
    /// Database servers tenants are placed on.
    #[command(subcommand)]
    Server(server::ServerCommand),
    /// Create, inspect, suspend, rotate and delete tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Migrate every tenant database (or schema) to one version, in lockstep.
    #[command(subcommand)]
    Migrate(migrate::MigrateCommand),
    /// Finish (or with --rollback, undo) every tenant stuck half-way through
    /// creation or deletion, e.g. after a crash; give every runtime role its
    /// plan's session limits.
    Reconcile(reconcile::ReconcileArgs),
    /// Stripe billing: repair the subscriptions and plans from Stripe.
    #[command(subcommand)]
    Billing(billing::BillingCommand),
    /// Platform operators (the vendor's staff, on admin.<base domain>):
    /// create, list, disable, reset their second factor.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
}

/// No `Debug`: it holds `ServeArgs` (see above).
#[derive(clap::Args)]
pub struct DevArgs {
    /// Set up the demo fleet and exit without serving.
    #[arg(long)]
    pub no_serve: bool,
    /// Every option of `serve` works here too, with dev's defaults: served
    /// on 127.0.0.1:8080 at *.localhost, cookies without `Secure`.
    #[command(flatten)]
    pub serve: serve::ServeArgs,
}

/// `bulkhead pg …`: the embedded cluster.
#[derive(Subcommand, Debug)]
pub enum PgCommand {
    /// Print the embedded cluster's data directory, port and admin URL (password masked).
    Status,
    /// Stop the embedded cluster.
    Stop,
}

/// A command's failure, with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The product could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A tenant or server operation failed.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// A fleet migration failed.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    /// A failure with its own exit code, already explained.
    #[error("{1}")]
    Exit(u8, String),
    /// Bad usage (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Anything else, explained.
    #[error("{0}")]
    Other(String),
    /// The server could not listen, or stopped.
    #[error("{what}")]
    Serve {
        /// What went wrong.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `dev` could not write the product's demo data.
    #[error("the demo data could not be written")]
    Demo(#[source] tokio_postgres::Error),
    /// A token could not be made.
    #[error(transparent)]
    Token(#[from] crate::auth::TokenError),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Provision(e) if e.is_bad_input() => 2,
            CliError::Fleet(e) if e.is_bad_input() => 2,
            CliError::Exit(code, _) => *code,
            CliError::Usage(_) | CliError::Open(OpenError::SecretRequired) => 2,
            CliError::Open(OpenError::Secret(_) | OpenError::Migrations(_)) => 2,
            _ => 1,
        }
    }
}

/// What a command returns.
pub type CliResult = Result<(), CliError>;

/// Parses the command line and runs it, serving the reference application.
pub fn main() -> ExitCode {
    run_with(crate::reference::builder())
}

/// Parses the command line and runs it with `product`: every `bulkhead`
/// command (`dev`, `serve`, `tenant`, `migrate`, `server`, `token`…), with
/// the product's routes served and its tenant migrations applied. What a
/// product's own binary calls from `main`.
pub fn run_with(product: crate::app::Builder) -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, &product)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", crate::report::chain(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// What is logged when `BULKHEAD_LOG` does not say.
pub const DEFAULT_LOG_FILTER: &str = "warn,bulkhead=info";

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BULKHEAD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs a parsed command line with `product` (what [`run_with`] does once
/// it has a runtime).
pub async fn run(cli: Cli, product: &crate::app::Builder) -> CliResult {
    match cli.command {
        Command::Pg(cmd) => pg(&cli.global, cmd).await,
        Command::Dev(args) => {
            // Checked before anything is set up.
            let settings = dev::dev_settings(&args, cli.global.home.join("outbox"))?;
            let app = product.open(&cli.global).await?;
            dev::dev(&app, &args, settings).await
        }
        Command::Serve(args) => {
            let mut settings = args.settings(&serve::ServeDefaults::SERVE)?;
            settings.outbox = Some(cli.global.home.join("outbox"));
            let app = product.open(&cli.global).await?;
            serve::serve(&app, &settings).await
        }
        Command::Token(cmd) => {
            let app = product.open(&cli.global).await?;
            token::token(&app, cmd).await
        }
        Command::Server(cmd) => {
            let app = product.open(&cli.global).await?;
            server::server(&app, cmd).await
        }
        Command::Tenant(cmd) => {
            let app = product.open(&cli.global).await?;
            tenant::run(&app, cmd).await
        }
        Command::Migrate(cmd) => {
            let app = product.open(&cli.global).await?;
            migrate::run(&app, cmd).await
        }
        Command::Reconcile(args) => {
            let app = product.open(&cli.global).await?;
            reconcile::reconcile(&app, args).await
        }
        Command::Billing(cmd) => {
            let app = product.open(&cli.global).await?;
            billing::run(&app, cmd).await
        }
        Command::Operator(cmd) => {
            let app = product.open(&cli.global).await?;
            operator::run(&app, cmd).await
        }
    }
}

async fn pg(global: &GlobalArgs, cmd: PgCommand) -> CliResult {
    use crate::pg::Cluster;
    if global.control_url.is_some() {
        return Err(CliError::Usage(
            "`bulkhead pg` manages the embedded cluster, which is not used when BULKHEAD_CONTROL_URL is set".into(),
        ));
    }
    let dir = global.home.join("pg");
    match cmd {
        PgCommand::Status => match Cluster::running(&dir).map_err(OpenError::from)? {
            Some(cluster) => {
                println!("state:     running");
                println!("data dir:  {}", cluster.data_directory().display());
                println!("port:      {}", cluster.port);
                println!("version:   PostgreSQL {}", cluster.binaries.major);
                println!("admin URL: {}", cluster.admin_url_masked("postgres"));
                println!(
                    "password:  in {} (owner-only)",
                    dir.join("superuser-password").display()
                );
                Ok(())
            }
            None => {
                println!("state:     stopped");
                println!("data dir:  {}", dir.join("data").display());
                Ok(())
            }
        },
        PgCommand::Stop => {
            if Cluster::stop(&dir).map_err(OpenError::from)? {
                println!("stopped the embedded cluster in {}", dir.display());
            } else {
                println!("the embedded cluster in {} was not running", dir.display());
            }
            Ok(())
        }
    }
}
