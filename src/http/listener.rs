//! The HTTP listener: hyper's HTTP/1.1 server with a timer, so a client that
//! never finishes its request headers, or leaves a kept-alive connection idle,
//! is cut off; and a cap on open connections, past which new ones wait in the
//! kernel's accept queue instead of costing the process memory.
//!
//! `axum::serve` gives hyper no timer, and without one hyper's header-read
//! timeout never runs: a client sending `X-Slow: ` and never the final CRLF
//! kept its connection (and a task) forever, and the request's own 30 s limit
//! starts only once the headers are in.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::envelope::{Envelope, REQUEST_TIMEOUT};
use super::peer::Peer;

/// How much of the process one client's connections may hold.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// A request's headers must arrive within this long of the connection
    /// opening or of the previous response; the same bound closes a
    /// kept-alive connection left idle.
    pub header_read_timeout: Duration,
    /// Connections served at once; past it, new ones wait to be accepted.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (at most a request's time limit and a little more).
pub async fn serve(
    listener: TcpListener,
    app: Envelope<Router>,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    metrics::gauge!("bulkhead_http_connections_max").set(limits.max_connections as f64);
    let open = metrics::gauge!("bulkhead_http_connections");
    let waited = metrics::counter!("bulkhead_http_connections_waited_total");
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                waited.increment(1);
                tracing::warn!(
                    max = limits.max_connections,
                    "connection limit reached: new connections wait"
                );
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let peer = Peer::new(remote);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer.clone()));
            tower::ServiceExt::oneshot(app.clone(), request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let open = open.clone();
        open.increment(1.0);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            open.decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    let grace = REQUEST_TIMEOUT + Duration::from_secs(5);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the grace period: closed");
    }
    Ok(())
}

/// A failed accept never stops the server. Out of file descriptors (or any
/// other trouble of the listener itself) waits a moment first, so the loop
/// does not spin; a connection that died in the queue does not.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    metrics::counter!("bulkhead_http_accept_errors_total").increment(1);
    tracing::warn!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
