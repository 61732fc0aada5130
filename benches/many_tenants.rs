//! `many_tenants` benchmark (see BENCHMARKS.md): thousands of tenant
//! databases behind one connection budget. 64 clients call `GET /api/projects`
//! on tenants picked uniformly, then by Zipf (s = 1.1), through bulkhead with a
//! budget of 80 on a server with `max_connections = 100`; then the same
//! requests through PgBouncer in transaction mode (when `pgbouncer` is
//! installed) behind the baseline handler. With `--schema`, the tenants are
//! schemas in one shared database instead (each still with its own role, so
//! its own pool, and PgBouncer's pools are per role there too).
//!
//! `cargo bench --bench many_tenants [-- --quick] [--schema] [--tenants N] [--seconds N]`

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bulkhead::control::{Mode, Plan, Slug};
use bulkhead::http::api::Page;
use bulkhead::provision::CreateRequest;
use bulkhead::reference::projects::Project;
use bulkhead::routing::HostName;
use bulkhead::serve::ServeSettings;
use common::percentile_ms;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio_postgres::types::Type;

const CLIENTS: usize = 64;
const MAX_CONNECTIONS: u32 = 100;
const BUDGET: i32 = 80;
const ZIPF_S: f64 = 1.1;
const PROVISION_CONCURRENCY: usize = 4;

/// One tenant as a client sees it, plus what the PgBouncer side needs.
struct Tenant {
    host: String,
    token: String,
    role: String,
    database: String,
    password: String,
}

#[derive(Clone, Copy)]
enum Distribution {
    Uniform,
    Zipf,
}

impl Distribution {
    fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Zipf => "zipf",
        }
    }
}

/// Picks tenant indexes: uniformly, or by Zipf over ranks 1..=n.
struct Picker {
    cdf: Option<Vec<f64>>,
    n: usize,
}

