//! Invitations in the control plane: a single-use, expiring code (only its
//! hash kept) that makes its holder a member with a role, creating the
//! account if the e-mail has none.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::{ControlError, ControlPlane, TenantId, interval};

/// A live invitation, as its code's holder may learn of it.
#[derive(Debug, Clone, Copy)]
pub struct PendingInvitation {
    /// The invited e-mail has an account: accepting needs no password.
    pub has_account: bool,
}

/// A pending (or past) invitation, without its token.
#[derive(Debug, Clone, Serialize)]
pub struct InvitationRow {
    pub id: Uuid,
    pub email: String,
    pub role: super::Role,
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
        role: super::Role,
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
        role: super::Role,
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

    /// A pending invitation of `tenant` with a new code (`token_hash`) and
    /// a new lifetime: the old code no longer works. `None` when it is not
    /// the tenant's or no longer pending.
    pub async fn reissue_invitation(
        &self,
        tenant: TenantId,
        id: Uuid,
        token_hash: &[u8],
        lifetime: Duration,
    ) -> Result<Option<InvitationRow>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "UPDATE invitations SET token_hash = $3, expires_at = now() + $4::text::interval
                      WHERE id = $1 AND tenant_id = $2 AND accepted_at IS NULL
                        AND revoked_at IS NULL AND expires_at > now()
                      RETURNING {INVITATION_COLUMNS}"
                ),
                &[&id, &tenant.0, &token_hash, &interval(lifetime)],
            )
            .await?;
        Ok(row.as_ref().map(invitation))
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
        let (id, email, role): (Uuid, String, super::Role) = (row.get(0), row.get(1), row.get(2));
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
