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
//! Every rung gets the same host and token.
//!
//! `cargo bench --bench route_ladder [-- --quick] [--rounds N] [--secs S]`

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use bulkhead::auth::perm;
use bulkhead::http::api::Page;
use bulkhead::http::api::projects::{Project, list_projects};
use bulkhead::http::extract::{Can, Db, Tenant};
use common::route::{self, Bench, CLIENTS, POOL, SLUG, Side, Tally};
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let args = common::Args::parse();
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
            "tenant",
            Router::new()
                .route(
                    "/api/projects",
                    get(move |_: Tenant| route::list(with_pool(&p1))),
                )
                .with_state(state.clone()),
        ),
        (
            "can",
            Router::new()
                .route(
                    "/api/projects",
                    get(move |_: Can<perm::ProjectRead>| route::list(with_pool(&p2))),
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
        ("envelope", bulkhead::http::with_envelope(bulkhead_route())),
    ];
    let mut sides = Vec::new();
    for (name, router) in rungs {
        sides.push((name, common::serve_baseline(router).await));
    }
    sides.push(("full", server.addr));
    let sides: Vec<(&str, Side)> = sides
        .into_iter()
        .map(|(name, addr)| {
            let side = Side {
                addr,
                host: format!("{SLUG}.localhost"),
                token: Some(token.clone()),
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
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let tally = route::load(&client, &sides[i].1, Duration::from_secs(secs)).await;
            tallies[i].merge(tally);
        }
    }
    println!(
        "route_ladder: {CLIENTS} clients, {rounds} rounds of {secs} s per rung; CPU per request of this process (client + server)"
    );
    let base_cpu = tallies[0].cpu_per_request_us();
    let mut results = serde_json::Map::new();
    for ((name, _), tally) in sides.iter().zip(tallies.iter_mut()) {
        let cpu = tally.cpu_per_request_us();
        let summary = tally.summary();
        println!(
            "  {name:9} {:>8} req/s  p99 {:>5} ms  {cpu:>6} us  ({:+.1} us on base)",
            summary["rps"],
            summary["p99_ms"],
            cpu - base_cpu
        );
        results.insert(name.to_string(), summary);
    }
    let report = json!({
        "scenario": "route_ladder",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {"clients": CLIENTS, "pool": POOL, "rounds": rounds, "secs_per_rung": secs, "quick": args.quick},
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

/// The baseline's query on a connection from bulkhead's `Db` extractor.
async fn list_with_db(Db(db): Db) -> Result<axum::Json<Page<Project>>, axum::http::StatusCode> {
    route::projects_page(&db).await
}