impl Picker {
    fn new(distribution: Distribution, n: usize) -> Self {
        let cdf = match distribution {
            Distribution::Uniform => None,
            Distribution::Zipf => {
                let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-ZIPF_S)).collect();
                let total: f64 = weights.iter().sum();
                let mut acc = 0.0;
                Some(
                    weights
                        .iter()
                        .map(|w| {
                            acc += w / total;
                            acc
                        })
                        .collect(),
                )
            }
        };
        Self { cdf, n }
    }

    fn pick(&self, rng: &mut impl Rng) -> usize {
        match &self.cdf {
            None => rng.random_range(0..self.n),
            Some(cdf) => {
                let u: f64 = rng.random();
                cdf.partition_point(|c| *c < u).min(self.n - 1)
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    ok: usize,
    /// Non-200 answers by status code, and transport failures as `transport`.
    failures: BTreeMap<String, usize>,
    latencies: Vec<Duration>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        for (k, v) in other.failures {
            *self.failures.entry(k).or_default() += v;
        }
        self.latencies.extend(other.latencies);
    }

    fn requests(&self) -> usize {
        self.ok + self.failures.values().sum::<usize>()
    }
}

/// Peak of the tenant roles' connections in `pg_stat_activity`, sampled
/// every 100 ms while a phase runs.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    async fn start(cluster: &bulkhead::pg::Cluster) -> Self {
        let client = common::connect(&common::named_config(cluster, "postgres", "sampler")).await;
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (stop2, peak2) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !stop2.load(Ordering::Relaxed) {
                tick.tick().await;
                let row = client
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE 't\\_%'",
                        &[],
                    )
                    .await
                    .expect("sample pg_stat_activity");
                peak2.fetch_max(row.get::<_, i64>(0) as usize, Ordering::Relaxed);
            }
        });
        Self { stop, peak, task }
    }

    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("sampler task");
        self.peak.load(Ordering::Relaxed)
    }
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args = common::Args::parse();
    let sizes = common::Sizes::from_args(100, 2_000);
    let seconds = args
        .number("seconds")
        .unwrap_or(if sizes.quick { 5 } else { 60 }) as u64;
    let duration = Duration::from_secs(seconds);
    let mode = if args.flag("schema") {
        Mode::Schema
    } else {
        Mode::Database
    };
    let cluster = common::boot_cluster(MAX_CONNECTIONS).await;
    let app = common::open_fleet(&cluster, "many", BUDGET).await;

    let started = Instant::now();
    let tenants = provision(&app, sizes.tenants, mode).await;
    println!(
        "many_tenants: {} {mode}-mode tenants ready in {:.1}s (max_connections {MAX_CONNECTIONS}, budget {BUDGET}, {CLIENTS} clients, {seconds}s per distribution)",
        tenants.len(),
        started.elapsed().as_secs_f64()
    );
    // The steady state is measured: the provisioner's admin connections
    // (outside the budget) close once idle.
    let admin = common::connect(&common::config(&cluster, "postgres")).await;
    let settle = Instant::now() + Duration::from_secs(60);
    while Instant::now() < settle {
        let open: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bulkhead-provisioner'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if open == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(admin);
    let tenants = Arc::new(tenants);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("http client");
    let distributions = [Distribution::Uniform, Distribution::Zipf];

    // bulkhead.
    let settings = ServeSettings::new(
        "127.0.0.1:0".parse().unwrap(),
        HostName::parse("localhost").unwrap(),
    );
    let server = bulkhead::serve::start(&app, &settings)
        .await
        .expect("start bulkhead");
    let mut bulkhead_results = serde_json::Map::new();
    let mut bulkhead_clean = true;
    for distribution in distributions {
        let before = Counters::read();
        let sampler = Sampler::start(&cluster).await;
        let tally = load(&client, server.addr, &tenants, distribution, duration, true).await;
        let peak = sampler.finish().await;
        let delta = Counters::read().since(&before);
        let summary = summarise(tally, duration, peak);
        let requests = summary["requests"].as_f64().unwrap_or(0.0).max(1.0);
        let errors = summary["errors"].as_u64().unwrap_or(0);
        let unavailable = summary["failures"]["503"].as_u64().unwrap_or(0);
        bulkhead_clean &= errors == unavailable
            && (unavailable as f64) < requests * 0.001
            && peak <= BUDGET as usize;
        let mut summary = summary.as_object().cloned().unwrap_or_default();
        summary.insert("pools_created".into(), json!(delta.pools_created));
        summary.insert("pools_evicted".into(), json!(delta.pools_evicted));
        summary.insert("budget_waits".into(), json!(delta.budget_waits));
        summary.insert("connections_opened".into(), json!(delta.connections_opened));
        summary.insert(
            "share_opening_a_connection".into(),
            json!(round3(delta.connections_opened / requests)),
        );
        summary.insert(
            "connect_ms_mean".into(),
            json!(round2(
                delta.connect_seconds * 1000.0 / delta.connect_count.max(1.0)
            )),
        );
        summary.insert(
            "connect_ms_per_request".into(),
            json!(round2(delta.connect_seconds * 1000.0 / requests)),
        );
        print_phase("bulkhead", distribution, &Value::Object(summary.clone()));
        bulkhead_results.insert(distribution.name().into(), Value::Object(summary));
    }
    server.stop().await.expect("stop bulkhead");

    // PgBouncer, when installed.
    let mut baseline = serde_json::Map::new();
    let mut ratio = serde_json::Map::new();
    match PgBouncer::start(&cluster, &tenants).await {
        None => {
            println!("  pgbouncer: not on PATH, baseline skipped (apt-get install pgbouncer)");
            baseline.insert("skipped".into(), json!("pgbouncer not on PATH"));
        }
        Some(bouncer) => {
            let addr = start_baseline(bouncer.port, tenants.clone()).await;
            baseline.insert("pgbouncer".into(), json!(bouncer.version));
            baseline.insert(
                "config".into(),
                json!("pool_mode = transaction, default_pool_size = 1, server_idle_timeout = 1, server_login_retry = 1, max_client_conn = 10000"),
            );
            for distribution in distributions {
                let sampler = Sampler::start(&cluster).await;
                let tally = load(&client, addr, &tenants, distribution, duration, false).await;
                let peak = sampler.finish().await;
                let summary = summarise(tally, duration, peak);
                print_phase("pgbouncer", distribution, &summary);
                let ours = bulkhead_results[distribution.name()]["ok_rps"]
                    .as_f64()
                    .unwrap_or(0.0);
                let theirs = summary["ok_rps"].as_f64().unwrap_or(0.0);
                ratio.insert(
                    distribution.name().into(),
                    json!(round3(ours / theirs.max(1e-9))),
                );
                baseline.insert(distribution.name().into(), summary);
            }
            bouncer.stop().await;
        }
    }
    if !ratio.is_empty() {
        println!(
            "  ratio (bulkhead / pgbouncer successful req/s): {} (goal >= 2 on both)",
            Value::Object(ratio.clone())
        );
    }

    let report = json!({
        "scenario": "many_tenants",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {"tenants": tenants.len(), "mode": mode.as_str(), "max_connections": MAX_CONNECTIONS,
                   "budget": BUDGET, "clients": CLIENTS, "seconds": seconds, "zipf_s": ZIPF_S,
                   "per_tenant": settings.pools.per_tenant, "quick": sizes.quick},
        "results": bulkhead_results,
        "baseline": baseline,
        "ratio": ratio,
    });
    let path = common::write_report("many_tenants", &report);
    println!("  wrote {}", path.display());
    assert!(
        bulkhead_clean,
        "bulkhead had errors other than rare 503s, or went above its budget"
    );
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn print_phase(side: &str, distribution: Distribution, s: &Value) {
    println!(
        "  {side:>9} {:>7}: {} ok req/s, p50 {} ms, p99 {} ms, failures {}, peak tenant connections {}{}",
        distribution.name(),
        s["ok_rps"],
        s["p50_ms"],
        s["p99_ms"],
        s["failures"],
        s["peak_connections"],
        s.get("share_opening_a_connection").map_or(String::new(), |share| format!(
            ", pools created {} evicted {}, budget waits {}, {} of requests opened a connection ({} ms each, {} ms per request)",
            s["pools_created"], s["pools_evicted"], s["budget_waits"], share, s["connect_ms_mean"], s["connect_ms_per_request"]
        )),
    );
}

fn summarise(mut tally: Tally, duration: Duration, peak: usize) -> Value {
    tally.latencies.sort();
    let requests = tally.requests();
    let errors = requests - tally.ok;
    json!({
        "requests": requests,
        "ok": tally.ok,
        "errors": errors,
        "failures": tally.failures,
        "rps": round2(requests as f64 / duration.as_secs_f64()),
        "ok_rps": round2(tally.ok as f64 / duration.as_secs_f64()),
        "p50_ms": percentile_ms(&tally.latencies, 0.50),
        "p99_ms": percentile_ms(&tally.latencies, 0.99),
        "peak_connections": peak,
    })
}

/// Creates `n` tenants in `mode`, 20 projects and an API token each.
async fn provision(app: &bulkhead::app::Bulkhead, n: usize, mode: Mode) -> Vec<Tenant> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<Tenant>>> = Mutex::new((0..n).map(|_| None).collect());
    let worker = || async {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return;
            }
            let tenant = provision_one(app, i, mode).await;
            out.lock().expect("tenants")[i] = Some(tenant);
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            if finished.is_multiple_of(250) {
                println!("  provisioned {finished}/{n}");
            }
        }
    };
    futures::future::join_all((0..PROVISION_CONCURRENCY).map(|_| worker())).await;
    out.into_inner()
        .expect("tenants")
        .into_iter()
        .map(|t| t.expect("every tenant provisioned"))
        .collect()
}

