//! `outage` benchmark (issue 15): what an outage of the control plane, then
//! of one tenant server, does to the tenants still reachable. 64 clients call
//! `GET /api/projects` on 200 tenants spread over two tenant servers (`a`,
//! `b`), with the control plane on a third cluster of its own. Phases:
//! `steady` (the baseline), `control_down` (control plane stopped),
//! `control_back`, `server_down` (server `b` stopped), `server_back`; a
//! request counts in the phase it was answered in. bulkhead runs with its
//! default settings throughout. Each server's budget has room for a
//! connection per tenant, so that connection churn (`many_tenants`' subject)
//! does not set the pace. Clients send their next request as soon as an
//! answer comes, a 503 included (the worst case for the servers: no client
//! honours `Retry-After`).
//!
//! Goals: during `control_down`, ≥ 90 % of the steady requests/s and 0
//! errors (every tenant is warm); during `server_down`, server `a`'s tenants
//! at ≥ 80 % of their steady requests/s with 0 errors.
//!
//! `cargo bench --bench outage [-- --quick] [--tenants N]`

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bulkhead::control::{Mode, Plan, Slug};
use bulkhead::pg::{Cluster, ClusterOptions};
use bulkhead::provision::{AddServer, CreateRequest};
use bulkhead::routing::HostName;
use bulkhead::serve::{Running, ServeSettings};
use common::percentile_ms;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CLIENTS: usize = 64;
const MAX_CONNECTIONS: u32 = 150;
const BUDGET: i32 = 120;
const SERVERS: [&str; 2] = ["a", "b"];
/// The server stopped in `server_down`; the other is the healthy one.
const STOPPED: usize = 1;
const HEALTHY: usize = 0;
const PROVISION_CONCURRENCY: usize = 4;

#[derive(Clone, Copy, PartialEq)]
enum Action {
    Nothing,
    StopControl,
    StartControl,
    StopServer,
    StartServer,
}

struct Phase {
    name: &'static str,
    seconds: u64,
    /// Done as the phase begins (its time counts as the phase's).
    action: Action,
}

fn phases(quick: bool) -> Vec<Phase> {
    let s = |full: u64, quick_s: u64| if quick { quick_s } else { full };
    vec![
        Phase {
            name: "steady",
            seconds: s(30, 5),
            action: Action::Nothing,
        },
        Phase {
            name: "control_down",
            seconds: s(60, 8),
            action: Action::StopControl,
        },
        Phase {
            name: "control_back",
            seconds: s(30, 5),
            action: Action::StartControl,
        },
        Phase {
            name: "server_down",
            seconds: s(30, 6),
            action: Action::StopServer,
        },
        Phase {
            name: "server_back",
            seconds: s(30, 5),
            action: Action::StartServer,
        },
    ]
}

/// One tenant as a client sees it.
struct Tenant {
    host: String,
    token: String,
    /// Index into `SERVERS`.
    server: usize,
}

/// One request: when it was sent (since the load began), the phase it was
/// answered in, to which server's tenant, what came back and how long it took.
struct Sample {
    sent: Duration,
    phase: u8,
    server: u8,
    /// HTTP status, or 0 when no answer came.
    status: u16,
    latency: Duration,
}

/// The three clusters: the control plane's and the two tenant servers.
struct Clusters {
    control: Cluster,
    servers: Vec<Cluster>,
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args = common::Args::parse();
    let runtime = common::runtime(&args);
    runtime.block_on(run(args));
}

