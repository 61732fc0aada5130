//! A database server's connection budget, shared by every tenant pool placed
//! on it. When it is spent, idle connections of the least recently used pools
//! are closed before anyone waits, and a connection returned while someone
//! waits is closed at once so its slot goes straight to the waiter.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::TenantPool;

pub struct ServerBudget {
    pub name: String,
    pub limit: usize,
    slots: Arc<Semaphore>,
    waiters: AtomicUsize,
    pools: Mutex<Vec<Weak<TenantPool>>>,
    pub(super) waits: AtomicU64,
}

impl ServerBudget {
    pub fn new(name: &str, limit: usize) -> Self {
        Self {
            name: name.to_string(),
            limit,
            slots: Arc::new(Semaphore::new(limit)),
            waiters: AtomicUsize::new(0),
            pools: Mutex::new(Vec::new()),
            waits: AtomicU64::new(0),
        }
    }

    /// Connections currently open against this server.
    pub fn in_use(&self) -> usize {
        self.limit - self.slots.available_permits()
    }

    pub(super) fn register(&self, pool: &Arc<TenantPool>) {
        let mut pools = self.pools.lock().expect("pool registry poisoned");
        pools.retain(|w| w.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }

    pub(super) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }

    /// A slot for one new connection, waiting at most `wait`.
    pub(super) async fn acquire(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                return Some(permit);
            }
            if self.reclaim_one() {
                continue;
            }
            self.waits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("bulkhead_budget_waits_total", "server" => self.name.clone())
                .increment(1);
            self.waiters.fetch_add(1, Ordering::SeqCst);
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = tokio::time::timeout(remaining, self.slots.clone().acquire_owned()).await;
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            return match result {
                Ok(Ok(permit)) => Some(permit),
                _ => None,
            };
        }
    }

    /// Closes one idle connection of the least recently used pool that has
    /// one; `true` if a slot was freed.
    pub(super) fn reclaim_one(&self) -> bool {
        let pools: Vec<Arc<TenantPool>> = {
            let pools = self.pools.lock().expect("pool registry poisoned");
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        let victim = pools
            .iter()
            .filter(|p| p.pool.status().available > 0)
            .min_by_key(|p| p.last_used.load(Ordering::Relaxed));
        let Some(victim) = victim else {
            return false;
        };
        let mut closed = false;
        let removed = victim.pool.retain(|_, _| {
            if closed {
                return true;
            }
            closed = true;
            false
        });
        // Dropping the removed connection closes it and returns its slot.
        !removed.removed.is_empty()
    }

    /// Closes connections idle for longer than `idle`.
    pub(super) fn close_idle(&self, idle: Duration) {
        let pools: Vec<Arc<TenantPool>> = {
            let mut pools = self.pools.lock().expect("pool registry poisoned");
            pools.retain(|w| w.strong_count() > 0);
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        for p in pools {
            p.pool.retain(|_, metrics| metrics.last_used() < idle);
        }
    }
}
