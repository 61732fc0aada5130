//! The control plane away: a serving process keeps answering, from its
//! caches, every tenant, token and session it knew, for `--stale-for`; what
//! it did not know, and what needs the control plane (log-in, sign-up), is
//! 503 `control_plane_unavailable`; when it is back, whatever changed
//! meanwhile takes effect at once. And a control-plane URL naming two hosts
//! works when the first is down.

use std::time::{Duration, Instant};

use crate::common::{HttpClient, Reply, TestFleet, connect, eventually, pg, serve};
use crate::people::{login, member, session};
use bulkhead::control::{Mode, TenantId};
use bulkhead::pg::{Cluster, ClusterOptions};
use bulkhead::serve::Running;
use serde_json::json;

fn assert_control_plane_unavailable(r: &Reply, what: &str) {
    assert_eq!(r.status, 503, "{what}: {} {}", r.status, r.body);
    assert_eq!(
        r.json()["error"]["code"],
        "control_plane_unavailable",
        "{what}: {}",
        r.body
    );
    assert!(
        r.headers.contains_key("retry-after"),
        "{what}: no Retry-After"
    );
}

async fn readyz(server: &Running) -> Reply {
    HttpClient::new(server.addr, "localhost")
        .get("/readyz")
        .await
}

/// A token of `slug` and its id (to revoke it later).
async fn token(fleet: &TestFleet, slug: &str, name: &str) -> (uuid::Uuid, String) {
    let tenant = fleet.tenant_row(slug).await;
    let (row, secret) =
        bulkhead::auth::Tokens::create(fleet.p().control(), tenant.id, "admin", name)
            .await
            .unwrap();
    (row.id, secret.expose().clone())
}

async fn status(client: &HttpClient, path: &str) -> u16 {
    client.get(path).await.status
}

