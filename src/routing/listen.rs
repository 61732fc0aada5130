//! LISTEN for routing changes on a connection of its own, reconnecting with
//! backoff; after a reconnect every cache is dropped, since notifications sent
//! while disconnected are lost.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::AsyncMessage;

use crate::secret::Secret;

pub const CHANNEL: &str = "bulkhead_routing";

/// Something that drops cached state on a routing change.
pub trait Invalidate: Send + Sync + 'static {
    /// `None`: drop everything.
    fn invalidate(&self, payload: Option<&str>) -> impl std::future::Future<Output = ()> + Send;
}

/// Runs until dropped: every NOTIFY on [`CHANNEL`] reaches `target`,
/// reconnecting (with back-off) whenever the connection is lost.
pub async fn listen<T: Invalidate>(url: Secret<String>, target: Arc<T>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match listen_once(&url, &target).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => tracing::warn!(error = %e, "routing listener disconnected; reconnecting"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once<T: Invalidate>(url: &Secret<String>, target: &Arc<T>) -> Result<(), String> {
    let config = crate::pg::PgConfig::parse(url.expose()).map_err(|e| e.to_string())?;
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
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| crate::pg::describe(&e))?;
    // Anything cached before LISTEN took effect may be stale.
    target.invalidate(None).await;
    while let Some(message) = rx.next().await {
        match message {
            Some(payload) => target.invalidate(Some(&payload)).await,
            None => break,
        }
    }
    driver.abort();
    drop(client);
    target.invalidate(None).await;
    Err("connection closed".into())
}
