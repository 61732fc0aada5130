//! A tenant server stopped under load (issue 15, item 5): 64 clients spread
//! over tenants of two servers; one server is stopped (or stops answering),
//! then started again. Only its own tenants fail, each with a prompt 503 in
//! the one error shape, while the other server's tenants are all served
//! within its budget; they recover without restarting bulkhead. Throughput
//! is the `outage` bench's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{TestFleet, eventually, serve};
use bulkhead::control::{Mode, Plan};
use bulkhead::provision::CreateRequest;

const CLIENTS: usize = 64;
const TENANTS_PER_SERVER: usize = 4;
/// How long a request may wait for a connection, and for one to open.
const WAIT: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Room on a shared, loaded test machine for the scheduling around a request
/// (it is not a figure of merit: a hang would take the client's 30 s).
const SLACK: Duration = Duration::from_secs(2);

/// When a request was sent, relative to the second server's outage.
const BEFORE: u8 = 0;
const DURING: u8 = 1;
const AFTER: u8 = 2;

/// One tenant as its clients see it.
struct Tenant {
    host: String,
    token: String,
    /// On the server that is stopped.
    on_stopped: bool,
    /// 200s answered to requests sent in each phase.
    served: [AtomicUsize; 3],
    /// 503s answered to requests sent in each phase.
    refused: [AtomicUsize; 3],
}

/// What one request got.
struct Outcome {
    tenant: usize,
    /// The phase it was sent in, and the one it was answered in.
    phase: u8,
    answered: u8,
    /// The HTTP status, or 0 when no answer came (refused, reset, timed out).
    status: u16,
    elapsed: Duration,
    /// For a 503: `Retry-After` present and the body in the one error shape.
    well_formed: bool,
    body: String,
}

/// Every client and what the load has seen so far.
struct Load {
    tenants: Vec<Tenant>,
    phase: AtomicU8,
    stop: AtomicBool,
}

async fn create_on(fleet: &TestFleet, base: &str, server: &str) -> String {
    let slug = fleet.slug(base);
    fleet
        .p()
        .create(&CreateRequest {
            slug: slug.clone(),
            display_name: None,
            mode: Mode::Database,
            plan: Plan::Free,
            server: Some(server.into()),
        })
        .await
        .unwrap_or_else(|e| panic!("create {slug} on {server}: {e}"));
    slug
}

