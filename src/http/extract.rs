//! Extractors: the request's tenant (from its host, through the gate), the
//! caller (a bearer token or a session of that very tenant; cookie writes
//! need the session's CSRF token and a same-origin `Origin`), and the only way
//! a handler gets a database connection: `Db`, which is logged in as that
//! tenant.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN, REFERER};
use axum::http::request::Parts;
use axum::http::{HeaderName, Method};
use uuid::Uuid;

use super::error::ApiError;
use super::peer::Peer;
use super::state::AppState;
use crate::auth::{Perm, Permission, Role, TokenInfo, sessions};
use crate::control::Status;
use crate::pools::TenantConn;
use crate::routing::{HostName, Route, TenantEntry};

/// Names the tenant on the API host, together with a token of that tenant.
/// A `HeaderName`, not a `&str`: looked up on every request, and a string
/// name is parsed again at each lookup.
const TENANT_HEADER: HeaderName = HeaderName::from_static("x-tenant-id");

/// The tenant a request is for, resolved from its `Host` (or, on the API
/// host, from `X-Tenant-ID` together with a token of that tenant) and let
/// through the gate.
#[derive(Clone)]
pub struct Tenant(pub Arc<TenantEntry>);

/// The authenticated caller of a tenant request: made once per request (or
/// recalled from the connection's memo) and shared by every extractor that
/// needs it.
#[derive(Clone)]
pub struct Caller(Arc<CallerData>);

pub struct CallerData {
    pub tenant: Arc<TenantEntry>,
    pub principal: Principal,
    /// The client's address ([`ClientIp`]), for the audit log.
    pub ip: Option<std::net::IpAddr>,
}

impl std::ops::Deref for Caller {
    type Target = CallerData;

    fn deref(&self) -> &CallerData {
        &self.0
    }
}

/// How the caller proved who it is.
#[derive(Clone)]
pub enum Principal {
    Token(Arc<TokenInfo>),
    Session(Arc<SessionUser>),
}

/// A person logged in to this tenant.
#[derive(Debug)]
pub struct SessionUser {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// SHA-256 of the cookie value (the session's key in the control plane).
    pub session_hash: [u8; 32],
    pub csrf_token: String,
}

impl Caller {
    pub fn role(&self) -> Role {
        match &self.principal {
            Principal::Token(t) => t.role,
            Principal::Session(s) => s.role,
        }
    }

    /// Who to write in the audit log.
    pub fn label(&self) -> String {
        match &self.principal {
            Principal::Token(t) => format!("token:{}", t.name),
            Principal::Session(s) => format!("user:{}", s.email),
        }
    }

    /// The token's or the user's id.
    pub fn actor_id(&self) -> Uuid {
        match &self.principal {
            Principal::Token(t) => t.id,
            Principal::Session(s) => s.user_id,
        }
    }

    pub fn session(&self) -> Option<&SessionUser> {
        match &self.principal {
            Principal::Session(s) => Some(s),
            Principal::Token(_) => None,
        }
    }

    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role().allows(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

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

fn peer(parts: &Parts) -> Option<&Peer> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<Peer>>()
        .map(|info| &info.0)
}

fn client_ip(parts: &Parts, state: &AppState) -> Option<std::net::IpAddr> {
    let peer = peer(parts)?.addr.ip();
    Some(super::client_ip::client_ip(
        peer,
        &parts.headers,
        &state.trusted_proxies,
    ))
}

/// A connection to the caller's tenant database as the tenant's runtime role.
pub struct Db(pub TenantConn);

/// The caller, holding permission `P` in this tenant (else 403, before any
/// tenant connection is opened): how every tenant handler declares what it
/// needs.
pub struct Can<P: Perm>(pub Caller, pub std::marker::PhantomData<P>);

impl<P: Perm> FromRequestParts<AppState> for Can<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::PERMISSION)?;
        Ok(Can(caller, std::marker::PhantomData))
    }
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

