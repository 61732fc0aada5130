//! The one place that speaks to Stripe: async-stripe's requests in, our own
//! types out, so nothing else in the crate ever sees a Stripe type.
//!
//! Every call is bounded by [`CALL_TIMEOUT`]; a Stripe that cannot be reached,
//! times out or answers 5xx is [`StripeError::Unreachable`] (try again later),
//! a 4xx is [`StripeError::Refused`] with Stripe's own message.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::subscription::{
    CancelSubscription, ListSubscription, ListSubscriptionStatus, RetrieveSubscription,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_core::customer::CreateCustomer;
use stripe_shared::{CheckoutSessionMode, Invoice, Subscription};
use stripe_webhook::{EventObject, Webhook, WebhookError};
use uuid::Uuid;

/// The longest any one call (retries and pages included) may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The most subscriptions Stripe lists in one page.
const PAGE_SIZE: i64 = 100;

/// A Stripe client for one secret key.
#[derive(Clone)]
pub struct Stripe {
    client: Client,
    api_base: String,
}

impl fmt::Debug for Stripe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stripe")
            .field("api_base", &self.api_base)
            .field("secret_key", &"***")
            .finish()
    }
}

/// Why a call to Stripe failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe could not be reached or answered 5xx / timed out (retry later).
    #[error("Stripe could not be reached: {0}")]
    Unreachable(String),
    /// Stripe refused the request (4xx): its message.
    #[error("Stripe refused the request ({status}): {message}")]
    Refused {
        /// The HTTP status Stripe answered.
        status: u16,
        /// Stripe's explanation.
        message: String,
    },
}

/// A secret key or API base that cannot make a client.
#[derive(Debug, thiserror::Error)]
#[error("invalid Stripe settings: {0}")]
pub struct StripeConfigError(String);

impl Stripe {
    /// A client for `secret_key`, talking to `api_base` (which must end with
    /// `/`), or to Stripe's own API when `None`.
    ///
    /// # Panics
    /// If the key is not a visible-ASCII header value or `api_base` is not a
    /// URL; check settings at start-up with [`Stripe::try_new`] instead.
    pub fn new(secret_key: &str, api_base: Option<&str>) -> Self {
        match Self::try_new(secret_key, api_base) {
            Ok(stripe) => stripe,
            Err(err) => panic!("{err}"),
        }
    }

    /// [`Stripe::new`], refusing a bad key or URL instead of panicking.
    pub fn try_new(secret_key: &str, api_base: Option<&str>) -> Result<Self, StripeConfigError> {
        let mut builder = ClientBuilder::new(secret_key);
        if let Some(base) = api_base {
            builder = builder.url(base);
        }
        // The builder's errors never quote the key, only which setting is wrong.
        let client = builder
            .build()
            .map_err(|err| StripeConfigError(err.to_string()))?;
        let api_base = api_base.unwrap_or("https://api.stripe.com/").to_owned();
        Ok(Self { client, api_base })
    }

