//! Stripe's webhooks: verified, then applied once each, in order.
//!
//! Stripe delivers at least once and in no particular order. Each event's
//! id is recorded under a unique key in the transaction that applies it (a
//! duplicate changes nothing); a subscription's state is applied only if it
//! is newer than the one applied (Stripe's `created`, to the second; for two
//! of the same second Stripe is asked which is current). Events that only
//! say *something* changed (a checkout completed, an invoice paid or not)
//! are applied by reading the subscription from Stripe.

use super::stripe::{EventKind, SubscriptionState, WebhookEvent, WebhookRejection, verify_webhook};
use super::{Billing, BillingError};
use crate::control::{Effect, EventStamp, Recorded, SubscriptionRecord, TenantId};

/// What a webhook delivery came to (each is answered 200 but `Rejected`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Bad or missing signature, stale timestamp: 400, nothing recorded.
    Rejected(String),
    /// Signed, but not an event that can be read: 200 (so Stripe does not
    /// retry it for days), logged, nothing recorded.
    Unreadable,
    /// Seen before: nothing changed.
    Duplicate,
    /// Recorded as `applied`, `stale` or `ignored`.
    Recorded(&'static str),
}

impl From<SubscriptionState> for SubscriptionRecord {
    fn from(s: SubscriptionState) -> Self {
        SubscriptionRecord {
            id: s.id,
            customer: s.customer,
            status: s.status.as_str().to_string(),
            price: s.price,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            cancel_at: s.cancel_at,
        }
    }
}

impl Billing {
    /// Handles one delivery: `body` as received, byte for byte, and its
    /// `Stripe-Signature` header.
    pub async fn webhook(
        &self,
        body: &str,
        signature: Option<&str>,
    ) -> Result<WebhookOutcome, BillingError> {
        let secret = self
            .settings
            .stripe
            .as_ref()
            .and_then(|s| s.webhook_secret.as_ref())
            .ok_or(BillingError::Disabled)?;
        let Some(signature) = signature else {
            return Ok(WebhookOutcome::Rejected(
                "no Stripe-Signature header".into(),
            ));
        };
        let event = match verify_webhook(body, signature, secret.expose()) {
            Ok(event) => event,
            Err(WebhookRejection::Signature(why)) => {
                metrics::counter!("bulkhead_billing_webhooks_total", "outcome" => "rejected")
                    .increment(1);
                tracing::warn!(%why, "billing: webhook refused");
                return Ok(WebhookOutcome::Rejected(why));
            }
            Err(WebhookRejection::Unreadable { event_id, detail }) => {
                metrics::counter!("bulkhead_billing_webhooks_total", "outcome" => "unreadable")
                    .increment(1);
                tracing::warn!(event = ?event_id, %detail, "billing: signed webhook ignored (cannot read it)");
                return Ok(WebhookOutcome::Unreadable);
            }
        };
        let outcome = self.apply(&event).await?;
        let label = match &outcome {
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Recorded(o) => o,
            _ => "other",
        };
        metrics::counter!("bulkhead_billing_webhooks_total", "outcome" => label).increment(1);
        tracing::info!(event = %event.id, r#type = %event.type_, outcome = label, "billing: webhook");
        Ok(outcome)
    }

    /// Applies a verified event (also what tests and the bench drive).
    pub async fn apply(&self, event: &WebhookEvent) -> Result<WebhookOutcome, BillingError> {
        let stamp = EventStamp {
            id: &event.id,
            type_: &event.type_,
            created: event.created,
        };
        // The state to apply: the event's own, or read from Stripe.
        let (mut state, mut settled, why) = match &event.kind {
            EventKind::Subscription { state, .. } => (Some(state.clone().into()), false, None),
            EventKind::CheckoutCompleted {
                client_reference_id,
                customer,
                subscription,
                ..
            } => match self
                .checkout_owner(client_reference_id.as_deref(), customer.as_deref())
                .await?
            {
                Err(why) => (None, false, Some(why)),
                Ok(_) => match subscription {
                    Some(id) => (Some(self.read(id).await?), true, None),
                    None => (None, false, Some("the session made no subscription".into())),
                },
            },
            EventKind::Invoice { subscription, .. } => match subscription {
                Some(id) => (Some(self.read(id).await?), true, None),
                None => (
                    None,
                    false,
                    Some("the invoice is for no subscription".into()),
                ),
            },
            EventKind::Other => (None, false, Some("not an event billing acts on".into())),
        };
        loop {
            let effect = match (&state, &why) {
                (Some(state), _) => Effect::State { state, settled },
                (None, why) => Effect::Ignore {
                    tenant: None,
                    why: why.as_deref().unwrap_or_default(),
                },
            };
            let recorded = self
                .control
                .record_billing_event(stamp, effect, self.settings.grace)
                .await?;
            match recorded {
                Recorded::Duplicate => return Ok(WebhookOutcome::Duplicate),
                Recorded::Tie => {
                    // Another state of the same second was applied: which
                    // is current only Stripe knows.
                    let id = state.as_ref().map(|s| s.id.clone()).unwrap_or_default();
                    state = Some(self.read(&id).await?);
                    settled = true;
                }
                Recorded::Done {
                    outcome,
                    tenant,
                    change,
                } => {
                    if outcome == "ignored" {
                        tracing::warn!(event = %event.id, r#type = %event.type_, why = ?why, "billing: event ignored");
                    }
                    if let (Some(tenant), Some(_)) = (tenant, change) {
                        self.deliver(Some(tenant)).await;
                    }
                    return Ok(WebhookOutcome::Recorded(outcome));
                }
            }
        }
    }

    /// The tenant a completed checkout is for: the one its
    /// `client_reference_id` names, *if* that tenant owns the customer who
    /// paid. Anything else is a forged or confused session and is never
    /// applied to the tenant it names (`Err`: why, for the log).
    async fn checkout_owner(
        &self,
        reference: Option<&str>,
        customer: Option<&str>,
    ) -> Result<Result<TenantId, String>, BillingError> {
        let Some(tenant) = reference.and_then(|r| r.parse().ok()).map(TenantId) else {
            return Ok(Err(format!(
                "client_reference_id {reference:?} names no tenant"
            )));
        };
        let owned = self.control.billing_customer(tenant).await?;
        match (owned.as_deref(), customer) {
            (Some(owned), Some(paid)) if owned == paid => Ok(Ok(tenant)),
            (owned, paid) => {
                tracing::warn!(%tenant, owned = ?owned, paid_by = ?paid, "billing: a checkout names a tenant that does not own the customer who paid; ignored");
                Ok(Err(format!(
                    "tenant {tenant} does not own customer {}",
                    paid.unwrap_or("(none)")
                )))
            }
        }
    }

    /// A subscription as Stripe has it now.
    async fn read(&self, id: &str) -> Result<SubscriptionRecord, BillingError> {
        Ok(self.stripe()?.subscription(id).await?.into())
    }
}
