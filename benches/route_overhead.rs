//! `route_overhead` benchmark (see BENCHMARKS.md): what the isolation layers
//! cost per request. The same query behind bulkhead's full request path (host
//! resolution, gate, token, pool router) and behind a plain axum route with one
//! fixed pool to the same tenant database.
//!
//! `cargo bench --bench route_overhead [-- --quick]`

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use bulkhead::control::{Mode, Plan};
use bulkhead::http::api::Page;
use bulkhead::http::api::projects::Project;
use bulkhead::provision::CreateRequest;
use bulkhead::routing::HostName;
use bulkhead::serve::ServeSettings;
use common::percentile_ms;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::{Value, json};

const CLIENTS: usize = 32;
/// Connections per side: bulkhead's per-tenant cap and the baseline pool.
const POOL: usize = 16;

struct Side {
    addr: SocketAddr,
    host: String,
    token: Option<String>,
}

#[derive(Default)]
struct Tally {
    requests: usize,
    errors: usize,
    wall: Duration,
    /// CPU time of this whole process (load generator, server, pool) while
    /// the side was loaded: what one request costs outside PostgreSQL.
    cpu: Duration,
    latencies: Vec<Duration>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.wall += other.wall;
        self.cpu += other.cpu;
        self.latencies.extend(other.latencies);
    }

    fn rps(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn cpu_per_request_us(&self) -> f64 {
        (self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64 * 10.0).round() / 10.0
    }

    fn summary(&mut self) -> Value {
        self.latencies.sort();
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "seconds": (self.wall.as_secs_f64() * 1000.0).round() / 1000.0,
            "rps": (self.rps() * 10.0).round() / 10.0,
            "p50_ms": percentile_ms(&self.latencies, 0.50),
            "p99_ms": percentile_ms(&self.latencies, 0.99),
            "process_cpu_us_per_request": self.cpu_per_request_us(),
        })
    }
}

#[tokio::main]
async fn main() {
    let args = common::Args::parse();
    let (warmup, measure) = if args.quick {
        (Duration::from_secs(1), Duration::from_secs(4))
    } else {
        (Duration::from_secs(5), Duration::from_secs(20))
    };
    let cluster = common::boot_cluster(300).await;
    let app = common::open_fleet(&cluster, "route", 80).await;
    let slug = "bench-tenant";
    app.provisioner
        .create(&CreateRequest {
            slug: slug.into(),
            display_name: None,
            mode: Mode::Database,
            plan: Plan::Pro,
            server: None,
        })
        .await
        .expect("create the bench tenant");
    let runtime_url = app
        .provisioner
        .connect_url(slug)
        .await
        .expect("connect url");
    let seed = common::connect(&runtime_url.expose().parse().expect("runtime URL")).await;
    seed.batch_execute("INSERT INTO projects (name, description) SELECT 'project ' || i, 'about ' || i FROM generate_series(1, 200) i")
        .await
        .expect("seed projects");
    let tenant = app
        .provisioner
        .control()
        .tenant_by_slug(&bulkhead::control::Slug::parse(slug).expect("valid slug"))
        .await
        .expect("control plane")
        .expect("the tenant exists");
    let (_, token) =
        bulkhead::auth::Tokens::create(app.provisioner.control(), tenant.id, "member", "bench")
            .await
            .expect("a token");

    let mut settings = ServeSettings::new(
        "127.0.0.1:0".parse().unwrap(),
        HostName::parse("localhost").unwrap(),
    );
    settings.pools.per_tenant = POOL;
    let server = bulkhead::serve::start(&app, &settings)
        .await
        .expect("start bulkhead");
    let baseline = start_baseline(runtime_url.expose()).await;

    let sides = [
        Side {
            addr: baseline,
            host: "localhost".into(),
            token: None,
        },
        Side {
            addr: server.addr,
            host: format!("{slug}.localhost"),
            token: Some(token.expose().clone()),
        },
    ];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("http client");
    // Warm both, then measure in alternating halves (baseline, bulkhead,
    // bulkhead, baseline) so neither side gets the warmer machine.
    for side in &sides {
        load(&client, side, warmup).await;
    }
    let half = measure / 2;
    let (mut base, mut bulk) = (Tally::default(), Tally::default());
    base.merge(load(&client, &sides[0], half).await);
    bulk.merge(load(&client, &sides[1], half).await);
    bulk.merge(load(&client, &sides[1], half).await);
    base.merge(load(&client, &sides[0], half).await);

    let ratio = (bulk.rps() / base.rps() * 1000.0).round() / 1000.0;
    let (results, baseline_json) = (bulk.summary(), base.summary());
    let p99_ratio = results["p99_ms"].as_f64().unwrap_or(0.0)
        / baseline_json["p99_ms"].as_f64().unwrap_or(1.0).max(1e-9);
    println!(
        "route_overhead: {CLIENTS} clients, {}s per side",
        measure.as_secs()
    );
    println!(
        "  baseline: {} req/s, p50 {} ms, p99 {} ms, {} errors",
        baseline_json["rps"],
        baseline_json["p50_ms"],
        baseline_json["p99_ms"],
        baseline_json["errors"]
    );
    println!(
        "  bulkhead: {} req/s, p50 {} ms, p99 {} ms, {} errors",
        results["rps"], results["p50_ms"], results["p99_ms"], results["errors"]
    );
    println!(
        "  ratio (bulkhead / baseline rps): {ratio} (goal >= 0.95); p99 ratio {:.2} (goal <= 1.2)",
        p99_ratio
    );
    println!(
        "  this process's CPU per request (client + server, not PostgreSQL): baseline {} us, bulkhead {} us",
        base.cpu_per_request_us(),
        bulk.cpu_per_request_us()
    );
    let report = json!({
        "scenario": "route_overhead",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {"clients": CLIENTS, "pool": POOL, "warmup_s": warmup.as_secs(), "measure_s": measure.as_secs(),
                   "quick": args.quick, "order": "warm both; baseline, bulkhead, bulkhead, baseline (halves)"},
        "results": results,
        "baseline": baseline_json,
        "ratio": ratio,
        "p99_ratio": (p99_ratio * 100.0).round() / 100.0,
    });
    let path = common::write_report("route_overhead", &report);
    println!("  wrote {}", path.display());
    assert_eq!(bulk.errors + base.errors, 0, "requests failed");
    server.stop().await.expect("stop");
}

