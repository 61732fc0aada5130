//! From host to tenant: the host a request names (its absolute target or its
//! one `Host` header), the tenant it resolves to (on the API host, by
//! `X-Tenant-ID` together with a token of that very tenant), and the gate
//! that lets only active tenants at a known schema version through. Also the
//! client's address, as the audit log and the rate limits see it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderName;
use axum::http::header::{AUTHORIZATION, HOST};
use axum::http::request::Parts;

use super::error::ApiError;
use super::peer::peer;
use super::state::AppState;
use crate::control::Status;
use crate::routing::{HostName, Route, TenantEntry};

/// Names the tenant on the API host, together with a token of that tenant.
/// A `HeaderName`, not a `&str`: looked up on every request, and a string
/// name is parsed again at each lookup.
pub(super) const TENANT_HEADER: HeaderName = HeaderName::from_static("x-tenant-id");

/// The tenant a request is for, resolved from its `Host` (or, on the API
/// host, from `X-Tenant-ID` together with a token of that tenant) and let
/// through the gate.
#[derive(Clone)]
pub struct Tenant(pub Arc<TenantEntry>);

/// The client's address: the TCP peer, or what a trusted proxy says it is
/// (see `client_ip`).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(client_ip(parts, state).ok_or_else(|| {
            ApiError::Internal("served without the peer address (ConnectInfo)".into())
        })?))
    }
}

pub(super) fn client_ip(parts: &Parts, state: &AppState) -> Option<std::net::IpAddr> {
    let peer = peer(parts)?.addr.ip();
    Some(super::client_ip::client_ip(
        peer,
        &parts.headers,
        &state.trusted_proxies,
    ))
}

/// The host a request is for, as sent: an absolute-form target's authority
/// (RFC 9112 §3.2.2: it wins over `Host`), else the one `Host` header. Two
/// `Host` headers are refused (400), whatever the target.
pub fn authority(parts: &Parts) -> Result<&str, crate::routing::HostError> {
    use crate::routing::HostError;
    let mut headers = parts.headers.get_all(HOST).iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err(HostError::Duplicate);
    }
    if let Some(authority) = parts.uri.authority() {
        return Ok(authority.as_str());
    }
    header
        .ok_or(HostError::Missing)?
        .to_str()
        .map_err(|_| HostError::Malformed)
}

/// The request's host, normalised (400 for one that is not a host name).
pub fn host(parts: &Parts) -> Result<HostName, ApiError> {
    Ok(HostName::parse(authority(parts)?)?)
}

pub(super) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The gate: only active tenants at a schema version this binary knows pass.
pub(super) fn gate(entry: &Arc<TenantEntry>, state: &AppState) -> Result<(), ApiError> {
    match entry.status {
        Status::Active if state.supports_version(entry.schema_version) => Ok(()),
        Status::Active | Status::Provisioning | Status::Migrating | Status::MigrationFailed => {
            Err(ApiError::Unavailable)
        }
        Status::Suspended => Err(ApiError::Suspended),
        Status::Deleting | Status::Deleted => Err(ApiError::NotFound),
    }
}

pub(super) async fn tenant_of(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Arc<TenantEntry>, ApiError> {
    if let Some(found) = parts.extensions.get::<Tenant>() {
        return Ok(found.0.clone());
    }
    if let Some(caller) = parts.extensions.get::<super::caller::Caller>() {
        return Ok(caller.tenant.clone());
    }
    let host = host(parts)?;
    let entry = match state.resolver.resolve(&host).await? {
        Route::Tenant(entry) => entry,
        Route::Api => {
            // The API host names its tenant by header, which counts only
            // together with a token of that very tenant (checked by Caller).
            let slug = parts
                .headers
                .get(&TENANT_HEADER)
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
