//! Break-glass grants on the admin host: an operator asks for access to a
//! tenant's data (a reason of 20-500 characters, 1-60 minutes, read-only
//! or read-write), a second operator approves read-write access, either
//! ends it early. The tenant's rule may refuse the grant (`never`) or make
//! it wait for an owner (`ask_first`). Each step is written to the
//! platform audit log and to the tenant's own; the requests made under a
//! grant are served by `http::break_glass`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::admin_tenants::tenant_named;
use crate::auth::operator_perm::{AccessApprove, AccessRequest, AdminRead};
use crate::control::{
    AccessGrant, AccessMode, GrantEnd, GrantRequest, OperatorRole, Slug, Tenant, TenantId,
};
use crate::http::error::{ApiError, ApiResult};
use crate::http::input::{Json, Path, Query};
use crate::http::operator::{OperatorCaller, OperatorCan, TenantRow};
use crate::http::state::AppState;

/// Minutes a grant lasts when the request does not say.
pub const DEFAULT_MINUTES: i32 = 15;
/// The longest a grant may last.
pub const MAX_MINUTES: i32 = 60;

/// `{"reason": "...", "minutes": 15, "mode": "read_only" | "read_write"}`.
#[derive(Debug, Deserialize)]
pub struct AccessAsked {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub minutes: Option<i32>,
    #[serde(default)]
    pub mode: Option<String>,
}

/// `POST /api/admin/tenants/{slug}/access`: 201 with the grant, `live`
/// at once unless it waits for an owner (`awaiting_owner`) or a second
/// operator (`awaiting_operator`); 403 `support_access_never` when the
/// tenant allows none.
pub async fn request_access(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AccessRequest>,
    Path(slug): Path<String>,
    Json(asked): Json<AccessAsked>,
) -> ApiResult<(StatusCode, Json<AccessGrant>)> {
    let reason = asked.reason.as_deref().unwrap_or("").trim().to_string();
    if !(20..=500).contains(&reason.chars().count()) {
        return Err(ApiError::field(
            "reason",
            "must be 20-500 characters: say why, for the tenant to read",
        ));
    }
    let minutes = asked.minutes.unwrap_or(DEFAULT_MINUTES);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ApiError::field(
            "minutes",
            format!("must be between 1 and {MAX_MINUTES}"),
        ));
    }
    let mode = match asked.mode.as_deref() {
        None => AccessMode::ReadOnly,
        Some(text) => AccessMode::parse(text)
            .ok_or_else(|| ApiError::field("mode", "must be read_only or read_write"))?,
    };
    if mode == AccessMode::ReadWrite && op.operator.role != OperatorRole::Admin {
        return Err(ApiError::Forbidden);
    }
    let tenant = tenant_named(&state, &slug).await?;
    let asked = GrantRequest {
        tenant: tenant.id,
        operator: op.operator.id,
        mode,
        reason: &reason,
        minutes,
    };
    let Some(grant) = state.control.request_grant(&asked).await? else {
        let detail = json!({"reason": reason, "mode": mode, "minutes": minutes});
        both(
            &state,
            &op,
            &tenant,
            ("access.refused", "support_access.refused"),
            None,
            detail,
        )
        .await?;
        return Err(ApiError::AccessRefused {
            code: "support_access_never",
            message: format!("{} does not allow support access to its data", tenant.slug),
        });
    };
    both(
        &state,
        &op,
        &tenant,
        ("access.requested", "support_access.requested"),
        Some(&grant),
        json!({}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(grant)))
}

