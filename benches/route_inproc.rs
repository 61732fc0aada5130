//! `route_inproc`: what bulkhead's request path costs in instructions, apart
//! from everything around it. Not a scenario of BENCHMARKS.md but the other
//! half of `route_ladder`: the same rungs called directly as tower services,
//! in this thread, one request after another, each taking a tenant
//! connection and giving it back without a query, so no HTTP, no socket and
//! no PostgreSQL work is counted, only the path. Reported as CPU time of this
//! thread per request (`CLOCK_THREAD_CPUTIME_ID`, to the nanosecond).
//!
//! Rungs: `bare` (a plain route taking a connection from a fixed pool);
//! `tenant` (+ host resolution and the gate); `token` (+ the bearer token and
//! its permission); `pool` (bulkhead's `Db` instead of the fixed pool);
//! `envelope` (+ request id, span, time limit, status count); `memo` (the
//! same, with the connection info a served request carries, so the
//! per-connection memo answers); `logged` (`memo` with the log subscriber
//! `bulkhead serve` installs, at its filter (`BULKHEAD_LOG`, by default
//! `warn,bulkhead=info`), writing nowhere: what the request's span costs in
//! production).
//!
//! `cargo bench --bench route_inproc [-- --quick] [--requests N] [--rounds N]`

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::Request;
use axum::http::header::{AUTHORIZATION, HOST};
use axum::response::Response;
use axum::routing::get;
use bulkhead::auth::perm;
use bulkhead::http::Peer;
use bulkhead::http::extract::{Can, Db, Tenant};
use common::route::{self, Bench, SLUG};
use serde_json::{Value, json};
use tower::{Service, ServiceExt};

type Pool = deadpool_postgres::Pool;

fn main() {
    // One thread: the server's tasks, the pools' connections and the calls
    // all run here, so this thread's CPU is everything the path costs.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let args = common::Args::parse();
    let requests = args
        .number("requests")
        .unwrap_or(if args.quick { 20_000 } else { 200_000 });
    let rounds = args
        .number("rounds")
        .unwrap_or(if args.quick { 2 } else { 5 });
    let Bench {
        cluster: _cluster,
        app,
        runtime_url,
        token,
    } = route::bench_tenant().await;
    let server = route::start_bulkhead(&app).await;
    let pool = Arc::new(route::plain_pool(&runtime_url));
    let state = server.state.clone();
    let (p1, p2) = (pool.clone(), pool.clone());
    let with_db = || {
        Router::new()
            .route(
                "/api/projects",
                get(|_: Can<perm::ProjectRead>, Db(db): Db| async move {
                    drop(db);
                    "ok"
                }),
            )
            .with_state(state.clone())
    };
    let peer = Peer::new("127.0.0.1:9".parse().expect("address"));
    let bare = Router::new()
        .route("/api/projects", get(|State(p): State<Arc<Pool>>| take(p)))
        .with_state(pool.clone());
    let tenant = Router::new()
        .route("/api/projects", get(move |_: Tenant| take(p1.clone())))
        .with_state(state.clone());
    let token_rung = Router::new()
        .route(
            "/api/projects",
            get(move |_: Can<perm::ProjectRead>| take(p2.clone())),
        )
        .with_state(state.clone());
    let calls = Calls {
        host: format!("{SLUG}.localhost"),
        authorization: format!("Bearer {token}"),
        requests,
    };

    let names = [
        "bare", "tenant", "token", "pool", "envelope", "memo", "logged",
    ];
    let mut per_round: Vec<Vec<f64>> = names.iter().map(|_| Vec::new()).collect();
    // The first round warms every rung (caches, pools, the memo) and is not
    // counted.
    for round in 0..=rounds {
        let costs = [
            calls.cost(bare.clone(), None).await,
            calls.cost(tenant.clone(), None).await,
            calls.cost(token_rung.clone(), None).await,
            calls.cost(with_db(), None).await,
            calls
                .cost(bulkhead::http::with_envelope(with_db()), None)
                .await,
            calls
                .cost(bulkhead::http::with_envelope(with_db()), Some(peer.clone()))
                .await,
            {
                let _logging = tracing::subscriber::set_default(
                    tracing_subscriber::fmt()
                        .with_env_filter(
                            tracing_subscriber::EnvFilter::try_from_env("BULKHEAD_LOG")
                                .unwrap_or_else(|_| {
                                    tracing_subscriber::EnvFilter::new(
                                        bulkhead::cli::DEFAULT_LOG_FILTER,
                                    )
                                }),
                        )
                        .with_writer(std::io::sink)
                        .with_target(false)
                        .finish(),
                );
                calls
                    .cost(bulkhead::http::with_envelope(with_db()), Some(peer.clone()))
                    .await
            },
        ];
        if round > 0 {
            for (i, cost) in costs.into_iter().enumerate() {
                per_round[i].push(cost);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let bare_us = mean(&per_round[0]);
    println!(
        "route_inproc: {requests} requests per rung, {rounds} rounds; CPU of this thread per request (no HTTP, no query)"
    );
    let mut results = serde_json::Map::new();
    for (name, costs) in names.iter().zip(&per_round) {
        let us = mean(costs);
        println!("  {name:9} {us:>6.2} us  ({:+.2} us on bare)", us - bare_us);
        results.insert(
            name.to_string(),
            json!({"cpu_us": round2(us), "cpu_us_over_bare": round2(us - bare_us)}),
        );
    }
    let report = json!({
        "scenario": "route_inproc",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {"requests": requests, "rounds": rounds, "quick": args.quick},
        "results": Value::Object(results),
    });
    let path = common::write_report("route_inproc", &report);
    println!("  wrote {}", path.display());
    server.stop().await.expect("stop");
}

/// A connection from the fixed pool, given back at once.
async fn take(pool: Arc<Pool>) -> &'static str {
    drop(pool.get().await.expect("a connection"));
    "ok"
}

struct Calls {
    host: String,
    authorization: String,
    requests: usize,
}

impl Calls {
    /// Microseconds of this thread's CPU per request through `service`;
    /// `peer`, when given, rides on every request as a served one's would.
    async fn cost<S>(&self, mut service: S, peer: Option<Peer>) -> f64
    where
        S: Service<Request<Body>, Response = Response, Error = Infallible>,
    {
        let started = thread_cpu();
        for _ in 0..self.requests {
            let mut request = Request::get("/api/projects")
                .header(HOST, &self.host)
                .header(AUTHORIZATION, &self.authorization)
                .body(Body::empty())
                .expect("request");
            if let Some(peer) = &peer {
                request.extensions_mut().insert(ConnectInfo(peer.clone()));
            }
            let response = service
                .ready()
                .await
                .expect("ready")
                .call(request)
                .await
                .expect("infallible");
            assert!(response.status().is_success(), "{}", response.status());
        }
        (thread_cpu() - started).as_secs_f64() * 1e6 / self.requests as f64
    }
}

/// CPU time of this thread so far.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill in.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
