//! `route_ladder`: where `route_overhead`'s difference goes. Not a scenario of
//! BENCHMARKS.md but its breakdown: the same request against rungs that add
//! bulkhead's request path one piece at a time, from the baseline's bare
//! route to the full server, measured in alternating rounds (forwards, then
//! backwards) and reported as this process's CPU per request, which is far
//! steadier on a shared machine than requests per second.
//!
//! Rungs: `base` (bare route, fixed pool); `tenant` (+ host resolution and
//! the gate); `can` (+ the bearer token and its permission); `db` (+ the pool
//! router instead of the fixed pool); `real` (bulkhead's own handler);
//! `envelope` (+ request id, span, time limit, status count); `full` (the
//! server itself: every route, connection info and its per-connection memo).
//! Every rung gets the same host and token. And a yardstick, `spin`: the bare
//! route plus one microsecond of arithmetic that touches no memory
//! (calibrated at start), which shows what one known microsecond of work
//! per request costs once it is measured over HTTP on this machine
//! (`--spin-us N`: N microseconds instead).
//!
//! `cargo bench --bench route_ladder [-- --quick] [--rounds N] [--secs S]
//! [--rungs base,full] [--workers N] [--spin-us N]` (`--rungs`: only those,
//! in that order; the first is what the others are compared with;
//! `--workers`: see `common::runtime`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use bulkhead::auth::perm;
use bulkhead::http::api::{Page, PageQuery};
use bulkhead::http::extract::{Can, Db, Tenant};
use bulkhead::reference::projects::{Project, list_projects};
use common::route::{self, Bench, CLIENTS, POOL, SLUG, Side, Tally};
use serde_json::{Value, json};

fn main() {
    let args = common::Args::parse();
    common::runtime(&args).block_on(run(args));
}

