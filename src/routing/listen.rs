//! LISTEN for routing changes on a connection of its own, reconnecting with
//! jittered backoff. This connection is also how a serving process knows
//! whether the control plane is there ([`Health`]): when it is lost the
//! caches are kept and stand in for the control plane for its stale window
//! (or are dropped at once if that window is zero); when LISTEN is back,
//! every cache is dropped, since notifications sent meanwhile are lost.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use tokio_postgres::AsyncMessage;

use crate::control::Health;
use crate::secret::Secret;

pub const CHANNEL: &str = "bulkhead_routing";
/// The listening connection's `application_name` in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "bulkhead-listen";

/// How often the listening connection is asked a trivial query: a control
/// plane that vanished without closing the connection (a host gone, a
/// network cut) is noticed within this plus [`HEARTBEAT_TIMEOUT`].
const HEARTBEAT: Duration = Duration::from_secs(2);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);
/// Reconnection waits start here and double up to [`MAX_BACKOFF`]; each is
/// drawn at random from its upper half, so instances that lost the control
/// plane together do not all come back at the same instant.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Something that drops cached state on a routing change.
pub trait Invalidate: Send + Sync + 'static {
    /// `None`: drop everything.
    fn invalidate(&self, payload: Option<&str>) -> impl std::future::Future<Output = ()> + Send;
}

/// Runs until dropped: every NOTIFY on [`CHANNEL`] reaches `target`,
/// reconnecting (with back-off) whenever the connection is lost, and
/// `health` says whether it is.
pub async fn listen<T: Invalidate>(url: Secret<String>, health: Health, target: Arc<T>) {
    let mut backoff = MIN_BACKOFF;
    let mut said_down = false;
    loop {
        let mut listened = false;
        let Err(e) = listening(&url, &health, &target, &mut listened).await;
        health.mark_away();
        if listened {
            tracing::warn!(error = %e, "routing listener disconnected; reconnecting");
            backoff = MIN_BACKOFF;
        } else {
            tracing::debug!(error = %e, "control plane still unreachable");
        }
        if health.stale_for().is_zero() {
            target.invalidate(None).await;
        }
        health.report(&mut said_down);
        tokio::time::sleep(jittered(backoff)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A wait drawn from the upper half of `backoff`.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

async fn listening<T: Invalidate>(
    url: &Secret<String>,
    health: &Health,
    target: &Arc<T>,
    listened: &mut bool,
) -> Result<std::convert::Infallible, String> {
    let mut config = crate::pg::PgConfig::parse(url.expose()).map_err(|e| e.to_string())?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(crate::control::CONTROL_CONNECT_TIMEOUT);
    }
    // Named, so an operator (and a test) can tell it from the pool's.
    config.application_name(APPLICATION_NAME);
    let (client, mut connection) = config
        .connect()
        .await
        .map_err(|e| crate::pg::describe(&e))?;
    let (tx, mut rx) = futures::channel::mpsc::unbounded();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.unbounded_send(Some(n.payload().to_string())).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.unbounded_send(None);
                    tracing::warn!(error = %e, "routing listener connection failed");
                    break;
                }
            }
        }
    });
    let _driver = AbortOnDrop(driver);
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| crate::pg::describe(&e))?;
    // Back (or here for the first time): anything cached before LISTEN took
    // effect may be stale, and so may whatever was served from cache while
    // the control plane was away.
    *listened = true;
    health.mark_up();
    target.invalidate(None).await;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = rx.next() => match message {
                Some(Some(payload)) => target.invalidate(Some(&payload)).await,
                Some(None) | None => return Err("connection closed".into()),
            },
            _ = heartbeat.tick() => {
                match tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query("")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(crate::pg::describe(&e)),
                    Err(_) => return Err("the control plane stopped answering".into()),
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_drawn_from_the_upper_half() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(1));
            assert!(
                d >= Duration::from_millis(500) && d <= Duration::from_secs(1),
                "{d:?}"
            );
        }
    }
}
