//! A small Stripe-compatible server for `bulkhead dev` and tests, where
//! there is no network: it keeps customers, Checkout and Portal sessions and
//! subscriptions in memory, answers the calls [`super::stripe`] makes in the
//! pinned API version's JSON, serves plain Checkout and Portal pages, and
//! sends signed webhooks.
//!
//! Every object it serves and every event it sends is first parsed with
//! async-stripe's own types; one that does not parse is a 500 carrying the
//! reason (a bug here), never a silently wrong shape. Every price costs
//! 10.00 USD a month.

mod api;
mod objects;
mod pages;
mod store;
#[cfg(test)]
mod tests;
mod webhooks;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use store::Store;

/// How long [`StandIn::stop`] lets open requests finish.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How to start a [`StandIn`].
#[derive(Clone)]
pub struct StandInSettings {
    /// Where to listen; `127.0.0.1:0` in tests.
    pub listen: SocketAddr,
    /// Requests must carry `Authorization: Bearer <it>`, else 401 in Stripe's error shape.
    pub secret_key: String,
    /// Where events are POSTed, e.g. `http://127.0.0.1:PORT/webhooks/stripe`.
    pub webhook_url: String,
    /// The `Host` header to send (the apex host), if the URL's is not it.
    pub webhook_host: Option<String>,
    /// The webhook signing secret (`whsec_…`).
    pub webhook_secret: String,
    /// The known price ids; a checkout with another is refused (400).
    pub prices: Vec<String>,
}

impl fmt::Debug for StandInSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandInSettings")
            .field("listen", &self.listen)
            .field("secret_key", &"***")
            .field("webhook_url", &self.webhook_url)
            .field("webhook_host", &self.webhook_host)
            .field("webhook_secret", &"***")
            .field("prices", &self.prices)
            .finish()
    }
}

/// When events reach the webhook endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In order, each awaited before the answer that caused it (the default).
    Immediate,
    /// Queued, nothing sent: see [`StandIn::held`] and [`StandIn::take_held`].
    Hold,
}

/// An event the stand-in made.
#[derive(Clone, Debug)]
pub struct SentEvent {
    /// Its id (`evt_…`).
    pub id: String,
    /// Its type (`invoice.paid`, …).
    pub type_: String,
    /// Its `created` (Unix seconds).
    pub created: i64,
    /// The JSON body, exactly as sent.
    pub payload: String,
}

/// A running (or stopped) stand-in; clones share it.
#[derive(Clone)]
pub struct StandIn(Arc<Inner>);

struct Inner {
    settings: StandInSettings,
    addr: SocketAddr,
    http: reqwest::Client,
    store: Mutex<Store>,
    server: tokio::sync::Mutex<Option<Running>>,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandIn")
            .field("addr", &self.0.addr)
            .finish_non_exhaustive()
    }
}

impl StandIn {
    /// Binds `settings.listen` and starts serving.
    pub async fn start(settings: StandInSettings) -> std::io::Result<StandIn> {
        let listener = TcpListener::bind(settings.listen).await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let base_url = format!("http://{addr}/");
        let store = Store::new(
            base_url,
            settings.prices.clone(),
            settings.webhook_secret.clone(),
        );
        let inner = Inner {
            settings,
            addr,
            http,
            store: Mutex::new(store),
            server: tokio::sync::Mutex::new(None),
        };
        let standin = StandIn(Arc::new(inner));
        standin.serve(listener).await;
        Ok(standin)
    }

    /// `http://127.0.0.1:PORT/`, with the trailing slash async-stripe wants.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.0.addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    /// Stops listening (connections are refused); the state is kept.
    pub async fn stop(&self) {
        let Some(running) = self.0.server.lock().await.take() else {
            return;
        };
        let _ = running.shutdown.send(());
        let abort = running.task.abort_handle();
        if tokio::time::timeout(STOP_GRACE, running.task)
            .await
            .is_err()
        {
            abort.abort();
        }
    }

