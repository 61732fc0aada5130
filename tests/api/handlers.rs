//! What a team's handler cannot break: handlers of the test's own, mounted
//! on a router with the platform's state and envelope as a team would mount
//! theirs, run SQL that leaves session state behind or never ends. Each
//! tenant's pool holds one connection, so the next request gets the very
//! connection the last one used (its backend pid says so) and must find it
//! clean; and a request abandoned mid-query must not leave the query running.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use bulkhead::control::Mode;
use bulkhead::http::extract::Db;
use bulkhead::http::{Envelope, Peer};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{TestFleet, eventually, serve};

/// Runs the request's body as SQL (a team's handler doing what it likes).
async fn run(Db(db): Db, sql: String) -> Result<&'static str, (StatusCode, String)> {
    db.batch_execute(&sql)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok("done")
}

/// Starts the body's SQL, gives up waiting for it after 200 ms and returns
/// as if done: the statement keeps running on the connection, unawaited.
async fn walk_away(Db(db): Db, sql: String) -> &'static str {
    tokio::select! {
        _ = db.batch_execute(&sql) => "finished",
        _ = tokio::time::sleep(Duration::from_millis(200)) => "walked away",
    }
}

/// What the connection's session carries. Its text holds none of the words
/// that mark a connection for a reset (`advis' || 'ory`): it leaves the
/// connection as it found it.
async fn session(Db(db): Db) -> axum::Json<Value> {
    let row = db
        .query_one(
            "SELECT pg_backend_pid() AS pid,
                    current_setting('work_mem') AS work_mem,
                    current_setting('statement_timeout') AS statement_timeout,
                    current_setting('search_path') AS search_path,
                    coalesce(current_setting('app.leak', true), '') AS leak,
                    pg_current_xact_id_if_assigned() IS NULL AS no_transaction,
                    (SELECT count(*) FROM pg_locks
                      WHERE locktype = 'advis' || 'ory' AND pid = pg_backend_pid()) AS locks_held,
                    (SELECT count(*) FROM pg_prepared_statements WHERE name = 'leak') AS prepared,
                    (SELECT count(*) FROM projects WHERE name = 'uncommitted') AS uncommitted",
            &[],
        )
        .await
        .expect("the session query");
    axum::Json(json!({
        "pid": row.get::<_, i32>("pid"),
        "work_mem": row.get::<_, String>("work_mem"),
        "statement_timeout": row.get::<_, String>("statement_timeout"),
        "search_path": row.get::<_, String>("search_path"),
        "leak": row.get::<_, String>("leak"),
        "no_transaction": row.get::<_, bool>("no_transaction"),
        "advisory_locks": row.get::<_, i64>("locks_held"),
        "prepared": row.get::<_, i64>("prepared"),
        "uncommitted": row.get::<_, i64>("uncommitted"),
    }))
}

struct Setup {
    fleet: TestFleet,
    server: bulkhead::serve::Running,
    app: Envelope<Router>,
    slug: String,
    token: String,
}

impl Setup {
    /// One tenant, a server whose pools hold one connection per tenant, and
    /// the test's handlers inside the platform's envelope.
    async fn new(mode: Mode) -> Self {
        Self::with_limit(mode, Duration::from_secs(30)).await
    }