async fn run(args: common::Args) {
    let spin_us = args.number("spin-us").unwrap_or(1) as u64;
    let spin_n = calibrate_spin() * spin_us;
    let rounds = args
        .number("rounds")
        .unwrap_or(if args.quick { 1 } else { 6 });
    let secs = args
        .number("secs")
        .unwrap_or(if args.quick { 1 } else { 3 }) as u64;
    let Bench {
        cluster: _cluster,
        app,
        runtime_url,
        token,
    } = route::bench_tenant().await;
    let server = route::start_bulkhead(&app).await;
    let pool = Arc::new(route::plain_pool(&runtime_url));
    let state = server.state.clone();
    let bulkhead_route = || {
        Router::new()
            .route("/api/projects", get(list_projects))
            .with_state(state.clone())
    };
    let with_pool = |pool: &Arc<Pool>| State(pool.clone());
    let (p1, p2) = (pool.clone(), pool.clone());
    let rungs: Vec<(&str, Router)> = vec![
        (
            "base",
            Router::new()
                .route("/api/projects", get(route::list))
                .with_state(pool.clone()),
        ),
        (
            "spin",
            Router::new()
                .route(
                    "/api/projects",
                    get(
                        move |pool: State<Arc<Pool>>, page: Query<PageQuery>| async move {
                            spin(spin_n);
                            route::list(pool, page).await
                        },
                    ),
                )
                .with_state(pool.clone()),
        ),
        (
            "tenant",
            Router::new()
                .route(
                    "/api/projects",
                    get(move |_: Tenant, page: Query<PageQuery>| route::list(with_pool(&p1), page)),
                )
                .with_state(state.clone()),
        ),
        (
            "can",
            Router::new()
                .route(
                    "/api/projects",
                    get(move |_: Can<perm::ProjectRead>, page: Query<PageQuery>| {
                        route::list(with_pool(&p2), page)
                    }),
                )
                .with_state(state.clone()),
        ),
        (
            "db",
            Router::new()
                .route("/api/projects", get(list_with_db))
                .with_state(state.clone()),
        ),
        ("real", bulkhead_route()),
    ];
    let mut sides = Vec::new();
    for (name, router) in rungs {
        sides.push((name, common::serve_baseline(router).await));
    }
    let enveloped = bulkhead::http::with_envelope(bulkhead_route());
    sides.push(("envelope", common::serve_service(enveloped).await));
    sides.push(("full", server.addr));
    if let Some(wanted) = args.value("rungs") {
        let wanted: Vec<&str> = wanted.split(',').map(str::trim).collect();
        for name in &wanted {
            assert!(
                sides.iter().any(|(rung, _)| rung == name),
                "--rungs: no rung `{name}`"
            );
        }
        sides = wanted
            .iter()
            .filter_map(|name| sides.iter().find(|(rung, _)| rung == name).copied())
            .collect();
    }
    let sides: Vec<(&str, Side)> = sides
        .into_iter()
        .map(|(name, addr)| {
            let side = Side {
                addr,
                host: format!("{SLUG}.localhost"),
                token: Some(token.clone()),
                path: "/api/projects".into(),
                cookie: None,
            };
            (name, side)
        })
        .collect();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("http client");
    for (_, side) in &sides {
        route::load(&client, side, Duration::from_secs(secs)).await;
    }
    let mut tallies: Vec<Tally> = sides.iter().map(|_| Tally::default()).collect();
    // CPU per request of each rung in each round, for the spread of the
    // difference: the machine drifts between rounds, far less within one.
    let mut per_round: Vec<Vec<f64>> = sides.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let tally = route::load(&client, &sides[i].1, Duration::from_secs(secs)).await;
            per_round[i].push(tally.cpu_per_request_us());
            tallies[i].merge(tally);
        }
    }
    println!(
        "route_ladder: {CLIENTS} clients, {rounds} rounds of {secs} s per rung; CPU per request of this process (client + server)"
    );
    let first = sides[0].0;
    let mut results = serde_json::Map::new();
    for (i, ((name, _), tally)) in sides.iter().zip(tallies.iter_mut()).enumerate() {
        let cpu = tally.cpu_per_request_us();
        let (difference, error) = paired_difference(&per_round[i], &per_round[0]);
        let mut summary = tally.summary();
        summary["cpu_us_over_first"] = json!((difference * 10.0).round() / 10.0);
        // One round has no spread: null in the JSON, `?` on screen.
        summary["cpu_us_over_first_stderr"] =
            json!((!error.is_nan()).then(|| (error * 10.0).round() / 10.0));
        println!(
            "  {name:9} {:>8} req/s  p99 {:>5} ms  {cpu:>6} us, kernel {:>5} us  ({difference:+.1} ± {} us on {first})",
            summary["rps"],
            summary["p99_ms"],
            tally.system_cpu_per_request_us(),
            common::stderr_text(error, 1),
        );
        results.insert(name.to_string(), summary);
    }
    println!("  (± one standard error of the mean of the per-round differences)");
    let report = json!({
        "scenario": "route_ladder",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {"clients": CLIENTS, "workers": args.number("workers"), "pool": POOL, "rounds": rounds, "secs_per_rung": secs, "quick": args.quick, "rungs": sides.iter().map(|(name, _)| *name).collect::<Vec<_>>()},
        "results": Value::Object(results),
    });
    let path = common::write_report("route_ladder", &report);
    println!("  wrote {}", path.display());
    assert_eq!(
        tallies.iter().map(|t| t.errors).sum::<usize>(),
        0,
        "requests failed"
    );
    server.stop().await.expect("stop");
}

type Pool = deadpool_postgres::Pool;

/// The mean of `a[r] - b[r]` over the rounds, and its standard error.
fn paired_difference(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    common::mean_and_stderr(&d)
}

/// The baseline's query on a connection from bulkhead's `Db` extractor.
async fn list_with_db(
    Db(db): Db,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<Page<Project>>, axum::http::StatusCode> {
    route::projects_page(&db, &page).await
}

/// Iterations of [`spin`] that take a microsecond on this thread, unloaded.
fn calibrate_spin() -> u64 {
    const N: u64 = 20_000_000;
    let started = std::time::Instant::now();
    spin(N);
    let per_us = N as f64 / (started.elapsed().as_secs_f64() * 1e6);
    println!("spin: {per_us:.0} iterations per us");
    per_us.round() as u64
}

/// `n` dependent multiply-adds in registers: CPU work and nothing else.
fn spin(n: u64) {
    let mut x = 1u64;
    for i in 0..n {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i));
    }
    std::hint::black_box(x);
}
