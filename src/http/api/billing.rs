//! `/api/billing` (the tenant's plan, subscription and usage; Checkout to
//! upgrade, the Billing Portal to manage) and `/webhooks/stripe` (on the
//! apex host: Stripe telling us what happened). The work is
//! [`crate::billing`]'s; this is HTTP around it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::record;
use crate::auth::perm;
use crate::billing::stripe::StripeError;
use crate::billing::{BillingError, WebhookOutcome};
use crate::control::Plan;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Can, Db, host};
use crate::http::input::Json;
use crate::http::state::AppState;
use crate::routing::Route;

impl From<BillingError> for ApiError {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::Disabled => ApiError::BillingDisabled,
            BillingError::Stripe(StripeError::Unreachable(why)) => {
                tracing::warn!(%why, "billing: Stripe unreachable");
                ApiError::BillingUnavailable
            }
            BillingError::Stripe(StripeError::Refused { status, message }) => {
                tracing::error!(status, %message, "billing: Stripe refused a request");
                ApiError::BillingRefused(message)
            }
            BillingError::Control(e) => e.into(),
            BillingError::Settings(why) => ApiError::Internal(why),
        }
    }
}

fn usage(used: i64, plan: Plan, limit: fn(Plan) -> Option<i64>) -> Value {
    json!({"used": used, "limit": limit(plan), "free_limit": limit(Plan::Free)})
}

/// `GET /api/billing`: the plan and what gives it (`stripe`, `comp` until
/// a date, `manual`), the subscription (status, renewal or cancellation
/// date, the end of a past-due grace period) and usage against the
/// limits, today's and the free plan's.
pub async fn get_billing(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::BillingRead>,
    Db(db): Db,
) -> ApiResult<Json<Value>> {
    Ok(Json(summary(&state, &caller, &db).await?))
}

/// What `GET /api/billing` answers (and the billing page shows).
pub async fn summary(
    state: &AppState,
    caller: &crate::http::extract::Caller,
    db: &crate::http::extract::TenantConn,
) -> ApiResult<Value> {
    caller.require(crate::auth::Permission::BILLING_READ)?;
    let tenant = &caller.tenant;
    let subscriptions = state.control.billing_subscriptions(tenant.id).await?;
    let projects: i64 = db
        .query_one("SELECT count(*) FROM projects", &[])
        .await?
        .get(0);
    let members = state.control.seats_taken(tenant.id).await?;
    // The one that decides the plan: a live one before an ended one.
    let current = subscriptions
        .iter()
        .find(|s| s.status != "canceled")
        .or(subscriptions.first());
    let grace = state.billing.settings().grace;
    let grace_ends_at = current
        .and_then(|s| s.past_due_since)
        .map(|since| since + grace);
    let (renews_at, cancels_at) = match current {
        Some(s) if s.status == "canceled" => (None, None),
        Some(s) if s.cancel_at_period_end => (None, s.current_period_end),
        Some(s) => (s.current_period_end, s.cancel_at),
        None => (None, None),
    };
    let rfc = |t: Option<OffsetDateTime>| {
        t.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    };
    let comp = state.control.comp_of(tenant.id).await?;
    let source = match (&comp, current) {
        (Some(_), _) => Some("comp"),
        (None, Some(s)) if matches!(s.status.as_str(), "active" | "trialing" | "past_due") => {
            Some("stripe")
        }
        (None, _) if tenant.plan == Plan::Pro => Some("manual"),
        _ => None,
    };
    let mode = match state.billing.settings().stripe.as_ref() {
        None => "disabled",
        Some(s) if s.test_mode => "test",
        Some(_) => "live",
    };
    Ok(json!({
        "plan": tenant.plan,
        "plan_source": source,
        "comp_until": rfc(comp.map(|(until, _)| until)),
        "billing": mode,
        "subscription": current,
        "renews_at": rfc(renews_at),
        "cancels_at": rfc(cancels_at),
        "grace_ends_at": rfc(grace_ends_at),
        "usage": {
            "projects": usage(projects, tenant.plan, Plan::max_projects),
            "members": usage(members, tenant.plan, Plan::max_members),
        },
    }))
}

