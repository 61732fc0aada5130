//! BREAK-GLASS: the one way the vendor's staff see a tenant's data.
//!
//! An operator with a live access grant (see [`crate::control::AccessGrant`]
//! and `api::admin_access`) calls the tenant's own API through
//! `admin.<base>/api/admin/tenants/{slug}/view/...`: `/view/projects` is the
//! tenant's `GET /api/projects`, served by the same handler, as a caller of
//! the tenant whose principal is [`Principal::BreakGlass`] with the role
//! `viewer` (read-only grant) or `member` (read-write). Only routes that
//! require a permission are there (not log-in, log-out, `/api/me`…).
//!
//! [`BreakGlass::open`] is the only code that opens the connection such a
//! request is served over, and it writes the audit rows before anything
//! else: one in the platform audit log and one in the tenant's own
//! (`support_access.used`, actor `platform:<operator>`, with the grant's
//! reason, the method and the path), so the tenant's owners see every
//! request in `GET /api/audit`. A read-only grant's connection is in a
//! `READ ONLY` transaction with read-only the session's default as well,
//! so PostgreSQL refuses any write whatever the handler does; the pool
//! resets it before the next request has it.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower::ServiceExt;

use super::api::admin_tenants::tenant_named;
use super::caller::{BreakGlassOperator, Caller, CallerData, Principal};
use super::error::{ApiError, ApiResult};
use super::operator::{OperatorCaller, OperatorCan, TenantRow};
use super::state::AppState;
use crate::auth::operator_perm::AccessRequest;
use crate::control::{AccessGrant, AccessMode, Role, Status, Tenant};
use crate::pools::TenantConn;
use crate::routing::TenantEntry;

/// The view's route: the rest of the path is the tenant API's, under `/api/`.
pub(super) const VIEW: &str = "/api/admin/tenants/{slug}/view/{*path}";

/// Says which grant a view response was served under, and until when.
const GRANT_HEADER: &str = "bulkhead-access-grant";

/// A connection to one tenant, opened for an operator under a grant, its
/// audit rows already written. Read-only grants: in a `READ ONLY`
/// transaction. The only way an operator's request reaches tenant data.
pub struct BreakGlass {
    conn: TenantConn,
}

impl BreakGlass {
    /// Writes the request into the platform audit log and the tenant's
    /// own, then opens the connection it is served over. Nothing is read
    /// of the tenant before both rows are written.
    pub async fn open(
        state: &AppState,
        op: &OperatorCaller,
        grant: &AccessGrant,
        tenant: &Tenant,
        method: &Method,
        path: &str,
    ) -> ApiResult<Self> {
        let detail = json!({
            "grant": grant.id, "mode": grant.mode, "reason": grant.reason,
            "method": method.as_str(), "path": path,
            "ends_at": grant.ends_at.map(|t| t.unix_timestamp()),
        });
        op.audit(state, "access.used", tenant, detail.clone())
            .await?;
        let entry = TenantEntry::from_tenant(tenant, &state.provisioner.settings().shared_db);
        let pool = state.pools.pool(&entry).await?;
        let conn = state.pools.connect_to(&entry, &pool).await?;
        let id = grant.id.to_string();
        let row = TenantRow {
            action: "support_access.used",
            object_type: "access_grant",
            object_id: Some(&id),
            detail: &detail,
        };
        op.tenant_audit(state, tenant, Some(&conn), row).await?;
        if grant.mode == AccessMode::ReadOnly {
            // Both: a handler's own BEGIN … COMMIT ends the first, and the
            // transactions after it are read-only by default still.
            conn.batch_execute("SET default_transaction_read_only = on")
                .await?;
            conn.batch_execute("BEGIN READ ONLY").await?;
        }
        Ok(Self { conn })
    }
}

/// Where the view's request finds its connection: taken once, by `Db`.
#[derive(Clone)]
struct Slot(Arc<Mutex<Option<TenantConn>>>);

/// The connection [`BreakGlass::open`] opened for this request (for `Db`,
/// when the caller is [`Principal::BreakGlass`]); never any other.
pub(super) fn connection(parts: &Parts) -> ApiResult<TenantConn> {
    parts
        .extensions
        .get::<Slot>()
        .and_then(|slot| slot.0.lock().ok()?.take())
        .ok_or_else(|| ApiError::Internal("a break-glass request without its connection".into()))
}

