//! Users, memberships, sessions and failed log-ins in the control plane.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::{ControlError, ControlPlane, TenantId};

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    #[serde(skip)]
    pub password_hash: String,
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash";

fn user(row: &tokio_postgres::Row) -> User {
    User {
        id: row.get(0),
        email: row.get(1),
        display_name: row.get(2),
        password_hash: row.get(3),
    }
}

/// A live session of a member of the tenant it is bound to.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
}

pub struct NewSession<'a> {
    pub id_hash: &'a [u8],
    pub user: Uuid,
    pub tenant: TenantId,
    pub lifetime: Duration,
    pub user_agent: &'a str,
    pub ip: &'a str,
}

/// PostgreSQL `interval` input for a duration, to the millisecond.
fn interval(d: Duration) -> String {
    format!("{} milliseconds", d.as_millis())
}

/// How long a session's last-seen time may lag its last use: a twentieth of
/// the idle timeout, and never more than a minute.
pub fn touch_interval(idle: Duration) -> Duration {
    (idle / 20).min(Duration::from_secs(60))
}

impl ControlPlane {
    /// `None` if the e-mail is taken.
    pub async fn insert_user(
        &self,
        email: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<Option<User>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "INSERT INTO users (id, email, display_name, password_hash)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING
                     RETURNING {USER_COLUMNS}"
                ),
                &[&Uuid::new_v4(), &email, &display_name, &password_hash],
            )
            .await?;
        Ok(row.as_ref().map(user))
    }

    /// Removes a user nothing refers to yet (a sign-up that could not finish).
    pub async fn discard_user(&self, id: Uuid) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute("DELETE FROM users WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"),
                &[&email],
            )
            .await?;
        Ok(row.as_ref().map(user))
    }

    pub async fn set_password_hash(&self, user: Uuid, hash: &str) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
                &[&user, &hash],
            )
            .await?;
        Ok(())
    }

    pub async fn add_membership(
        &self,
        user: Uuid,
        tenant: TenantId,
        role: &str,
    ) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO memberships (user_id, tenant_id, role) VALUES ($1, $2, $3)",
                &[&user, &tenant.0, &role],
            )
            .await?;
        Ok(())
    }

    pub async fn membership_role(
        &self,
        user: Uuid,
        tenant: TenantId,
    ) -> Result<Option<String>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT role FROM memberships WHERE user_id = $1 AND tenant_id = $2",
                &[&user, &tenant.0],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

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
                     SELECT s.id_hash, s.last_seen_at, s.user_id, u.email, u.display_name, m.role
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
                 SELECT user_id, email, display_name, role FROM live",
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

/// A live invitation, as its code's holder may learn of it.
#[derive(Debug, Clone, Copy)]
pub struct PendingInvitation {
    /// The invited e-mail has an account: accepting needs no password.
    pub has_account: bool,
}

/// A member of a tenant, as its admins see it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: time::OffsetDateTime,
}

/// Why a membership change was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    NoSuchMember,
    /// It would leave the tenant without an owner.
    LastOwner,
}

