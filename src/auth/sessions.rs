//! Server-side sessions for people: a random cookie value, of which the
//! control plane keeps only the SHA-256; each session bound to the one tenant
//! it was opened on, with idle and absolute timeouts; a CSRF token derived
//! from it for cookie-authenticated writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use moka::future::Cache;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::control::{
    ControlError, ControlPlane, SessionRow, Stamped, TenantId, keep_for, touch_interval,
};
use crate::routing::Invalidate;

pub const COOKIE_NAME: &str = "bh_session";
/// Header carrying the CSRF token on cookie-authenticated writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after log-in, used or not.
    pub absolute: Duration,
    /// `Secure` cookies (everything but `dev`, which serves plain HTTP).
    pub secure_cookies: bool,
    /// Failed log-ins are counted over this window...
    pub login_window: Duration,
    /// ...and refused past this many for one e-mail...
    pub max_failures_per_email: i64,
    /// ...or from one client address.
    pub max_failures_per_ip: i64,
    /// Invitation codes tried from one client address within `login_window`
    /// (a code that works does not count).
    pub max_invitation_attempts_per_ip: i64,
    /// Sign-ups from one client address within `signup_window` (each one
    /// creates a database).
    pub max_signups_per_ip: i64,
    pub signup_window: Duration,
}

impl SessionSettings {
    /// The longest any attempt counts: older ones can be dropped.
    pub fn attempts_window(&self) -> Duration {
        self.login_window.max(self.signup_window)
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            secure_cookies: true,
            login_window: Duration::from_secs(15 * 60),
            max_failures_per_email: 5,
            max_failures_per_ip: 20,
            max_invitation_attempts_per_ip: 20,
            max_signups_per_ip: 10,
            signup_window: Duration::from_secs(3600),
        }
    }
}

/// A fresh cookie value: 256 random bits.
pub fn new_session_value() -> String {
    crate::secret::random_hex(32)
}

pub fn hash(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// The session cookie of the request, if it has one of the right shape.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    cookie_value(headers, COOKIE_NAME)
}

