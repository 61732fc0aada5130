//! The edges of the HTTP layer, tried as an attacker would: clients that never
//! finish a request, more connections than the cap, bytes PostgreSQL refuses,
//! ambiguous hosts, and every way a framework could answer outside the one
//! error shape.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bulkhead::control::Mode;
use common::{TestFleet, http, serve};
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
    let fleet = TestFleet::new().await;
    let a = fleet.tenant("edgeacme", Mode::Database).await;
    let server = serve(&fleet, |_| {}).await;
    let token = fleet.token(&a, "admin").await;
    let host = format!("{a}.localhost");
    let r = http(
        server.addr,
        "GET",
        &host,
        "/api/projects",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop().await.unwrap();
}
