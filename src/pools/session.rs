//! What keeps one request's session state from reaching the next request on
//! the same connection: a reset of a connection that may carry some (see
//! [`super::dirt`]) before it goes back to its pool, and, for a request
//! abandoned mid-query, a cancel on the server and the connection closed.
//!
//! The connection goes back to its pool (and its lane to the next request)
//! once the server has answered the reset; one that cannot be reset in
//! time is cancelled and closed, never reused. `ROLLBACK` first (an
//! open or failed transaction; `DISCARD ALL` refuses to run inside one), then
//! `DISCARD ALL`: `SET` variables back to their defaults (start-up options,
//! hence the pinned `search_path`, are those defaults), advisory locks,
//! prepared statements, cursors, `LISTEN`s, temporary tables released. Two
//! messages, not one string: a multi-statement string is one implicit
//! transaction, inside which `DISCARD ALL` refuses to run too.

use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, CancelToken, Client, Connection};

use super::socket::DrainingStream;
use crate::pg::PgConfig;

/// Longest a reset may take before its connection is given up on: it
/// waits behind anything its request left running unawaited.
pub(super) const RESET_TIMEOUT: Duration = Duration::from_secs(2);

/// Resets the session: `ROLLBACK` sent without waiting, then `DISCARD ALL`
/// awaited. The server runs them in order, so `DISCARD ALL`'s success means
/// both ran: one round trip, and an answer that says the session is clean.
pub(super) async fn reset(client: &Client) -> Result<(), tokio_postgres::Error> {
    {
        // The first poll sends it; its answer is read and thrown away by
        // the connection (a broken connection fails `DISCARD ALL` as well).
        let mut cx = Context::from_waker(Waker::noop());
        let _ = std::pin::pin!(client.batch_execute("ROLLBACK"))
            .as_mut()
            .poll(&mut cx);
    }
    client.batch_execute("DISCARD ALL").await
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