    /// Listens again on the same port, with the same state.
    pub async fn restart(&self) -> std::io::Result<()> {
        if self.0.server.lock().await.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.0.addr).await?;
        self.serve(listener).await;
        Ok(())
    }

    /// Sends events at once (the default) or holds them.
    pub fn set_delivery(&self, d: Delivery) {
        self.store().delivery = d;
    }

    /// The events held, in the order made.
    pub fn held(&self) -> Vec<SentEvent> {
        self.store().held.clone()
    }

    /// The events held, clearing the queue (dropping them is a missed webhook).
    pub fn take_held(&self) -> Vec<SentEvent> {
        std::mem::take(&mut self.store().held)
    }

    /// POSTs one payload `times` times concurrently, each freshly signed;
    /// the statuses (0 where nothing answered).
    pub async fn deliver(&self, payload: &str, times: usize) -> Vec<u16> {
        self.post_many(payload, times).await
    }

    /// POSTs a payload with the given `Stripe-Signature` header (for forged ones).
    pub async fn deliver_signed(&self, payload: &str, signature_header: &str) -> u16 {
        self.post(payload, signature_header).await
    }

    /// The `Stripe-Signature` header for `payload` at `timestamp`: `t=…,v1=…`.
    pub fn sign(&self, payload: &str, timestamp: i64) -> String {
        let secret = &self.0.settings.webhook_secret;
        stripe_webhook::Webhook::generate_test_header(payload, secret, Some(timestamp))
    }

    /// Every event the stand-in made itself so far ([`StandIn::make_event`]'s are not kept).
    pub fn events(&self) -> Vec<SentEvent> {
        self.store().events.clone()
    }

    /// Every customer: its id and its `tenant_id` metadata.
    pub fn customers(&self) -> Vec<(String, Option<String>)> {
        let store = self.store();
        let read = |c: &Value| {
            let id = c["id"].as_str().unwrap_or_default().to_owned();
            (id, c["metadata"]["tenant_id"].as_str().map(str::to_owned))
        };
        store.customers.iter().map(read).collect()
    }

    /// A customer's subscriptions, as the API serves them, oldest first.
    pub fn subscriptions_of(&self, customer: &str) -> Vec<Value> {
        let store = self.store();
        store
            .subscriptions
            .iter()
            .filter(|s| s["customer"] == customer)
            .cloned()
            .collect()
    }

    /// Changes a subscription's status as Stripe would (past_due, unpaid,
    /// active, canceled…), making the customer.subscription.updated (or
    /// .deleted for canceled) event, plus invoice.payment_failed when it
    /// becomes past_due and invoice.paid when past_due→active; delivered per
    /// the delivery mode. Returns the events made (none for an unknown
    /// subscription or status, which are logged).
    pub async fn set_status(&self, subscription: &str, status: &str) -> Vec<SentEvent> {
        if crate::billing::stripe::SubscriptionStatus::parse(status).is_none() {
            tracing::warn!(status, "the stand-in knows no such subscription status");
            return Vec::new();
        }
        let made = self.store().change_status(subscription, status);
        match made {
            Ok(events) => {
                self.dispatch(events.clone()).await;
                events
            }
            Err(err) => {
                tracing::warn!(subscription, error = err.message(), "status not changed");
                Vec::new()
            }
        }
    }

    /// Makes an event of `type_` around `object` with `created` as given (for
    /// forged or out-of-order tests); neither checked, kept nor delivered.
    pub fn make_event(&self, type_: &str, object: Value, created: i64) -> SentEvent {
        objects::event(&store::new_id("evt"), type_, object, None, created)
    }

    /// A subscription as the API serves it.
    pub fn subscription_json(&self, id: &str) -> Option<Value> {
        self.store().subscription(id).cloned()
    }

    /// A Checkout Session as the API serves it.
    pub fn checkout_session_json(&self, id: &str) -> Option<Value> {
        self.store().sessions.get(id).map(|s| s.json.clone())
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic elsewhere leaves plain data behind, still usable.
        self.0.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends events in order (each awaited), or holds them, per the mode.
    async fn dispatch(&self, events: Vec<SentEvent>) {
        {
            let mut store = self.store();
            if store.delivery == Delivery::Hold {
                store.held.extend(events);
                return;
            }
        }
        for event in events {
            let status = self
                .post(&event.payload, &self.sign(&event.payload, store::now()))
                .await;
            tracing::debug!(event = %event.id, type_ = %event.type_, status, "webhook sent");
        }
    }

    async fn serve(&self, listener: TcpListener) {
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router(self.clone());
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(err) = server.await {
                tracing::warn!(error = %err, "the Stripe stand-in stopped serving");
            }
        });
        *self.0.server.lock().await = Some(Running { shutdown, task });
    }
}

fn router(standin: StandIn) -> Router {
    let v1 = Router::new()
        .route("/customers", post(api::create_customer))
        .route("/customers/{id}", get(api::get_customer))
        .route("/checkout/sessions", post(api::create_checkout_session))
        .route("/checkout/sessions/{id}", get(api::get_checkout_session))
        .route("/billing_portal/sessions", post(api::create_portal_session))
        .route("/subscriptions", get(api::list_subscriptions))
        .route(
            "/subscriptions/{id}",
            get(api::get_subscription).delete(api::cancel_subscription),
        )
        .fallback(api::unknown_url)
        .layer(axum::middleware::from_fn_with_state(
            standin.clone(),
            api::authorize,
        ));
    Router::new()
        .nest("/v1", v1)
        .route("/checkout/{id}", get(pages::checkout_page))
        .route("/checkout/{id}/pay", post(pages::pay))
        .route("/checkout/{id}/decline", post(pages::decline))
        .route("/portal/{id}", get(pages::portal_page))
        .route("/portal/{id}/cancel", post(pages::portal_cancel))
        .with_state(standin)
}
