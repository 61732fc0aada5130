//! The admin API's actions on a tenant (admin.<base> only, `admin.write`,
//! with the operator's CSRF token): suspend, reinstate, comp pro until a
//! date, end a comp, end every session. Each needs a reason (1-500
//! characters), checked before anything changes, and leaves one row in the
//! platform audit log (actor `operator:<email>`, the client address) and one
//! in the tenant's own (actor `platform:<email>`).

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::admin_tenants::tenant_named;
use crate::auth::operator_perm::AdminWrite;
use crate::control::{Status, Tenant};
use crate::http::error::{ApiError, ApiResult};
use crate::http::input::Json;
use crate::http::operator::{OperatorCaller, OperatorCan, TenantRow};
use crate::http::state::AppState;

/// `{"reason": "..."}`.
#[derive(Debug, Deserialize)]
pub struct ReasonRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

/// `{"until": "2027-01-31" | RFC 3339, "reason": "..."}`.
#[derive(Debug, Deserialize)]
pub struct CompRequest {
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The reason, trimmed: 1-500 characters, or 422.
fn reason(text: Option<&str>) -> ApiResult<String> {
    let text = text.unwrap_or("").trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(ApiError::field("reason", "must be 1-500 characters"));
    }
    Ok(text.to_string())
}

/// A day (through its end, UTC) or an RFC 3339 time, in the future.
fn until(text: Option<&str>) -> ApiResult<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    let text = text.unwrap_or("").trim();
    let bad = || ApiError::field("until", "give a future day (2027-01-31) or RFC 3339 time");
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let at = match time::Date::parse(text, &day) {
        Ok(date) => date.next_day().ok_or_else(bad)?.midnight().assume_utc(),
        Err(_) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())?,
    };
    if at <= OffsetDateTime::now_utc() {
        return Err(bad());
    }
    Ok(at)
}

/// Writes the action into the platform audit log.
async fn platform_audit(
    state: &AppState,
    op: &OperatorCaller,
    action: &str,
    tenant: &Tenant,
    detail: Value,
) -> ApiResult<()> {
    op.audit(state, action, tenant, detail).await
}

/// Writes the action into the tenant's own audit log, over a tenant
/// connection (the tenant's owners see it in `GET /api/audit`).
async fn tenant_audit(
    state: &AppState,
    op: &OperatorCaller,
    action: &str,
    tenant: &Tenant,
    detail: Value,
) -> ApiResult<()> {
    let row = TenantRow {
        action,
        object_type: "tenant",
        object_id: Some(tenant.slug.as_str()),
        detail: &detail,
    };
    op.tenant_audit(state, tenant, None, row).await
}

/// Both audit rows of an action on a tenant, with the reason.
async fn audited(
    state: &AppState,
    op: &OperatorCaller,
    action: &str,
    tenant: &Tenant,
    detail: Value,
) -> ApiResult<()> {
    platform_audit(state, op, action, tenant, detail.clone()).await?;
    tenant_audit(state, op, action, tenant, detail).await
}

