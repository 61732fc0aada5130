//! A bound on password hashing at once. One argon2id hash or check holds
//! 19 MiB for ~20 ms of a core: eight parallel log-ins took the server from
//! 49 MB to 193 MB, and a hundred would take ~2 GB. Here at most `permits`
//! run at once (about one per core); the rest wait a short while in line,
//! and past that the request is answered 503 + `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

#[doc(hidden)]
#[derive(Clone)]
pub struct Hashing {
    permits: Arc<Semaphore>,
    wait: Duration,
}

/// Why a hash did not run.
#[doc(hidden)]
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("every password hashing slot stayed busy for {0:?}")]
    Busy(Duration),
    #[error("password hashing task failed: {0}")]
    Failed(#[source] tokio::task::JoinError),
}

impl Hashing {
    /// `permits` hashes at once (at least one); a hash waits at most `wait`
    /// for its turn.
    pub fn new(permits: usize, wait: Duration) -> Self {
        let permits = permits.max(1);
        metrics::gauge!("bulkhead_password_hash_slots").set(permits as f64);
        Self {
            permits: Arc::new(Semaphore::new(permits)),
            wait,
        }
    }

    /// Refuses every hash (503): what a test uses to prove that a path
    /// hashes nothing.
    #[doc(hidden)]
    pub fn closed() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(0)),
            wait: Duration::ZERO,
        }
    }

    /// One slot per core the process may use.
    pub fn default_permits() -> usize {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// Runs `work` (a hash or a check) on the blocking pool once a slot is
    /// free, or gives up after the wait.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                // The semaphore is never closed; a timeout is the only way here.
                Ok(Err(_)) | Err(_) => {
                    metrics::counter!("bulkhead_password_hash_busy_total").increment(1);
                    tracing::warn!("password hashing saturated: request refused with 503");
                    return Err(HashingError::Busy(self.wait));
                }
            };
        let in_use = metrics::gauge!("bulkhead_password_hashes_running");
        in_use.increment(1.0);
        let result = tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await;
        in_use.decrement(1.0);
        result.map_err(HashingError::Failed)
    }
}

impl Default for Hashing {
    fn default() -> Self {
        Self::new(Self::default_permits(), Duration::from_secs(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_slots_a_hash_waits_then_gives_up() {
        let hashing = Hashing::new(1, Duration::from_millis(50));
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let busy = hashing.clone();
        let holder = tokio::spawn(async move {
            busy.run(move || {
                started_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
            .await
        });
        tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
            .await
            .unwrap();
        assert!(matches!(
            hashing.run(|| 1).await,
            Err(HashingError::Busy(_))
        ));
        release_tx.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(hashing.run(|| 2).await.unwrap(), 2);
    }
}
