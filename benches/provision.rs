//! `provision` benchmark (see BENCHMARKS.md): how fast bulkhead brings tenants
//! into being, against the floor of the raw SQL alone on the same cluster.
//!
//! `cargo bench --bench provision [-- --quick | --tenants N]`
//!
//! Both sides create the same number of tenants per mode, 4 at a time. The
//! floor is what a plain client needs at the very least: roles, the database
//! clone (or schema + migration) and the grants, with no control plane, no
//! idempotency checks and no isolation check.

mod common;

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bulkhead::app::Bulkhead;
use bulkhead::control::{Mode, PgName, Plan, Status};
use bulkhead::pg::Cluster;
use bulkhead::provision::{CreateOutcome, CreateRequest};
use bulkhead::secret;
use bulkhead::sql::{Arg, Ident, Literal, render};
use common::{Sizes, connect, nearest_rank_ms};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_postgres::{Client, Config};

const DATABASE_GRANTS: &str = include_str!("../provisioning/database_grants.sql");
const SCHEMA_GRANTS: &str = include_str!("../provisioning/schema_grants.sql");
const TENANT_SCHEMA: &str = include_str!("../tenant-migrations/V1__core.sql");

const MAX_CONNECTIONS: u32 = 300;
const CONCURRENCY: usize = 4;
/// The fleet's name: its databases are `bench_control`, `bench_template` and
/// `bench_shared` (`common::fleet_args`).
const FLEET: &str = "bench";
const TEMPLATE_DB: &str = "bench_template";
const SHARED_DB: &str = "bench_shared";
/// The same CONNECTION LIMIT bulkhead gives runtime roles (`open_fleet`).
const CONNECTION_LIMIT: i32 = 20;
/// `application_name` of the bench's own connections.
const APPLICATION_NAME: &str = "bench-provision";
const MODES: [Mode; 2] = [Mode::Database, Mode::Schema];

#[tokio::main]
async fn main() {
    let params = Sizes::from_args(20, 200);
    let started = Instant::now();
    let cluster = common::boot_cluster(MAX_CONNECTIONS).await;
    let app = Arc::new(open_fleet(&cluster).await);
    // Bulkhead first: its first tenants create the template and shared
    // databases the floor clones from and connects to.
    warm_up(Side::Bulkhead, &app, &[]).await;
    let floors = open_floor_workers(&cluster).await;
    warm_up(Side::Floor, &app, &floors).await;
    let postgres = floors[0]
        .postgres
        .query_one("SHOW server_version", &[])
        .await
        .expect("read the server version")
        .get::<_, String>(0);

    let mut bulkhead = Vec::new();
    let mut floor = Vec::new();
    for mode in MODES {
        let (b, f) = measure_mode(&app, &floors, mode, params.tenants).await;
        bulkhead.push(b);
        floor.push(f);
    }
    report(&params, &postgres, &bulkhead, &floor, started.elapsed());
}

/// A control plane of its own on the cluster, opened the way production opens
/// one (`control_url` + `secret`) with the built-in tenant migrations only (the
/// floor runs exactly those), and the cluster registered as a server.
async fn open_fleet(cluster: &Cluster) -> Bulkhead {
    common::create_private_database(cluster, &common::control_db(FLEET)).await;
    let args = common::fleet_args(cluster, FLEET, CONNECTION_LIMIT);
    // The floor clones from and connects to these.
    assert_eq!(
        (args.template_db.as_str(), args.shared_db.as_str()),
        (TEMPLATE_DB, SHARED_DB)
    );
    common::open_registered(cluster, &args, 80).await
}

