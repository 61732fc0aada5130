//! `fleet_migrate` benchmark (see BENCHMARKS.md): one migration across the
//! whole fleet with the fleet migrator, against the floor of the same
//! statements applied by a plain loop on a copy of the fleet, same cluster.
//!
//! `cargo bench --bench fleet_migrate [-- --quick | --tenants N]`
//!
//! Two control planes share one throwaway cluster: the bulkhead fleet, and the
//! floor's copy. The copy needs a control plane of its own because the
//! migrator migrates every live tenant of its fleet below the target; the
//! floor only uses it to create identical tenant databases, then loops over
//! their names. Both fleets are created interleaved (b-0001, f-0001, b-0002…)
//! so that neither is systematically older, colder or bigger in the catalogs.

mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bulkhead::app::Bulkhead;
use bulkhead::control::{Mode, Plan, Slug, Status};
use bulkhead::fleet::{self, Progress, RunOptions, RunReport, RunState};
use bulkhead::pg::Cluster;
use bulkhead::provision::{CreateOutcome, CreateRequest};
use bulkhead::sql::Ident;
use common::{Sizes, connect, nearest_rank_ms};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_postgres::{Client, Config};

/// The migration N+1: a column with a default (a catalog-only change since
/// PostgreSQL 11) plus an index build over the 1,000 rows.
const V2_FILE: &str = "V2__bench.sql";
const V2_SQL: &str = "ALTER TABLE tasks ADD COLUMN priority int NOT NULL DEFAULT 0;\n\
                      CREATE INDEX tasks_priority ON tasks (priority);\n";

const MAX_CONNECTIONS: u32 = 300;
const CONCURRENCY: usize = 4;
const ROWS_PER_TENANT: i32 = 1000;
/// The same CONNECTION LIMIT bulkhead gives runtime roles by default.
const CONNECTION_LIMIT: i32 = 20;
/// `application_name` of the bench's own connections.
const APPLICATION_NAME: &str = "bench-fleet-migrate";
/// The migration N+2, rolled out while 16 clients call the API of the fleet.
const V3_FILE: &str = "V3__bench_under_load.sql";
const V3_SQL: &str = "CREATE INDEX tasks_title ON tasks (title);\n";
/// Concurrent API clients during the loaded run.
const LOAD_CLIENTS: usize = 16;

/// One control plane on the bench cluster: the name its databases start with
/// (`<name>_control`, `_template`, `_shared`: `common::fleet_args`), and the
/// slug prefix of its tenants.
struct FleetNames {
    name: &'static str,
    prefix: char,
}

const BULKHEAD_FLEET: FleetNames = FleetNames {
    name: "bench_fm",
    prefix: 'b',
};
const FLOOR_FLEET: FleetNames = FleetNames {
    name: "bench_fm_floor",
    prefix: 'f',
};