/// One client: requests to tenant `first`, then the next of the same server
/// and so on, until told to stop.
async fn client(
    http: reqwest::Client,
    addr: std::net::SocketAddr,
    load: Arc<Load>,
    own: Vec<usize>,
    first: usize,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut next = first;
    while !load.stop.load(Ordering::Acquire) {
        let i = own[next % own.len()];
        next += 1;
        let tenant = &load.tenants[i];
        let phase = load.phase.load(Ordering::Acquire);
        let started = Instant::now();
        let sent = http
            .get(format!("http://{addr}/api/projects"))
            .header("host", &tenant.host)
            .bearer_auth(&tenant.token)
            .send()
            .await;
        let outcome = match sent {
            Err(e) => Outcome {
                tenant: i,
                phase,
                answered: load.phase.load(Ordering::Acquire),
                status: 0,
                elapsed: started.elapsed(),
                well_formed: false,
                body: e.to_string(),
            },
            Ok(res) => {
                let status = res.status().as_u16();
                let retry_after = res.headers().contains_key("retry-after");
                let body = res.text().await.unwrap_or_default();
                let code = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
                Outcome {
                    tenant: i,
                    phase,
                    answered: load.phase.load(Ordering::Acquire),
                    status,
                    elapsed: started.elapsed(),
                    well_formed: retry_after && code.as_deref() == Some("unavailable"),
                    body,
                }
            }
        };
        let p = outcome.phase as usize;
        match outcome.status {
            200 => tenant.served[p].fetch_add(1, Ordering::Relaxed),
            503 => tenant.refused[p].fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// Whether every tenant picked by `which` has had at least `n` answers
/// counted by `count` for requests sent in `phase`.
fn all_have(
    load: &Load,
    which: impl Fn(&Tenant) -> bool,
    count: impl Fn(&Tenant) -> &[AtomicUsize; 3],
    phase: u8,
    n: usize,
) -> bool {
    load.tenants
        .iter()
        .filter(|t| which(t))
        .all(|t| count(t)[phase as usize].load(Ordering::Relaxed) >= n)
}

/// How the second server fails.
#[derive(Clone, Copy, PartialEq)]
enum Outage {
    /// `pg_ctl stop -m fast`: its backends end, new connections are refused.
    Stopped,
    /// Stopped, and something else holds its port that accepts connections
    /// and never answers: a hung server, or one behind a broken network.
    Unresponsive,
}

/// Accepts connections on `port` and never answers; dropping it (aborting
/// the task) closes them all.
async fn black_hole(port: u16) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("take over the stopped server's port");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_outage_under_load_fails_only_the_stopped_servers_tenants() {
    outage_under_load(Outage::Stopped).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_outage_of_an_unresponsive_server_under_load_hangs_nothing() {
    outage_under_load(Outage::Unresponsive).await;
}

async fn outage_under_load(outage: Outage) {
    let fleet = TestFleet::new().await;
    let second = fleet.second_server("second").await;
    let load = Arc::new(Load {
        tenants: tenants_on_both(&fleet).await,
        phase: AtomicU8::new(BEFORE),
        stop: AtomicBool::new(false),
    });
    let server = serve(&fleet, |s| {
        s.pools.wait = WAIT;
        s.pools.connect_timeout = CONNECT_TIMEOUT;
    })
    .await;
    let clients = start_clients(&server, &load);
    let budget_watch = watch_budget(&server, &load, "local");
    eventually("every tenant to be served under load", || async {
        all_have(&load, |_| true, |t| &t.served, BEFORE, 5)
    })
    .await;

    load.phase.store(DURING, Ordering::Release);
    let dir = second.dir.clone();
    tokio::task::spawn_blocking(move || bulkhead::pg::Cluster::stop(&dir))
        .await
        .unwrap()
        .expect("stop the second server");
    let hole = match outage {
        Outage::Stopped => None,
        Outage::Unresponsive => Some(black_hole(second.port).await),
    };
    // The outage lasts until each stopped tenant has been refused a few
    // times and each healthy one served many times over.
    eventually("the outage to be seen by every tenant", || async {
        all_have(&load, |t| t.on_stopped, |t| &t.refused, DURING, 20)
            && all_have(&load, |t| !t.on_stopped, |t| &t.served, DURING, 50)
    })
    .await;

    if let Some(hole) = hole {
        hole.abort();
        let _ = hole.await;
    }
    restart(&second).await;
    load.phase.store(AFTER, Ordering::Release);
    eventually("the stopped server's tenants to recover", || async {
        all_have(&load, |t| t.on_stopped, |t| &t.served, AFTER, 5)
    })
    .await;

    load.stop.store(true, Ordering::Release);
    let outcomes: Vec<Outcome> = clients.join_all().await.into_iter().flatten().collect();
    check(&load, &outcomes);
    let most_in_use = budget_watch.await.unwrap();
    let budget = server.pools.budget("local").unwrap();
    assert!(
        most_in_use <= budget.limit && budget.high_water() <= budget.limit,
        "the healthy server's budget {} was overspent: {most_in_use} seen, high water {}",
        budget.limit,
        budget.high_water()
    );
    let second_budget = server.pools.budget("second").unwrap();
    assert!(second_budget.high_water() <= second_budget.limit);
    server.stop().await.unwrap();
}

/// `TENANTS_PER_SERVER` tenants on the fleet's own server, then as many on
/// the second.
async fn tenants_on_both(fleet: &TestFleet) -> Vec<Tenant> {
    let mut tenants = Vec::new();
    for (server, on_stopped) in [("local", false), ("second", true)] {
        for i in 0..TENANTS_PER_SERVER {
            let slug = create_on(fleet, &format!("{server}{i}"), server).await;
            tenants.push(Tenant {
                host: format!("{slug}.localhost"),
                token: fleet.token(&slug, "member").await,
                on_stopped,
                served: Default::default(),
                refused: Default::default(),
            });
        }
    }
    tenants
}

/// `CLIENTS` clients, half of them on each server's tenants.
fn start_clients(
    server: &bulkhead::serve::Running,
    load: &Arc<Load>,
) -> tokio::task::JoinSet<Vec<Outcome>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (healthy, stopped): (Vec<usize>, Vec<usize>) =
        (0..load.tenants.len()).partition(|i| !load.tenants[*i].on_stopped);
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let own = if c % 2 == 0 { &healthy } else { &stopped };
        clients.spawn(client(
            http.clone(),
            server.addr,
            load.clone(),
            own.clone(),
            c / 2,
        ));
    }
    clients
}

/// The most connections held against `name`'s budget until the load stops.
fn watch_budget(
    server: &bulkhead::serve::Running,
    load: &Arc<Load>,
    name: &'static str,
) -> tokio::task::JoinHandle<usize> {
    let (pools, load) = (server.pools.clone(), load.clone());
    tokio::spawn(async move {
        let mut most = 0;
        while !load.stop.load(Ordering::Acquire) {
            if let Some(budget) = pools.budget(name) {
                most = most.max(budget.in_use());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        most
    })
}

/// Starts the stopped cluster again, on the port it is registered with.
async fn restart(stopped: &bulkhead::pg::Cluster) {
    let dir = stopped.dir.clone();
    let restarted = tokio::task::spawn_blocking(move || {
        bulkhead::pg::Cluster::ensure(&dir, &Default::default())
    })
    .await
    .unwrap()
    .expect("start the second server again");
    assert_eq!(restarted.port, stopped.port, "back where it was registered");
    // The watchdog that removes the cluster knows the first postmaster only.
    restarted
        .remove_when_process_exits(std::process::id())
        .unwrap();
}

/// The healthy server's tenants got only 200s; the stopped server's got
/// 200s, or well-formed 503s once it was stopped, none after a hang.
fn check(load: &Load, outcomes: &[Outcome]) {
    let mut statuses: BTreeMap<(bool, u8, u16), usize> = BTreeMap::new();
    for o in outcomes {
        let on_stopped = load.tenants[o.tenant].on_stopped;
        *statuses.entry((on_stopped, o.phase, o.status)).or_default() += 1;
    }
    let report = format!("(stopped?, phase, status) -> requests: {statuses:?}");
    for o in outcomes {
        let tenant = &load.tenants[o.tenant];
        if !tenant.on_stopped {
            assert_eq!(
                o.status, 200,
                "{} (phase {}) on the healthy server: {}\n{report}",
                tenant.host, o.phase, o.body
            );
            continue;
        }
        assert!(
            o.status == 200 || (o.status == 503 && o.answered != BEFORE),
            "{} (phase {}) on the stopped server got {}: {}\n{report}",
            tenant.host,
            o.phase,
            o.status,
            o.body
        );
        if o.status == 503 {
            assert!(o.well_formed, "{}: {}", tenant.host, o.body);
            assert!(!o.body.contains("127.0.0.1"), "{}", o.body);
            // Nothing hangs: refused within the wait for a connection plus
            // the time to try opening one.
            assert!(
                o.elapsed <= WAIT + CONNECT_TIMEOUT + SLACK,
                "{} refused after {:?}\n{report}",
                tenant.host,
                o.elapsed
            );
        }
    }
}

/// A request whose query is cut off by its server (a fast shutdown ends
/// every backend with `57P01`, as `pg_terminate_backend` does) is refused
/// with a 503 to retry, not a 500, and the tenant is served again on a new
/// connection. The query is held on a lock so that it is certainly
/// in flight when its backend is ended.
#[tokio::test]
async fn tenant_outage_a_query_cut_off_by_its_server_gets_503_not_500() {
    let fleet = TestFleet::new().await;
    let slug = create_on(&fleet, "cutoff", "local").await;
    let token = fleet.token(&slug, "member").await;
    let role = fleet.pg_name(&slug).await;
    let server = serve(&fleet, |_| {}).await;
    let tenant = crate::common::HttpClient::tenant(&server, &slug).bearer(&token);
    assert_eq!(tenant.get("/api/projects").await.status, 200);

    let locker = fleet.admin_of(&slug).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE projects IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let waiting = {
        let tenant = tenant.clone();
        tokio::spawn(async move { tenant.get("/api/projects").await })
    };
    let admin = fleet.admin("postgres").await;
    let blocked =
        "SELECT pid FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'";
    eventually("the request's query to wait on the lock", || async {
        !admin.query(blocked, &[&role]).await.unwrap().is_empty()
    })
    .await;
    let ended = admin
        .query(
            &format!("SELECT pg_terminate_backend(pid) FROM ({blocked}) b"),
            &[&role],
        )
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);

    let cut_off = waiting.await.unwrap();
    assert_eq!(cut_off.status, 503, "{}", cut_off.body);
    assert_eq!(cut_off.json()["error"]["code"], "unavailable");
    assert!(cut_off.headers.contains_key("retry-after"));
    locker.batch_execute("ROLLBACK").await.unwrap();
    // The pool may hand out the dead connection once more before its
    // socket's close is seen (one more 503), never for long.
    eventually("the tenant to be served again", || async {
        tenant.get("/api/projects").await.status == 200
    })
    .await;
    server.stop().await.unwrap();
}

/// `--pool-wait` bounds the whole wait for a connection: the wait for one of
/// the tenant's lanes and then for a slot in its server's budget together,
/// not each in turn. Server `second` (budget 1) stops answering; tenant
/// `other`'s request holds the one slot in a hung connection attempt. Tenant
/// `x` (one lane) sends a request that waits on the budget, and another a
/// half-wait later, which waits for the lane first and then on the budget.
#[tokio::test]
async fn tenant_outage_the_pool_wait_bounds_lane_and_budget_waits_together() {
    const WAIT: Duration = Duration::from_secs(2);
    let fleet = TestFleet::new().await;
    let second = fleet.second_server("second").await;
    fleet
        .control_sql("UPDATE servers SET budget = 1 WHERE name = $1", "second")
        .await;
    let (x, other) = (
        create_on(&fleet, "x", "second").await,
        create_on(&fleet, "other", "second").await,
    );
    let (tx, tother) = (
        fleet.token(&x, "member").await,
        fleet.token(&other, "member").await,
    );
    let server = serve(&fleet, |s| {
        s.pools.wait = WAIT;
        s.pools.per_tenant = 1;
        // Longer than the test: the hung attempt holds the slot throughout.
        s.pools.connect_timeout = Duration::from_secs(30);
    })
    .await;
    let dir = second.dir.clone();
    tokio::task::spawn_blocking(move || bulkhead::pg::Cluster::stop(&dir))
        .await
        .unwrap()
        .expect("stop the second server");
    let hole = black_hole(second.port).await;

    let get = |slug: &str, token: &str| {
        let client = crate::common::HttpClient::tenant(&server, slug).bearer(token);
        tokio::spawn(async move {
            let started = Instant::now();
            let reply = client.get("/api/projects").await;
            (reply.status, started.elapsed())
        })
    };
    let holder = get(&other, &tother);
    eventually("the other tenant's attempt to hold the slot", || async {
        server
            .pools
            .budget("second")
            .is_some_and(|b| b.in_use() == 1)
    })
    .await;
    let first = get(&x, &tx);
    // Not a wait for something: the second request is sent half a wait
    // after the first, so that it waits for the lane as long again.
    tokio::time::sleep(WAIT / 2).await;
    let (status, elapsed) = get(&x, &tx).await.unwrap();
    assert_eq!(status, 503);
    assert!(
        elapsed < WAIT + WAIT / 4,
        "waited {elapsed:?} for a connection with a pool wait of {WAIT:?}"
    );
    assert_eq!(first.await.unwrap().0, 503);
    holder.abort();
    hole.abort();
    server.stop().await.unwrap();
}
