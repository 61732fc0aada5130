//! What keeps one request's session state from reaching the next request on
//! the same connection: a reset queued as a connection that may carry some
//! (see [`super::dirt`]) goes back to its pool, and, for a request abandoned
//! mid-query, a cancel on the server and the connection closed.
//!
//! The reset is sent without waiting for its answer. tokio-postgres runs a
//! connection's requests in order, so whatever the next request sends is
//! run by the server after the reset, on a clean session: the reset costs
//! no round trip, only the server's time to run it. `ROLLBACK` first (an
//! open or failed transaction; `DISCARD ALL` refuses to run inside one), then
//! `DISCARD ALL`: `SET` variables back to their defaults (start-up options,
//! hence the pinned `search_path`, are those defaults), advisory locks,
//! prepared statements, cursors, `LISTEN`s, temporary tables released. Two
//! messages, not one string: a multi-statement string is one implicit
//! transaction, inside which `DISCARD ALL` refuses to run too.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, CancelToken, Client, Connection};

use super::socket::DrainingStream;
use crate::pg::PgConfig;

const RESET: [&str; 2] = ["ROLLBACK", "DISCARD ALL"];

/// Queues the reset on `client`'s connection without waiting for it. A
/// reset that fails means a broken connection, which fails the next user's
/// first statement too and is dropped by the pool's recycle check.
pub(super) fn queue_reset(client: &Client) {
    let mut cx = Context::from_waker(Waker::noop());
    for sql in RESET {
        // The first poll sends the request; dropping the future then only
        // discards its answer, which the connection reads and throws away.
        let sent = std::pin::pin!(client.batch_execute(sql))
            .as_mut()
            .poll(&mut cx);
        if let Poll::Ready(Err(_)) = sent {
            return;
        }
    }
}

/// Cancels whatever the connection of `token` is running, over a new socket
/// to the same server (a cancel request is not a session: it takes no slot
/// of the server's `max_connections`).
pub(super) async fn cancel(
    config: &PgConfig,
    token: &CancelToken,
    timeout: Duration,
) -> Result<(), String> {
    let sending = async {
        let (stream, host) = DrainingStream::connect(config, timeout)
            .await
            .map_err(|e| e.to_string())?;
        config
            .cancel_raw(token, stream, &host)
            .await
            .map_err(|e| crate::pg::describe(&e))
    };
    tokio::time::timeout(timeout, sending)
        .await
        .map_err(|_| "cancel request timed out".to_string())?
}

/// Drives a connection until it closes. The reset's `ROLLBACK` outside a
/// transaction draws a warning on every request: not worth a log line.
/// Other notices are logged with the tenant, as tokio-postgres would have.
pub(super) async fn drive<S, T>(mut connection: Connection<S, T>, slug: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
        match message {
            Ok(AsyncMessage::Notice(n)) if *n.code() == SqlState::NO_ACTIVE_SQL_TRANSACTION => {}
            Ok(AsyncMessage::Notice(n)) => {
                tracing::info!(tenant = %slug, severity = n.severity(), "{}", n.message())
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
