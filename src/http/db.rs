//! `Db`: the only way a handler gets a database connection, logged in as the
//! caller's tenant (never for an unauthenticated request). The connection's
//! memo may name the pool its last request used.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::caller::{Caller, Principal};
use super::error::ApiError;
use super::peer::peer;
use super::state::AppState;
use crate::pools::TenantConn;

/// A connection to the caller's tenant database as the tenant's runtime role.
pub struct Db(pub TenantConn);

impl FromRequestParts<AppState> for Db {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Never a connection for an unauthenticated request.
        let caller = Caller::from_request_parts(parts, state).await?;
        // An operator's request under a grant: only the connection the
        // grant opened (audited, read-only unless read-write), never one
        // of the pool's own.
        if matches!(caller.principal, Principal::BreakGlass(_)) {
            return super::break_glass::connection(parts).map(Db);
        }
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
