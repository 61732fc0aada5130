//! Authentication: a bearer token or a session of that very tenant makes the
//! request's [`Caller`]; cookie writes need the session's CSRF token and a
//! same-origin `Origin`. A keep-alive connection's memo (see `peer`) may
//! answer for a bearer request it has seen moments ago.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::Method;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN, REFERER};
use axum::http::request::Parts;

use super::caller::{Caller, CallerData, Principal, SessionUser};
use super::error::ApiError;
use super::gate::{TENANT_HEADER, authority, bearer, client_ip, gate, tenant_of};
use super::peer::peer;
use super::state::AppState;
use crate::auth::{Perm, sessions};
use crate::routing::TenantEntry;

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
                check_csrf(parts, &user.csrf_token)?;
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
    // While the control plane is away the caches decide, for as long as
    // they may: never a memo that outlives them.
    if !memoisable(parts) || !state.control.health().is_up() {
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

pub(super) fn is_safe(method: &Method) -> bool {
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
    let live = state
        .session_cache
        .verify(hash, tenant.id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let row = &live.row;
    Ok(SessionUser {
        user_id: row.user_id,
        email: row.email.clone(),
        display_name: row.display_name.clone(),
        role: row.role,
        session_hash: hash,
        csrf_token: state.secret.csrf_token(value),
    })
}

/// Cookie-authenticated writes: the session's CSRF token in `X-CSRF-Token`,
/// and an `Origin` (or else `Referer`), when sent, naming this very host.
pub(super) fn check_csrf(parts: &Parts, expected: &str) -> Result<(), ApiError> {
    let presented = parts
        .headers
        .get(sessions::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !sessions::same_token(presented, expected) {
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