/// The value of cookie `name` if it has the shape of a session value (64
/// hex digits).
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Set-Cookie` for a new session: host-only (no `Domain`), so a tenant's
/// cookie is never sent to another tenant's host.
pub fn set_cookie(value: &str, settings: &SessionSettings) -> String {
    format!(
        "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        settings.absolute.as_secs(),
        if settings.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

pub fn clear_cookie(settings: &SessionSettings) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if settings.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// A session as verified by the control plane, and when it ends unless used.
#[derive(Debug)]
pub struct LiveSession {
    pub row: SessionRow,
    ends: Instant,
}

/// Verified sessions, per cookie hash and tenant: a request reads its
/// session from the control plane at most once per [`touch_interval`] (when
/// its last use is also recorded), and while the control plane is away the
/// sessions known before keep working for its stale window. Log-out, the
/// end of a membership, a role change or a user's deletion drop cached
/// entries at once, on every instance, by NOTIFY (`session:<hash>:<tenant>`,
/// `member:<tenant>:<user>`, `user:<id>`).
pub struct SessionCache {
    control: ControlPlane,
    idle: Duration,
    cache: Cache<SessionKey, Stamped<Option<Arc<LiveSession>>>>,
}

/// A session's cookie hash and the tenant it is presented on.
type SessionKey = ([u8; 32], TenantId);

impl SessionCache {
    pub fn new(control: ControlPlane, idle: Duration) -> Self {
        let keep = keep_for(touch_interval(idle), control.health());
        Self {
            control,
            idle,
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(keep)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// The live session with this cookie hash on `tenant`, if any.
    pub async fn verify(
        &self,
        hash: [u8; 32],
        tenant: TenantId,
    ) -> Result<Option<Arc<LiveSession>>, ControlError> {
        let key = (hash, tenant);
        let held = self.cache.get(&key).await.map(|s| {
            let (live, fresh) = s.held(touch_interval(self.idle));
            match live {
                // Past its end: no session, whatever the control plane says.
                Some(l) if l.ends <= Instant::now() => (None, true),
                live => (live, fresh),
            }
        });
        self.control
            .health()
            .answer("sessions", held, || self.fetch(key))
            .await
    }

    async fn fetch(&self, key: SessionKey) -> Result<Option<Arc<LiveSession>>, ControlError> {
        let live = self
            .control
            .touch_session(&key.0, key.1, self.idle)
            .await?
            .map(|row| {
                Arc::new(LiveSession {
                    ends: Instant::now() + row.ends_in,
                    row,
                })
            });
        // Sessions not found are not remembered: a cookie value is never
        // guessed twice, and one made a moment later must not wait.
        match &live {
            Some(_) => self.cache.insert(key, Stamped::new(live.clone())).await,
            None => self.cache.invalidate(&key).await,
        }
        Ok(live)
    }

    /// Drops every cached session of `user` (on `tenant`, or everywhere):
    /// what this instance does at once after ending or changing them, as the
    /// NOTIFY will make every instance do.
    pub fn forget_user(&self, user: Uuid, tenant: Option<TenantId>) {
        let _ = self.cache.invalidate_entries_if(move |(_, t), v| {
            tenant.is_none_or(|only| only == *t)
                && v.value.as_ref().is_some_and(|l| l.row.user_id == user)
        });
    }

    /// Drops every cached session on `tenant` (an operator ended them all),
    /// as the delete trigger's NOTIFY makes every instance do.
    pub fn forget_tenant(&self, tenant: TenantId) {
        let _ = self
            .cache
            .invalidate_entries_if(move |(_, t), _| *t == tenant);
    }

    /// Drops one cached session (log-out): its key, not a scan.
    pub async fn forget(&self, hash: [u8; 32], tenant: TenantId) {
        self.cache.invalidate(&(hash, tenant)).await;
    }
}

impl Invalidate for SessionCache {
    async fn invalidate(&self, payload: Option<&str>) {
        let Some(payload) = payload else {
            self.cache.invalidate_all();
            return;
        };
        let mut parts = payload.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("session"), Some(hex), Some(tenant)) => {
                let mut hash = [0u8; 32];
                if let (Ok(()), Ok(t)) = (hex::decode_to_slice(hex, &mut hash), tenant.parse()) {
                    self.forget(hash, TenantId(t)).await;
                }
            }
            (Some("member"), Some(tenant), Some(user)) => {
                if let (Ok(t), Ok(u)) = (tenant.parse(), user.parse()) {
                    self.forget_user(u, Some(TenantId(t)));
                }
            }
            (Some("user"), Some(user), None) => {
                if let Ok(u) = user.parse() {
                    self.forget_user(u, None);
                }
            }
            _ => {}
        }
    }
}

/// Constant-time comparison of two tokens.
pub fn same_token(a: &str, b: &str) -> bool {
    same_token_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_token`] on bytes: the time taken does not depend on where they
/// differ (`subtle`, whose comparison the optimiser cannot turn into an early
/// exit). Only the lengths, which are not secret, are compared as usual.
pub fn same_token_bytes(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_host_only_http_only_lax_and_secure_unless_dev() {
        let mut s = SessionSettings::default();
        let c = set_cookie(&"a".repeat(64), &s);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        assert!(!c.to_lowercase().contains("domain"), "{c}");
        s.secure_cookies = false;
        assert!(!set_cookie(&"a".repeat(64), &s).contains("Secure"));
        assert!(clear_cookie(&s).contains("Max-Age=0"));
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_must_look_right() {
        let value = "0123456789abcdef".repeat(4);
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {COOKIE_NAME}={value}; x=1")).unwrap(),
        );
        assert_eq!(presented(&h), Some(value.as_str()));
        let mut bad = HeaderMap::new();
        bad.append(
            COOKIE,
            HeaderValue::from_static("bh_session=../../etc; other=1"),
        );
        assert_eq!(presented(&bad), None);
        assert_eq!(presented(&HeaderMap::new()), None);
    }

    #[test]
    fn token_comparison() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
        assert!(!same_token("", "a") && same_token("", ""));
        assert!(!same_token_bytes(&[0; 32], &[0; 31]));
        let mut b = [7u8; 32];
        assert!(same_token_bytes(&[7; 32], &b));
        b[31] ^= 1;
        assert!(!same_token_bytes(&[7; 32], &b));
    }
}
