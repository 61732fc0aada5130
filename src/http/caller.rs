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

pub struct CallerData {
    pub tenant: Arc<TenantEntry>,
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