impl ControlPlane {
    pub async fn members(&self, tenant: TenantId) -> Result<Vec<MemberRow>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT u.id, u.email, u.display_name, m.role, m.created_at
                   FROM memberships m JOIN users u ON u.id = m.user_id
                  WHERE m.tenant_id = $1
                  ORDER BY m.created_at, u.email",
                &[&tenant.0],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| MemberRow {
                user_id: r.get(0),
                email: r.get(1),
                display_name: r.get(2),
                role: r.get(3),
                joined_at: r.get(4),
            })
            .collect())
    }

    /// Sets a member's role (`None`: removes the membership, ends the user's
    /// sessions on this tenant and revokes the tokens they minted), never leaving the tenant without an
    /// owner: the tenant's owner rows are locked first, so two owners
    /// demoting each other at once cannot both succeed.
    pub async fn change_member(
        &self,
        tenant: TenantId,
        user: Uuid,
        role: Option<&str>,
    ) -> Result<MemberChange, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let owners: Vec<Uuid> = tx
            .query(
                "SELECT user_id FROM memberships WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE",
                &[&tenant.0],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let current: Option<String> = tx
            .query_opt(
                "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
                &[&tenant.0, &user],
            )
            .await?
            .map(|r| r.get(0));
        let Some(current) = current else {
            return Ok(MemberChange::NoSuchMember);
        };
        if current == "owner" && role != Some("owner") && owners.len() <= 1 {
            return Ok(MemberChange::LastOwner);
        }
        match role {
            Some(role) => {
                tx.execute(
                    "UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2",
                    &[&tenant.0, &user, &role],
                )
                .await?;
            }
            None => {
                tx.execute(
                    "DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2",
                    &[&tenant.0, &user],
                )
                .await?;
                tx.execute(
                    "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
                    &[&tenant.0, &user],
                )
                .await?;
                // Their tokens leave with them (NOTIFY drops cached ones).
                tx.execute(
                    "UPDATE api_tokens SET revoked_at = now()
                      WHERE tenant_id = $1 AND created_by = $2 AND revoked_at IS NULL",
                    &[&tenant.0, &user],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(MemberChange::Done)
    }
}

/// A pending (or past) invitation, without its token.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationRow {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

const INVITATION_COLUMNS: &str = "id, email, role, created_at, expires_at";

fn invitation(row: &tokio_postgres::Row) -> InvitationRow {
    InvitationRow {
        id: row.get(0),
        email: row.get(1),
        role: row.get(2),
        created_at: row.get(3),
        expires_at: row.get(4),
    }
}

/// What accepting an invitation did.
#[derive(Debug)]
pub enum Accepted {
    /// The user (created now, or found by e-mail) is a member with `role`.
    Joined {
        user: Uuid,
        email: String,
        role: String,
    },
    /// No such invitation here, or used, revoked or expired.
    Invalid,
    /// The invited e-mail has no account yet: a password is needed.
    NeedsPassword,
    /// Already a member of this tenant.
    AlreadyMember,
}

impl ControlPlane {
    pub async fn insert_invitation(
        &self,
        tenant: TenantId,
        email: &str,
        role: &str,
        token_hash: &[u8],
        invited_by: Option<Uuid>,
        lifetime: Duration,
    ) -> Result<InvitationRow, ControlError> {
        let row = self
            .client()
            .await?
            .query_one(
                &format!(
                    "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, now() + $7::text::interval)
                     RETURNING {INVITATION_COLUMNS}"
                ),
                &[
                    &Uuid::new_v4(),
                    &tenant.0,
                    &email,
                    &role,
                    &token_hash,
                    &invited_by,
                    &interval(lifetime),
                ],
            )
            .await?;
        Ok(invitation(&row))
    }

    /// Invitations that can still be accepted.
    pub async fn pending_invitations(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<InvitationRow>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {INVITATION_COLUMNS} FROM invitations
                      WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
                        AND expires_at > now()
                      ORDER BY created_at"
                ),
                &[&tenant.0],
            )
            .await?;
        Ok(rows.iter().map(invitation).collect())
    }

    /// Members plus pending invitations: what a plan's member limit counts.
    pub async fn seats_taken(&self, tenant: TenantId) -> Result<i64, ControlError> {
        Ok(self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT count(*) FROM memberships WHERE tenant_id = $1)
                      + (SELECT count(*) FROM invitations WHERE tenant_id = $1
                           AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now())",
                &[&tenant.0],
            )
            .await?
            .get(0))
    }

    /// `true` if a pending invitation of this tenant was revoked.
    pub async fn revoke_invitation(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<bool, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE invitations SET revoked_at = now()
                  WHERE id = $1 AND tenant_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
                &[&id, &tenant.0],
            )
            .await?
            == 1)
    }

    /// Uses an invitation of `tenant` once: in one transaction it is marked
    /// accepted, the user created if new (`new_user`: display name and
    /// password hash) and made a member. Nothing changes unless all of it does.
    /// Whether `token_hash` is a live invitation of `tenant` and, if it is,
    /// whether its e-mail has an account already (so no password is needed):
    /// checked before any password is hashed.
    pub async fn pending_invitation(
        &self,
        tenant: TenantId,
        token_hash: &[u8],
    ) -> Result<Option<PendingInvitation>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT EXISTS (SELECT 1 FROM users u WHERE u.email = i.email)
                   FROM invitations i
                  WHERE token_hash = $1 AND tenant_id = $2 AND accepted_at IS NULL
                    AND revoked_at IS NULL AND expires_at > now()",
                &[&token_hash, &tenant.0],
            )
            .await?;
        Ok(row.map(|r| PendingInvitation {
            has_account: r.get(0),
        }))
    }

    pub async fn accept_invitation(
        &self,
        tenant: TenantId,
        token_hash: &[u8],
        new_user: Option<(&str, &str)>,
    ) -> Result<Accepted, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "SELECT id, email, role FROM invitations
                  WHERE token_hash = $1 AND tenant_id = $2 AND accepted_at IS NULL
                    AND revoked_at IS NULL AND expires_at > now()
                  FOR UPDATE",
                &[&token_hash, &tenant.0],
            )
            .await?
        else {
            return Ok(Accepted::Invalid);
        };
        let (id, email, role): (Uuid, String, String) = (row.get(0), row.get(1), row.get(2));
        let existing: Option<Uuid> = tx
            .query_opt("SELECT id FROM users WHERE email = $1", &[&email])
            .await?
            .map(|r| r.get(0));
        let user = match (existing, new_user) {
            (Some(user), _) => user,
            (None, None) => return Ok(Accepted::NeedsPassword),
            (None, Some((display_name, hash))) => {
                let user = Uuid::new_v4();
                tx.execute(
                    "INSERT INTO users (id, email, display_name, password_hash) VALUES ($1, $2, $3, $4)",
                    &[&user, &email, &display_name, &hash],
                )
                .await?;
                user
            }
        };
        let joined = tx
            .execute(
                "INSERT INTO memberships (user_id, tenant_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&user, &tenant.0, &role],
            )
            .await?;
        if joined == 0 {
            return Ok(Accepted::AlreadyMember);
        }
        tx.execute(
            "UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1",
            &[&id, &user],
        )
        .await?;
        tx.commit().await?;
        Ok(Accepted::Joined { user, email, role })
    }
}

impl ControlPlane {
    /// The tenant's stored settings (only keys set explicitly).
    pub async fn tenant_settings(
        &self,
        tenant: TenantId,
    ) -> Result<serde_json::Value, ControlError> {
        Ok(self
            .client()
            .await?
            .query_opt(
                "SELECT settings FROM tenant_settings WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await?
            .map_or_else(|| serde_json::json!({}), |r| r.get(0)))
    }

    /// Replaces the tenant's stored settings.
    pub async fn set_tenant_settings(
        &self,
        tenant: TenantId,
        settings: &serde_json::Value,
    ) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO tenant_settings (tenant_id, settings) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE SET settings = $2, updated_at = now()",
                &[&tenant.0, settings],
            )
            .await?;
        Ok(())
    }
}