#[tokio::main]
async fn main() {
    let params = Sizes::from_args(40, 1000);
    let started = Instant::now();
    let cluster = common::boot_cluster(MAX_CONNECTIONS).await;
    let postgres = server_version(&cluster).await;

    // Both control databases exist before either fleet registers the server,
    // so each one's server lockdown sees them already closed.
    for names in [&BULKHEAD_FLEET, &FLOOR_FLEET] {
        common::create_private_database(&cluster, &common::control_db(names.name)).await;
    }
    // Version 1 (built-in) for setup; V2 comes with the re-open.
    let mut args = common::fleet_args(&cluster, BULKHEAD_FLEET.name, CONNECTION_LIMIT);
    let bulkhead_app = Arc::new(common::open_registered(&cluster, &args, 80).await);
    let floor_args = common::fleet_args(&cluster, FLOOR_FLEET.name, CONNECTION_LIMIT);
    let floor_app = Arc::new(common::open_registered(&cluster, &floor_args, 80).await);

    let setup_started = Instant::now();
    let floor_dbs = build_fleets(&cluster, &bulkhead_app, &floor_app, params.tenants).await;
    let setup = setup_started.elapsed();
    println!(
        "setup: {} + {} tenants at version 1 with {ROWS_PER_TENANT} tasks each in {:.1} s",
        params.tenants,
        params.tenants,
        setup.as_secs_f64()
    );
    // The floor's control plane has done its job: only its databases remain.
    drop(floor_app);
    drop(bulkhead_app);

    // The next release: the same fleet, re-opened with the V2 migration.
    let migrations = write_migrations(&cluster.dir);
    args.migrations_dir = Some(migrations);
    let app = Bulkhead::open(&args)
        .await
        .expect("re-open the fleet with the V2 migration");

    // Floor, bulkhead, floor: the floor's two halves sandwich the bulkhead run,
    // so drift over the run (WAL, autovacuum, cache) lands on both alike.
    let (first, second) = floor_dbs.split_at(floor_dbs.len() / 2);
    let floor_a = floor_round(&cluster, first.to_vec()).await;
    let measured = bulkhead_run(&app).await;
    let floor_b = floor_round(&cluster, second.to_vec()).await;
    let floor = floor_a.merge(floor_b);

    let noop = noop_run(&app).await;
    let latencies = tenant_latencies(&cluster, measured.report.run).await;
    // Separately from the timed comparison: the next migration, under load.
    let loaded = run_under_load(&mut args, params.tenants).await;
    report(&Report {
        params: &params,
        postgres: &postgres,
        setup,
        bulkhead: &measured,
        latencies,
        floor: &floor,
        noop,
        loaded: &loaded,
        took: started.elapsed(),
    });
}

/// What the API clients saw while a migration run went through the fleet.
struct Loaded {
    run: Duration,
    requests: usize,
    ok: usize,
    /// 503 + Retry-After: the tenant was being migrated at that moment.
    unavailable: usize,
    /// Anything else: none expected.
    errors: Vec<String>,
    latencies: Vec<Duration>,
}

/// Re-opens the fleet with V3, serves it, and runs the migrator while
/// LOAD_CLIENTS clients call `GET /api/projects` on random tenants.
async fn run_under_load(args: &mut bulkhead::config::GlobalArgs, tenants: usize) -> Loaded {
    let dir = args
        .migrations_dir
        .clone()
        .expect("the V2 migrations directory");
    std::fs::write(dir.join(V3_FILE), V3_SQL).expect("write V3");
    let app = Bulkhead::open(args)
        .await
        .expect("re-open the fleet with V3");
    let mut tokens = Vec::with_capacity(tenants);
    for i in 1..=tenants {
        let slug = slug(BULKHEAD_FLEET.prefix, i);
        let tenant = app
            .provisioner
            .control()
            .tenant_by_slug(&Slug::parse(&slug).expect("bench slug"))
            .await
            .expect("control plane")
            .expect("bench tenant");
        let (_, token) =
            bulkhead::auth::Tokens::create(app.provisioner.control(), tenant.id, "member", "load")
                .await
                .expect("a token");
        tokens.push((format!("{slug}.localhost"), token.expose().clone()));
    }
    let settings = bulkhead::serve::ServeSettings::new(
        "127.0.0.1:0".parse().expect("address"),
        bulkhead::routing::HostName::parse("localhost").expect("base domain"),
    );
    let server = bulkhead::serve::start(&app, &settings)
        .await
        .expect("serve the fleet");
    let done = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(tokens);
    let client = reqwest::Client::new();
    let mut clients = JoinSet::new();
    for c in 0..LOAD_CLIENTS {
        let (done, tokens, client, addr) =
            (done.clone(), tokens.clone(), client.clone(), server.addr);
        clients.spawn(async move {
            let mut seen = Loaded {
                run: Duration::ZERO,
                requests: 0,
                ok: 0,
                unavailable: 0,
                errors: Vec::new(),
                latencies: Vec::new(),
            };
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
            while !done.load(Ordering::SeqCst) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (host, token) = &tokens[(x % tokens.len() as u64) as usize];
                let t0 = Instant::now();
                let result = client
                    .get(format!("http://{addr}/api/projects"))
                    .header("host", host)
                    .bearer_auth(token)
                    .send()
                    .await;
                seen.requests += 1;
                match result {
                    Ok(r) if r.status() == 200 => {
                        seen.ok += 1;
                        seen.latencies.push(t0.elapsed());
                    }
                    Ok(r) if r.status() == 503 && r.headers().contains_key("retry-after") => {
                        seen.unavailable += 1
                    }
                    Ok(r) => seen.errors.push(format!("{host}: {}", r.status())),
                    Err(e) => seen.errors.push(format!("{host}: {e}")),
                }
            }
            seen
        });
    }
    let started = Instant::now();
    let report = run_fleet(&app).await;
    let run = started.elapsed();
    done.store(true, Ordering::SeqCst);
    assert_succeeded(&report, "the run under load");
    let mut total = Loaded {
        run,
        requests: 0,
        ok: 0,
        unavailable: 0,
        errors: Vec::new(),
        latencies: Vec::new(),
    };
    while let Some(seen) = clients.join_next().await {
        let seen = seen.expect("a load client");
        total.requests += seen.requests;
        total.ok += seen.ok;
        total.unavailable += seen.unavailable;
        total.errors.extend(seen.errors);
        total.latencies.extend(seen.latencies);
    }
    total.latencies.sort();
    server.stop().await.expect("stop the server");
    assert!(
        total.errors.is_empty(),
        "request errors during the run: {:?}",
        &total.errors[..total.errors.len().min(5)]
    );
    total
}

