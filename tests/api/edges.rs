//! The edges of the HTTP layer, tried as an attacker would: clients that never
//! finish a request, more connections than the cap, bytes PostgreSQL refuses,
//! ambiguous hosts, and every way a framework could answer outside the one
//! error shape.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{HttpClient, TestFleet, http, one_tenant, serve};
use bulkhead::control::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or `limit` passes, which
/// fails the test): what was read.
async fn read_until_closed(tcp: &mut TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .expect("the server should have closed the connection");
    String::from_utf8_lossy(&got).into_owned()
}

/// One response's head and body off a kept-alive connection.
async fn read_response(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before a response: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if got.len() >= head_end + 4 + length {
                return text.into_owned();
            }
        }
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |s| {
        s.http.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    // Headers never finished: closed after the header-read timeout (without
    // the timer it stayed open for good, and this read would time out).
    let mut slow = connect(server.addr).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    read_until_closed(&mut slow, Duration::from_secs(20)).await;
    // Nothing sent at all: the same.
    let mut silent = connect(server.addr).await;
    read_until_closed(&mut silent, Duration::from_secs(20)).await;
    // A kept-alive connection left idle after its response: the same.
    let mut idle = connect(server.addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let first = read_response(&mut idle).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    read_until_closed(&mut idle, Duration::from_secs(20)).await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_and_are_then_served() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |s| {
        s.http.max_connections = 2;
        s.http.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let ask = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut first = connect(server.addr).await;
    first.write_all(ask).await.unwrap();
    assert!(read_response(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = connect(server.addr).await;
    second.write_all(ask).await.unwrap();
    assert!(read_response(&mut second).await.starts_with("HTTP/1.1 200"));
    // Both are held open (kept alive); a third is accepted by the kernel but
    // not served while they are.
    let mut third = connect(server.addr).await;
    third.write_all(ask).await.unwrap();
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), third.read(&mut byte))
            .await
            .is_err(),
        "a third connection was served past a cap of two"
    );
    // One closes: the third is served, and the server is fine.
    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(20), read_response(&mut third))
        .await
        .expect("the waiting connection is served once one closes");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(second);
    let r = http(server.addr, "GET", "localhost", "/healthz", None, None).await;
    assert_eq!(r.status, 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_tenant_serves_through_the_new_listener_with_its_client_address() {
    // The listener hands every request its peer (ConnectInfo): log-in's
    // per-address limit and the audit log depend on it.
    let (_fleet, server, acme) = one_tenant("edgeacme", Mode::Database).await;
    let r = acme.get("/api/projects").await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop().await.unwrap();
}

/// A raw HTTP/1.1 exchange: `request` as written, the response as read (the
/// server closes after it: `Connection: close` is in every request here).
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut tcp = connect(addr).await;
    tcp.write_all(request.as_bytes()).await.unwrap();
    read_until_closed(&mut tcp, Duration::from_secs(20)).await
}

fn status_of(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[tokio::test]
async fn two_host_headers_are_refused_and_an_absolute_target_names_the_tenant() {
    let fleet = TestFleet::new().await;
    let a = fleet.tenant("hosta", Mode::Schema).await;
    let b = fleet.tenant("hostb", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let token = fleet.token(&a, "admin").await;
    let (ha, hb) = (format!("{a}.localhost"), format!("{b}.localhost"));
    // Two Host headers, in either order: 400, whichever tenant they name.
    for (first, second) in [(&ha, &hb), (&hb, &ha), (&ha, &ha)] {
        let r = raw(
            server.addr,
            &format!(
                "GET /api/tenant HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n\
                 Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status_of(&r), 400, "{r}");
        assert!(r.contains("\"bad_host\""), "{r}");
    }
    // An absolute-form target names one host while Host names the other.
    let absolute = |target: &str, header: &str| {
        let request = format!(
            "GET http://{target}/api/tenant HTTP/1.1\r\nHost: {header}\r\n\
             Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        let addr = server.addr;
        async move { raw(addr, &request).await }
    };
    // The target wins (RFC 9112 §3.2.2): on a's host, a's token works...
    let r = absolute(&ha, &hb).await;
    assert_eq!(status_of(&r), 200, "{r}");
    assert!(r.contains(&a), "{r}");
    // ...and the other way round it is b's host: a's token is nothing there.
    let r = absolute(&hb, &ha).await;
    assert_eq!(status_of(&r), 404, "{r}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn tls_ask_certifies_each_status_as_decided() {
    let fleet = TestFleet::new().await;
    // One tenant per status, set before the server first resolves any.
    let mut table = Vec::new();
    for (status, certified) in [
        ("active", true),
        ("provisioning", true),
        ("suspended", true),
        ("migrating", true),
        ("migration_failed", true),
        ("deleting", false),
    ] {
        let slug = fleet.tenant(&status.replace('_', ""), Mode::Schema).await;
        fleet
            .control_sql(
                &format!("UPDATE tenants SET status = '{status}' WHERE slug = $1"),
                &slug,
            )
            .await;
        table.push((format!("{slug}.localhost"), certified));
    }
    let deleted = fleet.tenant("deleted", Mode::Schema).await;
    fleet.p().delete(&deleted, None).await.unwrap();
    table.push((format!("{deleted}.localhost"), false));
    table.push(("localhost".into(), true));
    table.push(("api.localhost".into(), true));
    table.push(("never-was.localhost".into(), false));
    table.push(("evil.example.com".into(), false));
    let server = serve(&fleet, |_| {}).await;
    for (domain, certified) in table {
        let r = http(
            server.addr,
            "GET",
            "localhost",
            &format!("/internal/tls-ask?domain={domain}"),
            None,
            None,
        )
        .await;
        assert_eq!(
            r.status,
            if certified { 200 } else { 404 },
            "{domain}: {}",
            r.body
        );
    }
    let r = http(
        server.addr,
        "GET",
        "localhost",
        "/internal/tls-ask?domain=not%20a%20host",
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    server.stop().await.unwrap();
}

/// The one error shape: JSON, `error.code` and `error.message` strings.
fn assert_error_shape(r: &crate::common::Reply, what: &str) -> serde_json::Value {
    assert_eq!(
        r.headers.get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "{what}: {} {}",
        r.status,
        r.body
    );
    let body = r.json();
    assert!(body["error"]["code"].is_string(), "{what}: {}", r.body);
    assert!(body["error"]["message"].is_string(), "{what}: {}", r.body);
    body
}

#[tokio::test]
async fn every_error_the_framework_could_answer_is_in_the_one_shape() {
    let (_fleet, server, shapes) = one_tenant("shapes", Mode::Schema).await;
    let json = Some("application/json");
    // (method, path, content type, body, status, the field named)
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        ("GET", "/api/projects?limit=1e9", None, vec![], 422, "limit"),
        ("GET", "/api/projects?limit=abc", None, vec![], 422, "limit"),
        (
            "POST",
            "/api/projects",
            json,
            br#"{"name": 5}"#.to_vec(),
            422,
            "name",
        ),
        (
            "POST",
            "/api/projects",
            json,
            br#""a string body""#.to_vec(),
            422,
            "body",
        ),
        (
            "POST",
            "/api/projects",
            json,
            br#"[1, 2]"#.to_vec(),
            422,
            "body",
        ),
        (
            "POST",
            "/api/projects",
            json,
            br#"{"name": "#.to_vec(),
            400,
            "",
        ),
        (
            "POST",
            "/api/projects",
            None,
            br#"{"name": "x"}"#.to_vec(),
            415,
            "",
        ),
        (
            "POST",
            "/api/projects",
            Some("text/plain"),
            br#"{"name": "x"}"#.to_vec(),
            415,
            "",
        ),
        ("POST", "/api/projects", json, vec![b' '; 20 << 20], 413, ""),
        ("DELETE", "/api/projects", None, vec![], 405, ""),
        ("PUT", "/api/tenant", None, vec![], 405, ""),
        ("GET", "/no/such/route", None, vec![], 404, ""),
        ("GET", "/api/projects/abc", None, vec![], 404, ""),
        ("GET", "/api/projects/-1", None, vec![], 404, ""),
        ("DELETE", "/api/tokens/not-a-uuid", None, vec![], 404, ""),
        (
            "PATCH",
            "/api/members/not-a-uuid",
            json,
            br#"{"role": "viewer"}"#.to_vec(),
            404,
            "",
        ),
    ];
    for (method, path, content_type, body, status, field) in cases {
        let what = format!("{method} {path} ({content_type:?})");
        let r = shapes.raw(method, path, content_type, body).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        let shaped = assert_error_shape(&r, &what);
        assert!(
            !r.body.contains("NewProject"),
            "{what} names a Rust type: {}",
            r.body
        );
        if !field.is_empty() {
            assert!(
                shaped["error"]["fields"][field].is_string(),
                "{what}: {}",
                r.body
            );
        }
        if status == 405 {
            assert!(r.headers.contains_key("allow"), "{what}: no Allow header");
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn control_characters_are_refused_at_parse_time_naming_the_field() {
    let (fleet, server, tenant) = one_tenant("nulbytes", Mode::Schema).await;
    let apex = HttpClient::new(server.addr, "localhost");
    let created = tenant
        .post("/api/projects", serde_json::json!({"name": "clean"}))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let project = created.json()["id"].clone();
    let project = project
        .as_i64()
        .map(|i| i.to_string())
        .unwrap_or_else(|| project.as_str().unwrap().to_string());
    let nul = "nul\u{0}byte";
    let cases: Vec<(&str, &str, &HttpClient, serde_json::Value, &str)> = vec![
        (
            "POST",
            "/api/projects",
            &tenant,
            serde_json::json!({"name": nul}),
            "name",
        ),
        (
            "POST",
            "/api/projects",
            &tenant,
            serde_json::json!({"name": "ok", "description": "esc \u{1b}[31m"}),
            "description",
        ),
        (
            "PATCH",
            format!("/api/projects/{project}").leak(),
            &tenant,
            serde_json::json!({"name": nul}),
            "name",
        ),
        (
            "POST",
            format!("/api/projects/{project}/tasks").leak(),
            &tenant,
            serde_json::json!({"title": nul}),
            "title",
        ),
        (
            "POST",
            "/api/tokens",
            &tenant,
            serde_json::json!({"name": nul, "role": "viewer"}),
            "name",
        ),
        (
            "POST",
            "/api/login",
            &tenant,
            serde_json::json!({"email": "a\u{0}@example.com", "password": "correct horse battery"}),
            "email",
        ),
        (
            "POST",
            "/api/invitations/accept",
            &tenant,
            serde_json::json!({"token": "0".repeat(64), "password": "correct horse battery", "display_name": nul}),
            "display_name",
        ),
        (
            "POST",
            "/api/signup",
            &apex,
            serde_json::json!({"email": format!("n-{}@example.com", fleet.id), "password": "correct horse battery", "organisation": nul, "slug": fleet.slug("nulorg")}),
            "organisation",
        ),
        (
            "POST",
            "/api/signup",
            &apex,
            serde_json::json!({"email": format!("n-{}@example.com", fleet.id), "password": "correct horse battery", "organisation": "Org", "slug": fleet.slug("nulorg2"), "display_name": "x\u{7f}"}),
            "display_name",
        ),
    ];
    for (method, path, on, body, field) in cases {
        let what = format!("{method} {path} {field}");
        let r = on.send(method, path, Some(body)).await;
        assert_eq!(r.status, 422, "{what}: {}", r.body);
        let shaped = assert_error_shape(&r, &what);
        assert!(
            shaped["error"]["fields"][field].is_string(),
            "{what}: {}",
            r.body
        );
        assert!(
            !r.headers.contains_key("retry-after"),
            "{what}: bad input is never retried"
        );
    }
    // Nothing was written: the one clean project is all there is.
    let list = tenant.get("/api/projects").await;
    assert_eq!(
        list.json()["items"].as_array().unwrap().len(),
        1,
        "{}",
        list.body
    );
    // Tabs and new lines are text, not control: accepted.
    let r = tenant
        .post(
            "/api/projects",
            serde_json::json!({"name": "two", "description": "line one\n\tline two"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn stopping_a_server_ends_its_background_loops() {
    let fleet = TestFleet::new().await;
    let control_db = fleet.control_db();
    let admin = fleet.admin("postgres").await;
    let listening = || {
        let (admin, db) = (&admin, control_db.clone());
        async move {
            let n: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                      WHERE datname = $1 AND application_name = 'bulkhead-listen'",
                    &[&db],
                )
                .await
                .unwrap()
                .get(0);
            n
        }
    };
    let server = serve(&fleet, |_| {}).await;
    crate::common::eventually("the NOTIFY listener is connected", || async {
        listening().await == 1
    })
    .await;
    server.stop().await.unwrap();
    crate::common::eventually("the NOTIFY listener is gone", || async {
        listening().await == 0
    })
    .await;
}
