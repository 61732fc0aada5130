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
fn shown(g: &AccessGrant) -> Value {
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
    let policy = SupportPolicy::parse(change.policy.trim())
        .ok_or_else(|| ApiError::field("policy", "must be allowed, ask_first or never"))?;
    let before = state
        .control
        .set_support_policy(caller.tenant.id, policy, &caller.label())
        .await?;
    record(
        &mut db,
        &caller,
        "support_access.policy",
        "tenant",
        caller.tenant.slug.as_str(),
        json!({"from": before, "to": policy}),
    )
    .await?;
    Ok(Json(json!({"policy": policy})))
}

/// `POST /api/support-access/grants/{id}/approve`: lets a grant that
/// waits for an owner begin (or wait only for its second operator).
pub async fn approve(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::SupportAccessManage>,
    Db(mut db): Db,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    let tenant = caller.tenant.id;
    let grant = state
        .control
        .approve_grant_as_owner(tenant, id, &caller.label())
        .await?;
    let grant = settled(&state, tenant, id, grant, "approved").await?;
    audited(&state, &caller, &mut db, "support_access.approved", &grant).await?;
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
    end(state, caller, &mut db, id, GrantEnd::Denied).await
}

/// `POST /api/support-access/grants/{id}/revoke`: ends a live or waiting
/// grant now; the operator's next request under it is refused.
pub async fn revoke(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::SupportAccessManage>,
    Db(mut db): Db,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    end(state, caller, &mut db, id, GrantEnd::Revoked).await
}

async fn end(
    state: AppState,
    caller: Caller,
    db: &mut crate::pools::TenantConn,
    id: Uuid,
    how: GrantEnd,
) -> ApiResult<Json<Value>> {
    let tenant = caller.tenant.id;
    let grant = state
        .control
        .end_grant(id, Some(tenant), &caller.label(), how)
        .await?;
    let (verb, action) = match how {
        GrantEnd::Denied => ("denied", "support_access.denied"),
        GrantEnd::Revoked => ("revoked", "support_access.revoked"),
    };
    let grant = settled(&state, tenant, id, grant, verb).await?;
    audited(&state, &caller, db, action, &grant).await?;
    Ok(Json(shown(&grant)))
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
