//! What `route_overhead` and `route_ladder` share: the bench tenant with its
//! projects and token, the baseline's handler, and the load generator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, COOKIE, HOST};
use bulkhead::app::Bulkhead;
use bulkhead::control::{Mode, Plan};
use bulkhead::http::api::{Page, PageQuery};
use bulkhead::pg::Cluster;
use bulkhead::provision::CreateRequest;
use bulkhead::reference::projects::Project;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::{Value, json};

use super::percentile_ms;

pub const CLIENTS: usize = 32;
/// Connections per side: bulkhead's per-tenant cap and the baseline pool.
pub const POOL: usize = 16;
pub const SLUG: &str = "bench-tenant";

pub struct Side {
    pub addr: SocketAddr,
    pub host: String,
    pub token: Option<String>,
    /// The path asked for (`/api/projects` in the route benches).
    pub path: String,
    /// A session cookie (`bh_session=...`) sent with every request.
    pub cookie: Option<String>,
}

/// bulkhead serving `app` on a free loopback port, [`POOL`] connections per tenant.
pub async fn start_bulkhead(app: &Bulkhead) -> bulkhead::serve::Running {
    let mut settings = bulkhead::serve::ServeSettings::new(
        "127.0.0.1:0".parse().expect("listen address"),
        bulkhead::routing::HostName::parse("localhost").expect("base domain"),
    );
    settings.pools.per_tenant = POOL;
    bulkhead::serve::start(app, &settings)
        .await
        .expect("start bulkhead")
}

/// One tenant with 200 projects on a fresh cluster, and a member's token.
pub struct Bench {
    pub cluster: Cluster,
    pub app: Bulkhead,
    pub runtime_url: String,
    pub token: String,
}

pub async fn bench_tenant() -> Bench {
    let cluster = super::boot_cluster(300).await;
    let app = super::open_fleet(&cluster, "route", 80).await;
    let slug = SLUG;
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
    let seed = super::connect(&runtime_url.expose().parse().expect("runtime URL")).await;
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

    Bench {
        cluster,
        app,
        runtime_url: runtime_url.expose().clone(),
        token: token.expose().clone(),
    }
}

#[derive(Default)]
pub struct Tally {
    pub requests: usize,
    pub errors: usize,
    pub wall: Duration,
    /// CPU time of this whole process (load generator, server, pool) while
    /// the side was loaded: what one request costs outside PostgreSQL.
    pub cpu: Duration,
    /// The part of `cpu` spent in the kernel (sockets, wake-ups, scheduling).
    pub system_cpu: Duration,
    pub latencies: Vec<Duration>,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.wall += other.wall;
        self.cpu += other.cpu;
        self.system_cpu += other.system_cpu;
        self.latencies.extend(other.latencies);
    }

    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn cpu_per_request_us(&self) -> f64 {
        (self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64 * 10.0).round() / 10.0
    }

    /// The kernel's part of [`Self::cpu_per_request_us`].
    pub fn system_cpu_per_request_us(&self) -> f64 {
        (self.system_cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64 * 10.0).round() / 10.0
    }

    pub fn summary(&mut self) -> Value {
        self.latencies.sort();
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "seconds": (self.wall.as_secs_f64() * 1000.0).round() / 1000.0,
            "rps": (self.rps() * 10.0).round() / 10.0,
            "p50_ms": percentile_ms(&self.latencies, 0.50),
            "p99_ms": percentile_ms(&self.latencies, 0.99),
            "process_cpu_us_per_request": self.cpu_per_request_us(),
            "process_system_cpu_us_per_request": self.system_cpu_per_request_us(),
        })
    }
}

/// A deadpool-postgres pool of [`POOL`] connections to `url`.
pub fn plain_pool(url: &str) -> Pool {
    let manager = Manager::from_config(
        url.parse().expect("runtime URL"),
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL)
        .build()
        .expect("baseline pool")
}

/// bulkhead's handler without what isolates it: the same query string
/// parsed into the same page parameters, the same query, row mapping and
/// JSON page.
pub async fn list(
    State(pool): State<Arc<Pool>>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Project>>, axum::http::StatusCode> {
    let db = pool
        .get()
        .await
        .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)?;
    projects_page(&db, &page).await
}

