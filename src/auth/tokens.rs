//! API tokens: `bh_<64 hex>`, shown once; the control plane keeps only their
//! SHA-256. Verified tokens are cached briefly and dropped on revocation
//! (NOTIFY `token:<id>`).

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::control::{ControlError, ControlPlane, Stamped, TenantId, TokenRow, keep_for};
use crate::routing::Invalidate;
use crate::secret::{Secret, random_hex};

const PREFIX: &str = "bh_";

pub use crate::control::Role;

/// A verified token: which tenant it belongs to, with which role.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    /// The token's id (its secret is never kept).
    pub id: Uuid,
    /// The one tenant it is valid for.
    pub tenant: TenantId,
    /// The role it acts with.
    pub role: Role,
    /// The name it was given.
    pub name: String,
}

#[doc(hidden)]
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("unknown role `{0}` (expected admin, member or viewer)")]
    BadRole(String),
    #[error("invalid token name: use 1-100 characters")]
    BadName,
    #[error(transparent)]
    Control(#[from] ControlError),
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// How long a verified token (or a value that is none) is trusted without
/// asking the control plane again; revocation reaches the cache at once by
/// NOTIFY.
const TOKEN_TTL: Duration = Duration::from_secs(60);

#[doc(hidden)]
pub struct Tokens {
    control: ControlPlane,
    /// hash -> token (None: not a live token), briefly; kept for the control
    /// plane's stale window after that.
    cache: Cache<Vec<u8>, Stamped<Option<Arc<TokenInfo>>>>,
}

impl Tokens {
    pub fn new(control: ControlPlane) -> Self {
        let keep = keep_for(TOKEN_TTL, control.health());
        Self {
            control,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(keep)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// Mints an operator's token for a tenant; the returned secret is never stored.
    pub async fn create(
        control: &ControlPlane,
        tenant: TenantId,
        role: &str,
        name: &str,
    ) -> Result<(TokenRow, Secret<String>), TokenError> {
        Self::create_owned(control, tenant, role, name, None).await
    }

    /// Mints a token owned by `owner` (a member minting it over HTTP): it is
    /// revoked when they leave the tenant and deleted with their account.
    pub async fn create_owned(
        control: &ControlPlane,
        tenant: TenantId,
        role: &str,
        name: &str,
        owner: Option<Uuid>,
    ) -> Result<(TokenRow, Secret<String>), TokenError> {
        if Role::parse(role).is_none() || role == "owner" {
            return Err(TokenError::BadRole(role.to_string()));
        }
        if name.trim().is_empty() || name.len() > 100 {
            return Err(TokenError::BadName);
        }
        let token = format!("{PREFIX}{}", random_hex(32));
        let row = control
            .insert_token(tenant, role, name, &hash(&token), owner)
            .await?;
        Ok((row, Secret::new(token)))
    }

    /// The live token behind a bearer value, if any.
    pub async fn verify(&self, presented: &str) -> Result<Option<Arc<TokenInfo>>, ControlError> {
        if !presented.starts_with(PREFIX) || presented.len() != PREFIX.len() + 64 {
            return Ok(None);
        }
        let key = hash(presented);
        let held = self.cache.get(&key).await.map(|t| t.held(TOKEN_TTL));
        self.control
            .health()
            .answer("tokens", held, || self.fetch(key))
            .await
    }

    async fn fetch(&self, key: Vec<u8>) -> Result<Option<Arc<TokenInfo>>, ControlError> {
        let info = self.control.token_by_hash(&key).await?.and_then(|row| {
            Some(Arc::new(TokenInfo {
                id: row.id,
                tenant: TenantId(row.tenant_id),
                role: Role::parse(&row.role)?,
                name: row.name,
            }))
        });
        self.cache.insert(key, Stamped::new(info.clone())).await;
        Ok(info)
    }
}

impl Invalidate for Tokens {
    async fn invalidate(&self, payload: Option<&str>) {
        match payload.and_then(|p| p.strip_prefix("token:")) {
            Some(id) => {
                if let Ok(id) = id.parse::<Uuid>() {
                    let _ = self.cache.invalidate_entries_if(move |_, v| {
                        v.value.as_ref().is_some_and(|t| t.id == id)
                    });
                }
            }
            None if payload.is_none() => self.cache.invalidate_all(),
            None => {}
        }
    }
}
