//! Whether the control plane is reachable, as a serving process sees it, and
//! what its caches may answer while it is not.
//!
//! The routing listener holds the one long-lived connection to the control
//! plane: when it is lost the control plane is *away* ([`Health::mark_away`]);
//! when LISTEN is back it is *up* again ([`Health::mark_up`]), and the
//! listener drops every cache (a NOTIFY may have been missed meanwhile).
//! While it is away, nothing is asked of it (no request waits on a dead
//! server) and the caches stand in for it for `stale_for`: what was known
//! before the outage is served, what was not is `ControlError::Away` (503
//! `control_plane_unavailable`). Past `stale_for`, everything that needs the
//! control plane is 503 until it returns. See [`Health::answer`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ControlError;

/// The control plane, as seen from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    /// Away for `away`, within the stale window: caches answer.
    Stale {
        away: Duration,
    },
    /// Away for `away`, past the stale window: nothing answers.
    Down {
        away: Duration,
    },
}

/// Shared by a serving process's caches, its control-plane handle and its
/// routing listener. A handle that no listener watches (a CLI command) is
/// always up.
#[derive(Clone)]
pub struct Health(Arc<Inner>);

struct Inner {
    stale_for: Duration,
    origin: Instant,
    /// Milliseconds after `origin` (plus one) since which the control plane
    /// is away; 0 while it is up.
    away_since: AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Self::new(Duration::ZERO)
    }
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("state", &self.state())
            .field("stale_for", &self.0.stale_for)
            .finish()
    }
}

impl Health {
    /// Up, with caches trusted for `stale_for` into an outage (`0`: not at
    /// all, everything that needs the control plane is 503 at once).
    pub fn new(stale_for: Duration) -> Self {
        metrics::gauge!("bulkhead_control_plane_up").set(1.0);
        Self(Arc::new(Inner {
            stale_for,
            origin: Instant::now(),
            away_since: AtomicU64::new(0),
        }))
    }

    pub fn stale_for(&self) -> Duration {
        self.0.stale_for
    }

    pub fn state(&self) -> State {
        let since = self.0.away_since.load(Ordering::Acquire);
        if since == 0 {
            return State::Up;
        }
        let away = self
            .0
            .origin
            .elapsed()
            .saturating_sub(Duration::from_millis(since - 1));
        if away < self.0.stale_for {
            State::Stale { away }
        } else {
            State::Down { away }
        }
    }

    pub fn is_up(&self) -> bool {
        self.0.away_since.load(Ordering::Acquire) == 0
    }

    /// The control plane was lost (the first call of an outage counts).
    pub fn mark_away(&self) {
        let now = self.0.origin.elapsed().as_millis() as u64 + 1;
        if self
            .0
            .away_since
            .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            metrics::gauge!("bulkhead_control_plane_up").set(0.0);
            if self.0.stale_for.is_zero() {
                tracing::error!("control plane unreachable: requests that need it answer 503");
            } else {
                tracing::warn!(
                    stale_for_secs = self.0.stale_for.as_secs_f64(),
                    "control plane unreachable: serving from cache"
                );
            }
        }
    }

    /// The control plane is back; returns how long it was away, if it was.
    pub fn mark_up(&self) -> Option<Duration> {
        let state = self.state();
        let was = self.0.away_since.swap(0, Ordering::AcqRel);
        if was == 0 {
            return None;
        }
        metrics::gauge!("bulkhead_control_plane_up").set(1.0);
        metrics::gauge!("bulkhead_control_plane_away_seconds").set(0.0);
        let away = match state {
            State::Stale { away } | State::Down { away } => away,
            State::Up => Duration::ZERO,
        };
        tracing::info!(
            away_secs = away.as_secs_f64(),
            "control plane back: caches flushed"
        );
        Some(away)
    }

    /// Publishes how long it has been away; says once when the stale window
    /// has run out. Called by the listener between reconnection attempts.
    pub fn report(&self, said_down: &mut bool) {
        match self.state() {
            State::Up => *said_down = false,
            State::Stale { away } => {
                metrics::gauge!("bulkhead_control_plane_away_seconds").set(away.as_secs_f64())
            }
            State::Down { away } => {
                metrics::gauge!("bulkhead_control_plane_away_seconds").set(away.as_secs_f64());
                if !*said_down && !self.0.stale_for.is_zero() {
                    tracing::error!(
                        away_secs = away.as_secs_f64(),
                        "control plane still unreachable: the stale window is over, \
                         requests that need it answer 503"
                    );
                }
                *said_down = true;
            }
        }
    }

    /// Refuses at once while the control plane is away: a query would only
    /// wait for a server that is not there.
    pub(crate) fn check(&self) -> Result<(), ControlError> {
        match self.state() {
            State::Up => Ok(()),
            State::Stale { away } | State::Down { away } => Err(ControlError::Away(away)),
        }
    }

    /// What a cache answers, given what it holds for the key (`fresh`: not
    /// older than its time to live) and how to ask the control plane:
    ///
    /// - up: a fresh entry, else `fetch`; if the control plane cannot be
    ///   reached, the entry held (never older than its time to live plus
    ///   `stale_for`), else the error;
    /// - away, within `stale_for`: whatever is held, fresh or not; nothing
    ///   held is `ControlError::Away` (nothing is resolved that was not
    ///   resolved before);
    /// - away for longer: `ControlError::Away`.
    pub async fn answer<V, Fut>(
        &self,
        cache: &'static str,
        held: Option<(V, bool)>,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<V, ControlError>
    where
        Fut: Future<Output = Result<V, ControlError>>,
    {
        match (self.state(), held) {
            (State::Up, Some((value, true))) => Ok(value),
            (State::Up, held) => match fetch().await {
                Ok(value) => Ok(value),
                Err(e) if e.is_unreachable() && !self.0.stale_for.is_zero() => match held {
                    Some((value, _)) => {
                        stale(cache);
                        Ok(value)
                    }
                    None => Err(e),
                },
                Err(e) => Err(e),
            },
            (State::Stale { .. }, Some((value, _))) => {
                stale(cache);
                Ok(value)
            }
            (State::Stale { away } | State::Down { away }, _) => Err(ControlError::Away(away)),
        }
    }
}

