//! Sending events to the webhook endpoint, signed as Stripe signs them.

use futures::future::join_all;
use reqwest::header::{CONTENT_TYPE, HOST};

use super::StandIn;
use super::store::now;

impl StandIn {
    /// POSTs one payload with this signature header; the status, or 0 when
    /// nothing answered. A connection error is tried once more.
    pub(super) async fn post(&self, payload: &str, signature: &str) -> u16 {
        let settings = &self.0.settings;
        for attempt in 1..=2 {
            let mut request = self
                .0
                .http
                .post(&settings.webhook_url)
                .header(CONTENT_TYPE, "application/json")
                .header("Stripe-Signature", signature)
                .body(payload.to_owned());
            if let Some(host) = &settings.webhook_host {
                request = request.header(HOST, host);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if !status.is_success() {
                        tracing::warn!(%status, url = %settings.webhook_url, "the webhook endpoint refused an event");
                    }
                    return status.as_u16();
                }
                Err(err) if err.is_connect() && attempt == 1 => {
                    tracing::debug!(error = %err, "webhook endpoint not reached; trying once more");
                }
                Err(err) => {
                    tracing::warn!(error = %err, url = %settings.webhook_url, "webhook not delivered");
                    return 0;
                }
            }
        }
        0
    }

    /// POSTs a payload `times` times at once, each freshly signed.
    pub(super) async fn post_many(&self, payload: &str, times: usize) -> Vec<u16> {
        let posts = (0..times).map(|_| {
            let signature = self.sign(payload, now());
            async move { self.post(payload, &signature).await }
        });
        join_all(posts).await
    }
}
