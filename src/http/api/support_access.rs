//! `/api/support-access`: the tenant's side of break-glass. Its owners set
//! the rule for the vendor's staff (`allowed`, `ask_first`, `never`), see
//! every grant asked for on their data (and, in `GET /api/audit`, every
//! request made under one), approve or deny one that waits for them, and
//! end one early.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::record;
use crate::auth::perm;
use crate::control::{AccessGrant, GrantEnd, SupportPolicy, TenantId};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Caller, Can, Db};
use crate::http::input::{Json, Path};
use crate::http::state::AppState;

/// How many of the newest grants `GET /api/support-access` lists.
const GRANTS_SHOWN: i64 = 50;

/// `GET /api/support-access`: the rule, and the newest grants on this
/// tenant's data with where each stands.
pub async fn get_support_access(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::AuditRead>,
) -> ApiResult<Json<Value>> {
    let tenant = caller.tenant.id;
    let policy = state.control.support_policy(tenant).await?;
    let grants = state
        .control
        .access_grants(Some(tenant), None, GRANTS_SHOWN)
        .await?;
    let grants: Vec<Value> = grants.iter().map(shown).collect();
    Ok(Json(json!({"policy": policy, "grants": grants})))
}

/// A grant as the tenant sees it (not the operator's id, nor other
/// tenants' anything).
pub fn shown(g: &AccessGrant) -> Value {
    json!({
        "id": g.id, "operator": g.operator, "mode": g.mode, "reason": g.reason,
        "minutes": g.minutes, "state": g.state, "requested_at": rfc(Some(g.requested_at)),
        "owner_approved_by": g.owner_approved_by, "operator_approved_by": g.operator_approved_by,
        "starts_at": rfc(g.starts_at), "ends_at": rfc(g.ends_at),
        "ended_at": rfc(g.ended_at), "ended_by": g.ended_by,
    })
}

fn rfc(at: Option<time::OffsetDateTime>) -> Option<String> {
    at?.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// `{"policy": "allowed" | "ask_first" | "never"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChange {
    pub policy: String,
}

/// `PATCH /api/support-access`: sets the rule (owners). It applies to
/// grants asked for from now on; end a live one with `revoke`.
pub async fn set_policy(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::SupportAccessManage>,
    Db(mut db): Db,
    Json(change): Json<PolicyChange>,
) -> ApiResult<Json<Value>> {
    let policy = change_policy(&state, &caller, &mut db, &change.policy).await?;
    Ok(Json(json!({"policy": policy})))
}

/// Sets the tenant's rule to `text` (`allowed`, `ask_first`, `never`; 422
/// else), audited in its own log: the API's and the page's.
pub async fn change_policy(
    state: &AppState,
    caller: &Caller,
    db: &mut crate::pools::TenantConn,
    text: &str,
) -> ApiResult<SupportPolicy> {
    caller.require(crate::auth::Permission::SUPPORT_ACCESS_MANAGE)?;
    let policy = SupportPolicy::parse(text.trim())
        .ok_or_else(|| ApiError::field("policy", "must be allowed, ask_first or never"))?;
    let before = state
        .control
        .set_support_policy(caller.tenant.id, policy, &caller.label())
        .await?;
    record(
        db,
        caller,
        "support_access.policy",
        "tenant",
        caller.tenant.slug.as_str(),
        json!({"from": before, "to": policy}),
    )
    .await?;
    Ok(policy)
}

/// `POST /api/support-access/grants/{id}/approve`: lets a grant that
/// waits for an owner begin (or wait only for its second operator).
pub async fn approve(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::SupportAccessManage>,
    Db(mut db): Db,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    let grant = decide(&state, &caller, &mut db, id, Decision::Approve).await?;
    Ok(Json(shown(&grant)))
}

/// `POST /api/support-access/grants/{id}/deny`: refuses a grant that has
/// not begun.
pub async fn deny(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::SupportAccessManage>,
    Db(mut db): Db,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    let grant = decide(&state, &caller, &mut db, id, Decision::Deny).await?;
    Ok(Json(shown(&grant)))
}

/// `POST /api/support-access/grants/{id}/revoke`: ends a live or waiting
/// grant now; the operator's next request under it is refused.
pub async fn revoke(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::SupportAccessManage>,
    Db(mut db): Db,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    let grant = decide(&state, &caller, &mut db, id, Decision::Revoke).await?;
    Ok(Json(shown(&grant)))
}

/// What an owner decides about a grant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
    Revoke,
}

impl Decision {
    /// `approve`, `deny`, `revoke` (as in the routes and the page's forms).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Decision::Approve),
            "deny" => Some(Decision::Deny),
            "revoke" => Some(Decision::Revoke),
            _ => None,
        }
    }
}

/// An owner's decision on grant `id` of the caller's tenant (the API's and
/// the page's): the grant as it is now, with a row in the tenant's audit
/// log and the platform's; 404 for another tenant's, 409 saying where it
/// stands when it cannot be decided so.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    db: &mut crate::pools::TenantConn,
    id: Uuid,
    decision: Decision,
) -> ApiResult<AccessGrant> {
    caller.require(crate::auth::Permission::SUPPORT_ACCESS_MANAGE)?;
    let tenant = caller.tenant.id;
    let control = &state.control;
    let by = caller.label();
    let (changed, verb, action) = match decision {
        Decision::Approve => (
            control.approve_grant_as_owner(tenant, id, &by).await?,
            "approved",
            "support_access.approved",
        ),
        Decision::Deny => (
            control
                .end_grant(id, Some(tenant), &by, GrantEnd::Denied)
                .await?,
            "denied",
            "support_access.denied",
        ),
        Decision::Revoke => (
            control
                .end_grant(id, Some(tenant), &by, GrantEnd::Revoked)
                .await?,
            "revoked",
            "support_access.revoked",
        ),
    };
    let grant = settled(state, tenant, id, changed, verb).await?;
    audited(state, caller, db, action, &grant).await?;
    Ok(grant)
}

/// The grant a change took effect on; else 404 (not this tenant's) or 409
/// saying where it stands.
async fn settled(
    state: &AppState,
    tenant: TenantId,
    id: Uuid,
    changed: Option<AccessGrant>,
    verb: &str,
) -> ApiResult<AccessGrant> {
    if let Some(grant) = changed {
        return Ok(grant);
    }
    match state.control.access_grant(id).await? {
        Some(g) if g.tenant_id == tenant.0 => Err(ApiError::Conflict(format!(
            "the grant is {} and cannot be {verb}",
            g.state
        ))),
        _ => Err(ApiError::NotFound),
    }
}

/// An owner's decision, in the tenant's audit log and the platform's.
async fn audited(
    state: &AppState,
    caller: &Caller,
    db: &mut crate::pools::TenantConn,
    action: &str,
    grant: &AccessGrant,
) -> ApiResult<()> {
    let detail = json!({
        "grant": grant.id, "operator": grant.operator, "mode": grant.mode,
        "reason": grant.reason, "state": grant.state,
    });
    record(
        db,
        caller,
        action,
        "access_grant",
        &grant.id.to_string(),
        detail.clone(),
    )
    .await?;
    state
        .control
        .audit(&caller.label(), action, Some(caller.tenant.id), detail)
        .await?;
    Ok(())
}
