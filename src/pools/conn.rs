//! The connection a handler holds: derefs to a `tokio_postgres::Client`; on
//! drop it goes back to its pool, and if anyone waits for the server's budget
//! an idle connection is closed at once to hand its slot over.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use deadpool::managed::Object;
use tokio::sync::OwnedSemaphorePermit;

use super::{ServerBudget, TenantManager};

pub struct TenantConn {
    object: Option<Object<TenantManager>>,
    /// Released after the connection is back in its pool, so the request
    /// that gets the lane next finds it idle there.
    lane: Option<OwnedSemaphorePermit>,
    server: Arc<ServerBudget>,
}

impl TenantConn {
    pub(super) fn new(
        object: Object<TenantManager>,
        lane: OwnedSemaphorePermit,
        server: Arc<ServerBudget>,
    ) -> Self {
        Self {
            object: Some(object),
            lane: Some(lane),
            server,
        }
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
        drop(self.object.take());
        drop(self.lane.take());
        if self.server.has_waiters() {
            self.server.reclaim_one();
        }
    }
}
