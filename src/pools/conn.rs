//! The connection a handler holds: derefs to a `tokio_postgres::Client`; on
//! drop it goes back to its pool, its session reset if a statement may have
//! left state in it (see [`super::dirt`], [`super::session`]),
//! and if anyone waits for the server's budget an idle connection is closed at
//! once to hand its slot over. Dropped with its request unfinished, it may be
//! mid-query: the query is cancelled on the server and the connection closed,
//! so the query neither outlives its request nor holds a budget slot.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use deadpool::managed::Object;

use super::lanes::Lane;
use super::{TenantClient, TenantManager, TenantPool, request, session};

pub struct TenantConn {
    object: Option<Object<TenantManager>>,
    /// Whose lane this connection holds: given back after the connection is
    /// back in its pool, so the request that gets the lane next finds it
    /// idle there.
    pool: Arc<TenantPool>,
    /// Taken while a request's handler was being polled: dropped outside
    /// such a poll, it was dropped with its request.
    in_request: bool,
}

impl TenantConn {
    pub(super) fn new(
        object: Object<TenantManager>,
        lane: Lane<'_>,
        pool: &Arc<TenantPool>,
    ) -> Self {
        lane.keep();
        Self {
            object: Some(object),
            pool: pool.clone(),
            in_request: request::polling(),
        }
    }

    /// Resets a connection a statement may have left state in, then puts it
    /// back in its pool and gives its lane back: the next request waits for
    /// the clean connection rather than getting a dirty one. One that
    /// cannot be reset (a broken connection, or one still busy with
    /// something its request left running) is cancelled and closed.
    fn reset_then_return(&self, object: Object<TenantManager>) {
        let pool = self.pool.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            drop(Object::take(object));
            release(&pool);
            return;
        };
        runtime.spawn(async move {
            match tokio::time::timeout(session::RESET_TIMEOUT, session::reset(&object.client)).await
            {
                Ok(Ok(())) => drop(object),
                outcome => {
                    let detail = match outcome {
                        Ok(Err(e)) => crate::pg::describe(&e),
                        _ => "timed out".to_string(),
                    };
                    tracing::warn!(tenant = %pool.pool.manager().slug, %detail, "a connection that could not be reset is closed");
                    abandon(&pool, Object::take(object));
                }
            }
            release(&pool);
        });
    }
}

/// Closes a connection whose request ended while it may have been running a
/// query, after asking the server to cancel that query. Not reused: a
/// cancel that arrived late would hit the next request's statements
/// instead. Its budget slot frees once the backend has gone, which it does
/// as soon as the cancel has stopped the query.
fn abandon(pool: &TenantPool, client: TenantClient) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let manager = pool.pool.manager();
    let (config, timeout) = (manager.config.clone(), manager.connect_timeout);
    let (slug, server) = (manager.slug.clone(), manager.server.name.clone());
    let token = client.client.cancel_token();
    metrics::counter!("bulkhead_queries_abandoned_total", "server" => server.clone()).increment(1);
    runtime.spawn(async move {
        if let Err(detail) = session::cancel(&config, &token, timeout).await {
            tracing::warn!(tenant = %slug, %server, %detail, "could not cancel an abandoned request's query");
        }
        drop(client);
    });
}

/// Gives a connection's lane back once the connection is back in its pool
/// (or gone), and hands a budget slot to anyone waiting for one.
fn release(pool: &TenantPool) {
    pool.lanes.leave();
    if pool.server.has_waiters() {
        pool.server.reclaim_one();
    }
}

impl Deref for TenantConn {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &tokio_postgres::Client {
        &self.object.as_ref().expect("present until drop").client
    }
}

impl DerefMut for TenantConn {
    fn deref_mut(&mut self) -> &mut tokio_postgres::Client {
        &mut self.object.as_mut().expect("present until drop").client
    }
}

impl Drop for TenantConn {
    fn drop(&mut self) {
        let Some(object) = self.object.take() else {
            return;
        };
        if self.in_request && !request::polling() {
            abandon(&self.pool, Object::take(object));
        } else if object.dirt.take() {
            return self.reset_then_return(object);
        } else {
            drop(object);
        }
        release(&self.pool);
    }
}
