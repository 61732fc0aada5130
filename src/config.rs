//! Configuration shared by every command. Each option is a flag and a
//! `BULKHEAD_*` environment variable (both shown in `--help`):
//!
//! - `BULKHEAD_HOME`: where the embedded cluster, dev secret and outbox live.
//! - `BULKHEAD_CONTROL_URL`: the control-plane database (production). Unset: embedded cluster.
//! - `BULKHEAD_SECRET`: master secret tenant passwords are derived from. Required with
//!   `BULKHEAD_CONTROL_URL`; generated under `BULKHEAD_HOME` otherwise.
//! - `BULKHEAD_TEMPLATE_DB`, `BULKHEAD_SHARED_DB`: per-server database names.
//! - `BULKHEAD_TENANT_CONNECTION_LIMIT`, `BULKHEAD_SLUG_QUARANTINE_DAYS`.
//! - `BULKHEAD_MIGRATIONS_DIR`: tenant migrations to use besides the built-in ones.
//! - `BULKHEAD_PG_BINDIR`: where the server binaries are (searched for by default).
//! - `BULKHEAD_PG_MAX_CONNECTIONS`: `max_connections` of a new embedded cluster.
//! - `BULKHEAD_PG_CA_FILE`: CA certificates for PostgreSQL servers whose URL names none.

use std::path::PathBuf;

use clap::Args;

/// What every command takes: where state lives, the control plane, the
/// master secret, the tenant migrations (`--help` says each).
#[derive(Args, Clone)]
pub struct GlobalArgs {
    /// Directory of the embedded cluster, the dev secret and other local state.
    #[arg(
        long,
        env = "BULKHEAD_HOME",
        default_value = ".bulkhead",
        global = true
    )]
    pub home: PathBuf,

    /// Control-plane database URL. When unset, bulkhead boots (or reuses) a private
    /// PostgreSQL cluster under --home and keeps its control plane there.
    #[arg(
        long,
        env = "BULKHEAD_CONTROL_URL",
        hide_env_values = true,
        global = true
    )]
    pub control_url: Option<String>,

    /// Master secret every tenant's runtime password is derived from (at least 32
    /// characters). Required with --control-url; generated under --home otherwise.
    #[arg(long, env = "BULKHEAD_SECRET", hide_env_values = true, global = true)]
    pub secret: Option<String>,

    /// Name of the template database every database-mode tenant is cloned from.
    #[arg(
        long,
        env = "BULKHEAD_TEMPLATE_DB",
        default_value = "bulkhead_template",
        global = true
    )]
    pub template_db: String,

    /// Name of the database holding the schema-mode tenants on each server.
    #[arg(
        long,
        env = "BULKHEAD_SHARED_DB",
        default_value = "bulkhead_shared",
        global = true
    )]
    pub shared_db: String,

    /// CONNECTION LIMIT of every tenant's runtime role.
    #[arg(long, env = "BULKHEAD_TENANT_CONNECTION_LIMIT", default_value_t = 20,
          value_parser = clap::value_parser!(i32).range(1..=10000), global = true)]
    pub tenant_connection_limit: i32,

    /// Days a deleted tenant's slug stays reserved before it can be used again.
    #[arg(long, env = "BULKHEAD_SLUG_QUARANTINE_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(i32).range(0..=3650), global = true)]
    pub slug_quarantine_days: i32,

    /// Extra tenant migrations (`V<n>__<name>.sql`) to use besides the built-in ones,
    /// by every command that creates or migrates tenants.
    #[arg(long, env = "BULKHEAD_MIGRATIONS_DIR", global = true)]
    pub migrations_dir: Option<PathBuf>,

    /// Directory of the PostgreSQL server binaries (initdb, pg_ctl, postgres) for the
    /// embedded cluster. Default: PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin,
    /// newest version first.
    #[arg(long, env = "BULKHEAD_PG_BINDIR", global = true)]
    pub pg_bindir: Option<PathBuf>,

    /// max_connections of a newly created embedded cluster.
    #[arg(long, env = "BULKHEAD_PG_MAX_CONNECTIONS", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(20..=10000), global = true)]
    pub pg_max_connections: u32,

    /// PEM file of CA certificates trusted for TLS to PostgreSQL servers whose URL
    /// has no `sslrootcert` (default: Mozilla's roots). With it, `sslmode=require`
    /// also verifies the certificate chain, as libpq does.
    #[arg(long, env = "BULKHEAD_PG_CA_FILE", global = true)]
    pub pg_ca_file: Option<PathBuf>,
}