    /// `new`, with requests answered 504 past `limit`.
    async fn with_limit(mode: Mode, limit: Duration) -> Self {
        let fleet = TestFleet::new().await;
        let slug = fleet.tenant("handler", mode).await;
        let server = serve(&fleet, |s| s.pools.per_tenant = 1).await;
        let token = fleet.token(&slug, "member").await;
        let router = Router::new()
            .route("/t/run", post(run))
            .route("/t/walk-away", post(walk_away))
            .route("/t/session", get(session))
            .with_state(server.state.clone());
        let app = bulkhead::http::with_envelope_limit(router, limit);
        Self {
            fleet,
            server,
            app,
            slug,
            token,
        }
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Request<Body> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("{}.localhost", self.slug))
            .header("authorization", format!("Bearer {}", self.token))
            .body(Body::from(body.to_string()))
            .unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(Peer::new("127.0.0.1:40000".parse().unwrap())));
        request
    }

    async fn call(&self, method: &str, path: &str, body: &str) -> (StatusCode, String) {
        let response = self
            .app
            .clone()
            .oneshot(self.request(method, path, body))
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Runs `sql` as a handler would; `expect` is the status it should get.
    async fn run(&self, sql: &str, expect: StatusCode) {
        let (status, body) = self.call("POST", "/t/run", sql).await;
        assert_eq!(status, expect, "{sql}: {body}");
    }

    async fn session(&self) -> Value {
        let (status, body) = self.call("GET", "/t/session", "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn server_name(&self) -> String {
        self.fleet.tenant_row(&self.slug).await.server
    }
}

/// The session a fresh connection starts with, as `session` reports it.
fn clean(pid: &Value, search_path: &Value) -> Value {
    json!({
        "pid": pid,
        "work_mem": "4MB",
        "statement_timeout": "5s",
        "search_path": search_path,
        "leak": "",
        "no_transaction": true,
        "advisory_locks": 0,
        "prepared": 0,
        "uncommitted": 0,
    })
}

#[tokio::test]
async fn a_handlers_set_variables_do_not_reach_the_next_request_on_its_connection() {
    // Schema mode: the pinned search_path must survive the reset.
    let t = Setup::new(Mode::Schema).await;
    let before = t.session().await;
    assert_eq!(before, clean(&before["pid"], &before["search_path"]));
    t.run(
        "SET work_mem = '77MB'; SET statement_timeout = 0; SET search_path = public; \
         SELECT set_config('app.leak', 'secret', false); PREPARE leak AS SELECT 1",
        StatusCode::OK,
    )
    .await;
    let after = t.session().await;
    assert_eq!(after["pid"], before["pid"], "not the same connection");
    assert_eq!(after, before);
}

/// The last statement the tenant's backend `pid` ran.
async fn last_statement(t: &Setup, pid: &Value) -> String {
    let pid = pid.as_i64().unwrap() as i32;
    t.fleet
        .admin("postgres")
        .await
        .query_one("SELECT query FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn only_a_connection_whose_statements_may_have_left_state_is_reset() {
    let t = Setup::new(Mode::Database).await;
    let first = t.session().await;
    t.session().await;
    // Plain reads cost the server nothing more: no reset ran after them.
    let last = last_statement(&t, &first["pid"]).await;
    assert!(last.contains("pg_backend_pid"), "{last}");
    t.run("SET work_mem = '77MB'", StatusCode::OK).await;
    eventually("the reset after a SET", || async {
        last_statement(&t, &first["pid"]).await == "DISCARD ALL"
    })
    .await;
}

#[tokio::test]
async fn a_transaction_left_open_is_rolled_back_before_the_next_request() {
    let t = Setup::new(Mode::Database).await;
    let before = t.session().await;
    t.run(
        "BEGIN; INSERT INTO projects (name) VALUES ('uncommitted')",
        StatusCode::OK,
    )
    .await;
    let after = t.session().await;
    assert_eq!(after["pid"], before["pid"], "not the same connection");
    assert_eq!(after, clean(&before["pid"], &before["search_path"]));
    // Rolled back, not committed by whoever came next.
    let admin = t.fleet.admin_of(&t.slug).await;
    let row = admin
        .query_one(
            "SELECT count(*) FROM projects WHERE name = 'uncommitted'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);

    // A failed transaction does not fail the next request either.
    t.run("BEGIN; SELECT 1 / 0", StatusCode::INTERNAL_SERVER_ERROR)
        .await;
    let again = t.session().await;
    assert_eq!(again, clean(&before["pid"], &before["search_path"]));
}

#[tokio::test]
async fn an_advisory_lock_a_handler_kept_is_released_for_the_next_user() {
    let t = Setup::new(Mode::Database).await;
    let before = t.session().await;
    t.run(
        "SELECT pg_advisory_lock(4242); SELECT pg_advisory_lock_shared(4243)",
        StatusCode::OK,
    )
    .await;
    let after = t.session().await;
    assert_eq!(after["pid"], before["pid"], "not the same connection");
    assert_eq!(after["advisory_locks"], 0);
    // Nobody holds it: another session takes it at once.
    let admin = t.fleet.admin_of(&t.slug).await;
    let row = admin
        .query_one("SELECT pg_try_advisory_lock(4242)", &[])
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the lock is still held");
}

/// What the tenant's role is running on the server, by query text.
async fn running(t: &Setup, fragment: &str) -> i64 {
    let admin = t.fleet.admin("postgres").await;
    let role = t.fleet.tenant_row(&t.slug).await.runtime_role().to_string();
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
              WHERE usename = $1 AND state = 'active' AND query LIKE '%' || $2 || '%'",
            &[&role, &fragment],
        )
        .await
        .unwrap()
        .get(0)
}

/// The handler lifts its own statement timeout: only the end of its
/// request can stop this query.
const SLEEP: &str = "SET statement_timeout = 0; SELECT pg_sleep(60)";

/// After a request running [`SLEEP`] ended at `ended`: the query is gone
/// from the server within moments, its connection closed rather than handed
/// to the next request (whose session is clean), its slot back in the budget.
async fn cancelled_and_slot_freed(t: &Setup, ended: Instant, before: &Value) {
    eventually("the query cancelled on the server", || async {
        running(t, "pg_sleep(60)").await == 0
    })
    .await;
    assert!(
        ended.elapsed() < Duration::from_secs(5),
        "cancelled only {:?} after its request ended",
        ended.elapsed()
    );
    let budget = t.server.pools.budget(&t.server_name().await).unwrap();
    eventually("the slot back in the budget", || async {
        budget.in_use() == 0
    })
    .await;
    let after = t.session().await;
    assert_ne!(after["pid"], before["pid"]);
    assert_eq!(after, clean(&after["pid"], &before["search_path"]));
}

#[tokio::test]
async fn a_query_whose_client_went_away_is_cancelled_on_the_server() {
    let t = Setup::new(Mode::Database).await;
    let before = t.session().await;
    let budget = t.server.pools.budget(&t.server_name().await).unwrap();
    assert_eq!(budget.in_use(), 1, "the pool's one connection");
    let sleeping = t.app.clone().oneshot(t.request("POST", "/t/run", SLEEP));
    // Dropped unfinished once the query runs, as when its client disconnects.
    eventually_while(sleeping, || async {
        running(&t, "pg_sleep(60)").await == 1
    })
    .await;
    cancelled_and_slot_freed(&t, Instant::now(), &before).await;
}

#[tokio::test]
async fn a_query_past_its_requests_time_limit_is_cancelled_on_the_server() {
    let t = Setup::with_limit(Mode::Schema, Duration::from_secs(1)).await;
    let before = t.session().await;
    let started = Instant::now();
    let (status, _) = t.call("POST", "/t/run", SLEEP).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(5));
    cancelled_and_slot_freed(&t, Instant::now(), &before).await;
}

/// Polls `request` until `started` holds, then drops it unfinished (its
/// client gone).
async fn eventually_while<R, F, Fut>(request: R, mut started: F)
where
    R: std::future::Future,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut request = std::pin::pin!(request);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            _ = &mut request => panic!("the request finished"),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        if started().await {
            return;
        }
        assert!(Instant::now() < deadline, "the query never started");
    }
}

#[tokio::test]
async fn a_connection_still_busy_when_its_handler_returns_is_closed_not_reused() {
    let t = Setup::new(Mode::Database).await;
    let before = t.session().await;
    let (status, body) = t.call("POST", "/t/walk-away", SLEEP).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "walked away"));
    // Its reset waits behind the sleep, runs out of time, and the
    // connection is cancelled and closed instead of going back dirty.
    cancelled_and_slot_freed(&t, Instant::now(), &before).await;
}