    /// Creates the tenant's customer with idempotency key `key` (same key →
    /// same customer), name `name`, metadata `tenant_id=<tenant>`. Returns
    /// the customer's id.
    pub async fn create_customer(
        &self,
        tenant: Uuid,
        name: &str,
        key: &str,
    ) -> Result<String, StripeError> {
        let key = IdempotencyKey::new(key).map_err(|err| StripeError::Refused {
            status: 400,
            message: err.to_string(),
        })?;
        let request = CreateCustomer::new()
            .name(name)
            .metadata(tenant_metadata(tenant));
        let send = request
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client);
        let customer = bounded(async { send.await.map_err(classify) }).await?;
        Ok(customer.id.as_str().to_owned())
    }

    /// Checkout Session, mode subscription, for the customer: one line item
    /// (the price, quantity 1), `client_reference_id` = the tenant id, the
    /// tenant id in the session's and the subscription's metadata. Returns the
    /// session's URL.
    pub async fn checkout(&self, req: &CheckoutRequest<'_>) -> Result<String, StripeError> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(req.price.to_owned());
        item.quantity = Some(1);
        let mut subscription_data = CreateCheckoutSessionSubscriptionData::new();
        subscription_data.metadata = Some(tenant_metadata(req.tenant));
        let request = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(req.customer)
            .line_items(vec![item])
            .client_reference_id(req.tenant.to_string())
            .metadata(tenant_metadata(req.tenant))
            .subscription_data(subscription_data)
            .success_url(req.success_url)
            .cancel_url(req.cancel_url);
        let session = bounded(async { request.send(&self.client).await.map_err(classify) }).await?;
        session
            .url
            .ok_or_else(|| StripeError::Unreachable("Stripe's checkout session has no URL".into()))
    }

    /// Billing Portal session URL for `customer`, returning to `return_url`.
    pub async fn portal(&self, customer: &str, return_url: &str) -> Result<String, StripeError> {
        let request = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url);
        let session = bounded(async { request.send(&self.client).await.map_err(classify) }).await?;
        Ok(session.url)
    }

    /// The subscription `id` as Stripe has it now.
    pub async fn subscription(&self, id: &str) -> Result<SubscriptionState, StripeError> {
        let request = RetrieveSubscription::new(id);
        let found = bounded(async { request.send(&self.client).await.map_err(classify) }).await?;
        state_of(&found).map_err(StripeError::Unreachable)
    }

    /// Every subscription of a customer, canceled ones included (status=all).
    pub async fn subscriptions_of(
        &self,
        customer: &str,
    ) -> Result<Vec<SubscriptionState>, StripeError> {
        bounded(async {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let mut request = ListSubscription::new()
                    .customer(customer)
                    .status(ListSubscriptionStatus::All)
                    .limit(PAGE_SIZE);
                if let Some(last) = &after {
                    request = request.starting_after(last);
                }
                let page = request.send(&self.client).await.map_err(classify)?;
                for found in &page.data {
                    all.push(state_of(found).map_err(StripeError::Unreachable)?);
                }
                match all.last() {
                    Some(last) if page.has_more => after = Some(last.id.clone()),
                    _ => return Ok(all),
                }
            }
        })
        .await
    }

    /// Cancels at once (DELETE /v1/subscriptions/{id}).
    pub async fn cancel_subscription(&self, id: &str) -> Result<SubscriptionState, StripeError> {
        let request = CancelSubscription::new(id);
        let canceled =
            bounded(async { request.send(&self.client).await.map_err(classify) }).await?;
        state_of(&canceled).map_err(StripeError::Unreachable)
    }
}

/// What [`Stripe::checkout`] needs to open a Checkout Session.
#[derive(Debug, Clone, Copy)]
pub struct CheckoutRequest<'a> {
    /// The tenant's Stripe customer id.
    pub customer: &'a str,
    /// The tenant, carried in the session and the subscription.
    pub tenant: Uuid,
    /// The Stripe price id of the plan.
    pub price: &'a str,
    /// Where Stripe sends the customer after paying (may hold
    /// `{CHECKOUT_SESSION_ID}`).
    pub success_url: &'a str,
    /// Where Stripe sends the customer who backs out.
    pub cancel_url: &'a str,
}

/// What we read of a Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Stripe's id (`sub_…`).
    pub id: String,
    /// The customer's id (`cus_…`).
    pub customer: String,
    /// Its status.
    pub status: SubscriptionStatus,
    /// The first item's price id.
    pub price: Option<String>,
    /// Unix seconds (from the first item's current_period_end in this API version).
    pub current_period_end: Option<i64>,
    /// Whether it ends when the current period does.
    pub cancel_at_period_end: bool,
    /// When it is set to end (Unix seconds), if it is.
    pub cancel_at: Option<i64>,
}

