//! The connection a handler holds: derefs to a `tokio_postgres::Client`; on
//! drop it goes back to its pool, and if anyone waits for the server's budget
//! an idle connection is closed at once to hand its slot over.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use deadpool::managed::Object;

use super::lanes::Lane;
use super::{TenantManager, TenantPool};

pub struct TenantConn {
    object: Option<Object<TenantManager>>,
    /// Whose lane this connection holds: given back after the connection is
    /// back in its pool, so the request that gets the lane next finds it
    /// idle there.
    pool: Arc<TenantPool>,
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
        self.pool.lanes.leave();
        if self.pool.server.has_waiters() {
            self.pool.server.reclaim_one();
        }
    }
}
