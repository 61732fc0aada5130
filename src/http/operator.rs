//! Operator authentication on the admin host: the `bh_operator` cookie of
//! a live operator session makes the request's [`OperatorCaller`]; writes
//! need its CSRF token as tenant cookie writes do. Nothing else counts
//! here — a tenant's session cookie or API token is no operator — and on
//! any host but admin.<base> the admin routes are 404.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::authn::{check_csrf, is_safe};
use super::error::ApiError;
use super::gate::{client_ip, host};
use super::state::AppState;
use crate::auth::{OperatorPerm, operators, sessions};
use crate::control::{Operator, Tenant};
use crate::routing::{Route, TenantEntry};
use serde_json::Value;

/// An operator logged in on the admin host.
#[derive(Clone, Debug)]
pub struct OperatorCaller {
    pub operator: Operator,
    /// What the control plane keeps of the cookie.
    pub session_hash: [u8; 32],
    /// What the session's writes must carry in `X-CSRF-Token`.
    pub csrf_token: String,
    pub ip: Option<IpAddr>,
}

impl OperatorCaller {
    /// Its name in the platform audit log: `operator:<email>`.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.operator.email)
    }

    /// Its name in a tenant's own audit log: `platform:<email>`.
    pub fn label(&self) -> String {
        format!("platform:{}", self.operator.email)
    }

    /// Writes `action` on `tenant` into the platform audit log, with the
    /// client's address and the tenant's slug added to `detail`.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        tenant: &Tenant,
        mut detail: Value,
    ) -> Result<(), ApiError> {
        detail["ip"] = self.ip.map(|i| i.to_string()).into();
        detail["slug"] = tenant.slug.as_str().into();
        state
            .control
            .audit(&self.actor(), action, Some(tenant.id), detail)
            .await?;
        Ok(())
    }

    /// Writes `action` into `tenant`'s own audit log (its owners read it in
    /// `GET /api/audit`), on `db` when the caller has a connection to it
    /// already, else on one of its own.
    pub async fn tenant_audit(
        &self,
        state: &AppState,
        tenant: &Tenant,
        db: Option<&tokio_postgres::Client>,
        row: TenantRow<'_>,
    ) -> Result<(), ApiError> {
        const SQL: &str = "INSERT INTO audit_log (actor, actor_label, action, object_type, object_id, detail, client_ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        let label = self.label();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
            &self.operator.id,
            &label,
            &row.action,
            &row.object_type,
            &row.object_id,
            &row.detail,
            &self.ip,
        ];
        match db {
            Some(db) => db.execute(SQL, &params).await?,
            None => {
                let entry =
                    TenantEntry::from_tenant(tenant, &state.provisioner.settings().shared_db);
                let pool = state.pools.pool(&entry).await?;
                let db = state.pools.connect_to(&entry, &pool).await?;
                db.execute(SQL, &params).await?
            }
        };
        Ok(())
    }
}

/// A row of a tenant's audit log written by an operator.
pub struct TenantRow<'a> {
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: Option<&'a str>,
    pub detail: &'a Value,
}

/// 404 unless the request is for admin.<base>: the admin routes do not
/// exist anywhere else.
pub async fn admin_host(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    match state.resolver.resolve(&host(parts)?).await? {
        Route::Admin => Ok(()),
        _ => Err(ApiError::NotFound),
    }
}

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        admin_host(parts, state).await?;
        let value = operators::presented(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let hash = sessions::hash(value);
        let row = state
            .control
            .touch_operator_session(&hash)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let csrf_token = state.secret.csrf_token(value);
        if !is_safe(&parts.method) {
            check_csrf(parts, &csrf_token)?;
        }
        Ok(OperatorCaller {
            operator: row.operator,
            session_hash: hash,
            csrf_token,
            ip: client_ip(parts, state),
        })
    }
}

/// An operator whose role holds `P` (see [`crate::auth::operator_rbac`]):
/// 403 for one whose role does not, before anything is read or changed.
pub struct OperatorCan<P: OperatorPerm>(pub OperatorCaller, pub std::marker::PhantomData<P>);

impl<P: OperatorPerm> FromRequestParts<AppState> for OperatorCan<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = OperatorCaller::from_request_parts(parts, state).await?;
        if !P::PERMISSION.allows(caller.operator.role) {
            return Err(ApiError::Forbidden);
        }
        Ok(OperatorCan(caller, std::marker::PhantomData))
    }
}