async fn run(args: common::Args) {
    let quick = args.quick;
    let tenants_n = args
        .number("tenants")
        .unwrap_or(if quick { 20 } else { 200 });
    let phases = phases(quick);
    let started = Instant::now();
    let clusters = Clusters {
        control: common::boot_cluster(MAX_CONNECTIONS).await,
        servers: vec![
            common::boot_cluster(MAX_CONNECTIONS).await,
            common::boot_cluster(MAX_CONNECTIONS).await,
        ],
    };
    let app = open_fleet(&clusters).await;
    let tenants = Arc::new(provision(&app, tenants_n).await);
    println!(
        "outage: {} tenants on servers {SERVERS:?} (budget {BUDGET} of max_connections {MAX_CONNECTIONS} each), control plane on its own cluster, ready in {:.1}s; {CLIENTS} clients",
        tenants.len(),
        started.elapsed().as_secs_f64()
    );

    let settings = ServeSettings::new(
        "127.0.0.1:0".parse().expect("an address"),
        HostName::parse("localhost").expect("a host name"),
    );
    let server = bulkhead::serve::start(&app, &settings)
        .await
        .expect("start bulkhead");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");
    warm(&http, server.addr, &tenants).await;

    let run = run_phases(&http, &server, &tenants, &clusters, &phases).await;
    let report = report(&run, &phases, &settings, tenants.len(), quick);
    let path = common::write_report("outage", &report);
    println!("  wrote {}", path.display());
    server.stop().await.expect("stop bulkhead");
}

/// The control plane on its own cluster, the two tenant servers registered.
async fn open_fleet(clusters: &Clusters) -> bulkhead::app::Bulkhead {
    let prefix = "outage";
    common::create_private_database(&clusters.control, &common::control_db(prefix)).await;
    let args = common::fleet_args(&clusters.control, prefix, 64);
    let app = bulkhead::app::Bulkhead::open(&args)
        .await
        .expect("open the control plane");
    for (name, cluster) in SERVERS.iter().zip(&clusters.servers) {
        app.provisioner
            .add_server(&AddServer {
                name: (*name).into(),
                admin_url: cluster.admin_url("postgres"),
                capacity: 100_000,
                budget: BUDGET,
            })
            .await
            .unwrap_or_else(|e| panic!("register server {name}: {e}"));
    }
    app
}

/// Creates `n` tenants, alternately on each server, 20 projects and an API
/// token each.
async fn provision(app: &bulkhead::app::Bulkhead, n: usize) -> Vec<Tenant> {
    let next = AtomicUsize::new(0);
    let worker = || async {
        let mut made = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return made;
            }
            made.push((i, provision_one(app, i).await));
        }
    };
    let mut all: Vec<(usize, Tenant)> =
        futures::future::join_all((0..PROVISION_CONCURRENCY).map(|_| worker()))
            .await
            .into_iter()
            .flatten()
            .collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

async fn provision_one(app: &bulkhead::app::Bulkhead, i: usize) -> Tenant {
    let slug = format!("t{i:05}");
    let server = i % SERVERS.len();
    app.provisioner
        .create(&CreateRequest {
            slug: slug.clone(),
            display_name: None,
            mode: Mode::Database,
            plan: Plan::Pro,
            server: Some(SERVERS[server].into()),
        })
        .await
        .unwrap_or_else(|e| panic!("create {slug}: {e}"));
    let url = app
        .provisioner
        .connect_url(&slug)
        .await
        .expect("connect url");
    let runtime: tokio_postgres::Config = url.expose().parse().expect("runtime URL");
    common::connect(&runtime)
        .await
        .batch_execute(
            "INSERT INTO projects (name, description) SELECT 'project ' || i, 'about ' || i FROM generate_series(1, 20) i",
        )
        .await
        .unwrap_or_else(|e| panic!("seed {slug}: {}", bulkhead::pg::describe(&e)));
    let tenant = app
        .provisioner
        .control()
        .tenant_by_slug(&Slug::parse(&slug).expect("valid slug"))
        .await
        .expect("control plane")
        .expect("the tenant exists");
    let (_, token) =
        bulkhead::auth::Tokens::create(app.provisioner.control(), tenant.id, "member", "bench")
            .await
            .expect("a token");
    Tenant {
        host: format!("{slug}.localhost"),
        token: token.expose().clone(),
        server,
    }
}