/// `?tenant=<slug>&cursor=<requested_at>&limit=`.
#[derive(Debug, Deserialize)]
pub struct GrantsQuery {
    pub tenant: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// `GET /api/admin/access`: grants, newest first (every tenant's, or one's).
pub async fn list_grants(
    State(state): State<AppState>,
    _: OperatorCan<AdminRead>,
    Query(q): Query<GrantsQuery>,
) -> ApiResult<Json<Value>> {
    use time::format_description::well_known::Rfc3339;
    let limit = q.limit.unwrap_or(super::PageQuery::DEFAULT_LIMIT);
    if !(1..=super::PageQuery::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {}", super::PageQuery::MAX_LIMIT),
        ));
    }
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            OffsetDateTime::parse(c, &Rfc3339)
                .map_err(|_| ApiError::field("cursor", "not a cursor this list gave"))?,
        ),
    };
    let tenant = match q.tenant.as_deref() {
        None => None,
        Some(slug) => Some(
            match Slug::parse(slug) {
                Ok(slug) => state.control.tenant_by_slug(&slug).await?.map(|t| t.id),
                Err(_) => None,
            }
            // An unknown tenant has no grants: none rather than all.
            .unwrap_or(TenantId(Uuid::nil())),
        ),
    };
    let items = state.control.access_grants(tenant, before, limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| {
            items
                .last()
                .and_then(|g| g.requested_at.format(&Rfc3339).ok())
        })
        .flatten();
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

/// `POST /api/admin/access/{grant}/approve`: a second admin's approval of
/// read-write access (never the asker's own).
pub async fn approve_grant(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AccessApprove>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AccessGrant>> {
    let Some(grant) = state
        .control
        .approve_grant_as_operator(id, op.operator.id)
        .await?
    else {
        let grant = state
            .control
            .access_grant(id)
            .await?
            .ok_or(ApiError::NotFound)?;
        if grant.operator_id == op.operator.id {
            return Err(ApiError::Conflict(
                "a grant needs another operator's approval than its asker's".into(),
            ));
        }
        return Err(ApiError::Conflict(format!(
            "the grant is {} and cannot be approved",
            grant.state
        )));
    };
    let tenant = tenant_of(&state, &grant).await?;
    both(
        &state,
        &op,
        &tenant,
        ("access.approved", "support_access.approved"),
        Some(&grant),
        json!({}),
    )
    .await?;
    Ok(Json(grant))
}

/// `POST /api/admin/access/{grant}/revoke`: ends a grant now (one's own;
/// an admin, anyone's).
pub async fn revoke_grant(
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AccessRequest>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<AccessGrant>> {
    let grant = state
        .control
        .access_grant(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if grant.operator_id != op.operator.id && op.operator.role != OperatorRole::Admin {
        return Err(ApiError::Forbidden);
    }
    let by = format!("operator:{}", op.operator.email);
    let grant = state
        .control
        .end_grant(id, None, &by, GrantEnd::Revoked)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "the grant is {} and cannot be revoked",
                grant.state
            ))
        })?;
    let tenant = tenant_of(&state, &grant).await?;
    both(
        &state,
        &op,
        &tenant,
        ("access.revoked", "support_access.revoked"),
        Some(&grant),
        json!({}),
    )
    .await?;
    Ok(Json(grant))
}

async fn tenant_of(state: &AppState, grant: &AccessGrant) -> ApiResult<Tenant> {
    tenant_named(state, &grant.tenant).await
}

/// A step of a grant, written to the platform audit log (`platform`, by
/// `operator:<email>`) and to the tenant's own (`tenant`, by
/// `platform:<email>`), with the grant's reason.
async fn both(
    state: &AppState,
    op: &OperatorCaller,
    tenant: &Tenant,
    (platform, own): (&str, &str),
    grant: Option<&AccessGrant>,
    mut detail: Value,
) -> ApiResult<()> {
    if let Some(g) = grant {
        detail = json!({
            "grant": g.id, "operator": g.operator, "mode": g.mode, "reason": g.reason,
            "minutes": g.minutes, "state": g.state,
            "ends_at": g.ends_at.map(|t| t.unix_timestamp()),
        });
    }
    op.audit(state, platform, tenant, detail.clone()).await?;
    let id = grant.map(|g| g.id.to_string());
    let row = TenantRow {
        action: own,
        object_type: "access_grant",
        object_id: id.as_deref(),
        detail: &detail,
    };
    op.tenant_audit(state, tenant, None, row).await?;
    Ok(())
}
