//! Billing: a tenant's plan follows its Stripe subscription.
//!
//! A tenant upgrades through Stripe Checkout (`POST /api/billing/checkout`)
//! and manages or cancels in the Billing Portal (`POST /api/billing/portal`);
//! Stripe tells bulkhead what happened by signed webhooks
//! (`POST /webhooks/stripe` on the apex host), which are applied once each
//! (a duplicate changes nothing) and in order (an event older than the
//! state applied is recorded as stale), and `bulkhead billing sync` (also
//! run by `serve` every hour) re-reads every subscription to repair what a
//! missed webhook left behind.
//!
//! The plan a subscription gives: `active` or `trialing` → pro; `past_due`
//! → pro until the grace period (`--billing-grace`, 7 days) ends; anything
//! else, or no subscription → free. A move between plans goes through the
//! tenant's row (every instance's routing cache follows by NOTIFY), gives
//! the tenant's runtime role its plan's session limits and lands in the
//! tenant's own audit log.
//!
//! [`stripe`] is the only code that sees Stripe's types; [`standin`] is a
//! small Stripe-compatible server for `bulkhead dev` and the tests.

pub mod standin;
pub mod stripe;

mod events;
mod standing;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use crate::control::{ControlError, ControlPlane, TenantId};
use crate::pools::PoolRouter;
use crate::provision::Provisioner;
use crate::secret::Secret;

pub use events::WebhookOutcome;
pub use standing::Standing;
pub use sync::SyncReport;

use self::stripe::{Stripe, StripeError};

/// How long a received event's id is kept: Stripe retries a delivery for
/// three days, so a duplicate never comes later than that.
pub const EVENTS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a past-due subscription keeps its tenant on pro by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Stripe's side of the settings: absent, billing is disabled.
#[derive(Clone, Debug)]
pub struct StripeSettings {
    /// `BULKHEAD_STRIPE_SECRET_KEY` (`sk_test_…`, `sk_live_…`).
    pub secret_key: Secret<String>,
    /// `BULKHEAD_STRIPE_WEBHOOK_SECRET` (`whsec_…`): webhooks are refused
    /// without it.
    pub webhook_secret: Option<Secret<String>>,
    /// `BULKHEAD_STRIPE_PRICE_PRO`: the price Checkout sells.
    pub price_pro: String,
    /// `BULKHEAD_STRIPE_API_BASE`: Stripe's own API unless set (the stand-in).
    pub api_base: Option<String>,
    /// Talking to the stand-in of `bulkhead dev` (said wherever it shows).
    pub test_mode: bool,
}

/// Billing's settings.
#[derive(Clone, Debug)]
pub struct BillingSettings {
    /// `None`: billing routes answer 503 `billing_disabled`.
    pub stripe: Option<StripeSettings>,
    /// How long past due keeps pro (`--billing-grace`).
    pub grace: Duration,
    /// How often `serve` re-reads every subscription (`--billing-sync-every`;
    /// zero: never).
    pub sync_every: Duration,
    /// How often `serve` ends grace periods that ran out and finishes plan
    /// changes not yet given to their tenants.
    pub sweep_every: Duration,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            stripe: None,
            grace: DEFAULT_GRACE,
            sync_every: Duration::from_secs(3600),
            sweep_every: Duration::from_secs(30),
        }
    }
}