/// A subscription's status, as Stripe names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// Paid up.
    Active,
    /// In its free trial.
    Trialing,
    /// The latest invoice failed; Stripe is retrying.
    PastDue,
    /// Retries exhausted, left open.
    Unpaid,
    /// Ended for good.
    Canceled,
    /// The first payment has not succeeded yet.
    Incomplete,
    /// The first payment never succeeded within 23 hours.
    IncompleteExpired,
    /// The trial ended without a payment method.
    Paused,
}

impl SubscriptionStatus {
    /// Every status, for tables and tests.
    pub const ALL: [SubscriptionStatus; 8] = [
        Self::Active,
        Self::Trialing,
        Self::PastDue,
        Self::Unpaid,
        Self::Canceled,
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::Paused,
    ];

    /// Stripe's spelling (`past_due`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::PastDue => "past_due",
            Self::Unpaid => "unpaid",
            Self::Canceled => "canceled",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Paused => "paused",
        }
    }

    /// The status Stripe spells `s`, if it is one.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// Checks the signature (construct_event, 300 s) and reads the event into our own shape.
pub fn verify_webhook(
    body: &str,
    signature: &str,
    secret: &str,
) -> Result<WebhookEvent, WebhookRejection> {
    let event = match Webhook::construct_event(body, signature, secret) {
        Ok(event) => event,
        Err(WebhookError::BadParse(detail)) => {
            return Err(WebhookRejection::Unreadable {
                event_id: event_id_of(body),
                detail,
            });
        }
        Err(err) => return Err(WebhookRejection::Signature(err.to_string())),
    };
    let id = event.id.as_str().to_owned();
    let unreadable = |detail: String| WebhookRejection::Unreadable {
        event_id: Some(id.clone()),
        detail,
    };
    let kind = match event.data.object {
        EventObject::CheckoutSessionCompleted(session) => EventKind::CheckoutCompleted {
            session: session.id.as_str().to_owned(),
            client_reference_id: session.client_reference_id,
            customer: session.customer.map(|c| c.id().as_str().to_owned()),
            subscription: session.subscription.map(|s| s.id().as_str().to_owned()),
        },
        EventObject::CustomerSubscriptionCreated(sub)
        | EventObject::CustomerSubscriptionUpdated(sub) => EventKind::Subscription {
            deleted: false,
            state: state_of(&sub).map_err(unreadable)?,
        },
        EventObject::CustomerSubscriptionDeleted(sub) => EventKind::Subscription {
            deleted: true,
            state: state_of(&sub).map_err(unreadable)?,
        },
        EventObject::InvoicePaid(invoice) => invoice_kind(true, &invoice),
        EventObject::InvoicePaymentFailed(invoice) => invoice_kind(false, &invoice),
        _ => EventKind::Other,
    };
    Ok(WebhookEvent {
        id,
        created: event.created,
        type_: event.type_.as_str().to_owned(),
        kind,
    })
}

/// Why a webhook was not taken.
#[derive(Debug)]
pub enum WebhookRejection {
    /// Missing/malformed header, wrong signature, stale timestamp, bad key: answer 400.
    Signature(String),
    /// Signed correctly but not an event we can read: answer 200 and ignore.
    Unreadable {
        /// The event's id, if the body had one.
        event_id: Option<String>,
        /// What could not be read.
        detail: String,
    },
}

/// A verified Stripe event, read into our own shape.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// Stripe's event id (`evt_…`), the key for handling it once.
    pub id: String,
    /// When Stripe made it (Unix seconds).
    pub created: i64,
    /// Its type (`invoice.paid`, …).
    pub type_: String,
    /// What it says, for the types we act on.
    pub kind: EventKind,
}

