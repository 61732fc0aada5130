//! Who is calling: the caller of a tenant request, made once per request (or
//! recalled from the connection's memo, see `peer`) and shared by every
//! extractor that needs it. Types only; how a request becomes a `Caller` is
//! `authn`.

use std::sync::Arc;

use uuid::Uuid;

use super::error::ApiError;
use crate::auth::{Permission, Role, TokenInfo};
use crate::routing::TenantEntry;

/// The authenticated caller of a tenant request: made once per request (or
/// recalled from the connection's memo) and shared by every extractor that
/// needs it.
#[derive(Clone)]
pub struct Caller(pub(super) Arc<CallerData>);

/// What is known of a caller (what [`Caller`] derefs to).
pub struct CallerData {
    /// The tenant the request's host names, which the caller belongs to.
    pub tenant: Arc<TenantEntry>,
    /// The token or session it authenticated with.
    pub principal: Principal,
    /// The client's address ([`ClientIp`](super::extract::ClientIp)), for the audit log.
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
    /// An API token of this tenant.
    Token(Arc<TokenInfo>),
    /// A person's session on this tenant.
    Session(Arc<SessionUser>),
    /// BREAK-GLASS: one of the vendor's operators under a live access
    /// grant, through the admin host's view of this tenant (see
    /// `http::break_glass`). Its requests are served over the connection
    /// the grant opened (read-only unless the grant is read-write), and
    /// each is in the tenant's own audit log.
    BreakGlass(Arc<BreakGlassOperator>),
}

/// An operator seeing a tenant's data under a grant.
#[derive(Debug)]
pub struct BreakGlassOperator {
    /// The operator's id (not a user of any tenant).
    pub operator_id: Uuid,
    /// The operator's e-mail address.
    pub email: String,
    /// The grant the request is served under.
    pub grant_id: Uuid,
    /// The reason the grant was asked for.
    pub reason: String,
    /// What the grant lets it do: `viewer` (read-only) or `member`
    /// (read-write).
    pub role: Role,
}

/// A person logged in to this tenant.
#[derive(Debug)]
pub struct SessionUser {
    /// The user's id (global, across tenants).
    pub user_id: Uuid,
    /// Normalised e-mail address.
    pub email: String,
    /// The name they chose.
    pub display_name: String,
    /// Their role in this tenant.
    pub role: Role,
    /// SHA-256 of the cookie value (the session's key in the control plane).
    pub session_hash: [u8; 32],
    /// What the session's cookie-authenticated writes must send in `X-CSRF-Token`.
    pub csrf_token: String,
}

impl Caller {
    /// The caller's role in this tenant (a token's, or the member's).
    pub fn role(&self) -> Role {
        match &self.principal {
            Principal::Token(t) => t.role,
            Principal::Session(s) => s.role,
            Principal::BreakGlass(o) => o.role,
        }
    }

    /// Who to write in the audit log.
    pub fn label(&self) -> String {
        match &self.principal {
            Principal::Token(t) => format!("token:{}", t.name),
            Principal::Session(s) => format!("user:{}", s.email),
            Principal::BreakGlass(o) => format!("platform:{}", o.email),
        }
    }

    /// The token's or the user's id.
    pub fn actor_id(&self) -> Uuid {
        match &self.principal {
            Principal::Token(t) => t.id,
            Principal::Session(s) => s.user_id,
            Principal::BreakGlass(o) => o.operator_id,
        }
    }

    /// The session, when the caller is a person (not a token).
    pub fn session(&self) -> Option<&SessionUser> {
        match &self.principal {
            Principal::Session(s) => Some(s),
            Principal::Token(_) | Principal::BreakGlass(_) => None,
        }
    }

    /// 403 unless the caller's role holds `permission` (what `Can<P>` checks
    /// before a handler runs; for a second permission inside one).
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.role().allows(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}
