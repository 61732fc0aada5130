//! A database server's connection budget, shared by every tenant pool placed
//! on it. When it is spent, idle connections of the least recently used pools
//! are closed before anyone waits, and a connection returned while someone
//! waits is closed at once so its slot goes straight to the waiter.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::TenantPool;

pub struct ServerBudget {
    pub name: String,
    pub limit: usize,
    slots: Arc<Semaphore>,
    /// Slots held right now, counted by [`Slot`] itself, and the most ever
    /// held at once.
    held: Arc<AtomicUsize>,
    high_water: AtomicUsize,
    waiters: AtomicUsize,
    pools: Mutex<Vec<Weak<TenantPool>>>,
    pub(super) waits: AtomicU64,
    /// Moving average of the time to open and check a connection, in µs.
    connect_micros: AtomicU64,
}

/// One connection's place in the budget: taken before it opens, given back
/// when dropped (by the task driving the connection, once the socket closed).
pub(super) struct Slot {
    held: Arc<AtomicUsize>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Before the permit goes back: the count never lags behind a
        // connection opened in this slot's place.
        self.held.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ServerBudget {
    pub fn new(name: &str, limit: usize) -> Self {
        Self {
            name: name.to_string(),
            limit,
            slots: Arc::new(Semaphore::new(limit)),
            held: Arc::new(AtomicUsize::new(0)),
            high_water: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            pools: Mutex::new(Vec::new()),
            waits: AtomicU64::new(0),
            connect_micros: AtomicU64::new(0),
        }
    }

    /// Connections currently open against this server.
    pub fn in_use(&self) -> usize {
        self.limit - self.slots.available_permits()
    }

    /// The most connections ever held open against this server at once (a
    /// slot is held from before a connection opens until the server has let
    /// go of its backend): never more than [`Self::limit`] if the budget holds.
    pub fn high_water(&self) -> usize {
        self.high_water.load(Ordering::SeqCst)
    }

    /// Counts a slot just taken.
    fn take(&self, permit: OwnedSemaphorePermit) -> Slot {
        let held = self.held.fetch_add(1, Ordering::SeqCst) + 1;
        self.high_water.fetch_max(held, Ordering::SeqCst);
        Slot {
            held: self.held.clone(),
            _permit: permit,
        }
    }

    /// Whether one more connection could open without closing another.
    pub(super) fn has_room(&self) -> bool {
        self.slots.available_permits() > 0
    }

    /// Folds one connection's opening time into the moving average (1/8).
    pub(super) fn record_connect(&self, took: Duration) {
        let sample = took.as_micros().min(u128::from(u32::MAX)) as u64;
        let _ = self
            .connect_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == 0 {
                    sample
                } else {
                    avg - avg / 8 + sample / 8
                })
            });
    }

    /// What opening a connection to this server costs lately.
    pub(super) fn connect_cost(&self) -> Duration {
        Duration::from_micros(self.connect_micros.load(Ordering::Relaxed))
    }

    pub(super) fn register(&self, pool: &Arc<TenantPool>) {
        let mut pools = self.pools.lock().expect("pool registry poisoned");
        pools.retain(|w| w.strong_count() > 0);
        pools.push(Arc::downgrade(pool));
    }

    pub(super) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }

    /// A slot for one new connection, waiting at most `wait`. When the
    /// budget is spent, the least recently used idle connection is closed and
    /// its slot awaited (it frees once the server has let go of the backend);
    /// only when nothing is idle does the caller become a waiter, to whom
    /// connections being returned are handed over.
    pub(super) async fn acquire(&self, wait: Duration) -> Option<Slot> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(self.take(permit));
        }
        let reclaimed = self.reclaim_one();
        if !reclaimed {
            self.waits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("bulkhead_budget_waits_total", "server" => self.name.clone())
                .increment(1);
            self.waiters.fetch_add(1, Ordering::SeqCst);
        }
        let result = tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await;
        if !reclaimed {
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
        Some(self.take(result.ok()?.ok()?))
    }

    /// Closes one idle connection: of a pool with several idle, else of the
    /// least recently used pool that has one; `true` if one was closed.
    pub(super) fn reclaim_one(&self) -> bool {
        let pools: Vec<Arc<TenantPool>> = {
            let pools = self.pools.lock().expect("pool registry poisoned");
            pools.iter().filter_map(Weak::upgrade).collect()
        };
        // A pool's second idle connection goes before anyone's last one:
        // as many tenants as possible keep a connection.
        let victim = pools
            .iter()
            .map(|p| (p, idle(p)))
            .filter(|(_, idle)| *idle > 0)
            .min_by_key(|(p, idle)| (*idle == 1, p.last_used.load(Ordering::Relaxed)))
            .map(|(p, _)| p);
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
        // Dropping the removed connection closes it; its slot frees once the
        // server has let go of the backend.
        if removed.removed.is_empty() {
            return false;
        }
        victim.lanes.shrink();
        true
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

/// How many of the pool's connections sit idle in it. Not deadpool's
/// `Status::available`, which is the pool's size less its callers: a caller
/// still opening a connection of its own (waiting for this budget) hides one
/// that came back idle meanwhile, and a budget spent on such connections was
/// never reclaimed, so its waiters waited in vain.
fn idle(pool: &TenantPool) -> usize {
    pool.pool.retain(|_, _| true).retained
}