/// What an event says, for the types billing acts on.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// `checkout.session.completed`.
    CheckoutCompleted {
        /// The session's id (`cs_…`).
        session: String,
        /// The tenant id we gave the session.
        client_reference_id: Option<String>,
        /// The customer's id.
        customer: Option<String>,
        /// The subscription it made.
        subscription: Option<String>,
    },
    /// `customer.subscription.created`, `.updated` or `.deleted`.
    Subscription {
        /// Whether this is `customer.subscription.deleted`.
        deleted: bool,
        /// The subscription as the event carries it.
        state: SubscriptionState,
    },
    /// `invoice.paid` or `invoice.payment_failed`.
    Invoice {
        /// `invoice.paid` (true) or `invoice.payment_failed` (false).
        paid: bool,
        /// The customer's id.
        customer: Option<String>,
        /// The subscription billed, if the invoice is a subscription's.
        subscription: Option<String>,
    },
    /// Any other type (valid signature): ignored by the caller.
    Other,
}

/// Runs one call under [`CALL_TIMEOUT`].
async fn bounded<T>(call: impl Future<Output = Result<T, StripeError>>) -> Result<T, StripeError> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(StripeError::Unreachable(format!(
                "no answer within {} s",
                CALL_TIMEOUT.as_secs()
            )))
        })
}

/// Sorts async-stripe's errors into try-again-later and refused.
fn classify(err: stripe::StripeError) -> StripeError {
    match err {
        // 429 is a 4xx but means "later", like a 5xx.
        stripe::StripeError::Stripe(error, status) if status < 500 && status != 429 => {
            StripeError::Refused {
                status,
                message: error
                    .message
                    .unwrap_or_else(|| error.type_.as_str().to_owned()),
            }
        }
        stripe::StripeError::Stripe(error, status) => StripeError::Unreachable(format!(
            "Stripe answered {status}: {}",
            error.message.unwrap_or_default()
        )),
        stripe::StripeError::JSONDeserialize(detail) => {
            StripeError::Unreachable(format!("Stripe's answer could not be read: {detail}"))
        }
        stripe::StripeError::ClientError(detail) => StripeError::Unreachable(detail),
        stripe::StripeError::ConfigError(detail) => StripeError::Unreachable(detail),
        stripe::StripeError::Timeout => StripeError::Unreachable("timed out".into()),
    }
}

fn tenant_metadata(tenant: Uuid) -> HashMap<String, String> {
    HashMap::from([("tenant_id".to_owned(), tenant.to_string())])
}

/// Our reading of a subscription; a status we do not know is an error.
fn state_of(sub: &Subscription) -> Result<SubscriptionState, String> {
    let status = SubscriptionStatus::parse(sub.status.as_str()).ok_or_else(|| {
        format!(
            "subscription {} has a status we do not know: {}",
            sub.id.as_str(),
            sub.status
        )
    })?;
    let first = sub.items.data.first();
    Ok(SubscriptionState {
        id: sub.id.as_str().to_owned(),
        customer: sub.customer.id().as_str().to_owned(),
        status,
        price: first.map(|item| item.price.id.as_str().to_owned()),
        current_period_end: first.map(|item| item.current_period_end),
        cancel_at_period_end: sub.cancel_at_period_end,
        cancel_at: sub.cancel_at,
    })
}

/// In this API version an invoice names its subscription under
/// `parent.subscription_details`; the old top-level field is a fallback.
fn invoice_kind(paid: bool, invoice: &Invoice) -> EventKind {
    let from_parent = invoice
        .parent
        .as_ref()
        .and_then(|parent| parent.subscription_details.as_ref())
        .map(|details| details.subscription.id().as_str().to_owned());
    let subscription = from_parent.or_else(|| {
        invoice
            .subscription
            .as_ref()
            .map(|s| s.id().as_str().to_owned())
    });
    EventKind::Invoice {
        paid,
        customer: invoice
            .customer
            .as_ref()
            .map(|c| c.id().as_str().to_owned()),
        subscription,
    }
}

/// The `id` of an event body we could not otherwise read.
fn event_id_of(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
}