/// Untimed: one round of CONCURRENCY tenants per mode, 4 at a time. Bulkhead's
/// first one creates the template and the shared database; on both sides the
/// warm-up opens and primes (catalog caches) the connections the timed rounds
/// reuse, which they would otherwise pay for unevenly.
async fn warm_up(side: Side, app: &Arc<Bulkhead>, floors: &[Arc<FloorWorker>]) {
    for mode in MODES {
        let slugs = (1..=CONCURRENCY).map(|i| slug(side, mode, Phase::WarmUp, i));
        time_round(side, mode, app, floors, slugs.collect()).await;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Bulkhead,
    Floor,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    WarmUp,
    Timed,
}

/// `bdt-0007`, `fsw-0002`…: distinct per side, mode and phase, valid slugs, and
/// the same length everywhere so that no name is cheaper to handle than another.
fn slug(side: Side, mode: Mode, phase: Phase, index: usize) -> String {
    let side = if side == Side::Bulkhead { 'b' } else { 'f' };
    let mode = if mode == Mode::Database { 'd' } else { 's' };
    let phase = if phase == Phase::Timed { 't' } else { 'w' };
    format!("{side}{mode}{phase}-{index:04}")
}

/// Times one mode in rounds that alternate ABBA-wise — floor, bulkhead,
/// bulkhead, floor, floor, bulkhead… — each side creating the same tenants'
/// share per round, so that neither systematically gets the warmer cluster or
/// the smaller catalogs, and drift over the run (catalog growth, WAL,
/// autovacuum, other load on a shared machine) lands on both sides alike.
async fn measure_mode(
    app: &Arc<Bulkhead>,
    floors: &[Arc<FloorWorker>],
    mode: Mode,
    tenants: usize,
) -> (Tally, Tally) {
    let mut bulkhead = Tally::new(mode);
    let mut floor = Tally::new(mode);
    for (k, range) in rounds(tenants).into_iter().enumerate() {
        let order = if k % 2 == 0 {
            [Side::Floor, Side::Bulkhead]
        } else {
            [Side::Bulkhead, Side::Floor]
        };
        for side in order {
            let slugs = range
                .clone()
                .map(|i| slug(side, mode, Phase::Timed, i))
                .collect();
            let round = time_round(side, mode, app, floors, slugs).await;
            match side {
                Side::Bulkhead => bulkhead.add(round),
                Side::Floor => floor.add(round),
            }
        }
    }
    (bulkhead, floor)
}

/// Tenants per timed round, roughly: small enough that the sides alternate
/// often, large enough that a round's ramp-up and tail (workers idle while the
/// last tenants finish) stay a small part of it.
const ROUND_SIZE: usize = 20;

/// Splits tenants 1..=n into an even number of nearly equal rounds (at least
/// two, so that even `--quick` runs one full ABBA cycle).
fn rounds(n: usize) -> Vec<RangeInclusive<usize>> {
    let count = n.div_ceil(ROUND_SIZE).max(2).next_multiple_of(2).min(n);
    (0..count)
        .map(|r| (r * n / count + 1)..=((r + 1) * n / count))
        .collect()
}

/// Creates `slugs` in `mode` on one side, CONCURRENCY at a time.
async fn time_round(
    side: Side,
    mode: Mode,
    app: &Arc<Bulkhead>,
    floors: &[Arc<FloorWorker>],
    slugs: Vec<String>,
) -> Round {
    match side {
        Side::Bulkhead => {
            // The provisioner is shared: its admin pool is what bounds it.
            let workers = vec![Arc::clone(app); CONCURRENCY];
            let job = move |app: Arc<Bulkhead>, slug: String| async move {
                create_with_bulkhead(&app, &slug, mode).await;
            };
            run_round(&workers, slugs, job).await
        }
        Side::Floor => {
            // The floor names its objects as bulkhead does, from no slug.
            let job = move |worker: Arc<FloorWorker>, _slug: String| async move {
                worker.create(mode).await;
            };
            run_round(floors, slugs, job).await
        }
    }
}

/// One tenant through the provisioner; it must end active (the isolation
/// check passed), or the figure would be for something else. Any error fails
/// the bench.
async fn create_with_bulkhead(app: &Bulkhead, slug: &str, mode: Mode) {
    let request = CreateRequest {
        slug: slug.to_string(),
        display_name: None,
        mode,
        plan: Plan::Free,
        server: None,
    };
    match app.provisioner.create(&request).await {
        Ok(CreateOutcome::Created(tenant)) => {
            assert_eq!(tenant.status, Status::Active, "tenant {slug} is not active");
        }
        Ok(other) => panic!("tenant {slug}: expected a new tenant, got {other:?}"),
        Err(e) => panic!("bulkhead failed to create {slug}: {e}"),
    }
}

/// What one timed round measured.
struct Round {
    wall: Duration,
    latencies: Vec<Duration>,
}

/// Runs `job` over `slugs` with one task per worker, each taking the next slug
/// as soon as it is free (a shared queue, not fixed batches of 4, so one slow
/// tenant does not idle the other workers).
async fn run_round<W, J, F>(workers: &[Arc<W>], slugs: Vec<String>, job: J) -> Round
where
    W: Send + Sync + 'static,
    J: Fn(Arc<W>, String) -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let slugs = Arc::new(slugs);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in workers {
        let (worker, slugs, next, job) = (
            Arc::clone(worker),
            Arc::clone(&slugs),
            Arc::clone(&next),
            job.clone(),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while let Some(slug) = slugs.get(next.fetch_add(1, Ordering::Relaxed)) {
                let t = Instant::now();
                job(Arc::clone(&worker), slug.clone()).await;
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(slugs.len());
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(l) => latencies.extend(l),
            // Surface the job's own message (which tenant, which statement).
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a bench worker was cancelled: {e}"),
        }
    }
    Round {
        wall: started.elapsed(),
        latencies,
    }
}

/// A floor worker: a plain client with the connections a minimal provisioning
/// script would keep open — to `postgres` for roles and databases, to the
/// shared database for schemas. Opened before any timing, as bulkhead's admin
/// pool is warm by the time it is timed; so only once the shared database exists.
struct FloorWorker {
    postgres: Client,
    shared: Client,
    /// Admin settings for connecting into each new tenant database.
    admin: Config,
}

async fn open_floor_workers(cluster: &Cluster) -> Vec<Arc<FloorWorker>> {
    let mut workers = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        workers.push(Arc::new(FloorWorker {
            postgres: connect(&common::named_config(cluster, "postgres", APPLICATION_NAME)).await,
            shared: connect(&common::named_config(cluster, SHARED_DB, APPLICATION_NAME)).await,
            admin: common::named_config(cluster, "postgres", APPLICATION_NAME),
        }));
    }
    workers
}

