//! The shared state every handler sees.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::{SessionSettings, Tokens};
use crate::control::ControlPlane;
use crate::pools::PoolRouter;
use crate::provision::Provisioner;
use crate::routing::{HostName, Resolver};
use crate::secret::MasterSecret;

/// The serving process's shared state (internal: a handler of a product
/// reaches the tenant through the extractors, not through this).
#[doc(hidden)]
pub struct App {
    pub control: ControlPlane,
    /// Sign-up reserves and provisions tenants.
    pub provisioner: Arc<Provisioner>,
    pub secret: MasterSecret,
    pub sessions: SessionSettings,
    pub base_domain: HostName,
    pub outbox: crate::outbox::Outbox,
    pub resolver: Arc<Resolver>,
    pub pools: Arc<PoolRouter>,
    pub tokens: Arc<Tokens>,
    /// Verified sessions (see [`crate::auth::SessionCache`]).
    pub session_cache: Arc<crate::auth::SessionCache>,
    /// Tenant schema versions this binary can serve.
    pub versions: std::ops::RangeInclusive<i32>,
    /// Proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The bound on password hashes at once (log-in, sign-up, invitations).
    pub hashing: crate::auth::Hashing,
    /// Stripe billing (disabled without a key).
    pub billing: Arc<crate::billing::Billing>,
}

/// The state every route is served with: what a product's routes are
/// written against (`Router<AppState>`, the extractors' state).
#[derive(Clone)]
pub struct AppState(#[doc(hidden)] pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    pub fn supports_version(&self, version: i32) -> bool {
        self.versions.contains(&version)
    }

    /// The scheme tenants are reached with in links we hand out: `https`,
    /// except where cookies are not `Secure` (`dev`, plain HTTP).
    pub fn scheme(&self) -> &'static str {
        if self.sessions.secure_cookies {
            "https"
        } else {
            "http"
        }
    }

    /// The URL of a tenant's own host, for links handed out (sign-up's
    /// answer, invitation mail): `<scheme>://<slug>.<base domain>`, on the
    /// port the request came in on, if it named one (dev serves on :8080).
    /// Never the host the request was made on, which may be the API host.
    pub fn tenant_url(&self, slug: &crate::control::Slug, request_host: Option<&str>) -> String {
        let port = request_host
            .and_then(|h| h.rsplit_once(':'))
            .map(|(_, p)| p)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!("{}://{slug}.{}{port}", self.scheme(), self.base_domain)
    }
}