/// Every tenant answered once (its host, token and pool cached), so each
/// is warm before the outage.
async fn warm(http: &reqwest::Client, addr: SocketAddr, tenants: &[Tenant]) {
    let url = format!("http://{addr}/api/projects");
    for chunk in tenants.chunks(16) {
        let answers = futures::future::join_all(chunk.iter().map(|t| {
            http.get(&url)
                .header("host", &t.host)
                .bearer_auth(&t.token)
                .send()
        }))
        .await;
        for (t, answer) in chunk.iter().zip(answers) {
            let status = answer.map(|r| r.status().as_u16()).unwrap_or(0);
            assert_eq!(status, 200, "warming {}", t.host);
        }
    }
}

/// What the load saw, and when each phase began (since the load began).
struct Run {
    samples: Vec<Sample>,
    phase_starts: Vec<Duration>,
    phase_ends: Vec<Duration>,
    /// The machine's 1-minute load average as each phase ended: the ratios
    /// hold only if nothing else took the cores meanwhile.
    load_at_end: Vec<f64>,
    /// The connections bulkhead held on each server, per phase: the most,
    /// and how many as it ended.
    in_use: Vec<InUse>,
}

async fn run_phases(
    http: &reqwest::Client,
    server: &Running,
    tenants: &Arc<Vec<Tenant>>,
    clusters: &Clusters,
    phases: &[Phase],
) -> Run {
    let t0 = Instant::now();
    let phase = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        clients.spawn(client(
            http.clone(),
            server.addr,
            tenants.clone(),
            t0,
            phase.clone(),
            stop.clone(),
        ));
    }
    let sampler = tokio::spawn(sample_budgets(
        server.pools.clone(),
        phases.len(),
        phase.clone(),
        stop.clone(),
    ));
    let (mut phase_starts, mut phase_ends, mut load_at_end) = (Vec::new(), Vec::new(), Vec::new());
    for (i, p) in phases.iter().enumerate() {
        phase.store(i, Ordering::Release);
        let begun = Instant::now();
        phase_starts.push(t0.elapsed());
        act(p.action, clusters).await;
        println!(
            "  phase {:<12} begun at {:>5.1}s ({} done in {:.1}s)",
            p.name,
            phase_starts[i].as_secs_f64(),
            action_name(p.action),
            begun.elapsed().as_secs_f64()
        );
        tokio::time::sleep_until((begun + Duration::from_secs(p.seconds)).into()).await;
        phase_ends.push(t0.elapsed());
        load_at_end.push(load_average());
    }
    stop.store(true, Ordering::Release);
    let mut samples = Vec::new();
    while let Some(done) = clients.join_next().await {
        samples.extend(done.expect("load task"));
    }
    let in_use = sampler.await.expect("budget sampler");
    Run {
        samples,
        phase_starts,
        phase_ends,
        load_at_end,
        in_use,
    }
}

/// The 1-minute load average (`/proc/loadavg`), or NaN where there is none.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Nothing => "nothing",
        Action::StopControl => "control plane stopped",
        Action::StartControl => "control plane started",
        Action::StopServer => "server b stopped",
        Action::StartServer => "server b started",
    }
}

async fn act(action: Action, clusters: &Clusters) {
    let (cluster, start) = match action {
        Action::Nothing => return,
        Action::StopControl => (&clusters.control, false),
        Action::StartControl => (&clusters.control, true),
        Action::StopServer => (&clusters.servers[STOPPED], false),
        Action::StartServer => (&clusters.servers[STOPPED], true),
    };
    let (dir, port) = (cluster.dir.clone(), cluster.port);
    tokio::task::spawn_blocking(move || {
        if !start {
            Cluster::stop(&dir).expect("pg_ctl stop");
            return;
        }
        // As it was made (options apply only to a new cluster).
        let options = ClusterOptions {
            max_connections: MAX_CONNECTIONS,
            durable: false,
            ..ClusterOptions::default()
        };
        let restarted = Cluster::ensure(&dir, &options).expect("pg_ctl start");
        assert_eq!(restarted.port, port, "the cluster came back on its port");
        // The watchdog that removes the cluster knows the first postmaster only.
        restarted
            .remove_when_process_exits(std::process::id())
            .expect("watch the restarted cluster");
    })
    .await
    .expect("the cluster task");
}

