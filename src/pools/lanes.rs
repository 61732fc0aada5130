//! How many requests of one tenant may hold a connection at once.
//!
//! With thousands of tenants behind a budget far below their number, opening
//! a connection (a backend start and a login, milliseconds of server CPU) costs
//! ten times a query. So a tenant whose connections are all busy while the
//! server's budget is spent first waits a moment for one of its own to come
//! back rather than closing another tenant's: its lanes grow only when the
//! budget has room, or when that wait ran out (a busy tenant earns more
//! connections; one request at a time never takes more than one). Lanes are
//! given back when the tenant's idle connections are reclaimed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

/// The least a request waits for its own tenant's connection before its tenant
/// may take one more from a spent budget. The wait is otherwise what opening a
/// connection currently costs on that server ([`super::ServerBudget::connect_cost`]):
/// under load, opening slows down, and so does growing.
pub(super) const MIN_PATIENCE: Duration = Duration::from_millis(5);

pub(super) struct Lanes {
    permits: Semaphore,
    granted: AtomicUsize,
    cap: usize,
}

impl Lanes {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            permits: Semaphore::new(0),
            granted: AtomicUsize::new(0),
            cap: cap.max(1),
        }
    }

    /// A lane, or `None` when none came free within `wait`. `budget_has_room`
    /// says whether the server could take one more connection right now;
    /// `patience` is how long to wait for one of the tenant's own first.
    pub(super) async fn enter(
        &self,
        budget_has_room: bool,
        patience: Duration,
        wait: Duration,
    ) -> Option<Lane<'_>> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Some(Lane(permit));
        }
        let mut waited = Duration::ZERO;
        if self.granted.load(Ordering::Acquire) > 0 && !budget_has_room {
            let patience = patience.max(MIN_PATIENCE).min(wait / 2);
            if let Ok(Ok(permit)) = tokio::time::timeout(patience, self.permits.acquire()).await {
                return Some(Lane(permit));
            }
            waited = patience;
        }
        self.grow();
        tokio::time::timeout(wait.saturating_sub(waited), self.permits.acquire())
            .await
            .ok()?
            .ok()
            .map(Lane)
    }

    /// Gives back a lane that was [`Lane::keep`]t.
    pub(super) fn leave(&self) {
        self.permits.add_permits(1);
    }

    /// One more lane, unless the tenant is at its cap.
    fn grow(&self) {
        let grown = self
            .granted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.cap).then_some(n + 1)
            });
        if grown.is_ok() {
            self.permits.add_permits(1);
        }
    }

    /// Gives back one unused lane (never the last), after one of the tenant's
    /// idle connections was closed for someone else.
    pub(super) fn shrink(&self) {
        if self.granted.load(Ordering::Acquire) <= 1 {
            return;
        }
        if let Ok(permit) = self.permits.try_acquire() {
            permit.forget();
            self.granted.fetch_sub(1, Ordering::AcqRel);
        }
    }

    #[cfg(test)]
    fn granted(&self) -> usize {
        self.granted.load(Ordering::Acquire)
    }
}

/// A lane held: given back when dropped, unless kept.
pub(super) struct Lane<'a>(SemaphorePermit<'a>);

impl Lane<'_> {
    /// Holds the lane beyond this borrow, by whoever holds the tenant's pool:
    /// it must give it back with [`Lanes::leave`] exactly once.
    pub(super) fn keep(self) {
        self.0.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn first_request_gets_a_lane_and_a_busy_tenant_grows_to_its_cap() {
        let lanes = Lanes::new(2);
        let a = lanes
            .enter(false, MIN_PATIENCE, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(lanes.granted(), 1);
        // Budget spent: the second request waits its patience, then grows.
        let b = lanes
            .enter(false, MIN_PATIENCE, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(lanes.granted(), 2);
        // At the cap: nothing more within the wait.
        assert!(
            lanes
                .enter(true, MIN_PATIENCE, Duration::from_millis(20))
                .await
                .is_none()
        );
        drop(a);
        let c = lanes
            .enter(false, MIN_PATIENCE, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(lanes.granted(), 2);
        drop((b, c));
    }

    #[tokio::test]
    async fn a_lane_returned_within_the_patience_is_reused_without_growing() {
        let lanes = std::sync::Arc::new(Lanes::new(5));
        lanes
            .enter(false, MIN_PATIENCE, Duration::from_secs(1))
            .await
            .unwrap()
            .keep();
        // Runs (on this single-threaded test runtime) once `enter` waits.
        let holder = lanes.clone();
        let releaser = tokio::spawn(async move { holder.leave() });
        let again = lanes
            .enter(false, MIN_PATIENCE, Duration::from_secs(1))
            .await
            .unwrap();
        releaser.await.unwrap();
        assert_eq!(lanes.granted(), 1, "waited for its own lane");
        drop(again);
    }

    #[tokio::test]
    async fn shrink_keeps_one_lane_and_never_takes_a_held_one() {
        let lanes = Lanes::new(4);
        let a = lanes
            .enter(true, MIN_PATIENCE, Duration::from_secs(1))
            .await
            .unwrap();
        let b = lanes
            .enter(true, MIN_PATIENCE, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(lanes.granted(), 2);
        lanes.shrink();
        assert_eq!(lanes.granted(), 2, "both lanes are held");
        drop(b);
        lanes.shrink();
        assert_eq!(lanes.granted(), 1);
        lanes.shrink();
        assert_eq!(lanes.granted(), 1, "the last lane stays");
        drop(a);
    }
}
