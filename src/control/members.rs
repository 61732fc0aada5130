//! Memberships in the control plane: who belongs to which tenant with which
//! role, and changes that never leave a tenant without an owner.

use serde::Serialize;
use uuid::Uuid;

use super::{ControlError, ControlPlane, TenantId};

/// A member of a tenant, as its admins see it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: super::Role,
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
    pub async fn add_membership(
        &self,
        user: Uuid,
        tenant: TenantId,
        role: super::Role,
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
    ) -> Result<Option<super::Role>, ControlError> {
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
        role: Option<super::Role>,
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
        let current: Option<super::Role> = tx
            .query_opt(
                "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
                &[&tenant.0, &user],
            )
            .await?
            .map(|r| r.get(0));
        let Some(current) = current else {
            return Ok(MemberChange::NoSuchMember);
        };
        let owner = super::Role::Owner;
        if current == owner && role != Some(owner) && owners.len() <= 1 {
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