async fn provision_one(app: &bulkhead::app::Bulkhead, i: usize, mode: Mode) -> Tenant {
    let slug = format!("t{i:05}");
    app.provisioner
        .create(&CreateRequest {
            slug: slug.clone(),
            display_name: None,
            mode,
            plan: Plan::Pro,
            server: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create {slug}: {e}"));
    let tenant = app
        .provisioner
        .control()
        .tenant_by_slug(&Slug::parse(&slug).expect("valid slug"))
        .await
        .expect("control plane")
        .expect("the tenant exists");
    let url = app
        .provisioner
        .connect_url(&slug)
        .await
        .expect("connect url");
    let runtime: tokio_postgres::Config = url.expose().parse().expect("runtime URL");
    let database = runtime.get_dbname().expect("runtime database").to_string();
    // As the tenant itself: its own database, or its own schema in the
    // shared one (its role's search_path).
    let seed = common::connect(&runtime).await;
    seed.batch_execute(
        "INSERT INTO projects (name, description) SELECT 'project ' || i, 'about ' || i FROM generate_series(1, 20) i",
    )
    .await
    .unwrap_or_else(|e| panic!("seed {slug}: {}", bulkhead::pg::describe(&e)));
    let (_, token) =
        bulkhead::auth::Tokens::create(app.provisioner.control(), tenant.id, "member", "bench")
            .await
            .expect("a token");
    Tenant {
        host: format!("{slug}.localhost"),
        token: token.expose().clone(),
        role: runtime.get_user().expect("runtime user").to_string(),
        database,
        password: String::from_utf8(runtime.get_password().expect("runtime password").to_vec())
            .expect("the password is text"),
    }
}

/// Bulkhead's and PgBouncer's own counters between two reads.
#[derive(Default)]
struct Counters {
    pools_created: f64,
    pools_evicted: f64,
    budget_waits: f64,
    connections_opened: f64,
    connect_seconds: f64,
    connect_count: f64,
}

impl Counters {
    fn read() -> Self {
        let text = bulkhead::http::metrics_handle().render();
        let sum = |name: &str| -> f64 {
            text.lines()
                .filter(|l| {
                    l.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Self {
            pools_created: sum("bulkhead_pools_created_total"),
            pools_evicted: sum("bulkhead_pools_evicted_total"),
            budget_waits: sum("bulkhead_budget_waits_total"),
            connections_opened: sum("bulkhead_connections_opened_total"),
            connect_seconds: sum("bulkhead_connect_seconds_sum"),
            connect_count: sum("bulkhead_connect_seconds_count"),
        }
    }

    fn since(&self, before: &Counters) -> Counters {
        Counters {
            pools_created: self.pools_created - before.pools_created,
            pools_evicted: self.pools_evicted - before.pools_evicted,
            budget_waits: self.budget_waits - before.budget_waits,
            connections_opened: self.connections_opened - before.connections_opened,
            connect_seconds: self.connect_seconds - before.connect_seconds,
            connect_count: self.connect_count - before.connect_count,
        }
    }
}

/// CLIENTS keep-alive clients, each request to a tenant picked by
/// `distribution`, with that tenant's host (and token, for bulkhead).
async fn load(
    client: &reqwest::Client,
    addr: SocketAddr,
    tenants: &Arc<Vec<Tenant>>,
    distribution: Distribution,
    duration: Duration,
    with_token: bool,
) -> Tally {
    let deadline = Instant::now() + duration;
    let url = format!("http://{addr}/api/projects");
    let picker = Arc::new(Picker::new(distribution, tenants.len()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url, tenants, picker) =
            (client.clone(), url.clone(), tenants.clone(), picker.clone());
        tasks.spawn(async move {
            let mut rng = rand::rngs::SmallRng::from_os_rng();
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let tenant = &tenants[picker.pick(&mut rng)];
                let mut req = client.get(&url).header("host", &tenant.host);
                if with_token {
                    req = req.bearer_auth(&tenant.token);
                }
                let t0 = Instant::now();
                let outcome = match req.send().await {
                    Ok(r) if r.status() == StatusCode::OK => match r.bytes().await {
                        Ok(_) => None,
                        Err(_) => Some("transport".to_string()),
                    },
                    Ok(r) => Some(r.status().as_u16().to_string()),
                    Err(_) => Some("transport".to_string()),
                };
                tally.latencies.push(t0.elapsed());
                match outcome {
                    None => tally.ok += 1,
                    Some(kind) => *tally.failures.entry(kind).or_default() += 1,
                }
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(t) = tasks.join_next().await {
        total.merge(t.expect("load task"));
    }
    total
}

/// A PgBouncer in transaction mode in front of the cluster, one server
/// connection per tenant database, run as the cluster's OS user.
struct PgBouncer {
    port: u16,
    version: String,
    child: tokio::process::Child,
}

impl PgBouncer {
    async fn start(cluster: &bulkhead::pg::Cluster, tenants: &[Tenant]) -> Option<PgBouncer> {
        let binary = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
            .into_iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
            .or_else(|| {
                std::env::var_os("PATH").and_then(|path| {
                    std::env::split_paths(&path)
                        .map(|d| d.join("pgbouncer"))
                        .find(|p| p.exists())
                })
            })?;
        let version = std::process::Command::new(&binary)
            .arg("--version")
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = cluster.dir.join("pgbouncer");
        std::fs::create_dir_all(&dir).expect("pgbouncer dir");
        let users: String = tenants
            .iter()
            .map(|t| format!("\"{}\" \"{}\"\n", t.role, t.password))
            .collect();
        std::fs::write(dir.join("users.txt"), users).expect("write users.txt");
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={pg}\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = scram-sha-256\nauth_file = {users}\npool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 10000\nserver_idle_timeout = 1\nserver_login_retry = 1\nignore_startup_parameters = extra_float_digits\nlogfile = {log}\nlog_connections = 0\nlog_disconnections = 0\n",
            pg = cluster.port,
            users = dir.join("users.txt").display(),
            log = dir.join("pgbouncer.log").display(),
        );
        let ini_path = dir.join("pgbouncer.ini");
        std::fs::write(&ini_path, ini).expect("write pgbouncer.ini");
        let owner = bulkhead::pg::ServerUser::current().expect("the server's OS user");
        for path in [&dir, &dir.join("users.txt"), &ini_path] {
            owner.chown(path).expect("chown pgbouncer files");
        }
        let mut command = std::process::Command::new(&binary);
        owner.command(&mut command).arg(&ini_path);
        let child = tokio::process::Command::from(command)
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pgbouncer");
        // Ready when it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "pgbouncer did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(PgBouncer {
            port,
            version,
            child,
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The baseline handler: the tenant from the host by a map lookup, a client
/// pool per tenant to PgBouncer, the same query and JSON. No resolution, gate,
/// auth or budget. Unnamed statements, since PgBouncer 1.18 in transaction
/// mode cannot carry named ones.
struct Baseline {
    by_host: HashMap<String, usize>,
    tenants: Arc<Vec<Tenant>>,
    pools: Mutex<HashMap<usize, Pool>>,
    port: u16,
}

async fn start_baseline(port: u16, tenants: Arc<Vec<Tenant>>) -> SocketAddr {
    let state = Arc::new(Baseline {
        by_host: tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (t.host.clone(), i))
            .collect(),
        tenants,
        pools: Mutex::new(HashMap::new()),
        port,
    });
    let router = axum::Router::new()
        .route("/api/projects", axum::routing::get(list))
        .with_state(state);
    common::serve_baseline(router).await
}

impl Baseline {
    fn pool(&self, i: usize) -> Pool {
        let mut pools = self.pools.lock().expect("baseline pools");
        pools
            .entry(i)
            .or_insert_with(|| {
                let t = &self.tenants[i];
                let mut config = tokio_postgres::Config::new();
                config
                    .host("127.0.0.1")
                    .port(self.port)
                    .user(&t.role)
                    .password(&t.password)
                    .dbname(&t.database)
                    .connect_timeout(Duration::from_secs(3));
                let manager = Manager::from_config(
                    config,
                    tokio_postgres::NoTls,
                    ManagerConfig {
                        recycling_method: RecyclingMethod::Fast,
                    },
                );
                Pool::builder(manager)
                    .max_size(10)
                    .wait_timeout(Some(Duration::from_secs(2)))
                    .runtime(deadpool_postgres::Runtime::Tokio1)
                    .build()
                    .expect("baseline pool")
            })
            .clone()
    }
}

async fn list(
    State(state): State<Arc<Baseline>>,
    headers: HeaderMap,
) -> Result<Json<Page<Project>>, StatusCode> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .ok_or(StatusCode::BAD_REQUEST)?;
    let i = *state.by_host.get(host).ok_or(StatusCode::NOT_FOUND)?;
    let db = state
        .pool(i)
        .get()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let rows = db
        .query_typed(
            common::PROJECTS_QUERY.as_str(),
            &[(&i64::MAX, Type::INT8), (&20i64, Type::INT8)],
        )
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let items = rows.iter().map(Project::from_row).collect();
    Ok(Json(Page::new(items, 20, |p: &Project| p.id)))
}
