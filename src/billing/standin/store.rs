//! The stand-in's memory: customers, sessions, subscriptions and the events
//! it made, and what paying, canceling and failing a payment do to them.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Map, Value, json};
use stripe_shared::{CheckoutSession, Customer, Invoice, Subscription};

use super::api::ApiError;
use super::objects::{self, InvoiceParts, SessionParts, SubscriptionParts, checked};
use super::{Delivery, SentEvent};

/// A month, as the stand-in bills it.
const PERIOD: i64 = 30 * 86_400;

/// A Checkout Session and what it will buy.
pub(super) struct Session {
    pub json: Value,
    pub price: String,
    pub subscription_metadata: Map<String, Value>,
}

/// A Billing Portal session: whose, and where it returns to.
pub(super) struct Portal {
    pub customer: String,
    pub return_url: Option<String>,
}

/// What a new Checkout Session asks for, read from the request.
pub(super) struct NewSession {
    pub customer: String,
    pub price: String,
    pub client_reference_id: Option<String>,
    pub metadata: Map<String, Value>,
    pub subscription_metadata: Map<String, Value>,
    pub success_url: String,
    pub cancel_url: Option<String>,
}

pub(super) struct Store {
    pub base_url: String,
    pub prices: Vec<String>,
    pub webhook_secret: String,
    pub delivery: Delivery,
    pub customers: Vec<Value>,
    /// Idempotency key → (the request body, the customer it made).
    pub idempotent: HashMap<String, (String, Value)>,
    pub sessions: HashMap<String, Session>,
    pub portals: HashMap<String, Portal>,
    pub subscriptions: Vec<Value>,
    pub events: Vec<SentEvent>,
    pub held: Vec<SentEvent>,
    last_created: i64,
}

impl Store {
    pub fn new(base_url: String, prices: Vec<String>, webhook_secret: String) -> Self {
        Self {
            base_url,
            prices,
            webhook_secret,
            delivery: Delivery::Immediate,
            customers: Vec::new(),
            idempotent: HashMap::new(),
            sessions: HashMap::new(),
            portals: HashMap::new(),
            subscriptions: Vec::new(),
            events: Vec::new(),
            held: Vec::new(),
            last_created: 0,
        }
    }

    pub fn customer(&self, id: &str) -> Option<&Value> {
        self.customers.iter().find(|c| c["id"] == id)
    }

    pub fn subscription(&self, id: &str) -> Option<&Value> {
        self.subscriptions.iter().find(|s| s["id"] == id)
    }

