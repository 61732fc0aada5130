//! The other end of an HTTP connection: its address, and a memo of what its
//! last requests resolved to.
//!
//! A keep-alive client sends the same `Host` and `Authorization` again and
//! again; the memo lets such a request skip parsing the host, two cache
//! lookups and hashing the token, and the pool cache's lookup for its
//! connection. It is only a shortcut for what the caches would answer. The
//! caller part is dropped the moment any routing or token cache is
//! invalidated (the resolver's epoch moves, see [`Resolver::epoch`]) and is
//! consulted only when both headers are byte for byte what it was made from;
//! the pool part is used only for the tenant it belongs to, at the same
//! credential generation, while the pool is open. Both live at most
//! [`MEMO_LIFETIME`] and belong to one TCP connection.
//!
//! [`Resolver::epoch`]: crate::routing::Resolver::epoch

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;

use super::caller::Caller;
use crate::pools::TenantPool;
use crate::routing::TenantEntry;

/// How long a memo may answer before the caches are asked again.
pub const MEMO_LIFETIME: Duration = Duration::from_secs(5);

#[doc(hidden)]
#[derive(Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    memo: Arc<Mutex<Memos>>,
}

#[derive(Default)]
struct Memos {
    caller: Option<CallerMemo>,
    /// The pool the last request's connection came from, and until when it
    /// may be used without asking the pool cache (whose idle timer it keeps
    /// alive by being asked again at least that often).
    pool: Option<(Arc<TenantPool>, Instant)>,
}

struct CallerMemo {
    host: Box<[u8]>,
    authorization: Box<[u8]>,
    caller: Caller,
    epoch: u64,
    until: Instant,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            memo: Arc::default(),
        }
    }

    /// What this connection's memo says `host` and `authorization` resolve
    /// to, if it was made from exactly these at `epoch` and is still young.
    pub(super) fn recall(
        &self,
        host: &HeaderValue,
        authorization: &HeaderValue,
        epoch: u64,
    ) -> Option<Caller> {
        let memo = self.memo.lock().ok()?;
        let memo = memo.caller.as_ref()?;
        let fits = memo.epoch == epoch
            && Instant::now() < memo.until
            && *memo.host == *host.as_bytes()
            && crate::auth::sessions::same_token_bytes(
                &memo.authorization,
                authorization.as_bytes(),
            );
        fits.then(|| memo.caller.clone())
    }

    /// Remembers what the caches said for these headers; `epoch` must have
    /// been read before the caches were asked, so an invalidation racing the
    /// lookup leaves a memo that no longer fits.
    pub(super) fn remember(
        &self,
        host: &HeaderValue,
        authorization: &HeaderValue,
        epoch: u64,
        caller: &Caller,
    ) {
        if let Ok(mut memo) = self.memo.lock() {
            memo.caller = Some(CallerMemo {
                host: host.as_bytes().into(),
                authorization: authorization.as_bytes().into(),
                caller: caller.clone(),
                epoch,
                until: Instant::now() + MEMO_LIFETIME,
            });
        }
    }

    /// The pool this connection last used, if it is `tenant`'s (at its
    /// current credentials), still open and still young.
    pub(super) fn recall_pool(&self, tenant: &TenantEntry) -> Option<Arc<TenantPool>> {
        let memo = self.memo.lock().ok()?;
        let (pool, until) = memo.pool.as_ref()?;
        (Instant::now() < *until && pool.serves(tenant) && pool.is_open()).then(|| pool.clone())
    }

    pub(super) fn remember_pool(&self, pool: &Arc<TenantPool>) {
        if let Ok(mut memo) = self.memo.lock() {
            memo.pool = Some((pool.clone(), Instant::now() + MEMO_LIFETIME));
        }
    }
}

/// The connection a request came in on, as the listener recorded it.
pub(super) fn peer(parts: &axum::http::request::Parts) -> Option<&Peer> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<Peer>>()
        .map(|info| &info.0)
}