/// Why a billing call failed.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The Stripe settings cannot make a client (a key that is not a
    /// header value, an API base that is not a URL).
    #[error("{0}")]
    Settings(String),
    /// No Stripe key (or, for webhooks, no webhook secret) is configured.
    #[error("billing is not set up on this instance")]
    Disabled,
    /// Stripe could not be reached, or refused.
    #[error(transparent)]
    Stripe(#[from] StripeError),
    /// The control plane failed.
    #[error(transparent)]
    Control(#[from] ControlError),
}

/// Billing, as a serving process (or the CLI) holds it.
pub struct Billing {
    stripe: Option<Stripe>,
    settings: BillingSettings,
    control: ControlPlane,
    provisioner: Arc<Provisioner>,
    pools: Arc<PoolRouter>,
}

impl Billing {
    /// Billing over `control`, giving plan changes to tenants through
    /// `provisioner` (session limits) and `pools` (their audit logs).
    pub fn new(
        settings: BillingSettings,
        control: ControlPlane,
        provisioner: Arc<Provisioner>,
        pools: Arc<PoolRouter>,
    ) -> Result<Self, BillingError> {
        let stripe = match &settings.stripe {
            Some(s) => Some(
                Stripe::try_new(s.secret_key.expose(), s.api_base.as_deref())
                    .map_err(|e| BillingError::Settings(e.to_string()))?,
            ),
            None => None,
        };
        Ok(Self {
            stripe,
            settings,
            control,
            provisioner,
            pools,
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &BillingSettings {
        &self.settings
    }

    /// Whether a Stripe key is configured.
    pub fn enabled(&self) -> bool {
        self.stripe.is_some()
    }

    /// The Stripe client, or `Disabled`.
    fn stripe(&self) -> Result<&Stripe, BillingError> {
        self.stripe.as_ref().ok_or(BillingError::Disabled)
    }

    /// The price Checkout sells.
    fn price_pro(&self) -> Result<&str, BillingError> {
        self.settings
            .stripe
            .as_ref()
            .map(|s| s.price_pro.as_str())
            .ok_or(BillingError::Disabled)
    }

    /// The tenant's Stripe customer, made on first use. The idempotency
    /// key is the tenant's id, so a retry after a lost answer (a timeout,
    /// a crash between Stripe's answer and our insert) gets the customer
    /// the first attempt made, never a second one.
    pub async fn customer(&self, tenant: TenantId, name: &str) -> Result<String, BillingError> {
        if let Some(id) = self.control.billing_customer(tenant).await? {
            return Ok(id);
        }
        let key = format!("bulkhead-customer-{tenant}");
        let made = self.stripe()?.create_customer(tenant.0, name, &key).await?;
        Ok(self.control.add_billing_customer(tenant, &made).await?)
    }

    /// A Checkout Session URL selling pro to `tenant` (making its customer
    /// first if need be); Stripe sends the payer back to `back_to`.
    pub async fn checkout(
        &self,
        tenant: TenantId,
        name: &str,
        back_to: &str,
    ) -> Result<String, BillingError> {
        let price = self.price_pro()?.to_string();
        let customer = self.customer(tenant, name).await?;
        let success = format!("{back_to}?checkout=success");
        let cancel = format!("{back_to}?checkout=canceled");
        let request = stripe::CheckoutRequest {
            customer: &customer,
            tenant: tenant.0,
            price: &price,
            success_url: &success,
            cancel_url: &cancel,
        };
        Ok(self.stripe()?.checkout(&request).await?)
    }

    /// A Billing Portal URL for the tenant's customer (`None`: it has none,
    /// it never started a checkout).
    pub async fn portal(
        &self,
        tenant: TenantId,
        back_to: &str,
    ) -> Result<Option<String>, BillingError> {
        let stripe = self.stripe()?;
        let Some(customer) = self.control.billing_customer(tenant).await? else {
            return Ok(None);
        };
        Ok(Some(stripe.portal(&customer, back_to).await?))
    }

    /// Cancels the tenant's live subscription at once (an operator's
    /// action), then re-reads the tenant's subscriptions from Stripe so the
    /// mirror and the plan follow now, not when the webhook comes. Its id,
    /// or `None` when it has no live subscription.
    pub async fn cancel(&self, tenant: TenantId) -> Result<Option<String>, BillingError> {
        let stripe = self.stripe()?;
        let subscriptions = self.control.billing_subscriptions(tenant).await?;
        let Some(live) = subscriptions.iter().find(|s| s.status != "canceled") else {
            return Ok(None);
        };
        stripe.cancel_subscription(&live.id).await?;
        self.sync(Some(tenant)).await?;
        Ok(Some(live.id.clone()))
    }

    /// The periodic work of `serve`: every `sweep_every`, end the grace
    /// periods that ran out and give pending plan changes to their tenants;
    /// every `sync_every`, re-read every subscription from Stripe; every
    /// hour, forget events older than [`EVENTS_KEPT`]. Runs until the task
    /// is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut sweep =
            tokio::time::interval(self.settings.sweep_every.max(Duration::from_millis(100)));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let syncing = self.enabled() && !self.settings.sync_every.is_zero();
        let mut next_sync = tokio::time::Instant::now() + self.settings.sync_every;
        let mut next_prune = tokio::time::Instant::now();
        loop {
            sweep.tick().await;
            if tokio::time::Instant::now() >= next_prune {
                next_prune = tokio::time::Instant::now() + Duration::from_secs(3600);
                match self.control.prune_billing_events(EVENTS_KEPT).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "billing: forgot old webhook events"),
                    Err(e) => {
                        tracing::warn!(error = %crate::report::chain(&e), "billing: could not prune old events")
                    }
                }
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %crate::report::chain(&e), "billing: could not end grace periods");
            }
            if syncing && tokio::time::Instant::now() >= next_sync {
                next_sync = tokio::time::Instant::now() + self.settings.sync_every;
                match self.sync(None).await {
                    Ok(report) => report.log(),
                    Err(e) => {
                        tracing::warn!(error = %crate::report::chain(&e), "billing sync failed")
                    }
                }
            }
        }
    }
}