/// A page of projects, read on `db`.
pub async fn projects_page(
    db: &tokio_postgres::Client,
    page: &PageQuery,
) -> Result<Json<Page<Project>>, axum::http::StatusCode> {
    let (cursor, limit) = page
        .parse()
        .map_err(|_| axum::http::StatusCode::UNPROCESSABLE_ENTITY)?;
    let rows = db
        .query(super::PROJECTS_QUERY.as_str(), &[&cursor, &limit])
        .await
        .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
    let items = rows.iter().map(Project::from_row).collect();
    Ok(Json(Page::new(items, limit, |p: &Project| p.id)))
}

/// Two sides measured against each other: `a`'s and `b`'s tallies, each
/// block's ratio (`b`'s requests/s over `a`'s), and how it was cut.
pub struct Alternated {
    pub a: Tally,
    pub b: Tally,
    pub ratios: Vec<f64>,
    pub slice: Duration,
    pub blocks: usize,
}

/// Warms both sides for `warmup`, then measures `measure` per side in
/// blocks of four slices — `a`, `b`, `b`, `a` — of 2 s (1 s `quick`):
/// neither side gets the warmer machine, and a machine whose speed wanders
/// from second to second (a shared one does) weighs on both alike. Each
/// block gives a ratio of its own; their spread says how far the overall
/// ratio can be trusted.
pub async fn alternate(
    client: &reqwest::Client,
    (a, b): (&Side, &Side),
    warmup: Duration,
    measure: Duration,
    quick: bool,
) -> Alternated {
    for side in [a, b] {
        load(client, side, warmup).await;
    }
    let slice = Duration::from_secs(if quick { 1 } else { 2 });
    let blocks = (measure.as_secs_f64() / (2.0 * slice.as_secs_f64()))
        .round()
        .max(1.0) as usize;
    let (mut a_total, mut b_total) = (Tally::default(), Tally::default());
    let mut ratios = Vec::new();
    for _ in 0..blocks {
        let (mut a_block, mut b_block) = (Tally::default(), Tally::default());
        a_block.merge(load(client, a, slice).await);
        b_block.merge(load(client, b, slice).await);
        b_block.merge(load(client, b, slice).await);
        a_block.merge(load(client, a, slice).await);
        ratios.push(b_block.rps() / a_block.rps());
        a_total.merge(a_block);
        b_total.merge(b_block);
    }
    Alternated {
        a: a_total,
        b: b_total,
        ratios,
        slice,
        blocks,
    }
}

/// CLIENTS concurrent keep-alive clients hammering one side for `duration`.
pub async fn load(client: &reqwest::Client, side: &Side, duration: Duration) -> Tally {
    load_with(client, side, CLIENTS, duration).await
}

/// `clients` concurrent keep-alive clients hammering one side for `duration`.
pub async fn load_with(
    client: &reqwest::Client,
    side: &Side,
    clients: usize,
    duration: Duration,
) -> Tally {
    let started = Instant::now();
    let (cpu_before, system_before) = process_cpu();
    let deadline = started + duration;
    // The URL and headers are made once: the load generator's own work per
    // request is the same for every side and as small as it can be.
    let url = reqwest::Url::parse(&format!("http://{}{}", side.addr, side.path)).expect("url");
    let cookie = side
        .cookie
        .as_ref()
        .map(|c| HeaderValue::from_str(c).expect("cookie header"));
    let host = HeaderValue::from_str(&side.host).expect("host header");
    let authorization = side.token.as_ref().map(|t| {
        let mut value = HeaderValue::from_str(&format!("Bearer {t}")).expect("bearer header");
        value.set_sensitive(true);
        value
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, url, host, authorization, cookie) = (
            client.clone(),
            url.clone(),
            host.clone(),
            authorization.clone(),
            cookie.clone(),
        );
        tasks.spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let mut req = client.get(url.clone()).header(HOST, host.clone());
                if let Some(value) = &authorization {
                    req = req.header(AUTHORIZATION, value.clone());
                }
                if let Some(value) = &cookie {
                    req = req.header(COOKIE, value.clone());
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
    let (cpu_after, system_after) = process_cpu();
    total.cpu = cpu_after.saturating_sub(cpu_before);
    total.system_cpu = system_after.saturating_sub(system_before);
    total
}

/// CPU time of this process so far, user + system and system alone
/// (`/proc/self/stat`, in clock ticks of 10 ms: enough over a 10 s half).
fn process_cpu() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, the 12th and 13th after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut ticks = after
        .split_whitespace()
        .skip(11)
        .map(|f| f.parse::<u64>().unwrap_or(0));
    let (user, system) = (ticks.next().unwrap_or(0), ticks.next().unwrap_or(0));
    let tick = Duration::from_millis(10);
    (tick * (user + system) as u32, tick * system as u32)
}