/// `POST /api/admin/tenants/{slug}/suspend`: its hosts answer 403
/// `tenant_suspended` until it is reinstated.
pub async fn suspend_tenant(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AdminWrite>,
    Path(slug): Path<String>,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<Json<Value>> {
    let why = reason(req.reason.as_deref())?;
    move_status(
        &state,
        &op,
        &slug,
        Status::Active,
        Status::Suspended,
        "tenant.suspend",
        &why,
    )
    .await
}

/// `POST /api/admin/tenants/{slug}/reinstate`: serves a suspended tenant
/// again.
pub async fn reinstate_tenant(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AdminWrite>,
    Path(slug): Path<String>,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<Json<Value>> {
    let why = reason(req.reason.as_deref())?;
    move_status(
        &state,
        &op,
        &slug,
        Status::Suspended,
        Status::Active,
        "tenant.reinstate",
        &why,
    )
    .await
}

/// Suspend and reinstate: the tenant must be `from` (else 409); it becomes
/// `to`, audited once. Not the provisioner's suspend/resume: their own
/// audit row would make two.
async fn move_status(
    state: &AppState,
    op: &crate::http::operator::OperatorCaller,
    slug: &str,
    from: Status,
    to: Status,
    action: &str,
    why: &str,
) -> ApiResult<Json<Value>> {
    let t = tenant_named(state, slug).await?;
    // One statement: of two moves at once, one changes it, one is a 409.
    if !state.control.move_status(t.id, from, to).await? {
        let now = tenant_named(state, slug).await?;
        return Err(ApiError::Conflict(format!("the tenant is {}", now.status)));
    }
    let t = tenant_named(state, slug).await?;
    audited(state, op, action, &t, json!({"reason": why})).await?;
    Ok(Json(json!({"slug": t.slug, "status": t.status})))
}

/// `POST /api/admin/tenants/{slug}/comp`: pro until a date, ending by
/// itself. The plan change reaches the tenant at once (limits, and the
/// row in its audit log billing writes for every plan change).
pub async fn comp_tenant(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AdminWrite>,
    Path(slug): Path<String>,
    Json(req): Json<CompRequest>,
) -> ApiResult<Json<Value>> {
    let why = reason(req.reason.as_deref())?;
    let until = until(req.until.as_deref())?;
    let t = tenant_named(&state, &slug).await?;
    let by = op.label();
    let grace = state.billing.settings().grace;
    state
        .control
        .grant_comp(t.id, until, &why, &by, grace)
        .await?;
    let until_text = until
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    platform_audit(
        &state,
        &op,
        "tenant.comp",
        &t,
        json!({"until": until_text, "reason": why}),
    )
    .await?;
    state.billing.deliver(Some(t.id)).await;
    Ok(Json(json!({"slug": t.slug, "comp_until": until_text})))
}

/// `DELETE /api/admin/tenants/{slug}/comp`: ends a comp now; the plan
/// returns to what billing says. 409 without one.
pub async fn end_comp(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AdminWrite>,
    Path(slug): Path<String>,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<Json<Value>> {
    let why = reason(req.reason.as_deref())?;
    let t = tenant_named(&state, &slug).await?;
    let by = op.label();
    let grace = state.billing.settings().grace;
    if !state.control.end_comp(t.id, &why, &by, grace).await? {
        return Err(ApiError::Conflict("the tenant has no comp".into()));
    }
    platform_audit(&state, &op, "tenant.uncomp", &t, json!({"reason": why})).await?;
    state.billing.deliver(Some(t.id)).await;
    Ok(Json(json!({"slug": t.slug, "comp_until": null})))
}

/// `POST /api/admin/tenants/{slug}/cancel-subscription`: cancels the
/// tenant's Stripe subscription at once; its plan follows (what billing
/// says without it). 409 without a live one, 503 `billing_disabled`
/// without Stripe.
pub async fn cancel_subscription(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AdminWrite>,
    Path(slug): Path<String>,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<Json<Value>> {
    let why = reason(req.reason.as_deref())?;
    let t = tenant_named(&state, &slug).await?;
    let Some(id) = state.billing.cancel(t.id).await? else {
        return Err(ApiError::Conflict(
            "the tenant has no live subscription".into(),
        ));
    };
    audited(
        &state,
        &op,
        "tenant.cancel_subscription",
        &t,
        json!({"reason": why, "subscription": id}),
    )
    .await?;
    let t = tenant_named(&state, &slug).await?;
    Ok(Json(
        json!({"slug": t.slug, "canceled": id, "plan": t.plan}),
    ))
}

/// `POST /api/admin/tenants/{slug}/rotate-credentials`: a new credential
/// generation for the tenant's runtime role (new connections use the new
/// password; open ones finish their work).
pub async fn rotate_credentials(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AdminWrite>,
    Path(slug): Path<String>,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<Json<Value>> {
    let why = reason(req.reason.as_deref())?;
    let t = tenant_named(&state, &slug).await?;
    let rotated = state
        .provisioner
        .rotate_credentials_as(
            t.slug.as_str(),
            &op.actor(),
            json!({"reason": why, "ip": op.ip.map(|i| i.to_string()), "slug": t.slug}),
        )
        .await
        .map_err(|e| match e {
            crate::provision::ProvisionError::Control(e) => ApiError::from(e),
            other => ApiError::Conflict(other.to_string()),
        })?;
    let detail = json!({"reason": why, "generation": rotated.credential_generation});
    tenant_audit(&state, &op, "tenant.rotate_credentials", &rotated, detail).await?;
    Ok(Json(json!({
        "slug": rotated.slug,
        "credential_generation": rotated.credential_generation,
    })))
}

/// `POST /api/admin/tenants/{slug}/invitations/{invitation}/resend`: mails
/// a pending invitation again with a new code (the old one stops working)
/// and a fresh 7 days. 404 for one not pending or another tenant's.
pub async fn resend_invitation(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AdminWrite>,
    Path((slug, id)): Path<(String, uuid::Uuid)>,
    headers: axum::http::HeaderMap,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<Json<Value>> {
    use crate::auth::sessions;
    let why = reason(req.reason.as_deref())?;
    let t = tenant_named(&state, &slug).await?;
    let token = crate::secret::random_hex(32);
    let invitation = state
        .control
        .reissue_invitation(
            t.id,
            id,
            &sessions::hash(&token),
            super::invitations::LIFETIME,
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    super::invitations::mail_invitation(
        &state,
        &t.slug,
        host,
        &invitation.email,
        invitation.role,
        &token,
    )
    .await?;
    audited(
        &state,
        &op,
        "invitation.resend",
        &t,
        json!({"reason": why, "invitation": id, "email": invitation.email}),
    )
    .await?;
    Ok(Json(json!({"slug": t.slug, "invitation": invitation})))
}

/// `POST /api/admin/tenants/{slug}/end-sessions`: logs every user out of
/// the tenant (API tokens are untouched).
pub async fn end_sessions(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AdminWrite>,
    Path(slug): Path<String>,
    Json(req): Json<ReasonRequest>,
) -> ApiResult<Json<Value>> {
    let why = reason(req.reason.as_deref())?;
    let t = tenant_named(&state, &slug).await?;
    let ended = state.control.delete_tenant_sessions(t.id).await?;
    state.session_cache.forget_tenant(t.id);
    audited(
        &state,
        &op,
        "tenant.end_sessions",
        &t,
        json!({"reason": why, "ended": ended}),
    )
    .await?;
    Ok(Json(json!({"slug": t.slug, "ended": ended})))
}