/// One client: uniformly picked tenants, one request at a time, until told
/// to stop.
async fn client(
    http: reqwest::Client,
    addr: SocketAddr,
    tenants: Arc<Vec<Tenant>>,
    t0: Instant,
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<Sample> {
    let url = format!("http://{addr}/api/projects");
    let mut rng = rand::rngs::SmallRng::from_os_rng();
    let mut samples = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let tenant = &tenants[rng.random_range(0..tenants.len())];
        let sent = Instant::now();
        let status = match http
            .get(&url)
            .header("host", &tenant.host)
            .bearer_auth(&tenant.token)
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Ok(_) => status,
                    Err(_) => 0,
                }
            }
            Err(_) => 0,
        };
        samples.push(Sample {
            sent: sent - t0,
            phase: phase.load(Ordering::Acquire) as u8,
            server: tenant.server as u8,
            status,
            latency: sent.elapsed(),
        });
    }
    samples
}

/// Connections held on each server in one phase, by the router's own count.
#[derive(Clone, Copy, Default)]
struct InUse {
    peak: [usize; 2],
    last: [usize; 2],
}

/// The connections held on each server in each phase, from the router's own
/// budgets, every 100 ms.
async fn sample_budgets(
    pools: Arc<bulkhead::pools::PoolRouter>,
    phases: usize,
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<InUse> {
    let mut seen = vec![InUse::default(); phases];
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !stop.load(Ordering::Acquire) {
        tick.tick().await;
        let p = phase.load(Ordering::Acquire);
        for (s, name) in SERVERS.iter().enumerate() {
            if let Some(budget) = pools.budget(name) {
                seen[p].peak[s] = seen[p].peak[s].max(budget.in_use());
                seen[p].last[s] = budget.in_use();
            }
        }
    }
    seen
}

/// One server's (or all servers') requests in one phase.
fn summarise(samples: &[&Sample], seconds: f64, phase_start: Duration) -> Value {
    let ok = samples.iter().filter(|s| s.status == 200).count();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.status != 200) {
        let kind = match s.status {
            0 => "transport".to_string(),
            n => n.to_string(),
        };
        *failures.entry(kind).or_default() += 1;
    }
    let errors: Vec<&&Sample> = samples.iter().filter(|s| s.status != 200).collect();
    let offset = |s: &Sample| round2(s.sent.saturating_sub(phase_start).as_secs_f64());
    let mut ok_latencies: Vec<Duration> = samples
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.latency)
        .collect();
    ok_latencies.sort();
    json!({
        "requests": samples.len(),
        "ok": ok,
        "errors": errors.len(),
        "failures": failures,
        "rps": round2(samples.len() as f64 / seconds),
        "ok_rps": round2(ok as f64 / seconds),
        "ok_p50_ms": percentile_ms(&ok_latencies, 0.50),
        "ok_p99_ms": percentile_ms(&ok_latencies, 0.99),
        "error_max_ms": errors.iter().map(|s| s.latency).max().map_or(0.0, |d| round2(d.as_secs_f64() * 1000.0)),
        "first_error_s": errors.iter().map(|s| offset(s)).reduce(f64::min),
        "last_error_s": errors.iter().map(|s| offset(s)).reduce(f64::max),
    })
}