/// `/api/admin/tenants/{slug}/view/...`: the tenant API's route under
/// `/api/...`, served by `views` (the product's routes that require a
/// permission) as the operator under their live grant on the tenant.
pub(super) async fn view(
    views: Router,
    State(state): State<AppState>,
    OperatorCan(op, _): OperatorCan<AccessRequest>,
    Path((slug, _)): Path<(String, String)>,
    request: Request,
) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    // The tenant API's path, as the client wrote it (still percent-encoded).
    let marker = format!("/api/admin/tenants/{slug}/view/");
    let rest = parts
        .uri
        .path()
        .strip_prefix(&marker)
        .ok_or(ApiError::NotFound)?;
    let target = match parts.uri.query() {
        Some(query) => format!("/api/{rest}?{query}"),
        None => format!("/api/{rest}"),
    };
    let (grant, mut response) = serve(
        views,
        &state,
        &op,
        &slug,
        &parts.method,
        &target,
        &parts.headers,
        Body::new(body),
    )
    .await?;
    if let Some(until) = grant.ends_at.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    }) && let Ok(value) = HeaderValue::from_str(&format!(
        "{}; mode={}; until={until}",
        grant.id,
        grant.mode.as_str()
    )) {
        response.headers_mut().insert(GRANT_HEADER, value);
    }
    Ok(response)
}

/// Serves `method target` (a path of the tenant API, `/api/...`) of the
/// tenant `slug` by `views`, as the operator under their live grant on it
/// (a write only under a read-write grant), over the connection
/// [`BreakGlass::open`] opens: the grant it was served under, and the
/// tenant API's answer. `headers`: the request's (only its content type
/// and length are passed on).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve(
    views: Router,
    state: &AppState,
    op: &OperatorCaller,
    slug: &str,
    method: &Method,
    target: &str,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> ApiResult<(AccessGrant, Response)> {
    let tenant = tenant_named(state, slug).await?;
    let writes = !matches!(*method, Method::GET | Method::HEAD);
    let grant = state
        .control
        .live_grant(tenant.id, op.operator.id, writes)
        .await?
        .ok_or_else(|| ApiError::AccessRefused {
            code: "no_access_grant",
            message: format!("you have no live access grant for {}", tenant.slug),
        })?;
    if writes && grant.mode == AccessMode::ReadOnly {
        return Err(ApiError::AccessRefused {
            code: "read_only_grant",
            message: "your access grant is read-only".into(),
        });
    }
    match tenant.status {
        Status::Active | Status::Suspended if state.supports_version(tenant.schema_version) => {}
        Status::Deleting | Status::Deleted => return Err(ApiError::NotFound),
        _ => return Err(ApiError::Unavailable),
    }
    let glass = BreakGlass::open(state, op, &grant, &tenant, method, target).await?;

    let entry = TenantEntry::from_tenant(&tenant, &state.provisioner.settings().shared_db);
    let caller = Caller(Arc::new(CallerData {
        tenant: Arc::new(entry),
        principal: Principal::BreakGlass(Arc::new(BreakGlassOperator {
            operator_id: op.operator.id,
            email: op.operator.email.clone(),
            grant_id: grant.id,
            reason: grant.reason.clone(),
            role: match grant.mode {
                AccessMode::ReadOnly => Role::Viewer,
                AccessMode::ReadWrite => Role::Member,
            },
        })),
        ip: op.ip,
    }));
    let mut inner = Request::new(body);
    *inner.method_mut() = method.clone();
    *inner.uri_mut() = target
        .parse()
        .map_err(|_| ApiError::BadRequest("not a path of the tenant API".into()))?;
    let host = format!("{}.{}", tenant.slug, state.base_domain.as_str());
    if let Ok(host) = HeaderValue::from_str(&host) {
        inner.headers_mut().insert(HOST, host);
    }
    for name in [CONTENT_TYPE, CONTENT_LENGTH] {
        if let Some(value) = headers.get(&name) {
            inner.headers_mut().insert(name, value.clone());
        }
    }
    inner.extensions_mut().insert(caller);
    inner
        .extensions_mut()
        .insert(Slot(Arc::new(Mutex::new(Some(glass.conn)))));
    let response = match views.oneshot(inner).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    Ok((grant, response.into_response()))
}
