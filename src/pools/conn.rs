//! The connection a handler holds: derefs to a `tokio_postgres::Client`; on
//! drop it goes back to its pool, and if anyone waits for the server's budget
//! an idle connection is closed at once to hand its slot over.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use deadpool::managed::Object;

use super::{ServerBudget, TenantManager};

pub struct TenantConn {
    object: Option<Object<TenantManager>>,
    server: Arc<ServerBudget>,
}

impl TenantConn {
    pub(super) fn new(object: Object<TenantManager>, server: Arc<ServerBudget>) -> Self {
        Self {
            object: Some(object),
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
        if self.server.has_waiters() {
            self.server.reclaim_one();
        }
    }
}