/// Cuts this server off from its control plane while the control plane stays
/// up (as a network partition would): the control-plane database takes no
/// new connections and the server's LISTEN connection is ended. Returns a
/// connection to the control plane opened before, to change things meanwhile.
async fn partition(fleet: &TestFleet) -> tokio_postgres::Client {
    let control = connect(fleet.args.control_url.as_ref().unwrap())
        .await
        .unwrap();
    let admin = fleet.admin("postgres").await;
    let db = fleet.control_db();
    admin
        .batch_execute(&format!(r#"ALTER DATABASE "{db}" ALLOW_CONNECTIONS false"#))
        .await
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = $1 AND application_name = 'bulkhead-listen'",
            &[&db],
        )
        .await
        .unwrap();
    control
}

async fn heal(fleet: &TestFleet) {
    let db = fleet.control_db();
    fleet
        .admin("postgres")
        .await
        .batch_execute(&format!(r#"ALTER DATABASE "{db}" ALLOW_CONNECTIONS true"#))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stopped_control_plane_is_served_from_cache_for_the_stale_window_only() {
    const WINDOW: Duration = Duration::from_secs(4);
    let cp = Cluster::throwaway(50).expect("a control-plane cluster");
    let fleet = TestFleet::with_control_plane(cp.admin_url("postgres").expose().clone()).await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let initech = fleet.tenant("initech", Mode::Schema).await;
    // Never asked for before the outage.
    let globex = fleet.tenant("globex", Mode::Schema).await;
    let email = format!("o-{}@example.com", fleet.id);
    member(&fleet, &acme, &email, "member").await;
    let server = serve(&fleet, |s| s.stale_for = WINDOW).await;

    let (_, live) = token(&fleet, &acme, "live").await;
    let (revoked_id, revoked) = token(&fleet, &acme, "revoked").await;
    let (_, initech_token) = token(&fleet, &initech, "initech").await;
    let (_, globex_token) = token(&fleet, &globex, "globex").await;
    let bearer = HttpClient::tenant(&server, &acme).bearer(&live);
    let gone = HttpClient::tenant(&server, &acme).bearer(&revoked);
    let suspended = HttpClient::tenant(&server, &initech).bearer(&initech_token);
    let unseen = HttpClient::tenant(&server, &globex).bearer(&globex_token);
    let (cookie, csrf) = session(server.addr, &acme, &email).await;
    let person = HttpClient::tenant(&server, &acme).session(&cookie, &csrf);
    for (client, path) in [
        (&bearer, "/api/projects"),
        (&gone, "/api/projects"),
        (&suspended, "/api/projects"),
        (&person, "/api/me"),
    ] {
        assert_eq!(status(client, path).await, 200, "{path} before the outage");
    }
    assert_eq!(readyz(&server).await.body, "ready");

    // Revoked and suspended just before the outage (the NOTIFY arrives).
    let acme_id: TenantId = fleet.tenant_row(&acme).await.id;
    assert!(
        fleet
            .p()
            .control()
            .revoke_token(acme_id, revoked_id)
            .await
            .unwrap()
    );
    fleet.p().suspend(&initech).await.unwrap();
    eventually("the revocation to arrive", || async {
        status(&gone, "/api/projects").await == 401
    })
    .await;
    eventually("the suspension to arrive", || async {
        status(&suspended, "/api/projects").await == 403
    })
    .await;

    let dir = cp.dir.clone();
    tokio::task::spawn_blocking(move || Cluster::stop(&dir))
        .await
        .unwrap()
        .expect("stop the control plane");
    let stopped = Instant::now();
    eventually("the server to notice", || async {
        readyz(&server)
            .await
            .body
            .starts_with("degraded: serving from cache")
    })
    .await;
    let mut rounds = 0;
    while stopped.elapsed() < WINDOW - Duration::from_millis(1500) {
        assert_eq!(status(&bearer, "/api/projects").await, 200, "a warm token");
        assert_eq!(status(&person, "/api/me").await, 200, "a warm session");
        assert_eq!(status(&gone, "/api/projects").await, 401, "revoked before");
        assert_eq!(
            status(&suspended, "/api/projects").await,
            403,
            "suspended before"
        );
        assert_control_plane_unavailable(
            &unseen.get("/api/projects").await,
            "a tenant not seen before the outage",
        );
        assert_control_plane_unavailable(
            &login(server.addr, &acme, &email, crate::people::PASSWORD).await,
            "log-in",
        );
        let signup = HttpClient::new(server.addr, "localhost")
            .post(
                "/api/signup",
                json!({"email": format!("new-{}@example.com", fleet.id),
                       "password": crate::people::PASSWORD, "organisation": "New",
                       "slug": fleet.slug("new")}),
            )
            .await;
        assert_control_plane_unavailable(&signup, "sign-up");
        let r = readyz(&server).await;
        assert_eq!(r.status, 200, "{}", r.body);
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rounds > 3, "only {rounds} rounds within the window");

    // Past the window: nothing answers from cache any more.
    eventually("the window to end", || async {
        status(&bearer, "/api/projects").await == 503
    })
    .await;
    assert!(stopped.elapsed() >= WINDOW - Duration::from_millis(500));
    assert_control_plane_unavailable(&bearer.get("/api/projects").await, "a warm token");
    assert_control_plane_unavailable(&person.get("/api/me").await, "a warm session");
    assert_control_plane_unavailable(&readyz(&server).await, "readyz");

    // Back: served again, without a restart of bulkhead.
    let dir = cp.dir.clone();
    tokio::task::spawn_blocking(move || Cluster::ensure(&dir, &ClusterOptions::default()))
        .await
        .unwrap()
        .expect("start the control plane again");
    eventually("the control plane to be back", || async {
        status(&bearer, "/api/projects").await == 200
    })
    .await;
    assert_eq!(status(&person, "/api/me").await, 200);
    assert_eq!(status(&unseen, "/api/projects").await, 200);
    assert_eq!(readyz(&server).await.body, "ready");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn what_changed_while_an_instance_was_cut_off_takes_effect_when_it_is_back() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let globex = fleet.tenant("globex", Mode::Schema).await;
    let email = format!("p-{}@example.com", fleet.id);
    member(&fleet, &acme, &email, "admin").await;
    let server = serve(&fleet, |s| s.stale_for = Duration::from_secs(60)).await;
    let (_, live) = token(&fleet, &acme, "live").await;
    let (revoked_id, revoked) = token(&fleet, &acme, "revoked").await;
    let (_, globex_token) = token(&fleet, &globex, "globex").await;
    let bearer = HttpClient::tenant(&server, &acme).bearer(&live);
    let gone = HttpClient::tenant(&server, &acme).bearer(&revoked);
    let suspended = HttpClient::tenant(&server, &globex).bearer(&globex_token);
    let (cookie, csrf) = session(server.addr, &acme, &email).await;
    let person = HttpClient::tenant(&server, &acme).session(&cookie, &csrf);
    assert_eq!(status(&gone, "/api/projects").await, 200);
    assert_eq!(status(&suspended, "/api/projects").await, 200);
    let me = person.get("/api/me").await;
    assert_eq!(me.json()["role"], "admin", "{}", me.body);

    let control = partition(&fleet).await;
    eventually("the server to notice", || async {
        readyz(&server).await.body.starts_with("degraded")
    })
    .await;
    // Changed while this instance hears nothing of it.
    control
        .execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE id = $1",
            &[&revoked_id],
        )
        .await
        .unwrap();
    control
        .execute(
            "UPDATE tenants SET status = 'suspended' WHERE slug = $1",
            &[&globex],
        )
        .await
        .unwrap();
    control
        .execute(
            "UPDATE memberships SET role = 'viewer'
              WHERE user_id = (SELECT id FROM users WHERE email = $1)",
            &[&email],
        )
        .await
        .unwrap();
    // Meanwhile it answers as it knew.
    assert_eq!(status(&gone, "/api/projects").await, 200);
    assert_eq!(status(&suspended, "/api/projects").await, 200);

    heal(&fleet).await;
    let back = Instant::now();
    eventually("the revocation to take effect", || async {
        status(&gone, "/api/projects").await == 401
    })
    .await;
    let took = back.elapsed();
    eprintln!("the changes took effect {took:?} after the control plane was reachable again");
    assert_eq!(status(&suspended, "/api/projects").await, 403);
    assert_eq!(person.get("/api/me").await.json()["role"], "viewer");
    assert_eq!(status(&bearer, "/api/projects").await, 200);
    // The listener retries at most a second apart (jittered).
    assert!(
        took < Duration::from_secs(3),
        "took {took:?} to see the changes"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn with_no_stale_window_an_outage_is_503_at_once() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let server = serve(&fleet, |s| s.stale_for = Duration::ZERO).await;
    let (_, live) = token(&fleet, &acme, "live").await;
    let bearer = HttpClient::tenant(&server, &acme).bearer(&live);
    assert_eq!(status(&bearer, "/api/projects").await, 200);

    let _control = partition(&fleet).await;
    let cut = Instant::now();
    eventually("a 503", || async {
        status(&bearer, "/api/projects").await == 503
    })
    .await;
    assert!(
        cut.elapsed() < Duration::from_secs(2),
        "{:?}",
        cut.elapsed()
    );
    for _ in 0..5 {
        assert_control_plane_unavailable(&bearer.get("/api/projects").await, "a warm token");
    }
    assert_control_plane_unavailable(&readyz(&server).await, "readyz");
    heal(&fleet).await;
    eventually("the control plane to be back", || async {
        status(&bearer, "/api/projects").await == 200
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_control_url_naming_two_hosts_works_when_the_first_is_down() {
    // A port nothing listens on: the first host is "down".
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = format!("cp_{}", bulkhead::secret::random_hex(3));
    crate::common::create_private_database(&db).await;
    let url = pg().url(&db);
    let (head, tail) = url.split_once("@127.0.0.1:").expect("a loopback URL");
    let url = format!("{head}@127.0.0.1:{dead},127.0.0.1:{tail}?target_session_attrs=read-write");
    let fleet = TestFleet::with_control_plane(url).await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let (_, live) = token(&fleet, &acme, "live").await;
    let bearer = HttpClient::tenant(&server, &acme).bearer(&live);
    assert_eq!(status(&bearer, "/api/projects").await, 200);
    assert_eq!(readyz(&server).await.body, "ready");
    // The routing listener found the second host too: a revocation arrives.
    let (id, revoked) = token(&fleet, &acme, "revoked").await;
    let gone = HttpClient::tenant(&server, &acme).bearer(&revoked);
    assert_eq!(status(&gone, "/api/projects").await, 200);
    let tenant = fleet.tenant_row(&acme).await.id;
    fleet.p().control().revoke_token(tenant, id).await.unwrap();
    eventually("the revocation to arrive", || async {
        status(&gone, "/api/projects").await == 401
    })
    .await;
    server.stop().await.unwrap();
}