fn stale(cache: &'static str) {
    metrics::counter!("bulkhead_served_stale_total", "cache" => cache).increment(1);
}

/// A cached value and when it was fetched: fresh for the cache's time to
/// live, then kept (for `stale_for` more) in case the control plane is away.
#[derive(Clone)]
pub struct Stamped<V> {
    pub value: V,
    at: Instant,
}

impl<V> Stamped<V> {
    pub fn new(value: V) -> Self {
        Self {
            value,
            at: Instant::now(),
        }
    }

    /// The value and whether it is younger than `ttl`.
    pub fn held(self, ttl: Duration) -> (V, bool) {
        let fresh = self.at.elapsed() < ttl;
        (self.value, fresh)
    }
}

/// How long a cache keeps an entry: its time to live plus the stale window.
pub fn keep_for(ttl: Duration, health: &Health) -> Duration {
    ttl.saturating_add(health.stale_for())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> ControlError {
        ControlError::Away(Duration::ZERO)
    }

    #[tokio::test]
    async fn up_serves_fresh_entries_and_fetches_the_rest() {
        let h = Health::new(Duration::from_secs(60));
        assert_eq!(
            h.answer("t", Some((1, true)), || async { Ok(2) })
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            h.answer("t", Some((1, false)), || async { Ok(2) })
                .await
                .unwrap(),
            2
        );
        assert_eq!(h.answer("t", None, || async { Ok(2) }).await.unwrap(), 2);
        // A failed fetch falls back on the entry held, if any.
        assert_eq!(
            h.answer("t", Some((1, false)), || async { Err(unreachable()) })
                .await
                .unwrap(),
            1
        );
        assert!(
            h.answer::<i32, _>("t", None, || async { Err(unreachable()) })
                .await
                .is_err()
        );
        // ...but only when the control plane could not be reached.
        let corrupt = || async { Err(ControlError::Corrupt("x".into())) };
        assert!(h.answer("t", Some((1, false)), corrupt).await.is_err());
    }

    #[tokio::test]
    async fn away_serves_what_is_held_for_the_window_only() {
        let h = Health::new(Duration::from_millis(200));
        h.mark_away();
        assert!(matches!(h.state(), State::Stale { .. }));
        let never = || async { panic!("asked the control plane while it is away") };
        assert_eq!(h.answer("t", Some((1, false)), never).await.unwrap(), 1);
        assert!(matches!(
            h.answer::<i32, _>("t", None, never).await,
            Err(ControlError::Away(_))
        ));
        assert!(h.check().is_err());
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(matches!(h.state(), State::Down { .. }));
        assert!(h.answer("t", Some((1, true)), never).await.is_err());
        assert!(h.mark_up().is_some_and(|d| d >= Duration::from_millis(200)));
        assert_eq!(h.state(), State::Up);
        assert!(h.mark_up().is_none());
        assert!(h.check().is_ok());
    }

    #[tokio::test]
    async fn a_zero_window_is_strict() {
        let h = Health::new(Duration::ZERO);
        assert!(
            h.answer("t", Some((1, false)), || async { Err(unreachable()) })
                .await
                .is_err()
        );
        h.mark_away();
        assert!(matches!(h.state(), State::Down { .. }));
        let never = || async { panic!("asked the control plane while it is away") };
        assert!(h.answer("t", Some((1, true)), never).await.is_err());
    }
}