async fn exec(client: &Client, sql: &str) {
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", bulkhead::pg::describe(&e)));
}

async fn server_version(cluster: &Cluster) -> String {
    connect(&common::named_config(cluster, "postgres", APPLICATION_NAME))
        .await
        .query_one("SHOW server_version", &[])
        .await
        .expect("read the server version")
        .get(0)
}

/// `b-0001`, `f-0001`…: the same length on both sides, so no name is cheaper.
fn slug(prefix: char, index: usize) -> String {
    format!("{prefix}-{index:04}")
}

/// The database of a database-mode tenant, as its provisioner recorded it.
async fn database_of(app: &Bulkhead, slug: &str) -> String {
    app.provisioner
        .control()
        .tenant_by_slug(&Slug::parse(slug).expect("bench slugs are valid"))
        .await
        .expect("read the control plane")
        .expect("the tenant exists")
        .database("")
}

/// Untimed setup: both fleets, interleaved, CONCURRENCY at a time, each tenant
/// created by its provisioner and loaded with rows. Returns the floor's
/// databases.
async fn build_fleets(
    cluster: &Cluster,
    bulkhead: &Arc<Bulkhead>,
    floor: &Arc<Bulkhead>,
    tenants: usize,
) -> Vec<String> {
    let mut jobs = Vec::with_capacity(2 * tenants);
    for i in 1..=tenants {
        jobs.push((Arc::clone(bulkhead), slug(BULKHEAD_FLEET.prefix, i)));
        jobs.push((Arc::clone(floor), slug(FLOOR_FLEET.prefix, i)));
    }
    let base = common::named_config(cluster, "postgres", APPLICATION_NAME);
    run_pool(jobs, move |(app, slug): (Arc<Bulkhead>, String)| {
        let base = base.clone();
        async move {
            create_tenant(&app, &slug).await;
            load_rows(&base, &database_of(&app, &slug).await).await;
        }
    })
    .await;
    let mut databases = Vec::with_capacity(tenants);
    for i in 1..=tenants {
        databases.push(database_of(floor, &slug(FLOOR_FLEET.prefix, i)).await);
    }
    databases
}

async fn create_tenant(app: &Bulkhead, slug: &str) {
    let request = CreateRequest {
        slug: slug.to_string(),
        display_name: None,
        mode: Mode::Database,
        plan: Plan::Free,
        server: None,
    };
    match app.provisioner.create(&request).await {
        Ok(CreateOutcome::Created(tenant)) => {
            assert_eq!(tenant.status, Status::Active, "tenant {slug} is not active");
            assert_eq!(
                tenant.schema_version, 1,
                "tenant {slug} is not at version 1"
            );
        }
        Ok(other) => panic!("tenant {slug}: expected a new tenant, got {other:?}"),
        Err(e) => panic!("create {slug}: {e}"),
    }
}