/// The same query and JSON behind a bare axum route with one fixed pool.
async fn start_baseline(url: &str) -> SocketAddr {
    let manager = Manager::from_config(
        url.parse().expect("runtime URL"),
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL)
        .build()
        .expect("baseline pool");
    let router = axum::Router::new()
        .route("/api/projects", axum::routing::get(list))
        .with_state(Arc::new(pool));
    common::serve_baseline(router).await
}

/// The same query, row mapping and JSON page as bulkhead's handler.
async fn list(
    State(pool): State<Arc<Pool>>,
) -> Result<Json<Page<Project>>, axum::http::StatusCode> {
    let db = pool
        .get()
        .await
        .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)?;
    let rows = db
        .query(common::PROJECTS_QUERY.as_str(), &[&i64::MAX, &20i64])
        .await
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
    let items = rows.iter().map(Project::from_row).collect();
    Ok(Json(Page::new(items, 20, |p: &Project| p.id)))
}

/// CLIENTS concurrent keep-alive clients hammering one side for `duration`.
async fn load(client: &reqwest::Client, side: &Side, duration: Duration) -> Tally {
    let started = Instant::now();
    let cpu_before = process_cpu();
    let deadline = started + duration;
    let url = format!("http://{}/api/projects", side.addr);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (client, url, host, token) = (
            client.clone(),
            url.clone(),
            side.host.clone(),
            side.token.clone(),
        );
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let mut req = client.get(&url).header("host", &host);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let t0 = Instant::now();
                let ok = match req.send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                tally.latencies.push(t0.elapsed());
                tally.requests += 1;
                tally.errors += usize::from(!ok);
            }
            tally
        });
    }
    let mut total = Tally::default();
    while let Some(t) = tasks.join_next().await {
        total.merge(t.expect("load task"));
    }
    total.wall = started.elapsed();
    total.cpu = process_cpu().saturating_sub(cpu_before);
    total
}

/// User + system CPU time of this process so far (`/proc/self/stat`, in clock
/// ticks of 10 ms: enough over a 10 s half).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, the 12th and 13th after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}