/// A floor tenant's quoted names, minted as bulkhead mints them (the same
/// length on both sides, so no name is cheaper).
struct Names {
    owner: Ident,
    runtime: Ident,
    runtime_name: String,
}

impl Names {
    fn new() -> Self {
        let name = PgName::mint();
        Names {
            owner: Ident::new(&name.owner_role()),
            runtime: Ident::new(name.runtime_role()),
            runtime_name: name.to_string(),
        }
    }
}

impl FloorWorker {
    async fn create(&self, mode: Mode) {
        let names = Names::new();
        self.create_roles(&names).await;
        match mode {
            Mode::Database => self.create_database(&names).await,
            Mode::Schema => self.create_schema(&names).await,
        }
    }

    async fn exec(client: &Client, sql: &str, what: &str) {
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("floor: {what}: {}", bulkhead::pg::describe(&e)));
    }

    /// Both roles in one round trip; the password verifier is computed here as
    /// bulkhead computes it (1 iteration), so neither side pays the server's.
    async fn create_roles(&self, names: &Names) {
        let verifier = Literal::new(&secret::scram_verifier(&secret::random_hex(32), 1));
        let sql = format!(
            "CREATE ROLE {owner} NOLOGIN NOINHERIT;\n\
             CREATE ROLE {runtime} LOGIN NOINHERIT CONNECTION LIMIT {CONNECTION_LIMIT} \
             PASSWORD {verifier};",
            owner = names.owner,
            runtime = names.runtime,
        );
        Self::exec(&self.postgres, &sql, "create roles").await;
    }

    async fn create_database(&self, names: &Names) {
        let (db, owner, runtime) = (&names.runtime, &names.owner, &names.runtime);
        let template = Ident::new(TEMPLATE_DB);
        // Alone: CREATE DATABASE refuses to run inside a transaction block.
        let create =
            format!("CREATE DATABASE {db} OWNER {owner} TEMPLATE {template} STRATEGY WAL_LOG");
        Self::exec(&self.postgres, &create, "create database").await;
        let lockdown = format!(
            "REVOKE ALL ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {runtime}"
        );
        Self::exec(&self.postgres, &lockdown, "lock the database down").await;

        let template_owner = Ident::new(&format!("{TEMPLATE_DB}_owner"));
        let grants = render(
            DATABASE_GRANTS,
            &[
                ("template_owner", Arg::Ident(&template_owner)),
                ("owner", Arg::Ident(owner)),
                ("runtime", Arg::Ident(runtime)),
            ],
        );
        let mut inside = self.admin.clone();
        inside.dbname(&names.runtime_name);
        let inside = connect(&inside).await;
        Self::exec(&inside, &transaction(&grants), "in-database grants").await;
    }

    /// Schema, migration and grants in one transaction on the open connection
    /// to the shared database: the fewest round trips a plain client needs.
    async fn create_schema(&self, names: &Names) {
        let (schema, owner, runtime) = (&names.runtime, &names.owner, &names.runtime);
        let shared = Ident::new(SHARED_DB);
        let grants = render(
            SCHEMA_GRANTS,
            &[
                ("shared", Arg::Ident(&shared)),
                ("schema", Arg::Ident(schema)),
                ("owner", Arg::Ident(owner)),
                ("runtime", Arg::Ident(runtime)),
            ],
        );
        // The grants (the transaction's tail) take the advisory lock bulkhead's
        // own grants take, as schema_grants.sql is run as is.
        let sql = format!(
            "CREATE SCHEMA {schema} AUTHORIZATION {owner};\n\
             SET LOCAL ROLE {owner};\nSET LOCAL search_path TO {schema};\n\
             {TENANT_SCHEMA}\n\
             RESET ROLE;\n{grants}"
        );
        Self::exec(&self.shared, &transaction(&sql), "schema tenant").await;
    }
}

