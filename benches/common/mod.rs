//! What every bench shares: a throwaway cluster with a fleet on it, admin
//! connections, statistics, and the JSON report under `target/bench/`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use bulkhead::app::Bulkhead;
use bulkhead::config::GlobalArgs;
use bulkhead::pg::Cluster;
use bulkhead::provision::AddServer;
use bulkhead::secret;
use bulkhead::sql::Ident;
use serde_json::Value;

pub mod route;

/// The same allocator as the `bulkhead` binary (the library declares none).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tokio_postgres::{Client, Config, NoTls};

/// bulkhead's own `GET /api/projects` query, for the baselines' handlers.
pub static PROJECTS_QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {} FROM projects WHERE id < $1 ORDER BY id DESC LIMIT $2",
        bulkhead::reference::projects::PROJECT_COLUMNS
    )
});

/// Serves a baseline's router on a free loopback port, in the background.
pub async fn serve_baseline(router: axum::Router) -> std::net::SocketAddr {
    serve_service(router).await
}

/// Serves any request service (a router, or one wrapped in layers) on a free
/// loopback port, in the background.
pub async fn serve_service<S>(service: S) -> std::net::SocketAddr
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(service);
    tokio::spawn(async move { axum::serve(listener, service).await });
    addr
}

/// The runtime a bench runs its servers and load generator on: `--workers N`
/// worker threads, by default one per core. With `--workers 1` the servers and
/// the load generator share one thread, and no request's data crosses to the
/// other core (which PostgreSQL then has to itself).
pub fn runtime(args: &Args) -> tokio::runtime::Runtime {
    let mut builder = match args.number("workers") {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().expect("tokio runtime")
}

/// The mean of `xs` and its standard error (NaN with fewer than two).
pub fn mean_and_stderr(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n.max(1.0);
    if xs.len() < 2 {
        return (mean, f64::NAN);
    }
    let variance = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (variance / n).sqrt())
}

/// A standard error on screen: `decimals` places, or `?` when there was none
/// (fewer than two samples).
pub fn stderr_text(error: f64, decimals: usize) -> String {
    if error.is_nan() {
        "?".to_string()
    } else {
        format!("{error:.decimals$}")
    }
}

/// Flags every bench takes; cargo's own (`--bench`) are ignored.
pub struct Args {
    pub quick: bool,
    args: Vec<String>,
}

impl Args {
    pub fn parse() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Self {
            quick: args.iter().any(|a| a == "--quick"),
            args,
        }
    }

    /// Whether `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        let flag = format!("--{name}");
        self.args.contains(&flag)
    }

    /// `--name VALUE` or `--name=VALUE`.
    pub fn value(&self, name: &str) -> Option<String> {
        let flag = format!("--{name}");
        self.args.iter().enumerate().find_map(|(i, a)| {
            if *a == flag {
                // A trailing `--name` is an error for the caller, not a silent default.
                Some(self.args.get(i + 1).cloned().unwrap_or_default())
            } else {
                a.strip_prefix(&format!("{flag}=")).map(str::to_string)
            }
        })
    }

    /// `--name N` or `--name=N`.
    pub fn number(&self, name: &str) -> Option<usize> {
        let flag = format!("--{name}");
        let value = self.value(name)?;
        Some(
            value
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| panic!("{flag} wants a positive number, got `{value}`")),
        )
    }
}

/// A tenant-count bench's sizes: `--tenants N`, else its `--quick` or full
/// default.
pub struct Sizes {
    pub tenants: usize,
    pub quick: bool,
}

impl Sizes {
    pub fn from_args(quick: usize, full: usize) -> Self {
        let args = Args::parse();
        Self {
            tenants: args
                .number("tenants")
                .unwrap_or(if args.quick { quick } else { full }),
            quick: args.quick,
        }
    }
}

pub async fn boot_cluster(max_connections: u32) -> Cluster {
    tokio::task::spawn_blocking(move || Cluster::throwaway(max_connections))
        .await
        .expect("the cluster boot task")
        .unwrap_or_else(|e| panic!("boot a throwaway cluster: {e}"))
}

pub fn config(cluster: &Cluster, db: &str) -> Config {
    Config::from_str(cluster.admin_url(db).expose()).expect("the cluster's admin URL parses")
}

/// `config`, shown as `application_name` in `pg_stat_activity`.
pub fn named_config(cluster: &Cluster, db: &str, application_name: &str) -> Config {
    let mut config = config(cluster, db);
    config.application_name(application_name);
    config
}

pub async fn connect(config: &Config) -> Client {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect: {}", bulkhead::pg::describe(&e)));
    tokio::spawn(connection);
    client
}

/// A database only superusers may connect to, as on a managed server.
pub async fn create_private_database(cluster: &Cluster, name: &str) {
    let admin = connect(&config(cluster, "postgres")).await;
    for sql in [
        format!("CREATE DATABASE {}", Ident::new(name)),
        format!(
            "REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC",
            Ident::new(name)
        ),
    ] {
        admin
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", bulkhead::pg::describe(&e)));
    }
}

/// A fleet (control plane `<prefix>_control`) on the cluster, its server `local`
/// with the given connection budget.
pub async fn open_fleet(cluster: &Cluster, prefix: &str, budget: i32) -> Bulkhead {
    create_private_database(cluster, &control_db(prefix)).await;
    open_registered(cluster, &fleet_args(cluster, prefix, 64), budget).await
}

/// The control database of fleet `<prefix>`.
pub fn control_db(prefix: &str) -> String {
    format!("{prefix}_control")
}

/// Fleet `<prefix>`'s settings, as production passes them (`control_url` +
/// `secret`): databases `<prefix>_control`, `_template` and `_shared`, runtime
/// roles with CONNECTION LIMIT `connection_limit`, the built-in migrations.
pub fn fleet_args(cluster: &Cluster, prefix: &str, connection_limit: i32) -> GlobalArgs {
    GlobalArgs {
        home: cluster.dir.join(format!("home-{prefix}")),
        control_url: Some(cluster.admin_url(&control_db(prefix)).expose().clone()),
        secret: Some(secret::random_hex(32)),
        template_db: format!("{prefix}_template"),
        shared_db: format!("{prefix}_shared"),
        tenant_connection_limit: connection_limit,
        slug_quarantine_days: 30,
        pg_max_connections: 300,
        migrations_dir: None,
        pg_bindir: None,
        pg_ca_file: None,
    }
}

/// Opens the control plane `args` name (its database must exist) and registers
/// the cluster as its server `local` with the given connection budget.
pub async fn open_registered(cluster: &Cluster, args: &GlobalArgs, budget: i32) -> Bulkhead {
    let app = Bulkhead::open(args).await.expect("open the control plane");
    app.provisioner
        .add_server(&AddServer {
            name: "local".into(),
            admin_url: cluster.admin_url("postgres"),
            capacity: 100_000,
            budget,
        })
        .await
        .expect("register the bench cluster as server `local`");
    app
}

pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    (sorted[i].as_secs_f64() * 1000.0 * 100.0).round() / 100.0
}

/// Nearest rank, to 0.1 ms: the smallest latency at least `p` of them were
/// under (`percentile_ms` rounds an interpolated index instead, to 0.01 ms).
pub fn nearest_rank_ms(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted
        .get(rank - 1)
        .map_or(0.0, |d| (d.as_secs_f64() * 1e4).round() / 10.0)
}

pub fn git_sha() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores")
}

/// Writes `target/bench/<name>.json`.
pub fn write_report(name: &str, report: &Value) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(report).expect("the report serialises");
    std::fs::write(&path, text + "\n").unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}
