//! People over HTTP against a real control plane and real tenants: sign-up
//! that provisions, log-in and its failures, sessions bound to one tenant,
//! CSRF on cookie writes.

use std::time::Duration;

use crate::common::{Reply, TestFleet, eventually, http, request, serve};
use bulkhead::auth::passwords;
use bulkhead::control::Mode;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

/// The session timeouts the tests set, which they pass by moving a session's
/// times in the control plane rather than by waiting.
const IDLE: Duration = Duration::from_secs(30 * 60);
const LIFETIME: Duration = Duration::from_secs(12 * 3600);

fn host(slug: &str) -> String {
    format!("{slug}.localhost")
}

/// A user with `PASSWORD`, member of `slug` with `role` (created if needed).
pub async fn member(fleet: &TestFleet, slug: &str, email: &str, role: &str) -> uuid::Uuid {
    let control = fleet.p().control();
    let user = match control.user_by_email(email).await.unwrap() {
        Some(u) => u,
        None => control
            .insert_user(email, "Test User", &passwords::hash(PASSWORD))
            .await
            .unwrap()
            .unwrap(),
    };
    let tenant = fleet.tenant_row(slug).await;
    control
        .add_membership(user.id, tenant.id, role.parse().unwrap())
        .await
        .unwrap();
    user.id
}

