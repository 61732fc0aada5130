//! `route_overhead` benchmark (see BENCHMARKS.md): what the isolation layers
//! cost per request. The same query behind bulkhead's full request path (host
//! resolution, gate, token, pool router) and behind a plain axum route with one
//! fixed pool to the same tenant database.
//!
//! `cargo bench --bench route_overhead [-- --quick] [--workers N]`
//! (`--workers`: the runtime's worker threads, by default one per core; see
//! `common::runtime`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::route::{self, Bench, CLIENTS, POOL, SLUG, Side};
use serde_json::json;

fn main() {
    let args = common::Args::parse();
    common::runtime(&args).block_on(run(args));
}

async fn run(args: common::Args) {
    let (warmup, measure) = if args.quick {
        (Duration::from_secs(1), Duration::from_secs(4))
    } else {
        (Duration::from_secs(5), Duration::from_secs(20))
    };
    let Bench {
        cluster: _cluster,
        app,
        runtime_url,
        token,
    } = route::bench_tenant().await;
    let server = route::start_bulkhead(&app).await;
    let baseline = common::serve_baseline(
        axum::Router::new()
            .route("/api/projects", axum::routing::get(route::list))
            .with_state(Arc::new(route::plain_pool(&runtime_url))),
    )
    .await;

    let sides = [
        Side {
            addr: baseline,
            host: "localhost".into(),
            token: None,
            path: "/api/projects".into(),
            cookie: None,
        },
        Side {
            addr: server.addr,
            host: format!("{SLUG}.localhost"),
            token: Some(token),
            path: "/api/projects".into(),
            cookie: None,
        },
    ];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("http client");
    // Warm both, then blocks of both (see `route::alternate`).
    let route::Alternated {
        a: mut base,
        b: mut bulk,
        ratios: block_ratios,
        slice,
        blocks,
    } = route::alternate(&client, (&sides[0], &sides[1]), warmup, measure, args.quick).await;
    let (_, spread) = common::mean_and_stderr(&block_ratios);

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
        "  ratio (bulkhead / baseline rps): {ratio} ± {} over {blocks} blocks (goal >= 0.95); p99 ratio {:.2} (goal <= 1.2)",
        common::stderr_text(spread, 3),
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
        "params": {"clients": CLIENTS, "pool": POOL, "workers": args.number("workers"), "warmup_s": warmup.as_secs(), "measure_s": measure.as_secs(),
                   "quick": args.quick, "slice_s": slice.as_secs(), "blocks": blocks,
                   "order": "warm both; then blocks of baseline, bulkhead, bulkhead, baseline (one slice each)"},
        "results": results,
        "baseline": baseline_json,
        "ratio": ratio,
        // One standard error of the mean of the blocks' own ratios.
        "ratio_stderr": (!spread.is_nan()).then(|| (spread * 1000.0).round() / 1000.0),
        "block_ratios": block_ratios.iter().map(|r| (r * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
        "p99_ratio": (p99_ratio * 100.0).round() / 100.0,
    });
    let path = common::write_report("route_overhead", &report);
    println!("  wrote {}", path.display());
    assert_eq!(bulk.errors + base.errors, 0, "requests failed");
    server.stop().await.expect("stop");
}