/// One project and ROWS_PER_TENANT tasks, then VACUUM ANALYZE so that
/// autovacuum has no work of ours left to do during the timed phases.
async fn load_rows(base: &Config, db: &str) {
    let mut config = base.clone();
    config.dbname(db);
    let client = connect(&config).await;
    let insert = format!(
        "INSERT INTO projects (name) VALUES ('bench');\n\
         INSERT INTO tasks (project_id, title)\n\
         SELECT p.id, 'task ' || g FROM projects p CROSS JOIN generate_series(1, {ROWS_PER_TENANT}) g;"
    );
    exec(&client, &insert).await;
    // Alone: VACUUM refuses to run inside the implicit transaction of a batch.
    exec(&client, "VACUUM (ANALYZE) projects, tasks").await;
}

/// The V2 migration in a directory of its own, as the next release ships it.
fn write_migrations(under: &Path) -> PathBuf {
    let dir = under.join("bench-migrations");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let file = dir.join(V2_FILE);
    std::fs::write(&file, V2_SQL).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    dir
}

/// Runs `job` over `items` with CONCURRENCY tasks, each taking the next item
/// as soon as it is free (a shared queue, so one slow item does not idle the
/// others). Returns the wall time and each item's latency.
async fn run_pool<T, J, F>(items: Vec<T>, job: J) -> (Duration, Vec<Duration>)
where
    T: Clone + Send + Sync + 'static,
    J: Fn(T) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let items = Arc::new(items);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (items, next, job) = (Arc::clone(&items), Arc::clone(&next), job.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
                let t = Instant::now();
                job(item.clone()).await;
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(items.len());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(l) => latencies.extend(l),
            // Surface the job's own message (which tenant, which statement).
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a bench worker was cancelled: {e}"),
        }
    }
    (started.elapsed(), latencies)
}

