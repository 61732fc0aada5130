//! `memory` benchmark (see BENCHMARKS.md): what the router costs to hold.
//! Resolve 10,000 distinct tenant hosts, open pools for 1,000 tenants (each
//! used once, under the budget), then idle until the idle pools are evicted;
//! resident memory of the server process after each phase.
//!
//! `cargo bench --bench memory [-- --quick]`
//!
//! The server runs in this process, so the figures include the bench's own
//! HTTP client (small, and the same in every phase). Hosts beyond the pooled
//! tenants are control-plane rows only: resolution never opens their database.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bulkhead::control::{Mode, Plan};
use bulkhead::provision::CreateRequest;
use bulkhead::routing::HostName;
use bulkhead::serve::ServeSettings;
use serde_json::json;
use tokio::task::JoinSet;

const CLIENTS: usize = 16;
const GOAL_PEAK_MB: f64 = 200.0;
const GOAL_IDLE_MB: f64 = 100.0;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status");
    (kb / 1024.0 * 10.0).round() / 10.0
}

#[tokio::main]
async fn main() {
    let args = common::Args::parse();
    let hosts = args
        .number("hosts")
        .unwrap_or(if args.quick { 500 } else { 10_000 });
    let pools = args
        .number("pools")
        .unwrap_or(if args.quick { 40 } else { 1_000 });
    let idle = if args.quick {
        Duration::from_secs(4)
    } else {
        Duration::from_secs(30)
    };
    let started = Instant::now();
    let cluster = common::boot_cluster(300).await;
    let app = Arc::new(common::open_fleet(&cluster, "mem", 80).await);

    // Tenants with databases (schema mode: fastest to create), 4 at a time.
    let mut tokens = Vec::with_capacity(pools);
    let mut set = JoinSet::new();
    for i in 0..pools {
        let app = app.clone();
        set.spawn(async move {
            let slug = format!("p-{i:05}");
            app.provisioner
                .create(&CreateRequest {
                    slug: slug.clone(),
                    display_name: None,
                    mode: Mode::Schema,
                    plan: Plan::Free,
                    server: None,
                })
                .await
                .unwrap_or_else(|e| panic!("create {slug}: {e}"));
            slug
        });
        if set.len() >= 4 {
            tokens.push(set.join_next().await.expect("a task").expect("create"));
        }
    }
    while let Some(slug) = set.join_next().await {
        tokens.push(slug.expect("create"));
    }
    let mut with_tokens = Vec::with_capacity(pools);
    for slug in tokens {
        let tenant = app
            .provisioner
            .control()
            .tenant_by_slug(&bulkhead::control::Slug::parse(&slug).expect("slug"))
            .await
            .expect("control plane")
            .expect("tenant");
        let (_, token) =
            bulkhead::auth::Tokens::create(app.provisioner.control(), tenant.id, "member", "mem")
                .await
                .expect("token");
        with_tokens.push((format!("{slug}.localhost"), token.expose().clone()));
    }
    // The other hosts: tenant rows only.
    let control = common::connect(&common::config(&cluster, &common::control_db("mem"))).await;
    control
        .execute(
            "INSERT INTO tenants (id, slug, display_name, status, isolation_mode, server,
                                  schema_version, pg_name)
             SELECT gen_random_uuid(), 'h-' || lpad(i::text, 6, '0'), 'host ' || i, 'active',
                    'schema', 'local', 1, 't_h-' || lpad(i::text, 6, '0')
               FROM generate_series(1, $1::int) i",
            &[&(hosts.saturating_sub(pools) as i32)],
        )
        .await
        .expect("insert host-only tenants");
    let setup = started.elapsed();

    let mut settings = ServeSettings::new(
        "127.0.0.1:0".parse().expect("addr"),
        HostName::parse("localhost").expect("base"),
    );
    settings.pools.pool_idle = idle / 2;
    settings.pools.connection_idle = idle / 2;
    let server = bulkhead::serve::start(&app, &settings)
        .await
        .expect("serve");
    let client = reqwest::Client::new();
    let at_start = rss_mb();

    // 1. Resolve every host (no token: resolved, gated, then 401; no pool).
    let mut all_hosts: Vec<(String, Option<String>)> =
        with_tokens.iter().map(|(h, _)| (h.clone(), None)).collect();
    all_hosts
        .extend((1..=hosts.saturating_sub(pools)).map(|i| (format!("h-{i:06}.localhost"), None)));
    let resolved = hammer(&client, server.addr, "/api/tenant", all_hosts, 401).await;
    let after_resolve = rss_mb();

    // 2. One authenticated request per pooled tenant: a pool and a connection each.
    let with: Vec<(String, Option<String>)> = with_tokens
        .iter()
        .map(|(h, t)| (h.clone(), Some(t.clone())))
        .collect();
    let served = hammer(&client, server.addr, "/api/projects", with, 200).await;
    let after_pools = rss_mb();
    let live_after_pools = server.pools.live_pools();

    // 3. Idle: pools and connections past their idle time are closed.
    tokio::time::sleep(idle).await;
    server.pools.housekeeping().await;
    let after_idle = rss_mb();
    let live_after_idle = server.pools.live_pools();
    server.stop().await.expect("stop");

    let peak = after_resolve.max(after_pools);
    println!(
        "memory: {hosts} hosts resolved, {pools} pools opened, idle {} s (setup {:.1} s)",
        idle.as_secs(),
        setup.as_secs_f64()
    );
    println!("  RSS at start:          {at_start} MB");
    println!("  after resolving:       {after_resolve} MB ({resolved} requests)");
    println!(
        "  after opening pools:   {after_pools} MB ({served} requests, {live_after_pools} live pools)"
    );
    println!("  after idle eviction:   {after_idle} MB ({live_after_idle} live pools)");
    println!(
        "  peak {peak} MB (goal < {GOAL_PEAK_MB}), after eviction {after_idle} MB (goal < {GOAL_IDLE_MB})"
    );
    let report = json!({
        "scenario": "memory",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {"hosts": hosts, "pools": pools, "idle_s": idle.as_secs(), "quick": args.quick, "clients": CLIENTS,
                   "note": "RSS of the bench process, which runs the server and its HTTP client"},
        "results": {"after_resolve_mb": after_resolve, "after_pools_mb": after_pools, "after_idle_mb": after_idle,
                    "peak_mb": peak, "live_pools_after_pools": live_after_pools, "live_pools_after_idle": live_after_idle},
        "baseline": {"at_start_mb": at_start},
        "ratio": (peak / GOAL_PEAK_MB * 1000.0).round() / 1000.0,
    });
    let path = common::write_report("memory", &report);
    println!("  wrote {}", path.display());
    assert_eq!(live_after_idle, 0, "idle pools were not evicted");
}

/// One request per host, CLIENTS at a time; every answer must be `expect`.
async fn hammer(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    path: &str,
    hosts: Vec<(String, Option<String>)>,
    expect: u16,
) -> usize {
    let queue = Arc::new(std::sync::Mutex::new(hosts));
    let mut set = JoinSet::new();
    for _ in 0..CLIENTS {
        let (queue, client, url) = (
            queue.clone(),
            client.clone(),
            format!("http://{addr}{path}"),
        );
        set.spawn(async move {
            let mut n = 0;
            loop {
                let Some((host, token)) = queue.lock().expect("queue").pop() else {
                    return n;
                };
                let mut req = client.get(&url).header("host", &host);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                assert_eq!(status, expect, "{host}{url}");
                n += 1;
            }
        });
    }
    let mut total = 0;
    while let Some(n) = set.join_next().await {
        total += n.expect("a client");
    }
    total
}