    fn subscription_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.subscriptions.iter_mut().find(|s| s["id"] == id)
    }

    /// A customer, or the one an earlier request with the same idempotency
    /// key made (a different body with the same key is refused, as Stripe does).
    pub fn create_customer(
        &mut self,
        key: Option<&str>,
        body: &str,
        name: Option<&str>,
        metadata: Map<String, Value>,
    ) -> Result<Value, ApiError> {
        if let Some((earlier_body, made)) = key.and_then(|k| self.idempotent.get(k)) {
            if earlier_body != body {
                return Err(ApiError::idempotency(key.unwrap_or_default()));
            }
            return Ok(made.clone());
        }
        let customer = objects::customer(&new_id("cus"), now(), name, metadata);
        let customer = checked::<Customer>(customer, "customer")?;
        self.customers.push(customer.clone());
        if let Some(key) = key {
            self.idempotent
                .insert(key.to_owned(), (body.to_owned(), customer.clone()));
        }
        Ok(customer)
    }

    pub fn create_session(&mut self, new: NewSession) -> Result<Value, ApiError> {
        if self.customer(&new.customer).is_none() {
            return Err(ApiError::no_such(
                "customer",
                &new.customer,
                Some("customer"),
            ));
        }
        if !self.prices.contains(&new.price) {
            return Err(ApiError::no_such(
                "price",
                &new.price,
                Some("line_items[0][price]"),
            ));
        }
        let id = format!("cs_test_{}", random(58));
        let json = objects::checkout_session(&SessionParts {
            id: &id,
            created: now(),
            customer: &new.customer,
            client_reference_id: new.client_reference_id.as_deref(),
            metadata: new.metadata,
            success_url: &new.success_url,
            cancel_url: new.cancel_url.as_deref(),
            url: &format!("{}checkout/{id}", self.base_url),
        });
        let json = checked::<CheckoutSession>(json, "checkout session")?;
        let session = Session {
            json: json.clone(),
            price: new.price,
            subscription_metadata: new.subscription_metadata,
        };
        self.sessions.insert(id, session);
        Ok(json)
    }

    /// Pays an open session: the subscription, the completed session and
    /// their three events. A session already paid makes nothing new.
    pub fn pay(&mut self, session_id: &str) -> Result<Vec<SentEvent>, ApiError> {
        let session = self
            .sessions
            .get(session_id)
            .ok_or_else(|| ApiError::no_such("checkout.session", session_id, None))?;
        if session.json["status"] != "open" {
            return Ok(Vec::new());
        }
        let customer = session.json["customer"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let created = now();
        let (sub_id, invoice_id) = (new_id("sub"), new_id("in"));
        let subscription = objects::subscription(&SubscriptionParts {
            id: &sub_id,
            item: &new_id("si"),
            customer: &customer,
            price: &session.price,
            created,
            period_end: created + PERIOD,
            metadata: session.subscription_metadata.clone(),
            latest_invoice: &invoice_id,
        });
        let subscription = checked::<Subscription>(subscription, "subscription")?;
        let invoice = self.invoice(&subscription, &invoice_id, true, "subscription_create")?;
        let mut completed = session.json.clone();
        completed["status"] = json!("complete");
        completed["payment_status"] = json!("paid");
        completed["subscription"] = json!(sub_id);
        completed["invoice"] = json!(invoice_id);
        let completed = checked::<CheckoutSession>(completed, "checkout session")?;

        let events = vec![
            self.event("customer.subscription.created", subscription.clone(), None)?,
            self.event("checkout.session.completed", completed.clone(), None)?,
            self.event("invoice.paid", invoice, None)?,
        ];
        self.subscriptions.push(subscription);
        if let Some(session) = self.sessions.get_mut(session_id) {
            session.json = completed;
        }
        Ok(events)
    }

    /// Cancels a subscription at once, as `DELETE /v1/subscriptions/{id}` does.
    pub fn cancel(&mut self, id: &str) -> Result<(Value, Vec<SentEvent>), ApiError> {
        let current = self
            .subscription(id)
            .ok_or_else(|| ApiError::no_such("subscription", id, None))?;
        if current["status"] == "canceled" {
            return Err(ApiError::invalid(format!(
                "A canceled subscription can only update its cancellation_details and metadata. \
                 Subscription {id} is already canceled."
            )));
        }
        let events = self.change_status(id, "canceled")?;
        let canceled = self.subscription(id).cloned().unwrap_or_default();
        Ok((canceled, events))
    }

    /// Moves a subscription to `status` and makes the events Stripe would.
    pub fn change_status(&mut self, id: &str, status: &str) -> Result<Vec<SentEvent>, ApiError> {
        let current = self
            .subscription(id)
            .ok_or_else(|| ApiError::no_such("subscription", id, None))?;
        let old = current["status"].as_str().unwrap_or_default().to_owned();
        let mut changed = current.clone();
        changed["status"] = json!(status);
        if status == "canceled" {
            let at = now();
            changed["canceled_at"] = json!(at);
            changed["ended_at"] = json!(at);
            changed["cancellation_details"]["reason"] = json!("cancellation_requested");
        }
        let invoice = match (old.as_str(), status) {
            (_, "past_due") => Some((false, "subscription_cycle")),
            ("past_due", "active") => Some((true, "subscription_cycle")),
            _ => None,
        };
        let invoice = match invoice {
            Some((paid, reason)) => {
                let invoice_id = new_id("in");
                changed["latest_invoice"] = json!(invoice_id);
                Some((paid, self.invoice(&changed, &invoice_id, paid, reason)?))
            }
            None => None,
        };
        let changed = checked::<Subscription>(changed, "subscription")?;

        let mut events = Vec::new();
        if status == "canceled" {
            events.push(self.event("customer.subscription.deleted", changed.clone(), None)?);
        } else {
            let previous = json!({ "status": old });
            events.push(self.event(
                "customer.subscription.updated",
                changed.clone(),
                Some(previous),
            )?);
        }
        if let Some((paid, invoice)) = invoice {
            let type_ = if paid {
                "invoice.paid"
            } else {
                "invoice.payment_failed"
            };
            events.push(self.event(type_, invoice, None)?);
        }
        if let Some(stored) = self.subscription_mut(id) {
            *stored = changed;
        }
        Ok(events)
    }

    fn invoice(
        &self,
        subscription: &Value,
        id: &str,
        paid: bool,
        reason: &str,
    ) -> Result<Value, ApiError> {
        let item = &subscription["items"]["data"][0];
        let invoice = objects::invoice(&InvoiceParts {
            id,
            customer: subscription["customer"].as_str().unwrap_or_default(),
            subscription: subscription["id"].as_str().unwrap_or_default(),
            subscription_metadata: &subscription["metadata"],
            created: now(),
            period_end: item["current_period_end"].as_i64().unwrap_or_default(),
            paid,
            billing_reason: reason,
        });
        checked::<Invoice>(invoice, "invoice")
    }

    /// Makes and records an event, checked as async-stripe reads it.
    fn event(
        &mut self,
        type_: &str,
        object: Value,
        previous: Option<Value>,
    ) -> Result<SentEvent, ApiError> {
        // Strictly increasing, so tests of ordering never see a tie.
        let created = now().max(self.last_created + 1);
        let event = objects::event(&new_id("evt"), type_, object, previous, created);
        objects::check_event(&event, &self.webhook_secret)?;
        self.last_created = created;
        self.events.push(event.clone());
        Ok(event)
    }
}

/// Unix seconds now.
pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An id in Stripe's style: `prefix_` and 24 random letters and digits.
pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random(24))
}

fn random(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
