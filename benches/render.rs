//! `render` benchmark (see BENCHMARKS.md, "page rendering against the JSON
//! route"): what a server-rendered page costs against the JSON route with
//! the same data. One project with 30 tasks; `GET /projects/{id}` (the
//! board, HTML from askama templates: the project and its tasks, two
//! queries) against `GET /api/projects/{id}/tasks` (the same tasks as JSON),
//! both through bulkhead's whole request path with the same session cookie.
//! Then one client alone on each, for the time a page takes with nothing
//! queued (the server's time plus loopback).
//!
//! `cargo bench --bench render [-- --quick] [--workers N]`

mod common;

use std::time::Duration;

use common::route::{self, Bench, CLIENTS, SLUG, Side};
use serde_json::json;

/// Tasks on the benched project's board.
const TASKS: i64 = 30;

fn main() {
    let args = common::Args::parse();
    common::runtime(&args).block_on(run(args));
}

/// A member with a password, logged in: the session cookie.
async fn session(bench: &Bench, server: &bulkhead::serve::Running) -> String {
    let control = bench.app.provisioner.control();
    let email = "render-bench@example.com";
    let password = "render bench passphrase";
    let user = control
        .insert_user(email, "Bench", &bulkhead::auth::passwords::hash(password))
        .await
        .expect("control plane")
        .expect("a new user");
    let tenant = control
        .tenant_by_slug(&bulkhead::control::Slug::parse(SLUG).expect("slug"))
        .await
        .expect("control plane")
        .expect("the tenant");
    control
        .add_membership(user.id, tenant.id, bulkhead::auth::Role::Member)
        .await
        .expect("membership");
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/login", server.addr))
        .header("host", format!("{SLUG}.localhost"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("log in");
    assert!(r.status().is_success(), "log-in: {}", r.status());
    r.headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_string()
}

async fn run(args: common::Args) {
    let (warmup, measure, alone) = if args.quick {
        (
            Duration::from_secs(1),
            Duration::from_secs(4),
            Duration::from_secs(2),
        )
    } else {
        (
            Duration::from_secs(5),
            Duration::from_secs(20),
            Duration::from_secs(10),
        )
    };
    let bench = route::bench_tenant().await;
    let seed = common::connect(&bench.runtime_url.parse().expect("runtime URL")).await;
    seed.batch_execute(&format!(
        "INSERT INTO tasks (project_id, title, status)
         SELECT 1, 'task ' || i, (ARRAY['todo', 'doing', 'done'])[1 + i % 3]
           FROM generate_series(1, {TASKS}) i"
    ))
    .await
    .expect("seed tasks");
    let server = route::start_bulkhead(&bench.app).await;
    let cookie = session(&bench, &server).await;
    let side = |path: &str| Side {
        addr: server.addr,
        host: format!("{SLUG}.localhost"),
        token: None,
        path: path.into(),
        cookie: Some(cookie.clone()),
    };
    let sides = [side("/api/projects/1/tasks?limit=100"), side("/projects/1")];
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("http client");
    // What each answers, once: both must be the same data, and 200.
    let mut bytes = Vec::new();
    for s in &sides {
        let r = client
            .get(format!("http://{}{}", s.addr, s.path))
            .header("host", &s.host)
            .header("cookie", s.cookie.as_deref().unwrap_or(""))
            .send()
            .await
            .expect("a first request");
        assert_eq!(r.status(), 200, "{}", s.path);
        let body = r.text().await.expect("body");
        // Each task once: its JSON title, or its card on the board.
        let marker = if s.path.starts_with("/api/") {
            "\"title\":\"task "
        } else {
            "</a></h3>"
        };
        assert_eq!(body.matches(marker).count() as i64, TASKS, "{}", s.path);
        bytes.push(body.len());
    }

    // Warm both, then blocks of both (see `route::alternate`).
    let route::Alternated {
        a: mut json_side,
        b: mut page,
        ratios: block_ratios,
        slice,
        blocks,
    } = route::alternate(&client, (&sides[0], &sides[1]), warmup, measure, args.quick).await;
    let (_, spread) = common::mean_and_stderr(&block_ratios);
    // One client alone: nothing queued.
    let mut json_alone = route::load_with(&client, &sides[0], 1, alone).await;
    let mut page_alone = route::load_with(&client, &sides[1], 1, alone).await;

    let ratio = (page.rps() / json_side.rps() * 1000.0).round() / 1000.0;
    let (results, baseline) = (page.summary(), json_side.summary());
    let (results_alone, baseline_alone) = (page_alone.summary(), json_alone.summary());
    println!(
        "render: {CLIENTS} clients, {}s per side; {TASKS} tasks; page {} bytes, JSON {} bytes",
        measure.as_secs(),
        bytes[1],
        bytes[0]
    );
    for (name, loaded, single) in [
        ("JSON route", &baseline, &baseline_alone),
        ("page (HTML)", &results, &results_alone),
    ] {
        println!(
            "  {name}: {} req/s, p50 {} ms, p99 {} ms, {} errors; one client alone: p50 {} ms, p99 {} ms",
            loaded["rps"],
            loaded["p50_ms"],
            loaded["p99_ms"],
            loaded["errors"],
            single["p50_ms"],
            single["p99_ms"]
        );
    }
    println!(
        "  ratio (page / JSON rps): {ratio} ± {} over {blocks} blocks (goal >= 0.8); page p99 alone {} ms (goal < 5)",
        common::stderr_text(spread, 3),
        results_alone["p99_ms"]
    );
    let report = json!({
        "scenario": "render",
        "git": common::git_sha(),
        "machine": common::machine(),
        "params": {"clients": CLIENTS, "tasks": TASKS, "workers": args.number("workers"),
                   "warmup_s": warmup.as_secs(), "measure_s": measure.as_secs(), "alone_s": alone.as_secs(),
                   "quick": args.quick, "slice_s": slice.as_secs(), "blocks": blocks,
                   "page": sides[1].path, "json": sides[0].path,
                   "order": "warm both; then blocks of JSON, page, page, JSON (one slice each); then one client alone on each"},
        "results": results,
        "results_alone": results_alone,
        "baseline": baseline,
        "baseline_alone": baseline_alone,
        "page_bytes": bytes[1],
        "json_bytes": bytes[0],
        "ratio": ratio,
        "ratio_stderr": (!spread.is_nan()).then(|| (spread * 1000.0).round() / 1000.0),
        "block_ratios": block_ratios.iter().map(|r| (r * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
    });
    let path = common::write_report("render", &report);
    println!("  wrote {}", path.display());
    assert_eq!(
        page.errors + json_side.errors + page_alone.errors + json_alone.errors,
        0,
        "requests failed"
    );
    server.stop().await.expect("stop");
}