fn transaction(sql: &str) -> String {
    format!("BEGIN;\n{sql}\nCOMMIT;")
}

/// One side's rounds of one mode, added up.
struct Tally {
    mode: Mode,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Tally {
    fn new(mode: Mode) -> Self {
        Tally {
            mode,
            wall: Duration::ZERO,
            latencies: Vec::new(),
        }
    }

    fn add(&mut self, round: Round) {
        self.wall += round.wall;
        self.latencies.extend(round.latencies);
    }

    fn merged(tallies: &[Tally]) -> (Duration, Vec<Duration>) {
        let wall = tallies.iter().map(|t| t.wall).sum();
        let latencies = tallies.iter().flat_map(|t| t.latencies.clone()).collect();
        (wall, latencies)
    }
}

/// Tenants/s over the wall time, and per-tenant latency percentiles.
fn summary(wall: Duration, mut latencies: Vec<Duration>) -> Value {
    latencies.sort();
    let n = latencies.len();
    json!({
        "tenants": n,
        "seconds": (wall.as_secs_f64() * 1000.0).round() / 1000.0,
        "tenants_per_s": (n as f64 / wall.as_secs_f64() * 10.0).round() / 10.0,
        "p50_ms": nearest_rank_ms(&latencies, 0.50),
        "p99_ms": nearest_rank_ms(&latencies, 0.99),
    })
}

/// floor time / bulkhead time: 1.0 means bulkhead costs nothing over the raw SQL.
fn ratio(floor: Duration, bulkhead: Duration) -> f64 {
    (floor.as_secs_f64() / bulkhead.as_secs_f64() * 1000.0).round() / 1000.0
}

/// `{"database": {...}, "schema": {...}, "overall": {...}}` for one side.
fn side_results(tallies: &[Tally]) -> Value {
    let mut results = serde_json::Map::new();
    for t in tallies {
        results.insert(t.mode.to_string(), summary(t.wall, t.latencies.clone()));
    }
    let (wall, latencies) = Tally::merged(tallies);
    results.insert("overall".into(), summary(wall, latencies));
    Value::Object(results)
}

fn report(params: &Sizes, postgres: &str, bulkhead: &[Tally], floor: &[Tally], took: Duration) {
    let mut results = side_results(bulkhead);
    let baseline = side_results(floor);
    for (b, f) in bulkhead.iter().zip(floor) {
        results[b.mode.as_str()]["ratio"] = json!(ratio(f.wall, b.wall));
    }
    let overall = ratio(Tally::merged(floor).0, Tally::merged(bulkhead).0);
    results["overall"]["ratio"] = json!(overall);

    println!(
        "\nprovision: {} tenants per mode, {CONCURRENCY} at a time, {} alternating rounds per \
         side and mode (ABBA), PostgreSQL {postgres}",
        params.tenants,
        rounds(params.tenants).len()
    );
    println!(
        "{:<9} {:<9} {:>10} {:>9} {:>9} {:>9}",
        "mode", "side", "tenants/s", "p50 ms", "p99 ms", "ratio"
    );
    for key in ["database", "schema", "overall"] {
        for (side, figures) in [("bulkhead", &results[key]), ("floor", &baseline[key])] {
            // Value's Display ignores width: format the numbers as strings.
            let cell = |name: &str| figures.get(name).map_or(String::new(), Value::to_string);
            println!(
                "{key:<9} {side:<9} {:>10} {:>9} {:>9} {:>9}",
                cell("tenants_per_s"),
                cell("p50_ms"),
                cell("p99_ms"),
                cell("ratio")
            );
        }
    }
    let verdict = if overall >= 0.67 { "met" } else { "NOT met" };
    println!("ratio = floor time / bulkhead time = {overall} (goal >= 0.67: {verdict})");

    let report = json!({
        "scenario": "provision",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {
            "tenants_per_mode": params.tenants,
            "concurrency": CONCURRENCY,
            "quick": params.quick,
            "max_connections": MAX_CONNECTIONS,
            "postgres": postgres,
            "rounds_per_side": rounds(params.tenants).len(),
            "order": "per mode, alternating rounds: floor, bulkhead, bulkhead, floor, floor…",
        },
        "results": results,
        "baseline": baseline,
        "ratio": overall,
    });
    let path = common::write_report("provision", &report);
    println!(
        "wrote {} ({:.1} s in all)",
        path.display(),
        took.as_secs_f64()
    );
}