pub async fn login(addr: std::net::SocketAddr, slug: &str, email: &str, password: &str) -> Reply {
    http(
        addr,
        "POST",
        &host(slug),
        "/api/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

/// What the control plane keeps of a session cookie (`bh_session=<value>`).
fn session_hash(cookie: &str) -> Vec<u8> {
    bulkhead::auth::sessions::hash(cookie.trim_start_matches("bh_session=")).to_vec()
}

/// Moves a session's clock in the control plane: `column` (`last_seen_at`,
/// `expires_at`) becomes now plus `offset` seconds (negative: in the past).
/// Sessions end by PostgreSQL's `now()`, so this stands for waiting, on a
/// machine of any speed.
async fn set_session_time(fleet: &TestFleet, cookie: &str, column: &str, offset: i64) {
    let changed = control_client(fleet)
        .await
        .execute(
            &format!(
                "UPDATE sessions SET {column} = now() + make_interval(secs => $2)
                  WHERE id_hash = $1"
            ),
            &[&session_hash(cookie), &(offset as f64)],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1, "no session for {cookie}");
    notified().await;
}

/// Gives a server's routing listener a moment to receive what a change made
/// behind its back just notified (a session moved back in time or ended): its
/// session cache drops the entry then. Local NOTIFY arrives in well under a
/// millisecond.
async fn notified() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// A session's `last_seen_at`, as seconds since the epoch.
async fn last_seen(fleet: &TestFleet, cookie: &str) -> f64 {
    control_client(fleet)
        .await
        .query_one(
            "SELECT extract(epoch FROM last_seen_at)::float8 FROM sessions WHERE id_hash = $1",
            &[&session_hash(cookie)],
        )
        .await
        .unwrap()
        .get(0)
}

/// The session cookie a reply set, as `bh_session=<value>`.
fn cookie(reply: &Reply) -> String {
    let set = reply
        .headers
        .get("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {} {}", reply.status, reply.body))
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_string()
}

/// A logged-in session on `slug`: (cookie, CSRF token).
pub async fn session(addr: std::net::SocketAddr, slug: &str, email: &str) -> (String, String) {
    let r = login(addr, slug, email, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    (cookie(&r), csrf)
}

async fn me(addr: std::net::SocketAddr, slug: &str, cookie: &str) -> Reply {
    request(
        addr,
        "GET",
        &host(slug),
        "/api/me",
        &[("cookie", cookie)],
        None,
    )
    .await
}

async fn create_project(
    addr: std::net::SocketAddr,
    slug: &str,
    headers: &[(&str, &str)],
    name: &str,
) -> Reply {
    request(
        addr,
        "POST",
        &host(slug),
        "/api/projects",
        headers,
        Some(json!({"name": name})),
    )
    .await
}

async fn control_client(fleet: &TestFleet) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        fleet.args.control_url.as_ref().unwrap(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

async fn count(fleet: &TestFleet, sql: &str) -> i64 {
    control_client(fleet)
        .await
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn signup_provisions_a_tenant_whose_owner_logs_in_and_works() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |_| {}).await;
    let slug = fleet.slug("signup");
    let email = format!("owner-{}@example.com", fleet.id);
    let r = http(
        server.addr,
        "POST",
        "localhost:8080",
        "/api/signup",
        None,
        Some(
            json!({"email": format!("  {}  ", email.to_uppercase()), "password": PASSWORD,
                    "organisation": "Signup Inc", "slug": slug}),
        ),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["tenant"], slug.as_str());
    assert_eq!(r.json()["url"], format!("https://{slug}.localhost:8080"));
    assert_eq!(r.json()["user"]["email"], email.as_str(), "normalised");
    assert!(!r.body.contains(PASSWORD));

    // 503 while provisioning, then the owner logs in.
    eventually("the new tenant to accept its owner's log-in", || async {
        let r = login(server.addr, &slug, &email, PASSWORD).await;
        assert!(
            r.status == 200 || r.status == 503,
            "{} {}",
            r.status,
            r.body
        );
        r.status == 200
    })
    .await;
    assert_eq!(fleet.tenant_row(&slug).await.status.as_str(), "active");
    let (cookie, csrf) = session(server.addr, &slug, &email).await;
    let who = me(server.addr, &slug, &cookie).await;
    assert_eq!(who.status, 200);
    assert_eq!(who.json()["role"], "owner");
    assert_eq!(who.json()["user"]["email"], email.as_str());

    let r = create_project(
        server.addr,
        &slug,
        &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        "First",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // The audit row names the user.
    let token = fleet.token(&slug, "admin").await;
    let listed = http(
        server.addr,
        "GET",
        &host(&slug),
        "/api/projects",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(listed.json()["items"][0]["name"], "First");

    // The same e-mail cannot sign up twice, the same slug neither.
    let again = http(
        server.addr,
        "POST",
        "localhost",
        "/api/signup",
        None,
        Some(json!({"email": email, "password": PASSWORD, "organisation": "X", "slug": fleet.slug("other")})),
    )
    .await;
    assert_eq!(again.status, 422);
    assert!(again.json()["error"]["fields"]["email"].is_string());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn every_signup_error_is_a_field_message_and_creates_nothing() {
    let fleet = TestFleet::new().await;
    let taken = fleet.tenant("taken", Mode::Schema).await;
    member(
        &fleet,
        &taken,
        &format!("used-{}@example.com", fleet.id),
        "owner",
    )
    .await;
    let server = serve(&fleet, |_| {}).await;
    let fresh = fleet.slug("fresh");
    let good = json!({"email": format!("new-{}@example.com", fleet.id), "password": PASSWORD,
                      "organisation": "Fresh", "slug": fresh});
    let (users, tenants) = (
        count(&fleet, "SELECT count(*) FROM users").await,
        count(&fleet, "SELECT count(*) FROM tenants").await,
    );
    let cases: Vec<(&str, Value)> = vec![
        ("email", json!("not-an-email")),
        ("email", json!(format!("used-{}@example.com", fleet.id))),
        ("password", json!("short")),
        ("password", json!("Password123")),
        ("password", json!("x".repeat(129))),
        ("organisation", json!("   ")),
        ("slug", json!("Bad Slug!")),
        ("slug", json!("admin")),
        ("slug", json!(taken)),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value.clone();
        let r = http(
            server.addr,
            "POST",
            "localhost",
            "/api/signup",
            None,
            Some(body),
        )
        .await;
        assert_eq!(r.status, 422, "{field}={value}: {}", r.body);
        assert!(
            r.json()["error"]["fields"][field].is_string(),
            "{field}={value}: {}",
            r.body
        );
    }
    // Sign-up exists on the apex only.
    let r = http(
        server.addr,
        "POST",
        &host(&taken),
        "/api/signup",
        None,
        Some(good.clone()),
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(count(&fleet, "SELECT count(*) FROM users").await, users);
    assert_eq!(count(&fleet, "SELECT count(*) FROM tenants").await, tenants);
    assert_eq!(fleet.tenant_rows(&fresh).await, 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn failed_logins_look_alike_and_are_rate_limited() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let other = fleet.tenant("other", Mode::Schema).await;
    let alice = format!("alice-{}@example.com", fleet.id);
    let bob = format!("bob-{}@example.com", fleet.id);
    member(&fleet, &acme, &alice, "member").await;
    member(&fleet, &other, &bob, "member").await;
    let server = serve(&fleet, |s| s.sessions.max_failures_per_email = 3).await;

    let wrong_password = login(server.addr, &acme, &alice, "not the password").await;
    let unknown = login(
        server.addr,
        &acme,
        &format!("nobody-{}@example.com", fleet.id),
        PASSWORD,
    )
    .await;
    let not_member = login(server.addr, &acme, &bob, PASSWORD).await;
    for r in [&wrong_password, &unknown, &not_member] {
        assert_eq!(r.status, 401);
        assert_eq!(r.body, wrong_password.body, "identical bodies");
        assert!(r.headers.get("set-cookie").is_none());
    }
    assert_eq!(
        wrong_password.json()["error"]["code"],
        "invalid_credentials"
    );
    // Bob is a member elsewhere: his password works there.
    assert_eq!(login(server.addr, &other, &bob, PASSWORD).await.status, 200);

    // Alice has one failure; two more, and even her right password waits.
    for _ in 0..2 {
        assert_eq!(
            login(server.addr, &acme, &alice, "nope nope nope")
                .await
                .status,
            401
        );
    }
    let limited = login(server.addr, &acme, &alice, PASSWORD).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(
        count(
            &fleet,
            &format!("SELECT count(*) FROM attempts WHERE email = '{alice}'")
        )
        .await,
        3
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn sessions_rotate_on_login_and_end_by_logout_idle_and_lifetime() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let email = format!("s-{}@example.com", fleet.id);
    member(&fleet, &acme, &email, "member").await;
    let server = serve(&fleet, |s| {
        s.sessions.idle = IDLE;
        s.sessions.absolute = LIFETIME;
    })
    .await;

    // Rotation: logging in again with the old cookie ends the old session.
    let first = login(server.addr, &acme, &email, PASSWORD).await;
    let old = cookie(&first);
    let second = request(
        server.addr,
        "POST",
        &host(&acme),
        "/api/login",
        &[("cookie", &old)],
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    let new = cookie(&second);
    assert_ne!(old, new);
    assert_eq!(me(server.addr, &acme, &old).await.status, 401);
    assert_eq!(me(server.addr, &acme, &new).await.status, 200);

    // Log-out: the session ends and the cookie is cleared.
    let csrf = second.json()["csrf_token"].as_str().unwrap().to_string();
    let out = request(
        server.addr,
        "POST",
        &host(&acme),
        "/api/logout",
        &[("cookie", &new), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(me(server.addr, &acme, &new).await.status, 401);

    // Log out everywhere ends the other devices' sessions too.
    let (laptop, csrf) = session(server.addr, &acme, &email).await;
    let (phone, _) = session(server.addr, &acme, &email).await;
    let out = request(
        server.addr,
        "POST",
        &host(&acme),
        "/api/logout-everywhere",
        &[("cookie", &laptop), ("x-csrf-token", &csrf)],
        None,
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.json()["ended"], 2);
    assert_eq!(me(server.addr, &acme, &laptop).await.status, 401);
    assert_eq!(me(server.addr, &acme, &phone).await.status, 401);

    // Idle timeout: last used just within `idle` ago, it lives; longer, it
    // has ended.
    let idle = IDLE.as_secs() as i64;
    let (c, _) = session(server.addr, &acme, &email).await;
    set_session_time(&fleet, &c, "last_seen_at", -(idle - 60)).await;
    assert_eq!(me(server.addr, &acme, &c).await.status, 200);
    set_session_time(&fleet, &c, "last_seen_at", -(idle + 60)).await;
    assert_eq!(me(server.addr, &acme, &c).await.status, 401);

    // Absolute lifetime: set at log-in, and the session ends with it even
    // while in use.
    let (c, _) = session(server.addr, &acme, &email).await;
    let lifetime: f64 = control_client(&fleet)
        .await
        .query_one(
            "SELECT extract(epoch FROM expires_at - created_at)::float8
               FROM sessions WHERE id_hash = $1",
            &[&session_hash(&c)],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        (lifetime - LIFETIME.as_secs_f64()).abs() < 1.0,
        "a session for {lifetime} s"
    );
    set_session_time(&fleet, &c, "expires_at", 60).await;
    assert_eq!(me(server.addr, &acme, &c).await.status, 200);
    set_session_time(&fleet, &c, "last_seen_at", 0).await;
    set_session_time(&fleet, &c, "expires_at", -1).await;
    assert_eq!(me(server.addr, &acme, &c).await.status, 401);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_busy_session_is_read_not_rewritten_on_every_request_and_stays_alive() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let email = format!("t-{}@example.com", fleet.id);
    member(&fleet, &acme, &email, "member").await;
    let control = control_client(&fleet).await;
    // The row's version: xmin moves with every UPDATE.
    let row = |cookie: String| {
        let control = &control;
        async move {
            let r = control
                .query_one(
                    "SELECT xmin::text FROM sessions WHERE id_hash = $1",
                    &[&session_hash(&cookie)],
                )
                .await
                .unwrap();
            r.get::<_, String>(0)
        }
    };

    // Default idle timeout (hours): the row is touched at most once a minute.
    let server = serve(&fleet, |_| {}).await;
    let (c, _) = session(server.addr, &acme, &email).await;
    let version = row(c.clone()).await;
    for _ in 0..10 {
        assert_eq!(me(server.addr, &acme, &c).await.status, 200);
    }
    assert_eq!(
        row(c.clone()).await,
        version,
        "ten requests rewrote the session row"
    );
    // A minute and more later, the next request marks it seen again.
    control
        .execute(
            "UPDATE sessions SET last_seen_at = now() - interval '61 seconds' WHERE id_hash = $1",
            &[&session_hash(&c)],
        )
        .await
        .unwrap();
    notified().await;
    let version = row(c.clone()).await;
    let seen = last_seen(&fleet, &c).await;
    assert_eq!(me(server.addr, &acme, &c).await.status, 200);
    assert_ne!(row(c.clone()).await, version);
    assert!(last_seen(&fleet, &c).await > seen, "not marked seen");
    server.stop().await.unwrap();

    // Used again and again, each time just within the idle timeout of the
    // last use, for three times its length in all: the session lives. Left
    // alone past it, it ends. (Time moved in the control plane.)
    let server = serve(&fleet, |s| s.sessions.idle = IDLE).await;
    let idle = IDLE.as_secs() as i64;
    let (c, _) = session(server.addr, &acme, &email).await;
    for _ in 0..3 {
        set_session_time(&fleet, &c, "last_seen_at", -(idle - 60)).await;
        let seen = last_seen(&fleet, &c).await;
        assert_eq!(me(server.addr, &acme, &c).await.status, 200);
        assert!(last_seen(&fleet, &c).await > seen, "use not recorded");
    }
    set_session_time(&fleet, &c, "last_seen_at", -(idle + 60)).await;
    assert_eq!(me(server.addr, &acme, &c).await.status, 401);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn pruning_drops_dead_sessions_and_stale_failures_and_nothing_live() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let email = format!("p-{}@example.com", fleet.id);
    let user = member(&fleet, &acme, &email, "member").await;
    let server = serve(&fleet, |_| {}).await;
    let (live, _) = session(server.addr, &acme, &email).await;
    let (idle, _) = session(server.addr, &acme, &email).await;
    let (ended, _) = session(server.addr, &acme, &email).await;
    assert_eq!(
        login(server.addr, &acme, &email, "wrong wrong wrong")
            .await
            .status,
        401
    );
    assert_eq!(
        login(server.addr, &acme, &email, "wrong again, still")
            .await
            .status,
        401
    );
    let control = control_client(&fleet).await;
    control
        .execute(
            "UPDATE sessions SET last_seen_at = now() - interval '2 hours' WHERE id_hash = $1",
            &[&session_hash(&idle)],
        )
        .await
        .unwrap();
    control
        .execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id_hash = $1",
            &[&session_hash(&ended)],
        )
        .await
        .unwrap();
    control
        .execute(
            "UPDATE attempts SET at = now() - interval '1 hour'
              WHERE id = (SELECT min(id) FROM attempts WHERE email = $1)",
            &[&email],
        )
        .await
        .unwrap();

    let (sessions, failures) = fleet
        .p()
        .control()
        .prune_expired(Duration::from_secs(30 * 60), Duration::from_secs(15 * 60))
        .await
        .unwrap();
    assert_eq!((sessions, failures), (2, 1));
    let left: Vec<Vec<u8>> = control
        .query("SELECT id_hash FROM sessions WHERE user_id = $1", &[&user])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, vec![session_hash(&live)]);
    assert_eq!(me(server.addr, &acme, &live).await.status, 200);
    let failures_left: i64 = control
        .query_one("SELECT count(*) FROM attempts WHERE email = $1", &[&email])
        .await
        .unwrap()
        .get(0);
    assert_eq!(failures_left, 1);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_cookie_is_host_only_and_worth_nothing_on_another_tenant() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Database).await;
    let globex = fleet.tenant("globex", Mode::Schema).await;
    let email = format!("both-{}@example.com", fleet.id);
    // A member of both: still, acme's session is no session on globex.
    member(&fleet, &acme, &email, "owner").await;
    member(&fleet, &globex, &email, "owner").await;
    let server = serve(&fleet, |_| {}).await;
    let globex_token = fleet.token(&globex, "member").await;
    let secret = create_project(
        server.addr,
        &globex,
        &[("authorization", &format!("Bearer {globex_token}"))],
        "globex-secret-plans",
    )
    .await;
    assert_eq!(secret.status, 201);

    let r = login(server.addr, &acme, &email, PASSWORD).await;
    let set = r.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure"),
        "{set}"
    );
    assert!(!set.to_lowercase().contains("domain"), "host-only: {set}");
    let acme_cookie = cookie(&r);
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    for path in ["/api/me", "/api/projects", "/api/tenant"] {
        let r = request(
            server.addr,
            "GET",
            &host(&globex),
            path,
            &[("cookie", &acme_cookie)],
            None,
        )
        .await;
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert!(!r.body.contains("globex"), "{path}: {}", r.body);
    }
    let r = create_project(
        server.addr,
        &globex,
        &[("cookie", &acme_cookie), ("x-csrf-token", &csrf)],
        "planted",
    )
    .await;
    assert_eq!(r.status, 401);
    // On its own host it works.
    assert_eq!(me(server.addr, &acme, &acme_cookie).await.status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn cookie_writes_need_the_csrf_token_and_a_same_origin_and_bearer_calls_do_not() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let email = format!("c-{}@example.com", fleet.id);
    member(&fleet, &acme, &email, "member").await;
    let server = serve(&fleet, |_| {}).await;
    let (cookie, csrf) = session(server.addr, &acme, &email).await;
    let own = format!("http://{}", host(&acme));

    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("cookie", &cookie)], 403),
        (
            vec![("cookie", &cookie), ("x-csrf-token", "0".repeat(64).leak())],
            403,
        ),
        (
            vec![
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("origin", "http://evil.example.com"),
            ],
            403,
        ),
        (
            vec![
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("referer", "http://globex.localhost/x"),
            ],
            403,
        ),
        (
            vec![
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("origin", &own),
            ],
            201,
        ),
        (vec![("cookie", &cookie), ("x-csrf-token", &csrf)], 201),
    ];
    for (i, (headers, expected)) in cases.iter().enumerate() {
        let r = create_project(server.addr, &acme, headers, &format!("p{i}")).await;
        assert_eq!(r.status, *expected, "case {i}: {}", r.body);
        if *expected == 403 {
            assert_eq!(r.json()["error"]["code"], "csrf");
        }
    }
    // Reads need no token; bearer writes need none either.
    assert_eq!(me(server.addr, &acme, &cookie).await.status, 200);
    let token = fleet.token(&acme, "member").await;
    let r = create_project(
        server.addr,
        &acme,
        &[("authorization", &format!("Bearer {token}"))],
        "by-token",
    )
    .await;
    assert_eq!(r.status, 201);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_counts_and_otherwise_it_is_ignored() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let email = |n: usize| format!("xff{n}-{}@example.com", fleet.id);
    let from = |client: &'static str| [("x-forwarded-for", client)];
    let fail = |addr, n: usize, client: &'static str| {
        let acme = acme.clone();
        let email = email(n);
        async move {
            request(
                addr,
                "POST",
                &host(&acme),
                "/api/login",
                &from(client),
                Some(json!({"email": email, "password": "not the password"})),
            )
            .await
            .status
        }
    };
    let recorded = |ip: &'static str| {
        let fleet = &fleet;
        async move {
            count(
                fleet,
                &format!("SELECT count(*) FROM attempts WHERE ip = '{ip}' AND email LIKE 'xff%'"),
            )
            .await
        }
    };

    // Not trusted (the default): the header is the client's say-so, ignored.
    let direct = serve(&fleet, |_| {}).await;
    assert_eq!(fail(direct.addr, 0, "203.0.113.7").await, 401);
    assert_eq!(recorded("127.0.0.1").await, 1);
    assert_eq!(recorded("203.0.113.7").await, 0);
    direct.stop().await.unwrap();

    // Behind a trusted proxy: each forwarded client has its own limit.
    let proxied = serve(&fleet, |s| {
        s.trusted_proxies = vec![bulkhead::http::parse_network("127.0.0.1").unwrap()];
        s.sessions.max_failures_per_ip = 2;
    })
    .await;
    assert_eq!(fail(proxied.addr, 1, "203.0.113.7").await, 401);
    assert_eq!(fail(proxied.addr, 2, "203.0.113.7").await, 401);
    assert_eq!(fail(proxied.addr, 3, "203.0.113.7").await, 429);
    // A claim to the left of the proxy's own entry changes nothing.
    assert_eq!(
        fail(proxied.addr, 4, "198.51.100.1, 203.0.113.7").await,
        429
    );
    assert_eq!(fail(proxied.addr, 5, "203.0.113.8").await, 401);
    assert_eq!(recorded("203.0.113.7").await, 2);
    assert_eq!(recorded("203.0.113.8").await, 1);

    // The audit log names the forwarded client too.
    let admin = fleet.token(&acme, "admin").await;
    let bearer = format!("Bearer {admin}");
    let created = request(
        proxied.addr,
        "POST",
        &host(&acme),
        "/api/projects",
        &[
            ("authorization", &bearer),
            ("x-forwarded-for", "203.0.113.9"),
        ],
        Some(json!({"name": "via proxy"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let audit = http(
        proxied.addr,
        "GET",
        &host(&acme),
        "/api/audit",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert_eq!(audit.json()["items"][0]["client_ip"], "203.0.113.9");
    proxied.stop().await.unwrap();
}

/// `n` log-ins sent at once; their statuses, sorted.
async fn logins_at_once(
    addr: std::net::SocketAddr,
    slug: &str,
    emails: Vec<String>,
    password: &str,
) -> Vec<u16> {
    let tries = emails.into_iter().map(|email| {
        let (slug, password) = (slug.to_string(), password.to_string());
        async move { login(addr, &slug, &email, &password).await.status }
    });
    let mut statuses = futures::future::join_all(tries).await;
    statuses.sort_unstable();
    statuses
}

#[tokio::test]
async fn wrong_passwords_sent_at_once_cannot_beat_the_limits() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let alice = format!("alice-{}@example.com", fleet.id);
    member(&fleet, &acme, &alice, "member").await;
    // Hashes wait as long as they need: this is about counting, not the bound.
    let server = serve(&fleet, |s| {
        s.hashing = bulkhead::auth::Hashing::new(2, Duration::from_secs(120));
    })
    .await;
    // Eight at once for one e-mail (limit 5): five are checked, three refused.
    let statuses = logins_at_once(
        server.addr,
        &acme,
        vec![alice.clone(); 8],
        "wrong wrong wrong",
    )
    .await;
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    // Twenty-five at once from one address (limit 20), each e-mail new.
    let emails = (0..25)
        .map(|i| format!("spray{i}-{}@example.com", fleet.id))
        .collect();
    let statuses = logins_at_once(server.addr, &acme, emails, "wrong wrong wrong").await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        count(
            &fleet,
            "SELECT count(*) FROM attempts WHERE ip = '127.0.0.1'"
        )
        .await,
        20
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_successful_login_does_not_count_and_no_free_hashing_slot_is_a_503_that_counts_nothing() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let alice = format!("alice-{}@example.com", fleet.id);
    member(&fleet, &acme, &alice, "member").await;
    let server = serve(&fleet, |s| s.sessions.max_failures_per_email = 2).await;
    // Right passwords, many times: never limited, nothing left recorded.
    for _ in 0..4 {
        assert_eq!(
            login(server.addr, &acme, &alice, PASSWORD).await.status,
            200
        );
    }
    assert_eq!(count(&fleet, "SELECT count(*) FROM attempts").await, 0);
    server.stop().await.unwrap();

    // Every hashing slot taken (none at all): 503 with Retry-After, never a
    // 401, and the attempt does not count against alice.
    let busy = serve(&fleet, |s| s.hashing = bulkhead::auth::Hashing::closed()).await;
    let r = login(busy.addr, &acme, &alice, PASSWORD).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(r.json()["error"]["code"], "unavailable");
    assert_eq!(count(&fleet, "SELECT count(*) FROM attempts").await, 0);
    busy.stop().await.unwrap();
}

#[tokio::test]
async fn parallel_logins_are_bounded_by_the_hashing_slots() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("acme", Mode::Schema).await;
    let emails: Vec<String> = (0..8)
        .map(|i| format!("p{i}-{}@example.com", fleet.id))
        .collect();
    for email in &emails {
        member(&fleet, &acme, email, "member").await;
    }
    // One slot, and next to no wait for it. The test holds the slot itself
    // (a hash still running), so whatever the machine's speed every log-in
    // meanwhile finds none: 503 with Retry-After, never a 401 or a 200.
    let hashing = bulkhead::auth::Hashing::new(1, Duration::from_millis(1));
    let server = serve(&fleet, |s| s.hashing = hashing.clone()).await;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = tokio::spawn(async move {
        hashing
            .run(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
            .await
            .unwrap()
    });
    started_rx.await.unwrap();
    let statuses = logins_at_once(server.addr, &acme, emails.clone(), PASSWORD).await;
    assert_eq!(statuses, [503; 8]);
    let r = login(server.addr, &acme, &emails[0], PASSWORD).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    // The slot free again: one at a time, each is checked.
    release_tx.send(()).unwrap();
    holder.await.unwrap();
    for email in &emails {
        let r = login(server.addr, &acme, email, PASSWORD).await;
        assert_eq!(r.status, 200, "{email}: {}", r.body);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn signups_are_limited_per_address_and_invalid_ones_do_not_count() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |s| s.sessions.max_signups_per_ip = 2).await;
    let signup = |n: usize, password: &'static str| {
        let body = json!({
            "email": format!("founder{n}-{}@example.com", fleet.id),
            "password": password,
            "organisation": format!("Org {n}"),
            "slug": fleet.slug(&format!("org{n}")),
        });
        async move {
            http(
                server.addr,
                "POST",
                "localhost",
                "/api/signup",
                None,
                Some(body),
            )
            .await
        }
    };
    assert_eq!(signup(0, "short").await.status, 422);
    assert_eq!(signup(1, PASSWORD).await.status, 202);
    assert_eq!(signup(2, PASSWORD).await.status, 202);
    let limited = signup(3, PASSWORD).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.headers.contains_key("retry-after"));
    let founder3 = format!("founder3-{}@example.com", fleet.id);
    assert_eq!(
        count(
            &fleet,
            &format!("SELECT count(*) FROM users WHERE email = '{founder3}'")
        )
        .await,
        0,
        "nothing created past the limit"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_email_spelled_two_unicode_ways_is_one_account_and_look_alike_alphabets_are_refused() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |_| {}).await;
    // josé with a precomposed é, then with e + a combining acute accent.
    let composed = format!("jos\u{e9}-{}@example.com", fleet.id);
    let decomposed = format!("jose\u{301}-{}@example.com", fleet.id);
    assert_ne!(composed, decomposed);
    let signup = |email: String, slug: String| {
        let body =
            json!({"email": email, "password": PASSWORD, "organisation": "Org", "slug": slug});
        async move {
            http(
                server.addr,
                "POST",
                "localhost",
                "/api/signup",
                None,
                Some(body),
            )
            .await
        }
    };
    let slug = fleet.slug("joseorg");
    let r = signup(composed.clone(), slug.clone()).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = signup(decomposed.to_uppercase(), fleet.slug("joseorg2")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["error"]["fields"]["email"]
            .as_str()
            .unwrap()
            .contains("already has an account")
    );
    // The owner logs in with either spelling.
    eventually("the tenant is active", || async {
        fleet.tenant_row(&slug).await.status == bulkhead::control::Status::Active
    })
    .await;
    assert_eq!(
        login(server.addr, &slug, &decomposed, PASSWORD)
            .await
            .status,
        200
    );
    assert_eq!(
        login(server.addr, &slug, &composed, PASSWORD).await.status,
        200
    );
    // Latin "ada" with a Cyrillic а (U+0430) in it: refused, not a second
    // account that looks like the first.
    let r = signup(
        format!("\u{430}da-{}@example.com", fleet.id),
        fleet.slug("adaorg"),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.json()["error"]["fields"]["email"]
            .as_str()
            .unwrap()
            .contains("alphabets")
    );
    server.stop().await.unwrap();
}
