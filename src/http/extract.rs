//! Extractors: the request's tenant (from its host, through the gate), the
//! caller (a bearer token of that very tenant), and the only way a handler
//! gets a database connection: `Db`, which is logged in as that tenant.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::{Role, TokenInfo};
use crate::control::Status;
use crate::pools::TenantConn;
use crate::routing::{HostName, Route, TenantEntry};

/// The tenant a request is for, resolved from its `Host` (or, on the API
/// host, from `X-Tenant-ID` together with a token of that tenant) and let
/// through the gate.
#[derive(Clone)]
pub struct Tenant(pub Arc<TenantEntry>);

/// The authenticated caller of a tenant request.
#[derive(Clone)]
pub struct Caller {
    pub tenant: Arc<TenantEntry>,
    pub token: Arc<TokenInfo>,
}

impl Caller {
    pub fn role(&self) -> Role {
        self.token.role
    }

    /// Who to write in the audit log.
    pub fn label(&self) -> String {
        format!("token:{}", self.token.name)
    }

    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.role().can_write() {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// A connection to the caller's tenant database as the tenant's runtime role.
pub struct Db(pub TenantConn);

pub fn host(parts: &Parts) -> Result<HostName, ApiError> {
    let raw = parts
        .headers
        .get(HOST)
        .map(|h| h.to_str().map_err(|_| crate::routing::HostError::Malformed))
        .transpose()?
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .ok_or(crate::routing::HostError::Missing)?;
    Ok(HostName::parse(raw)?)
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The gate: only active tenants at a schema version this binary knows pass.
fn gate(entry: &Arc<TenantEntry>, state: &AppState) -> Result<(), ApiError> {
    match entry.status {
        Status::Active if state.supports_version(entry.schema_version) => Ok(()),
        Status::Active | Status::Provisioning | Status::Migrating | Status::MigrationFailed => {
            Err(ApiError::Unavailable)
        }
        Status::Suspended => Err(ApiError::Suspended),
        Status::Deleting | Status::Deleted => Err(ApiError::NotFound),
    }
}

async fn tenant_of(parts: &mut Parts, state: &AppState) -> Result<Arc<TenantEntry>, ApiError> {
    if let Some(found) = parts.extensions.get::<Tenant>() {
        return Ok(found.0.clone());
    }
    let host = host(parts)?;
    let entry = match state.resolver.resolve(&host).await? {
        Route::Tenant(entry) => entry,
        Route::Api => {
            // The API host names its tenant by header, which counts only
            // together with a token of that very tenant (checked by Caller).
            let slug = parts
                .headers
                .get("x-tenant-id")
                .and_then(|v| v.to_str().ok())
                .ok_or(ApiError::NotFound)?;
            let entry = match state.resolver.resolve_slug(slug.trim()).await? {
                Route::Tenant(entry) => entry,
                _ => return Err(ApiError::NotFound),
            };
            // Before the gate: without a token of that tenant, the header
            // reveals nothing, not even that the tenant exists or is suspended.
            let token = match bearer(parts) {
                Some(presented) => state.tokens.verify(presented).await?,
                None => None,
            };
            if token.is_none_or(|t| t.tenant != entry.id) {
                return Err(ApiError::NotFound);
            }
            entry
        }
        _ => return Err(ApiError::NotFound),
    };
    gate(&entry, state)?;
    tracing::Span::current().record("tenant", entry.slug.as_str());
    parts.extensions.insert(Tenant(entry.clone()));
    Ok(entry)
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Tenant(tenant_of(parts, state).await?))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(found) = parts.extensions.get::<Caller>() {
            return Ok(found.clone());
        }
        let tenant = tenant_of(parts, state).await?;
        let Some(presented) = bearer(parts) else {
            return Err(ApiError::Unauthorized);
        };
        let token = state
            .tokens
            .verify(presented)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // Another tenant's token is not a credential here: the same 404 as
        // any host we do not serve, so nothing is learned about either.
        if token.tenant != tenant.id {
            return Err(ApiError::NotFound);
        }
        let caller = Caller { tenant, token };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for Db {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Never a connection for an unauthenticated request.
        let caller = Caller::from_request_parts(parts, state).await?;
        Ok(Db(state.pools.connect(&caller.tenant).await?))
    }
}