fn report(
    run: &Run,
    phases: &[Phase],
    settings: &ServeSettings,
    tenants: usize,
    quick: bool,
) -> Value {
    let mut results = serde_json::Map::new();
    for (i, p) in phases.iter().enumerate() {
        let seconds = (run.phase_ends[i] - run.phase_starts[i]).as_secs_f64();
        let in_phase: Vec<&Sample> = run
            .samples
            .iter()
            .filter(|s| s.phase as usize == i)
            .collect();
        let mut entry = serde_json::Map::new();
        entry.insert("seconds".into(), json!(round2(seconds)));
        entry.insert("load_average_at_end".into(), json!(run.load_at_end[i]));
        entry.insert(
            "all".into(),
            summarise(&in_phase, seconds, run.phase_starts[i]),
        );
        for (s, name) in SERVERS.iter().enumerate() {
            let mine: Vec<&Sample> = in_phase
                .iter()
                .copied()
                .filter(|x| x.server as usize == s)
                .collect();
            let mut summary = summarise(&mine, seconds, run.phase_starts[i]);
            summary["peak_connections"] = json!(run.in_use[i].peak[s]);
            summary["connections_at_end"] = json!(run.in_use[i].last[s]);
            entry.insert((*name).into(), summary);
        }
        print_phase(p.name, &entry);
        results.insert(p.name.into(), Value::Object(entry));
    }
    let ok_rps = |phase: &str, side: &str| results[phase][side]["ok_rps"].as_f64().unwrap_or(0.0);
    let errors = |phase: &str, side: &str| results[phase][side]["errors"].as_u64().unwrap_or(0);
    let healthy = SERVERS[HEALTHY];
    let control_ratio = round3(ok_rps("control_down", "all") / ok_rps("steady", "all").max(1e-9));
    let server_ratio = round3(ok_rps("server_down", healthy) / ok_rps("steady", healthy).max(1e-9));
    let goals = json!({
        "control_down": {"ratio": control_ratio, "errors": errors("control_down", "all"),
                         "met": control_ratio >= 0.9 && errors("control_down", "all") == 0},
        "server_down": {"healthy_ratio": server_ratio, "healthy_errors": errors("server_down", healthy),
                        "met": server_ratio >= 0.8 && errors("server_down", healthy) == 0},
    });
    println!(
        "  goals: control_down ratio {control_ratio} (>= 0.9) with {} errors (0); server_down: server {healthy} ratio {server_ratio} (>= 0.8) with {} errors (0)",
        errors("control_down", "all"),
        errors("server_down", healthy),
    );
    json!({
        "scenario": "outage",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {
            "tenants": tenants, "servers": SERVERS, "clients": CLIENTS, "budget": BUDGET,
            "max_connections": MAX_CONNECTIONS, "stopped_server": SERVERS[STOPPED],
            "phases": phases.iter().map(|p| json!({"name": p.name, "seconds": p.seconds})).collect::<Vec<_>>(),
            "pool_wait_ms": settings.pools.wait.as_millis() as u64,
            "connect_timeout_ms": settings.pools.connect_timeout.as_millis() as u64,
            "quick": quick,
        },
        "results": results,
        "baseline": {"steady_ok_rps": ok_rps("steady", "all"), "steady_healthy_ok_rps": ok_rps("steady", healthy)},
        "ratio": {"control_down": control_ratio, "server_down_healthy": server_ratio},
        "goals": goals,
    })
}

fn print_phase(name: &str, entry: &serde_json::Map<String, Value>) {
    let side = |s: &str| {
        let v = &entry[s];
        format!(
            "{s}: {} ok req/s, p99 {} ms, failures {}{}",
            v["ok_rps"],
            v["ok_p99_ms"],
            v["failures"],
            v["last_error_s"]
                .as_f64()
                .map_or(String::new(), |t| format!(", last error at {t}s"))
        )
    };
    println!(
        "  {name:<12} (load {}) {} | {} | {}",
        entry["load_average_at_end"],
        side("all"),
        side(SERVERS[0]),
        side(SERVERS[1])
    );
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