pub fn host(parts: &Parts) -> Result<HostName, ApiError> {
    Ok(HostName::parse(authority(parts)?)?)
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
    if let Some(caller) = parts.extensions.get::<Caller>() {
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

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(found) = parts.extensions.get::<Caller>() {
            return Ok(found.clone());
        }
        if let Some(caller) = recalled(parts, state) {
            return Ok(caller);
        }
        let epoch = state.resolver.epoch();
        let tenant = tenant_of(parts, state).await?;
        let principal = if let Some(presented) = bearer(parts) {
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
            Principal::Token(token)
        } else if let Some(value) = sessions::presented(&parts.headers) {
            let user = session_user(state, &tenant, value).await?;
            if !is_safe(&parts.method) {
                check_csrf(parts, &user)?;
            }
            Principal::Session(Arc::new(user))
        } else {
            return Err(ApiError::Unauthorized);
        };
        let ip = client_ip(parts, state);
        let caller = Caller(Arc::new(CallerData {
            tenant,
            principal,
            ip,
        }));
        if matches!(caller.principal, Principal::Token(_)) {
            remember(parts, epoch, &caller);
        }
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// The caller as this connection's memo has it (see `peer`): the same host
/// and bearer token as a request moments ago, with no cache invalidated since,
/// from the same client address. Let through the gate again, exactly as a
/// fresh lookup would be.
fn recalled(parts: &mut Parts, state: &AppState) -> Option<Caller> {
    if !memoisable(parts) {
        return None;
    }
    let peer = peer(parts)?;
    let caller = peer.recall(
        parts.headers.get(HOST)?,
        parts.headers.get(AUTHORIZATION)?,
        state.resolver.epoch(),
    )?;
    // Behind a trusted proxy one connection carries many clients.
    if caller.ip != client_ip(parts, state) {
        return None;
    }
    gate(&caller.tenant, state).ok()?;
    tracing::Span::current().record("tenant", caller.tenant.slug.as_str());
    parts.extensions.insert(caller.clone());
    Some(caller)
}

/// Memoises a bearer request resolved on its tenant's own host (not the API
/// host, where `X-Tenant-ID` takes part in the answer).
fn remember(parts: &Parts, epoch: u64, caller: &Caller) {
    if !memoisable(parts) {
        return;
    }
    if let (Some(peer), Some(host), Some(authorization)) = (
        peer(parts),
        parts.headers.get(HOST),
        parts.headers.get(AUTHORIZATION),
    ) {
        peer.remember(host, authorization, epoch, caller);
    }
}

/// Whether the memo, keyed by the `Host` header, may answer for this request:
/// not on the API host (where `X-Tenant-ID` takes part), not for an
/// absolute-form target (its authority, not `Host`, names the tenant), and
/// not with two `Host` headers (refused by [`authority`]).
fn memoisable(parts: &Parts) -> bool {
    !parts.headers.contains_key(&TENANT_HEADER)
        && parts.uri.authority().is_none()
        && parts.headers.get_all(HOST).iter().nth(1).is_none()
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session behind a cookie value, on this tenant only: a session of
/// another tenant (or an expired one) is no session here.
async fn session_user(
    state: &AppState,
    tenant: &TenantEntry,
    value: &str,
) -> Result<SessionUser, ApiError> {
    let hash = sessions::hash(value);
    let row = state
        .control
        .touch_session(&hash, tenant.id, state.sessions.idle)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(SessionUser {
        user_id: row.user_id,
        email: row.email,
        display_name: row.display_name,
        role: Role::parse(&row.role).ok_or(ApiError::Unauthorized)?,
        session_hash: hash,
        csrf_token: state.secret.csrf_token(value),
    })
}

/// Cookie-authenticated writes: the session's CSRF token in `X-CSRF-Token`,
/// and an `Origin` (or else `Referer`), when sent, naming this very host.
fn check_csrf(parts: &Parts, user: &SessionUser) -> Result<(), ApiError> {
    let presented = parts
        .headers
        .get(sessions::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !sessions::same_token(presented, &user.csrf_token) {
        return Err(ApiError::Csrf);
    }
    let source = parts
        .headers
        .get(ORIGIN)
        .or_else(|| parts.headers.get(REFERER))
        .and_then(|v| v.to_str().ok());
    if let Some(source) = source {
        let own = authority(parts).unwrap_or("");
        if !same_origin_host(source, own) {
            return Err(ApiError::Csrf);
        }
    }
    Ok(())
}

/// Whether `scheme://host[:port][/...]` names `host` (as sent in `Host`).
fn same_origin_host(source: &str, host: &str) -> bool {
    let Some((_, rest)) = source.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

impl FromRequestParts<AppState> for Db {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Never a connection for an unauthenticated request.
        let caller = Caller::from_request_parts(parts, state).await?;
        let tenant = &caller.tenant;
        let peer = peer(parts);
        if let Some(pool) = peer.and_then(|p| p.recall_pool(tenant)) {
            match state.pools.connect_to(tenant, &pool).await {
                Ok(conn) => return Ok(Db(conn)),
                // Evicted and closed meanwhile: ask the cache like anyone.
                Err(_) if !pool.is_open() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let pool = state.pools.pool(tenant).await?;
        if let Some(peer) = peer {
            peer.remember_pool(&pool);
        }
        Ok(Db(state.pools.connect_to(tenant, &pool).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::same_origin_host;

    #[test]
    fn origins_must_name_the_request_host_exactly() {
        assert!(same_origin_host(
            "http://acme.localhost:8080",
            "acme.localhost:8080"
        ));
        assert!(same_origin_host(
            "https://acme.example.com/x/y?z",
            "acme.example.com"
        ));
        assert!(!same_origin_host(
            "http://globex.localhost:8080",
            "acme.localhost:8080"
        ));
        assert!(!same_origin_host(
            "http://acme.localhost:8080.evil.com",
            "acme.localhost:8080"
        ));
        assert!(!same_origin_host("null", "acme.localhost:8080"));
        assert!(!same_origin_host("http://acme.localhost", ""));
    }
}