/// `POST /api/billing/checkout`: the URL of a Stripe Checkout page selling
/// pro to this tenant; Stripe sends the payer back to `/billing` on the
/// tenant's own host. 409 while a subscription is live (the portal manages
/// it).
pub async fn checkout(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::BillingManage>,
    Db(mut db): Db,
    parts: axum::http::request::Parts,
) -> ApiResult<Json<Value>> {
    let host = crate::http::extract::authority(&parts).ok();
    let url = start_checkout(&state, &caller, &mut db, host).await?;
    Ok(Json(json!({ "url": url })))
}

/// A Checkout Session's URL selling pro to the caller's tenant, back to
/// `/billing` on its own host (the API's and the billing page's); 409
/// while a subscription is live.
pub async fn start_checkout(
    state: &AppState,
    caller: &crate::http::extract::Caller,
    db: &mut crate::http::extract::TenantConn,
    request_host: Option<&str>,
) -> ApiResult<String> {
    caller.require(crate::auth::Permission::BILLING_MANAGE)?;
    let tenant = &caller.tenant;
    if !state.billing.enabled() {
        return Err(ApiError::BillingDisabled);
    }
    let live = state
        .control
        .billing_subscriptions(tenant.id)
        .await?
        .into_iter()
        .find(|s| matches!(s.status.as_str(), "active" | "trialing" | "past_due"));
    if let Some(live) = live {
        return Err(ApiError::Conflict(format!(
            "this organisation already has a {} subscription; manage it in the billing portal",
            live.status
        )));
    }
    let back_to = format!("{}/billing", state.tenant_url(&tenant.slug, request_host));
    let url = state
        .billing
        .checkout(tenant.id, tenant.slug.as_str(), &back_to)
        .await?;
    record(
        db,
        caller,
        "billing.checkout_started",
        "billing",
        "checkout",
        json!({}),
    )
    .await?;
    Ok(url)
}

/// `POST /api/billing/portal`: the URL of the tenant's Stripe Billing
/// Portal (change card, cancel, invoices). 409 before any checkout.
pub async fn portal(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::BillingManage>,
    parts: axum::http::request::Parts,
) -> ApiResult<Json<Value>> {
    let host = crate::http::extract::authority(&parts).ok();
    let url = open_portal(&state, &caller, host).await?;
    Ok(Json(json!({ "url": url })))
}

/// The tenant's Billing Portal URL, back to `/billing` on its own host;
/// 409 before any checkout.
pub async fn open_portal(
    state: &AppState,
    caller: &crate::http::extract::Caller,
    request_host: Option<&str>,
) -> ApiResult<String> {
    caller.require(crate::auth::Permission::BILLING_MANAGE)?;
    let tenant = &caller.tenant;
    let back_to = format!("{}/billing", state.tenant_url(&tenant.slug, request_host));
    state
        .billing
        .portal(tenant.id, &back_to)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(
                "this organisation has no subscription yet; start one with checkout".into(),
            )
        })
}

/// `POST /webhooks/stripe`, on the apex host only: the body exactly as
/// sent, checked against `Stripe-Signature`. 400 for a bad signature or a
/// stale timestamp (nothing recorded); 200 for everything signed, applied
/// or not (so Stripe stops retrying); 503 while Stripe or the control plane
/// cannot be reached (Stripe retries).
pub async fn stripe_webhook(
    State(state): State<AppState>,
    parts: axum::http::request::Parts,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let on = host(&parts)?;
    if !matches!(state.resolver.resolve(&on).await?, Route::Apex) {
        return Err(ApiError::NotFound);
    }
    let body = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the body is not UTF-8".into()))?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let said = match state.billing.webhook(body, signature).await? {
        WebhookOutcome::Rejected(why) => {
            return Err(ApiError::BadRequest(format!(
                "webhook signature refused: {why}"
            )));
        }
        WebhookOutcome::Unreadable => "ignored",
        WebhookOutcome::Duplicate => "duplicate",
        WebhookOutcome::Recorded(outcome) => outcome,
    };
    Ok((
        StatusCode::OK,
        Json(json!({ "received": true, "outcome": said })),
    ))
}
