//! The JSON the stand-in serves, in the pinned API version's shapes, and the
//! check that each one parses as async-stripe's own type.

use serde_json::{Map, Value, json};

use super::SentEvent;
use super::api::ApiError;

/// Every price costs this much (in cents) in the stand-in.
pub(super) const UNIT_AMOUNT: i64 = 1000;
const CURRENCY: &str = "usd";
const PRODUCT: &str = "prod_standin";

/// Fails, as a stand-in bug, unless `value` parses as `T` with async-stripe's
/// own (miniserde) parser — the one its client reads answers with.
pub(super) fn checked<T: miniserde::Deserialize>(
    value: Value,
    what: &str,
) -> Result<Value, ApiError> {
    let text = value.to_string();
    match miniserde::json::from_str::<T>(&text) {
        Ok(_) => Ok(value),
        Err(err) => Err(ApiError::bug(format!(
            "the stand-in made a {what} async-stripe cannot read ({err}): {text}"
        ))),
    }
}

/// Fails, as a stand-in bug, unless the event's payload is one
/// `stripe_webhook::Webhook::construct_event` accepts.
pub(super) fn check_event(event: &SentEvent, secret: &str) -> Result<(), ApiError> {
    let header = stripe_webhook::Webhook::generate_test_header(&event.payload, secret, None);
    match stripe_webhook::Webhook::construct_event(&event.payload, &header, secret) {
        Ok(_) => Ok(()),
        Err(err) => Err(ApiError::bug(format!(
            "the stand-in made a {} event async-stripe cannot read ({err}): {}",
            event.type_, event.payload
        ))),
    }
}

/// A Stripe `list` page.
pub(super) fn list(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

pub(super) fn customer(
    id: &str,
    created: i64,
    name: Option<&str>,
    metadata: Map<String, Value>,
) -> Value {
    json!({
        "id": id, "object": "customer", "address": null, "balance": 0, "created": created,
        "currency": null, "default_source": null, "delinquent": false, "description": null,
        "discount": null, "email": null, "invoice_prefix": invoice_prefix(id), "livemode": false,
        "metadata": metadata, "name": name, "next_invoice_sequence": 1, "phone": null,
        "preferred_locales": [], "shipping": null, "tax_exempt": "none", "test_clock": null,
    })
}

/// What a new Checkout Session is made of.
pub(super) struct SessionParts<'a> {
    pub id: &'a str,
    pub created: i64,
    pub customer: &'a str,
    pub client_reference_id: Option<&'a str>,
    pub metadata: Map<String, Value>,
    pub success_url: &'a str,
    pub cancel_url: Option<&'a str>,
    pub url: &'a str,
}

pub(super) fn checkout_session(parts: &SessionParts<'_>) -> Value {
    json!({
        "id": parts.id, "object": "checkout.session", "after_expiration": null,
        "allow_promotion_codes": null, "amount_subtotal": UNIT_AMOUNT, "amount_total": UNIT_AMOUNT,
        "automatic_tax": { "enabled": false, "liability": null, "status": null },
        "billing_address_collection": null, "cancel_url": parts.cancel_url,
        "client_reference_id": parts.client_reference_id, "created": parts.created,
        "currency": CURRENCY, "custom_fields": [],
        "custom_text": {
            "after_submit": null, "shipping_address": null, "submit": null,
            "terms_of_service_acceptance": null,
        },
        "customer": parts.customer, "customer_email": null, "expires_at": parts.created + 86_400,
        "invoice": null, "livemode": false, "locale": null, "metadata": parts.metadata,
        "mode": "subscription", "payment_intent": null, "payment_method_types": ["card"],
        "payment_status": "unpaid", "shipping_options": [], "status": "open",
        "subscription": null, "success_url": parts.success_url, "ui_mode": "hosted_page",
        "url": parts.url,
    })
}

pub(super) fn portal_session(
    id: &str,
    created: i64,
    customer: &str,
    return_url: Option<&str>,
    url: &str,
) -> Value {
    json!({
        "id": id, "object": "billing_portal.session", "configuration": "bpc_standin",
        "created": created, "customer": customer, "flow": null, "livemode": false,
        "locale": null, "on_behalf_of": null, "return_url": return_url, "url": url,
    })
}

/// What a new subscription is made of.
pub(super) struct SubscriptionParts<'a> {
    pub id: &'a str,
    pub item: &'a str,
    pub customer: &'a str,
    pub price: &'a str,
    pub created: i64,
    pub period_end: i64,
    pub metadata: Map<String, Value>,
    pub latest_invoice: &'a str,
}