/// The floor's figures: wall time and per-database latency.
struct Floor {
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Floor {
    fn merge(mut self, other: Floor) -> Floor {
        self.wall += other.wall;
        self.latencies.extend(other.latencies);
        self
    }
}

/// The floor: per database, a superuser connection, the owner's role and the
/// two statements in one transaction — no lock, no history, no bookkeeping.
async fn floor_round(cluster: &Cluster, databases: Vec<String>) -> Floor {
    let base = common::named_config(cluster, "postgres", APPLICATION_NAME);
    let (wall, latencies) = run_pool(databases, move |db: String| {
        let base = base.clone();
        async move {
            let mut config = base;
            config.dbname(&db);
            let client = connect(&config).await;
            // The runtime role (named as the database) owns nothing;
            // `<database>_owner` owns the tables.
            let owner = Ident::new(&format!("{db}_owner"));
            exec(
                &client,
                &format!("BEGIN;\nSET LOCAL ROLE {owner};\n{V2_SQL}COMMIT;"),
            )
            .await;
        }
    })
    .await;
    Floor { wall, latencies }
}

/// The measured bulkhead run and the memory it took.
struct Measured {
    report: RunReport,
    wall: Duration,
    memory: Memory,
}

async fn run_fleet(app: &Bulkhead) -> RunReport {
    let options = RunOptions {
        concurrency: CONCURRENCY,
        ..RunOptions::default()
    };
    fleet::run(
        &app.provisioner,
        &options,
        &Progress::Silent,
        &AtomicBool::new(false),
    )
    .await
    .expect("the fleet migration run")
}

fn assert_succeeded(report: &RunReport, what: &str) {
    assert_eq!(report.state, RunState::Succeeded, "{what}: {report:?}");
    assert!(report.failures.is_empty(), "{what} failed: {report:?}");
    assert!(report.drift.is_empty(), "{what} left drift: {report:?}");
}

async fn bulkhead_run(app: &Bulkhead) -> Measured {
    let watch = MemoryWatch::start();
    let started = Instant::now();
    let report = run_fleet(app).await;
    let wall = started.elapsed();
    let memory = watch.finish();
    assert_succeeded(&report, "the bulkhead run");
    assert_eq!(report.target, 2, "the run's target");
    Measured {
        report,
        wall,
        memory,
    }
}

/// A second run with nothing pending: it should read the control plane's
/// recorded versions rather than visit every database.
async fn noop_run(app: &Bulkhead) -> Duration {
    let started = Instant::now();
    let report = run_fleet(app).await;
    let wall = started.elapsed();
    assert_succeeded(&report, "the no-op run");
    assert_eq!(report.migrated, 0, "the no-op run migrated something");
    wall
}

/// Each tenant's time in the run as the control plane recorded it (from
/// `begin_tenant_migration` to `end_tenant_migration`: the tenant lookup,
/// connect, migration and both records).
async fn tenant_latencies(cluster: &Cluster, run: i64) -> Vec<Duration> {
    let control = connect(&common::named_config(
        cluster,
        &common::control_db(BULKHEAD_FLEET.name),
        APPLICATION_NAME,
    ))
    .await;
    control
        .query(
            "SELECT extract(epoch FROM finished_at - started_at)::float8
               FROM migration_results WHERE run_id = $1 AND state = 'succeeded'",
            &[&run],
        )
        .await
        .expect("read the run's per-tenant times")
        .iter()
        .map(|row| Duration::from_secs_f64(row.get::<_, f64>(0).max(0.0)))
        .collect()
}

/// This process's memory around the bulkhead run, from /proc/self/status.
/// The peak is VmHWM after resetting it to the current RSS just before the
/// run (`clear_refs` 5); where that reset is refused, VmHWM is the peak of
/// the whole process so far, setup included.
struct Memory {
    before_kb: u64,
    peak_kb: u64,
    hwm_reset: bool,
}

/// Started just before the run; `finish` reads the peak.
struct MemoryWatch {
    before_kb: u64,
    hwm_reset: bool,
}

impl MemoryWatch {
    fn start() -> Self {
        let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        MemoryWatch {
            before_kb: status_kb("VmRSS"),
            hwm_reset,
        }
    }

    fn finish(self) -> Memory {
        Memory {
            before_kb: self.before_kb,
            peak_kb: status_kb("VmHWM"),
            hwm_reset: self.hwm_reset,
        }
    }
}

/// A `kB` field of /proc/self/status (0 where there is none, e.g. not Linux).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim().trim_end_matches("kB").trim().parse().ok()
            })
        })
        .unwrap_or(0)
}

fn mb(kb: u64) -> f64 {
    (kb as f64 / 1024.0 * 10.0).round() / 10.0
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Databases/s over the wall time, and per-database latency percentiles.
fn summary(databases: usize, wall: Duration, mut latencies: Vec<Duration>) -> Value {
    latencies.sort();
    json!({
        "databases": databases,
        "total_s": secs(wall),
        "databases_per_s": (databases as f64 / wall.as_secs_f64() * 10.0).round() / 10.0,
        "p50_ms": nearest_rank_ms(&latencies, 0.50),
        "p99_ms": nearest_rank_ms(&latencies, 0.99),
    })
}

struct Report<'a> {
    params: &'a Sizes,
    postgres: &'a str,
    setup: Duration,
    bulkhead: &'a Measured,
    latencies: Vec<Duration>,
    floor: &'a Floor,
    noop: Duration,
    loaded: &'a Loaded,
    took: Duration,
}

