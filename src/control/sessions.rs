//! Sessions in the control plane: the SHA-256 of each cookie, bound to one
//! user on one tenant, with idle and absolute ends; expired ones and old
//! attempts are pruned.

use std::time::Duration;

use uuid::Uuid;

use super::{ControlError, ControlPlane, TenantId, interval};

/// A live session of a member of the tenant it is bound to.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: super::Role,
    /// How long from now until it ends, unless used again: its idle end
    /// (from its last use as now recorded) or its absolute end, whichever
    /// comes first.
    pub ends_in: Duration,
}

pub struct NewSession<'a> {
    pub id_hash: &'a [u8],
    pub user: Uuid,
    pub tenant: TenantId,
    pub lifetime: Duration,
    pub user_agent: &'a str,
    pub ip: &'a str,
}

/// How long a session's last-seen time may lag its last use: a twentieth of
/// the idle timeout, and never more than a minute.
pub fn touch_interval(idle: Duration) -> Duration {
    (idle / 20).min(Duration::from_secs(60))
}

impl ControlPlane {
    /// Stores a new session (and drops the user's expired ones).
    pub async fn insert_session(&self, s: &NewSession<'_>) -> Result<(), ControlError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM sessions WHERE user_id = $1 AND expires_at < now()",
                &[&s.user],
            )
            .await?;
        client
            .execute(
                "INSERT INTO sessions (id_hash, user_id, tenant_id, expires_at, user_agent, ip)
                 VALUES ($1, $2, $3, now() + $4::text::interval, $5, $6)",
                &[
                    &s.id_hash,
                    &s.user,
                    &s.tenant.0,
                    &interval(s.lifetime),
                    &s.user_agent,
                    &s.ip,
                ],
            )
            .await?;
        Ok(())
    }

    /// The session with this hash if it is bound to `tenant`, neither idle
    /// past `idle` nor past its absolute end, and its user still a member;
    /// marks it seen, though at most once per [`touch_interval`] (a request
    /// is a read, not a write, of the control plane: its row is rewritten
    /// once a minute at most however busy the session, so a session's idle
    /// end comes between `idle` less that interval and `idle` after its last
    /// use).
    pub async fn touch_session(
        &self,
        id_hash: &[u8],
        tenant: TenantId,
        idle: Duration,
    ) -> Result<Option<SessionRow>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "WITH live AS (
                     SELECT s.id_hash, s.last_seen_at, s.expires_at, s.user_id, u.email,
                            u.display_name, m.role
                     FROM sessions s
                     JOIN memberships m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id
                     JOIN users u ON u.id = s.user_id
                     WHERE s.id_hash = $1 AND s.tenant_id = $2
                       AND s.expires_at > now()
                       AND s.last_seen_at > now() - $3::text::interval
                 ), touched AS (
                     UPDATE sessions s SET last_seen_at = now()
                     FROM live
                     WHERE s.id_hash = live.id_hash
                       AND live.last_seen_at <= now() - $4::text::interval
                 )
                 SELECT user_id, email, display_name, role,
                        extract(epoch FROM least(
                            expires_at,
                            CASE WHEN last_seen_at <= now() - $4::text::interval
                                 THEN now() ELSE last_seen_at END + $3::text::interval
                        ) - now())::float8
                 FROM live",
                &[
                    &id_hash,
                    &tenant.0,
                    &interval(idle),
                    &interval(touch_interval(idle)),
                ],
            )
            .await?;
        Ok(row.map(|r| SessionRow {
            user_id: r.get(0),
            email: r.get(1),
            display_name: r.get(2),
            role: r.get(3),
            ends_in: Duration::from_secs_f64(r.get::<_, f64>(4).max(0.0)),
        }))
    }

    pub async fn delete_session(&self, id_hash: &[u8]) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute("DELETE FROM sessions WHERE id_hash = $1", &[&id_hash])
            .await?;
        Ok(())
    }

    /// Ends every session of the user, on every tenant; how many there were.
    pub async fn delete_user_sessions(&self, user: Uuid) -> Result<u64, ControlError> {
        Ok(self
            .client()
            .await?
            .execute("DELETE FROM sessions WHERE user_id = $1", &[&user])
            .await?)
    }

    /// Deletes what can no longer count: sessions past their absolute end or
    /// idle longer than `idle`, and rate-limited attempts older than `attempts_window`.
    /// Returns how many of each went.
    pub async fn prune_expired(
        &self,
        idle: Duration,
        attempts_window: Duration,
    ) -> Result<(u64, u64), ControlError> {
        let client = self.client().await?;
        let sessions = client
            .execute(
                "DELETE FROM sessions
                  WHERE expires_at < now() OR last_seen_at < now() - $1::text::interval",
                &[&interval(idle)],
            )
            .await?;
        drop(client);
        let attempts = self.prune_attempts(attempts_window).await?;
        Ok((sessions, attempts))
    }
}
