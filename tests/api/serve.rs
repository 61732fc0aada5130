//! The request path over real HTTP: host resolution, the gate, tokens bound to
//! one tenant, the pool budget, server failure, and NOTIFY invalidation.

use std::time::Duration;

use crate::common::{TestFleet, eventually, http, serve};
use bulkhead::control::Mode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn two_tenants() -> (TestFleet, String, String) {
    let fleet = TestFleet::new().await;
    let a = fleet.tenant("acme", Mode::Database).await;
    let b = fleet.tenant("globex", Mode::Schema).await;
    (fleet, a, b)
}

fn host(slug: &str) -> String {
    format!("{slug}.localhost")
}

/// Waits until the server listens for routing changes (its listener drops
/// every cache once LISTEN is in place, which moves the resolver's epoch):
/// from then on only a NOTIFY makes a change visible before a cache expires.
async fn listening(server: &bulkhead::serve::Running) {
    eventually("the routing listener", || async {
        server.resolver.epoch() > 0
    })
    .await;
}

/// Long enough that no cache entry expires during a test: a change that
/// shows must have come by NOTIFY.
const FOREVER: Duration = Duration::from_secs(24 * 3600);

#[tokio::test]
async fn hosts_are_normalised_and_garbage_gets_400_without_a_lookup() {
    let (fleet, a, _) = two_tenants().await;
    let server = serve(&fleet, |_| {}).await;
    let token = fleet.token(&a, "member").await;
    for (h, want) in [
        (host(&a), 200),
        (format!("{}:8080", host(&a).to_uppercase()), 200),
        (format!("{}.", host(&a)), 200),
        (format!("{}.:443", host(&a)), 200),
        ("127.0.0.1".to_string(), 400),
        ("[::1]:80".to_string(), 400),
        (format!("{}:99999", host(&a)), 400),
        (format!("{}..localhost", a), 400),
        ("a_b.localhost".to_string(), 400),
        (format!("{}.example.com", "x".repeat(64)), 400),
        ("evil.com".to_string(), 404),
        (format!("{}.localhost.evil.com", a), 404),
        ("admin.localhost".to_string(), 404),
        ("www.localhost".to_string(), 404),
        ("localhost".to_string(), 404),
    ] {
        let r = http(server.addr, "GET", &h, "/api/tenant", Some(&token), None).await;
        assert_eq!(r.status, want, "Host: {h}: {}", r.body);
    }
    // No Host header at all (HTTP/1.0): 400.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /api/tenant HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).await.unwrap();
    assert!(
        reply.starts_with("HTTP/1.0 400") || reply.starts_with("HTTP/1.1 400"),
        "{reply}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_gate_answers_each_status_and_unknown_and_deleted_are_indistinguishable() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("gate", Mode::Database).await;
    let gone = fleet.tenant("gone", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let token = fleet.token(&slug, "member").await;
    let h = host(&slug);
    let get = || http(server.addr, "GET", &h, "/api/projects", Some(&token), None);
    assert_eq!(get().await.status, 200);
    for (status, version, code) in [
        ("suspended", 1, 403),
        ("provisioning", 1, 503),
        ("migrating", 1, 503),
        ("migration_failed", 1, 503),
        ("active", 999, 503),
        ("active", 1, 200),
    ] {
        fleet
            .control_sql(
                &format!("UPDATE tenants SET status = '{status}', schema_version = {version} WHERE slug = $1"),
                &slug,
            )
            .await;
        eventually(&format!("{status} v{version} -> {code}"), || async {
            get().await.status == code
        })
        .await;
        let r = get().await;
        if code == 503 {
            assert_eq!(r.headers["retry-after"], "5", "{status}");
        }
        assert!(r.json()["error"]["code"].is_string() || code == 200);
    }
    // The deleted tenant's own token, which worked on its host: the 404 that
    // follows comes from the gate, not from a token bound to another tenant.
    let gone_token = fleet.token(&gone, "member").await;
    let gone_host = host(&gone);
    let on_gone = || {
        http(
            server.addr,
            "GET",
            &gone_host,
            "/api/projects",
            Some(&gone_token),
            None,
        )
    };
    assert_eq!(on_gone().await.status, 200);
    fleet.p().delete(&gone, None).await.unwrap();
    eventually("the deleted tenant's host to answer 404", || async {
        on_gone().await.status == 404
    })
    .await;
    let deleted = on_gone().await;
    let unknown = http(
        server.addr,
        "GET",
        "never-existed.localhost",
        "/api/projects",
        Some(&gone_token),
        None,
    )
    .await;
    assert_eq!((deleted.status, unknown.status), (404, 404));
    assert_eq!(
        deleted.body, unknown.body,
        "deleted and unknown must be byte-identical"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn nothing_crosses_tenants_over_http() {
    let (fleet, a, b) = two_tenants().await;
    let server = serve(&fleet, |_| {}).await;
    let ta = fleet.token(&a, "admin").await;
    let tb = fleet.token(&b, "admin").await;
    let secret_name = "globex-secret-plans";
    let created = http(
        server.addr,
        "POST",
        &host(&b),
        "/api/projects",
        Some(&tb),
        Some(json!({"name": secret_name})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let b_project = created.json()["id"].as_i64().unwrap();
    // A project of acme's whose id globex has no project under: a row that
    // exists only in acme's database (ids start anew in each tenant).
    let a_project = loop {
        let created = http(
            server.addr,
            "POST",
            &host(&a),
            "/api/projects",
            Some(&ta),
            Some(json!({"name": "acme-only"})),
        )
        .await;
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.json()["id"].as_i64().unwrap();
        if id != b_project {
            break id;
        }
    };
    let in_globex: i64 = fleet
        .admin_of(&b)
        .await
        .query_one("SELECT count(*) FROM projects WHERE id = $1", &[&a_project])
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_globex, 0, "globex has a project {a_project} of its own");
    let unknown = http(
        server.addr,
        "GET",
        "nobody.localhost",
        "/api/projects",
        Some(&ta),
        None,
    )
    .await;

    let (bearer_a, bearer_b) = (format!("Bearer {ta}"), format!("Bearer {tb}"));
    let as_a = vec![("authorization", bearer_a.as_str())];
    let attempts = [
        // acme's token on globex's host
        (
            "GET",
            host(&b),
            "/api/projects".to_string(),
            as_a.clone(),
            None,
        ),
        (
            "GET",
            host(&b),
            format!("/api/projects/{b_project}"),
            as_a.clone(),
            None,
        ),
        (
            "POST",
            host(&b),
            "/api/projects".to_string(),
            as_a.clone(),
            Some(json!({"name": "x"})),
        ),
        (
            "DELETE",
            host(&b),
            format!("/api/projects/{b_project}"),
            as_a.clone(),
            None,
        ),
        // acme's project id on globex's host, with globex's token: a row that
        // exists only in acme's database is simply not there.
        (
            "GET",
            host(&b),
            format!("/api/projects/{a_project}"),
            vec![("authorization", bearer_b.as_str())],
            None,
        ),
        // X-Tenant-ID naming globex on the API host, with acme's token
        (
            "GET",
            "api.localhost".to_string(),
            "/api/projects".to_string(),
            vec![
                ("authorization", bearer_a.as_str()),
                ("x-tenant-id", b.as_str()),
            ],
            None,
        ),
    ];
    for (method, h, path, headers, body) in attempts {
        let r = crate::common::request(server.addr, method, &h, &path, &headers, body).await;
        assert_eq!(r.status, 404, "{method} {h}{path}: {}", r.body);
        assert_eq!(r.body, unknown.body, "{method} {h}{path}");
        assert!(!r.body.contains(secret_name));
        assert!(!r.body.contains("acme-only"));
    }
    // X-Tenant-ID: only with a token of that very tenant.
    let r = crate::common::request(
        server.addr,
        "GET",
        "api.localhost",
        "/api/projects",
        &[("authorization", &bearer_b), ("x-tenant-id", &b)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(secret_name));
    // acme's project is there for acme.
    let r = http(
        server.addr,
        "GET",
        &host(&a),
        &format!("/api/projects/{a_project}"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The project is still there for its owner.
    let r = http(
        server.addr,
        "GET",
        &host(&b),
        &format!("/api/projects/{b_project}"),
        Some(&tb),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn projects_and_tasks_crud_with_pages_validation_roles_and_audit() {
    let (fleet, a, _) = two_tenants().await;
    // More projects than the free plan allows.
    let t = fleet.tenant_row(&a).await;
    fleet
        .p()
        .control()
        .set_plan(t.id, bulkhead::control::Plan::Pro)
        .await
        .unwrap();
    let server = serve(&fleet, |_| {}).await;
    let admin = fleet.token(&a, "admin").await;
    let viewer = fleet.token(&a, "viewer").await;
    let h = host(&a);
    let call =
        |method: &'static str, path: String, token: &str, body: Option<serde_json::Value>| {
            let (h, token) = (h.clone(), token.to_string());
            async move { http(server.addr, method, &h, &path, Some(&token), body).await }
        };
    for i in 0..5 {
        let r = call(
            "POST",
            "/api/projects".into(),
            &admin,
            Some(json!({"name": format!("p{i}")})),
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let page = call("GET", "/api/projects?limit=2".into(), &viewer, None)
        .await
        .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["name"], "p4");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let next = call(
        "GET",
        format!("/api/projects?limit=2&cursor={cursor}"),
        &viewer,
        None,
    )
    .await
    .json();
    assert_eq!(next["items"][0]["name"], "p2");
    let last = call("GET", "/api/projects?limit=10".into(), &viewer, None)
        .await
        .json();
    assert!(last["next_cursor"].is_null());

    let bad = call(
        "POST",
        "/api/projects".into(),
        &admin,
        Some(json!({"name": ""})),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.json()["error"]["fields"]["name"],
        "must be 1-200 characters"
    );
    let bad = call("GET", "/api/projects?limit=1000".into(), &admin, None).await;
    assert_eq!(bad.status, 422);
    assert!(bad.json()["error"]["fields"]["limit"].is_string());
    let forbidden = call(
        "POST",
        "/api/projects".into(),
        &viewer,
        Some(json!({"name": "nope"})),
    )
    .await;
    assert_eq!(forbidden.status, 403);
    let unauthenticated = http(server.addr, "GET", &h, "/api/projects", None, None).await;
    assert_eq!(unauthenticated.status, 401);

    let project = last["items"][0]["id"].as_i64().unwrap();
    let task = call(
        "POST",
        format!("/api/projects/{project}/tasks"),
        &admin,
        Some(json!({"title": "write tests", "due_date": "2026-12-24", "status": "doing"})),
    )
    .await;
    assert_eq!(task.status, 201, "{}", task.body);
    let task_id = task.json()["id"].as_i64().unwrap();
    assert_eq!(task.json()["due_date"], "2026-12-24");
    let bad = call(
        "POST",
        format!("/api/projects/{project}/tasks"),
        &admin,
        Some(json!({"title": "", "due_date": "2026-02-31", "status": "blocked"})),
    )
    .await;
    assert_eq!(bad.status, 422);
    let fields = &bad.json()["error"]["fields"];
    assert!(
        fields["title"].is_string()
            && fields["due_date"].is_string()
            && fields["status"].is_string(),
        "{fields}"
    );
    let patched = call(
        "PATCH",
        format!("/api/tasks/{task_id}"),
        &admin,
        Some(json!({"status": "done"})),
    )
    .await;
    assert_eq!(patched.json()["status"], "done");
    let tasks = call(
        "GET",
        format!("/api/projects/{project}/tasks"),
        &viewer,
        None,
    )
    .await
    .json();
    assert_eq!(tasks["items"][0]["id"], task_id);
    assert_eq!(
        call("DELETE", format!("/api/tasks/{task_id}"), &admin, None)
            .await
            .status,
        204
    );
    assert_eq!(
        call("GET", format!("/api/tasks/{task_id}"), &admin, None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(
            "PATCH",
            format!("/api/projects/{project}"),
            &admin,
            Some(json!({"archived": true}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        call("DELETE", format!("/api/projects/{project}"), &admin, None)
            .await
            .status,
        204
    );
    assert_eq!(
        call("GET", "/api/projects/abc".into(), &admin, None)
            .await
            .status,
        404
    );

    // Every write is in the tenant's own audit log.
    let rows = fleet
        .admin_of(&a)
        .await
        .query("SELECT action FROM audit_log ORDER BY id", &[])
        .await
        .unwrap();
    let actions: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for action in [
        "project.create",
        "task.create",
        "task.update",
        "task.delete",
        "project.update",
        "project.delete",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} missing from {actions:?}"
        );
    }
    assert_eq!(actions.iter().filter(|a| *a == "project.create").count(), 5);
    server.stop().await.unwrap();
}

/// Instance two caches acme for a day: only the NOTIFY of the suspension,
/// made through instance one's fleet, can make it answer 403.
#[tokio::test]
async fn a_suspension_on_one_instance_reaches_the_other_by_notify() {
    let (fleet, a, _) = two_tenants().await;
    let one = serve(&fleet, |_| {}).await;
    let two = serve(&fleet, |s| s.resolve_ttl = FOREVER).await;
    let token = fleet.token(&a, "member").await;
    let get = |s: &bulkhead::serve::Running| {
        let (addr, token) = (s.addr, token.clone());
        let h = host(&a);
        async move { http(addr, "GET", &h, "/api/projects", Some(&token), None).await }
    };
    // Both listening, both caches warm.
    for s in [&one, &two] {
        listening(s).await;
        assert_eq!(get(s).await.status, 200);
    }
    fleet.p().suspend(&a).await.unwrap();
    eventually("the suspension to reach instance two", || async {
        get(&two).await.status == 403
    })
    .await;
    fleet.p().resume(&a).await.unwrap();
    eventually("the resumption to reach instance two", || async {
        get(&two).await.status == 200
    })
    .await;
    one.stop().await.unwrap();
    two.stop().await.unwrap();
}

/// Tokens are cached for a minute; the revocation's NOTIFY ends it before.
#[tokio::test]
async fn a_revoked_token_stops_working_by_notify() {
    let (fleet, a, _) = two_tenants().await;
    let server = serve(&fleet, |_| {}).await;
    let token = fleet.token(&a, "member").await;
    listening(&server).await;
    eventually("serving", || async {
        http(
            server.addr,
            "GET",
            &host(&a),
            "/api/tenant",
            Some(&token),
            None,
        )
        .await
        .status
            == 200
    })
    .await;
    let t = fleet.tenant_row(&a).await;
    let id = fleet.p().control().tokens(t.id).await.unwrap()[0].id;
    assert!(fleet.p().control().revoke_token(t.id, id).await.unwrap());
    eventually("revocation", || async {
        http(
            server.addr,
            "GET",
            &host(&a),
            "/api/tenant",
            Some(&token),
            None,
        )
        .await
        .status
            == 401
    })
    .await;
    server.stop().await.unwrap();
}

/// Connections to database `db` right now (anyone's).
async fn connections_to(fleet: &TestFleet, db: &str) -> i64 {
    fleet
        .admin("postgres")
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
            &[&db],
        )
        .await
        .unwrap()
        .get(0)
}

/// The budget is checked by PostgreSQL, not by sampling: every tenant lives in
/// the fleet's shared database (schema mode), whose CONNECTION LIMIT is the
/// budget, so one connection over the budget would be refused ("too many
/// connections") and its request would fail. The router's own high-water
/// mark says the budget was reached, never passed.
#[tokio::test]
async fn the_budget_holds_across_many_tenants_and_every_request_gets_200_or_503() {
    const BUDGET: usize = 3;
    let fleet = TestFleet::new().await;
    fleet
        .control_sql(
            &format!("UPDATE servers SET budget = {BUDGET} WHERE name = $1"),
            "local",
        )
        .await;
    let mut slugs = Vec::new();
    let mut tokens = Vec::new();
    for i in 0..8 {
        let slug = fleet.tenant(&format!("b{i}"), Mode::Schema).await;
        tokens.push(fleet.token(&slug, "member").await);
        slugs.push(slug);
    }
    let shared = fleet.args.shared_db.clone();
    let admin = fleet.admin("postgres").await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{shared}\" CONNECTION LIMIT {BUDGET}"
        ))
        .await
        .unwrap();
    // The provisioner's idle admin connections there (closed only after a
    // while) would count against the limit too: ended now.
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&shared],
        )
        .await
        .unwrap();
    eventually("the provisioner to leave the shared database", || async {
        connections_to(&fleet, &shared).await == 0
    })
    .await;
    let burst = |addr: std::net::SocketAddr| {
        let mut requests = tokio::task::JoinSet::new();
        for _round in 0..6 {
            for (slug, token) in slugs.iter().zip(&tokens) {
                let (h, token) = (host(slug), token.clone());
                requests.spawn(async move {
                    http(addr, "GET", &h, "/api/projects", Some(&token), None).await
                });
            }
        }
        requests.join_all()
    };

    // Waits long enough never to give up: every request is served, the
    // budget was spent (eight tenants, three slots) and never overspent.
    let patient = serve(&fleet, |s| {
        s.pools.wait = Duration::from_secs(60);
        s.pools.connect_timeout = Duration::from_secs(60);
    })
    .await;
    for r in burst(patient.addr).await {
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let budget = patient.pools.budget("local").unwrap();
    assert_eq!(budget.high_water(), BUDGET, "connections held at once");
    patient.stop().await.unwrap();
    eventually("the first server's connections to close", || async {
        connections_to(&fleet, &shared).await == 0
    })
    .await;

    // No wait at all: a tenant that finds the budget spent gets a 503 with
    // Retry-After at once (a freed slot comes only after a round trip to the
    // server), the first ones are served, and nothing else is answered.
    let impatient = serve(&fleet, |s| {
        s.pools.wait = Duration::ZERO;
        s.pools.pool_idle = Duration::from_secs(1);
        s.pools.connection_idle = Duration::from_secs(1);
    })
    .await;
    let mut statuses = std::collections::BTreeMap::new();
    for r in burst(impatient.addr).await {
        assert!(
            r.status == 200 || r.status == 503,
            "{}: {}",
            r.status,
            r.body
        );
        if r.status == 503 {
            assert_eq!(r.json()["error"]["code"], "unavailable", "{}", r.body);
            assert_eq!(r.headers["retry-after"], "5", "{}", r.body);
        }
        *statuses.entry(r.status).or_insert(0) += 1;
    }
    assert!(statuses.contains_key(&200), "{statuses:?}");
    assert!(statuses.contains_key(&503), "{statuses:?}");
    let budget = impatient.pools.budget("local").unwrap();
    assert!(budget.high_water() <= BUDGET, "{}", budget.high_water());

    // Idle connections and pools are closed.
    eventually("idle pools to be evicted", || async {
        impatient.pools.housekeeping().await;
        impatient.pools.live_pools() == 0 && connections_to(&fleet, &shared).await == 0
    })
    .await;
    impatient.stop().await.unwrap();
}

#[tokio::test]
async fn a_down_server_fails_only_its_own_tenants_and_they_recover_when_it_returns() {
    let fleet = TestFleet::new().await;
    let second = fleet.second_server("second").await;
    let local = fleet.tenant("onlocal", Mode::Database).await;
    let remote = fleet.slug("onsecond");
    fleet
        .p()
        .create(&bulkhead::provision::CreateRequest {
            slug: remote.clone(),
            display_name: None,
            mode: Mode::Database,
            plan: bulkhead::control::Plan::Free,
            server: Some("second".into()),
        })
        .await
        .unwrap();
    let (tl, tr) = (
        fleet.token(&local, "member").await,
        fleet.token(&remote, "member").await,
    );
    let server = serve(&fleet, |s| s.pools.wait = Duration::from_millis(500)).await;
    let get = |slug: String, token: String| async move {
        http(
            server.addr,
            "GET",
            &host(&slug),
            "/api/projects",
            Some(&token),
            None,
        )
        .await
    };
    assert_eq!(get(remote.clone(), tr.clone()).await.status, 200);

    bulkhead::pg::Cluster::stop(&second.dir).unwrap();
    eventually("the remote tenant to get 503", || async {
        let r = get(remote.clone(), tr.clone()).await;
        r.status == 503 && r.headers.contains_key("retry-after") && !r.body.contains("127.0.0.1")
    })
    .await;
    assert_eq!(get(local.clone(), tl.clone()).await.status, 200);

    let restarted = bulkhead::pg::Cluster::ensure(&second.dir, &Default::default()).unwrap();
    assert_eq!(restarted.port, second.port);
    eventually("the remote tenant to recover", || async {
        get(remote.clone(), tr.clone()).await.status == 200
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_custom_domain_routes_only_once_verified_and_stops_when_removed() {
    let (fleet, a, _) = two_tenants().await;
    // Hits and misses cached for a day: each change below shows only by NOTIFY.
    let server = serve(&fleet, |s| {
        s.resolve_ttl = FOREVER;
        s.resolve_miss_ttl = FOREVER;
    })
    .await;
    listening(&server).await;
    let token = fleet.token(&a, "member").await;
    let domain = format!("app.{a}.example.com");
    let get = |h: String| {
        let token = token.clone();
        async move { http(server.addr, "GET", &h, "/api/tenant", Some(&token), None).await }
    };
    let ask = |h: String| async move {
        http(
            server.addr,
            "GET",
            "localhost",
            &format!("/internal/tls-ask?domain={h}"),
            None,
            None,
        )
        .await
        .status
    };
    assert_eq!(ask(host(&a)).await, 200);
    assert_eq!(ask("evil.example.com".into()).await, 404);
    assert_eq!(ask("not a host".into()).await, 422);

    let out = fleet
        .cli()
        .args(["tenant", "domain", "add", &a, &domain])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = stdout
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .find(|w| w.contains("/.well-known/bulkhead-verify/"))
        })
        .unwrap();
    let path = &url[url.find("/.well-known").unwrap()..];

    // Unverified: not routed, no certificate, but the token is served on that host only.
    assert_eq!(get(domain.clone()).await.status, 404);
    assert_eq!(ask(domain.clone()).await, 404);
    assert_eq!(
        http(server.addr, "GET", &domain, path, None, None)
            .await
            .status,
        200
    );
    assert_eq!(
        http(server.addr, "GET", &host(&a), path, None, None)
            .await
            .status,
        404
    );

    // Verifying a domain that does not answer the token fails and changes nothing.
    let out = fleet
        .cli()
        .args([
            "tenant",
            "domain",
            "verify",
            &a,
            &domain,
            "--method",
            "http",
            "--connect-to",
            "127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verification of"),
        "{out:?}"
    );
    // (The miss is cached: the control plane says whether it changed.)
    let cp = crate::common::connect(fleet.args.control_url.as_ref().unwrap())
        .await
        .unwrap();
    let verified: i64 = cp
        .query_one(
            "SELECT count(*) FROM domains WHERE host = $1 AND verified_at IS NOT NULL",
            &[&domain],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(verified, 0);
    assert_eq!(get(domain.clone()).await.status, 404);

    let addr = server.addr.to_string();
    // Async: the server runs on this test's own runtime and must keep serving.
    let mut verify = tokio::process::Command::from(fleet.cli());
    let out = verify
        .args([
            "tenant",
            "domain",
            "verify",
            &a,
            &domain,
            "--method=http",
            "--connect-to",
            &addr,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the verified domain to route", || async {
        let r = get(domain.clone()).await;
        r.status == 200 && r.json()["slug"] == a.as_str()
    })
    .await;
    assert_eq!(ask(domain.clone()).await, 200);

    // Another tenant cannot take or remove it.
    let other = fleet.tenant("other", Mode::Schema).await;
    let out = fleet
        .cli()
        .args(["tenant", "domain", "add", &other, &domain])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = fleet
        .cli()
        .args(["tenant", "domain", "remove", &other, &domain])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = fleet
        .cli()
        .args(["tenant", "domain", "remove", &a, &domain])
        .output()
        .unwrap();
    assert!(out.status.success());
    eventually("the removed domain to stop routing", || async {
        get(domain.clone()).await.status == 404
    })
    .await;
    assert_eq!(ask(domain.clone()).await, 404);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_custom_domain_is_verified_by_its_dns_txt_record() {
    let fleet = TestFleet::new().await;
    let a = fleet.tenant("txt", Mode::Database).await;
    // A miss cached for a day: the domain routes only by NOTIFY.
    let server = serve(&fleet, |s| s.resolve_miss_ttl = FOREVER).await;
    listening(&server).await;
    let dns = crate::common::dns::TxtServer::start().await;
    let domain = format!("www.{a}.example.net");
    let token = fleet.token(&a, "member").await;
    let out = fleet
        .cli()
        .args(["tenant", "domain", "add", &a, &domain])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}");
    let record = format!("_bulkhead.{domain}");
    let value = stdout
        .lines()
        .find(|l| l.contains(&record))
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("bulkhead-verify="))
        })
        .unwrap_or_else(|| panic!("add names the TXT record and its value: {stdout}"))
        .to_string();
    let verify = || {
        let mut cmd = tokio::process::Command::from(fleet.cli());
        cmd.args([
            "tenant",
            "domain",
            "verify",
            &a,
            &domain,
            "--method",
            "dns",
            "--dns-server",
            &dns.addr.to_string(),
        ]);
        cmd
    };

    // No record, then a record with someone else's token: refused, not routed.
    let out = verify().output().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    dns.publish(&record, "bulkhead-verify=0123456789abcdef0123456789abcdef");
    dns.publish(&format!("_bulkhead.{a}.example.net"), &value);
    let out = verify().output().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not hold"), "{stderr}");
    assert!(
        !stderr.contains(&value),
        "the token is not echoed: {stderr}"
    );
    let get = || {
        http(
            server.addr,
            "GET",
            &domain,
            "/api/tenant",
            Some(&token),
            None,
        )
    };
    assert_eq!(get().await.status, 404);

    // The right value among others: verified, and it routes.
    dns.publish(&record, &value);
    let out = verify().output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually("the domain verified by DNS to route", || async {
        let r = get().await;
        r.status == 200 && r.json()["slug"] == a.as_str()
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_api_host_reveals_nothing_about_a_tenant_without_its_token() {
    let (fleet, a, b) = two_tenants().await;
    let server = serve(&fleet, |_| {}).await;
    let (ta, tb) = (
        fleet.token(&a, "member").await,
        fleet.token(&b, "member").await,
    );
    fleet.p().suspend(&b).await.unwrap();
    let client = reqwest::Client::new();
    let ask = |tenant: &str, token: Option<&str>| {
        let mut req = client
            .get(format!("http://{}/api/tenant", server.addr))
            .header("host", "api.localhost")
            .header("x-tenant-id", tenant);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (_, unknown) = ask("nobody-here", Some(&ta)).await;
    for (token, who) in [
        (None, "no token"),
        (Some(ta.as_str()), "another tenant's token"),
        (Some("bh_forged"), "a forged token"),
    ] {
        let (status, body) = ask(&b, token).await;
        assert_eq!((status, &body), (404, &unknown), "{who}");
    }
    // Its own token learns it is suspended.
    eventually("suspension seen", || async {
        ask(&b, Some(&tb)).await.0 == 403
    })
    .await;
    server.stop().await.unwrap();
}

/// The value of one series in a Prometheus text exposition (0 if absent).
fn sample(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The recorder is process-wide and the other tests of this binary count
/// too: each series must have grown by at least what this test did.
#[tokio::test]
async fn metrics_count_by_status_and_every_response_carries_a_request_id() {
    let (fleet, a, _) = two_tenants().await;
    let server = serve(&fleet, |s| {
        s.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let metrics = server.metrics_addr.expect("a metrics listener");
    let scrape = || async {
        reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let token = fleet.token(&a, "member").await;
    let before = scrape().await;
    let get = async |h: &str, path: &str, token: Option<&str>| {
        http(server.addr, "GET", h, path, token, None).await
    };
    let ok = get(&host(&a), "/api/projects", Some(&token)).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    for _ in 0..2 {
        assert_eq!(
            get(&host(&a), "/api/projects", Some(&token)).await.status,
            200
        );
    }
    let missing = get("nobody.localhost", "/api/projects", None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        get("nobody.localhost", "/api/tenant", None).await.status,
        404
    );
    for _ in 0..4 {
        let r = http(
            server.addr,
            "PUT",
            &host(&a),
            "/api/projects",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(r.status, 405, "{}", r.body);
    }

    // Ids: present, distinct, and a caller's own id is passed back unchanged.
    let id = |r: &crate::common::Reply| r.headers["x-request-id"].to_str().unwrap().to_string();
    assert!(!id(&ok).is_empty());
    assert_ne!(id(&ok), id(&missing));
    let traced = crate::common::request(
        server.addr,
        "GET",
        &host(&a),
        "/healthz",
        &[("x-request-id", "trace-me-42")],
        None,
    )
    .await;
    assert_eq!(id(&traced), "trace-me-42");

    let after = scrape().await;
    let grew = |series: &str| sample(&after, series) - sample(&before, series);
    for (series, at_least) in [
        // the three 200s and /healthz
        ("bulkhead_http_requests_total{status=\"200\"}", 4.0),
        ("bulkhead_http_requests_total{status=\"404\"}", 2.0),
        ("bulkhead_resolve_cache_misses_total", 1.0),
        ("bulkhead_pools_created_total", 1.0),
        ("bulkhead_connections_opened_total{server=\"local\"}", 1.0),
    ] {
        assert!(
            grew(series) >= at_least,
            "{series} grew by {}, not {at_least}:\n{after}",
            grew(series)
        );
    }
    assert!(
        grew("bulkhead_http_requests_total{status=\"405\"}") >= 4.0,
        "{after}"
    );
    assert!(!after.contains(&token), "a token in the metrics");
    server.stop().await.unwrap();
}

/// One HTTP/1.1 connection, kept alive: every request on it reaches the
/// server over the same socket (and so meets the same per-connection memo).
struct KeepAlive(tokio::net::TcpStream);

impl KeepAlive {
    async fn open(addr: std::net::SocketAddr) -> Self {
        Self(tokio::net::TcpStream::connect(addr).await.unwrap())
    }

    /// The status of `GET path` with these headers.
    async fn get(&mut self, host: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
        self.send("GET", host, path, headers, None).await.0
    }

    /// The status and body of `method path` with these headers (and a JSON
    /// body).
    async fn send(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        json: Option<&serde_json::Value>,
    ) -> (u16, String) {
        let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = json.map(|j| j.to_string()).unwrap_or_default();
        if json.is_some() {
            request.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        self.0.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            assert_eq!(
                self.0.read(&mut byte).await.unwrap(),
                1,
                "connection closed"
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .expect("a content-length");
        let mut body = vec![0u8; length];
        self.0.read_exact(&mut body).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// On one keep-alive connection (where the server may remember what the last
/// host and token resolved to) every change counts on the next request:
/// another host, another token, and, once the server has taken it in, a
/// suspension, a resumption, a revocation.
#[tokio::test]
async fn one_connection_sees_every_change_of_host_token_and_state_on_its_next_request() {
    let (fleet, a, b) = two_tenants().await;
    let server = serve(&fleet, |_| {}).await;
    listening(&server).await;
    let (ta, ta2, tb) = (
        fleet.token(&a, "member").await,
        fleet.token(&a, "viewer").await,
        fleet.token(&b, "member").await,
    );
    let bearer = |t: &str| format!("Bearer {t}");
    let (ba, ba2, bb) = (bearer(&ta), bearer(&ta2), bearer(&tb));
    let auth = |b: &str| [("authorization", b.to_string())];
    let mut conn = KeepAlive::open(server.addr).await;
    let get = async |conn: &mut KeepAlive, host: &str, headers: &[(&str, String)]| {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        conn.get(host, "/api/tenant", &headers).await
    };
    for _ in 0..3 {
        assert_eq!(get(&mut conn, &host(&a), &auth(&ba)).await, 200);
    }
    assert_eq!(
        get(&mut conn, &host(&b), &auth(&ba)).await,
        404,
        "a's token on b's host"
    );
    assert_eq!(
        get(&mut conn, &host(&a), &auth(&bb)).await,
        404,
        "b's token on a's host"
    );
    assert_eq!(get(&mut conn, &host(&a), &[]).await, 401, "no token");
    let forged = bearer(&format!("bh_{}", "0".repeat(64)));
    assert_eq!(
        get(&mut conn, &host(&a), &auth(&forged)).await,
        401,
        "a forged token"
    );
    assert_eq!(
        get(&mut conn, &host(&a), &auth(&ba2)).await,
        200,
        "a's other token"
    );
    assert_eq!(get(&mut conn, &host(&a), &auth(&ba)).await, 200);
    // The API host: the tenant header takes part in every answer.
    let api = |tenant: &str, token: &str| {
        [
            ("authorization", token.to_string()),
            ("x-tenant-id", tenant.to_string()),
        ]
    };
    assert_eq!(get(&mut conn, "api.localhost", &api(&a, &ba)).await, 200);
    assert_eq!(get(&mut conn, "api.localhost", &api(&b, &ba)).await, 404);
    assert_eq!(get(&mut conn, &host(&a), &auth(&ba)).await, 200);

    // A change made elsewhere reaches the server by NOTIFY. Once it has taken
    // it in (a connection with no memo sees it, and the resolver's epoch has
    // moved past the one this connection's memo was made at), this
    // connection's very next request must see it too: no waiting for the
    // memo to expire (it lives 5 s, and this takes milliseconds).
    let headers = [("authorization", ba.as_str())];
    let taken_in = async |since: u64, want: u16| {
        eventually(&format!("the server to answer {want}"), || async {
            let mut fresh = KeepAlive::open(server.addr).await;
            server.resolver.epoch() > since
                && fresh.get(&host(&a), "/api/tenant", &headers).await == want
        })
        .await;
    };
    let since = server.resolver.epoch();
    fleet.p().suspend(&a).await.unwrap();
    taken_in(since, 403).await;
    assert_eq!(
        conn.get(&host(&a), "/api/tenant", &headers).await,
        403,
        "suspended"
    );
    let since = server.resolver.epoch();
    fleet.p().resume(&a).await.unwrap();
    taken_in(since, 200).await;
    assert_eq!(
        conn.get(&host(&a), "/api/tenant", &headers).await,
        200,
        "resumed"
    );
    let t = fleet.tenant_row(&a).await;
    let id = fleet
        .p()
        .control()
        .tokens(t.id)
        .await
        .unwrap()
        .into_iter()
        .find(|row| row.role == "member")
        .unwrap()
        .id;
    let since = server.resolver.epoch();
    assert!(fleet.p().control().revoke_token(t.id, id).await.unwrap());
    taken_in(since, 401).await;
    assert_eq!(
        conn.get(&host(&a), "/api/tenant", &headers).await,
        401,
        "revoked"
    );
    assert_eq!(
        get(&mut conn, &host(&a), &auth(&ba2)).await,
        200,
        "the other token lives"
    );
    server.stop().await.unwrap();
}

/// Behind a trusted proxy one connection carries many clients: a request
/// with the same host and token as the last one on that connection but
/// forwarded for another client is that other client's (in the audit log),
/// not the memo's.
#[tokio::test]
async fn one_proxied_connection_keeps_each_forwarded_client_apart() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Database).await;
    let server = serve(&fleet, |s| {
        s.trusted_proxies = vec![bulkhead::http::parse_network("127.0.0.1").unwrap()];
    })
    .await;
    let bearer = format!("Bearer {}", fleet.token(&acme, "admin").await);
    let mut conn = KeepAlive::open(server.addr).await;
    // Three: as many projects as the free plan allows.
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.2"] {
        let headers = [
            ("authorization", bearer.as_str()),
            ("x-forwarded-for", client),
        ];
        let (status, body) = conn
            .send(
                "POST",
                &host(&acme),
                "/api/projects",
                &headers,
                Some(&json!({"name": format!("for {client}")})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let headers = [("authorization", bearer.as_str())];
    let (status, body) = conn
        .send("GET", &host(&acme), "/api/audit", &headers, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let audit: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ips: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["action"] == "project.create")
        .map(|item| item["client_ip"].as_str().unwrap())
        .collect();
    assert_eq!(
        ips,
        ["203.0.113.2", "203.0.113.2", "203.0.113.1"],
        "newest first"
    );
    server.stop().await.unwrap();
}