fn report(r: &Report) {
    let run = &r.bulkhead.report;
    let mut results = summary(run.migrated, r.bulkhead.wall, r.latencies.clone());
    results["failed"] = json!(run.failures.len());
    results["noop_run_s"] = json!(secs(r.noop));
    results["peak_rss_mb"] = json!(mb(r.bulkhead.memory.peak_kb));
    results["rss_before_run_mb"] = json!(mb(r.bulkhead.memory.before_kb));
    results["peak_rss_note"] = json!(if r.bulkhead.memory.hwm_reset {
        "VmHWM of the bench process during the run (reset just before it); \
         includes what the bench's own setup left resident"
    } else {
        "VmHWM of the bench process since it started: setup included"
    });
    let l = r.loaded;
    results["request_load"] = json!({
        "clients": LOAD_CLIENTS,
        "migration": V3_SQL,
        "run_s": secs(l.run),
        "requests": l.requests,
        "ok": l.ok,
        "unavailable_503": l.unavailable,
        "errors": l.errors.len(),
        "ok_p50_ms": nearest_rank_ms(&l.latencies, 0.50),
        "ok_p99_ms": nearest_rank_ms(&l.latencies, 0.99),
    });
    let baseline = summary(
        r.floor.latencies.len(),
        r.floor.wall,
        r.floor.latencies.clone(),
    );
    let ratio =
        (r.floor.wall.as_secs_f64() / r.bulkhead.wall.as_secs_f64() * 1000.0).round() / 1000.0;

    print_summary(r, &results, &baseline, ratio);

    let report = json!({
        "scenario": "fleet_migrate",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {
            "tenants": r.params.tenants,
            "rows_per_tenant": ROWS_PER_TENANT,
            "mode": "database",
            "concurrency": CONCURRENCY,
            "quick": r.params.quick,
            "max_connections": MAX_CONNECTIONS,
            "postgres": r.postgres,
            "migration": V2_SQL,
            "order": "floor (first half), bulkhead (all), floor (second half)",
            "setup_s": secs(r.setup),
        },
        "results": results,
        "baseline": baseline,
        "ratio": ratio,
    });
    let path = common::write_report("fleet_migrate", &report);
    println!(
        "wrote {} ({:.1} s in all)",
        path.display(),
        r.took.as_secs_f64()
    );
}

fn print_summary(r: &Report, results: &Value, baseline: &Value, ratio: f64) {
    println!(
        "\nfleet_migrate: {} databases, {ROWS_PER_TENANT} tasks each, {CONCURRENCY} at a time, \
         PostgreSQL {}, order floor/bulkhead/floor",
        r.params.tenants, r.postgres
    );
    println!(
        "{:<9} {:>12} {:>9} {:>9} {:>9}",
        "side", "databases/s", "total s", "p50 ms", "p99 ms"
    );
    for (side, figures) in [("bulkhead", results), ("floor", baseline)] {
        // Value's Display ignores width: format the numbers as strings.
        let cell = |name: &str| figures[name].to_string();
        println!(
            "{side:<9} {:>12} {:>9} {:>9} {:>9}",
            cell("databases_per_s"),
            cell("total_s"),
            cell("p50_ms"),
            cell("p99_ms")
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let failed = r.bulkhead.report.failures.len();
    println!(
        "ratio = floor time / bulkhead time = {ratio} (goal >= 0.77: {})",
        verdict(ratio >= 0.77)
    );
    println!(
        "failed tenants: {failed} (goal 0: {})",
        verdict(failed == 0)
    );
    println!(
        "no-op run: {:.3} s (goal < 1 s: {})",
        r.noop.as_secs_f64(),
        verdict(r.noop < Duration::from_secs(1))
    );
    println!(
        "bench process RSS: {} MB before the run, peak {} MB during it{}",
        mb(r.bulkhead.memory.before_kb),
        mb(r.bulkhead.memory.peak_kb),
        if r.bulkhead.memory.hwm_reset {
            " (includes what setup left resident)"
        } else {
            " (peak since start: setup included)"
        }
    );
    let l = r.loaded;
    println!(
        "under load ({LOAD_CLIENTS} API clients, next migration): run {:.1} s; {} requests, {} ok \
         (p99 {} ms), {} 503 while migrating, {} errors (goal 0)",
        l.run.as_secs_f64(),
        l.requests,
        l.ok,
        nearest_rank_ms(&l.latencies, 0.99),
        l.unavailable,
        l.errors.len()
    );
}