pub(super) fn subscription(parts: &SubscriptionParts<'_>) -> Value {
    let (id, created) = (parts.id, parts.created);
    let item = json!({
        "id": parts.item, "object": "subscription_item", "created": created,
        "current_period_end": parts.period_end, "current_period_start": created,
        "discounts": [], "metadata": {}, "plan": plan(parts.price, created),
        "price": price(parts.price, created), "quantity": 1, "subscription": id, "tax_rates": [],
    });
    let mut subscription = json!({
        "id": id, "object": "subscription", "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": created, "billing_cycle_anchor_config": null,
        "billing_mode": { "type": "classic" }, "billing_schedules": [],
        "billing_thresholds": null, "cancel_at": null, "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically", "created": created, "currency": CURRENCY,
        "customer": parts.customer, "days_until_due": null, "default_payment_method": null,
        "default_source": null, "default_tax_rates": [], "description": null, "discounts": [],
        "ended_at": null,
    });
    // Two halves: one json! of every field is past the macro's recursion limit.
    let rest = json!({
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": list(&format!("/v1/subscription_items?subscription={id}"), vec![item], false),
        "latest_invoice": parts.latest_invoice, "livemode": false, "metadata": parts.metadata,
        "next_pending_invoice_item_invoice": null, "on_behalf_of": null,
        "pause_collection": null, "pending_setup_intent": null, "pending_update": null,
        "schedule": null, "start_date": created, "status": "active", "test_clock": null,
        "transfer_data": null, "trial_end": null, "trial_start": null,
    });
    if let (Some(first), Value::Object(rest)) = (subscription.as_object_mut(), rest) {
        first.extend(rest);
    }
    subscription
}

fn price(id: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "price", "active": true, "billing_scheme": "per_unit",
        "created": created, "currency": CURRENCY, "livemode": false, "lookup_key": null,
        "metadata": {}, "nickname": null, "product": PRODUCT,
        "recurring": {
            "interval": "month", "interval_count": 1, "meter": null,
            "trial_period_days": null, "usage_type": "licensed",
        },
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null,
        "type": "recurring", "unit_amount": UNIT_AMOUNT,
        "unit_amount_decimal": UNIT_AMOUNT.to_string(),
    })
}

fn plan(id: &str, created: i64) -> Value {
    json!({
        "id": id, "object": "plan", "active": true, "amount": UNIT_AMOUNT,
        "amount_decimal": UNIT_AMOUNT.to_string(), "billing_scheme": "per_unit",
        "created": created, "currency": CURRENCY, "interval": "month", "interval_count": 1,
        "livemode": false, "metadata": {}, "meter": null, "nickname": null, "product": PRODUCT,
        "tiers_mode": null, "transform_usage": null, "trial_period_days": null,
        "usage_type": "licensed",
    })
}

/// What an invoice of a subscription is made of.
pub(super) struct InvoiceParts<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    pub subscription: &'a str,
    pub subscription_metadata: &'a Value,
    pub created: i64,
    pub period_end: i64,
    pub paid: bool,
    pub billing_reason: &'a str,
}

pub(super) fn invoice(parts: &InvoiceParts<'_>) -> Value {
    let (id, created, paid) = (parts.id, parts.created, parts.paid);
    json!({
        "id": id, "object": "invoice", "account_country": "US",
        "account_name": "Stripe stand-in", "amount_due": UNIT_AMOUNT, "amount_overpaid": 0,
        "amount_paid": if paid { UNIT_AMOUNT } else { 0 },
        "amount_remaining": if paid { 0 } else { UNIT_AMOUNT }, "amount_shipping": 0,
        "attempt_count": 1, "attempted": true, "auto_advance": !paid,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "status": null },
        "billing_reason": parts.billing_reason, "collection_method": "charge_automatically",
        "created": created, "currency": CURRENCY, "customer": parts.customer,
        "default_tax_rates": [], "description": null, "discounts": [], "due_date": null,
        "issuer": { "type": "self" },
        "lines": list(&format!("/v1/invoices/{id}/lines"), Vec::new(), false),
        "livemode": false, "metadata": {}, "number": format!("{}-0001", invoice_prefix(parts.customer)),
        "parent": {
            "type": "subscription_details", "quote_details": null,
            "subscription_details": {
                "metadata": parts.subscription_metadata, "subscription": parts.subscription,
                "subscription_proration_date": null,
            },
        },
        "payment_settings": {
            "default_mandate": null, "payment_method_options": null, "payment_method_types": null,
        },
        "period_end": parts.period_end, "period_start": created,
        "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0, "status": if paid { "paid" } else { "open" },
        "status_transitions": {
            "finalized_at": created, "marked_uncollectible_at": null,
            "paid_at": if paid { Some(created) } else { None }, "voided_at": null,
        },
        "subtotal": UNIT_AMOUNT, "total": UNIT_AMOUNT,
    })
}

/// An event around `object`, as Stripe sends it to a webhook endpoint.
pub(super) fn event(
    id: &str,
    type_: &str,
    object: Value,
    previous: Option<Value>,
    created: i64,
) -> SentEvent {
    let mut data = json!({ "object": object });
    if let Some(previous) = previous {
        data["previous_attributes"] = previous;
    }
    let payload = json!({
        "id": id, "object": "event", "api_version": stripe_shared::version::VERSION.as_str(),
        "created": created, "data": data, "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null }, "type": type_,
    });
    SentEvent {
        id: id.to_owned(),
        type_: type_.to_owned(),
        created,
        payload: payload.to_string(),
    }
}

/// Stripe's invoice prefixes are 8 upper-case characters from the customer.
fn invoice_prefix(customer: &str) -> String {
    let tail: String = customer.chars().rev().take(8).collect();
    tail.to_uppercase()
}
