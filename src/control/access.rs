//! Break-glass grants and each tenant's rule for them (see
//! `control-plane-migrations/V12__support_access.sql`): an operator asks
//! for access to one tenant with a reason and a duration; the tenant's rule
//! (`allowed`, `ask_first`, `never`) refuses it, lets it begin, or makes it
//! wait for an owner; read-write access also waits for a second operator.
//! Every state change is one conditional statement, so two approvals or an
//! approval and a revocation at once cannot both take effect.
//!
//! Nothing here is cached: a request under a grant reads it here, against
//! this database's clock, so an expired or revoked grant refuses the next
//! request at once, on every instance.

use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{ControlError, ControlPlane, TenantId};

/// What the vendor's staff may do with a tenant's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SupportPolicy {
    /// A grant begins when asked for (read-write still needs a second
    /// operator). The default.
    Allowed,
    /// A grant begins only once an owner approves it.
    AskFirst,
    /// Every request for a grant is refused.
    Never,
}

impl SupportPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SupportPolicy::Allowed => "allowed",
            SupportPolicy::AskFirst => "ask_first",
            SupportPolicy::Never => "never",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allowed" => Some(SupportPolicy::Allowed),
            "ask_first" => Some(SupportPolicy::AskFirst),
            "never" => Some(SupportPolicy::Never),
            _ => None,
        }
    }
}

/// Read-only (a `support` or `admin` operator) or read-write (`admin`,
/// with a second operator's approval).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    ReadOnly,
    ReadWrite,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadOnly => "read_only",
            AccessMode::ReadWrite => "read_write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read_only" => Some(AccessMode::ReadOnly),
            "read_write" => Some(AccessMode::ReadWrite),
            _ => None,
        }
    }
}

/// One grant, with where it stands now (by the control plane's clock).
#[derive(Clone, Debug, Serialize)]
pub struct AccessGrant {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub tenant: String,
    pub operator_id: Uuid,
    /// The operator's e-mail address.
    pub operator: String,
    pub mode: AccessMode,
    pub reason: String,
    pub minutes: i32,
    /// `awaiting_owner`, `awaiting_operator`, `live`, `expired`, `lapsed`
    /// (never approved within a day), `revoked` or `denied`.
    pub state: String,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    pub owner_approved_by: Option<String>,
    /// The e-mail address of the operator who approved read-write access.
    pub operator_approved_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub starts_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    pub ended_by: Option<String>,
}

impl AccessGrant {
    pub fn is_live(&self) -> bool {
        self.state == "live"
    }
}

/// How long a grant may wait for its approvals.
const PENDING: &str = "interval '1 day'";

/// The columns [`grant`] reads, from `access_grants g` joined to its
/// operator `o`, its tenant `t` and its approving operator `a`.
fn select(filter: &str) -> String {
    format!(
        "SELECT g.id, g.tenant_id, t.slug, g.operator_id, o.email, g.mode, g.reason, g.minutes,
                CASE WHEN g.ended_at IS NOT NULL THEN g.ended_how
                     WHEN g.starts_at IS NOT NULL AND now() < g.ends_at THEN 'live'
                     WHEN g.starts_at IS NOT NULL THEN 'expired'
                     WHEN g.requested_at <= now() - {PENDING} THEN 'lapsed'
                     WHEN g.needs_owner AND g.owner_approved_at IS NULL THEN 'awaiting_owner'
                     ELSE 'awaiting_operator' END,
                g.requested_at, g.owner_approved_by, a.email, g.starts_at, g.ends_at,
                g.ended_at, g.ended_by
           FROM access_grants g
           JOIN operators o ON o.id = g.operator_id
           JOIN tenants t ON t.id = g.tenant_id
           LEFT JOIN operators a ON a.id = g.operator_approved_by
          WHERE {filter}"
    )
}

fn grant(row: &Row) -> AccessGrant {
    let mode: &str = row.get(5);
    AccessGrant {
        id: row.get(0),
        tenant_id: row.get(1),
        tenant: row.get(2),
        operator_id: row.get(3),
        operator: row.get(4),
        mode: AccessMode::parse(mode).unwrap_or(AccessMode::ReadOnly),
        reason: row.get(6),
        minutes: row.get(7),
        state: row.get(8),
        requested_at: row.get(9),
        owner_approved_by: row.get(10),
        operator_approved_by: row.get(11),
        starts_at: row.get(12),
        ends_at: row.get(13),
        ended_at: row.get(14),
        ended_by: row.get(15),
    }
}

/// What an operator asks for.
pub struct GrantRequest<'a> {
    pub tenant: TenantId,
    pub operator: Uuid,
    pub mode: AccessMode,
    pub reason: &'a str,
    pub minutes: i32,
}

impl ControlPlane {
    /// A tenant's rule for break-glass access.
    pub async fn support_policy(&self, tenant: TenantId) -> Result<SupportPolicy, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT policy FROM support_access_policies WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await?;
        Ok(row
            .and_then(|r| SupportPolicy::parse(r.get(0)))
            .unwrap_or(SupportPolicy::Allowed))
    }

    /// Sets a tenant's rule; the rule it had.
    pub async fn set_support_policy(
        &self,
        tenant: TenantId,
        policy: SupportPolicy,
        by: &str,
    ) -> Result<SupportPolicy, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let before = tx
            .query_opt(
                "SELECT policy FROM support_access_policies WHERE tenant_id = $1 FOR UPDATE",
                &[&tenant.0],
            )
            .await?
            .and_then(|r| SupportPolicy::parse(r.get(0)))
            .unwrap_or(SupportPolicy::Allowed);
        tx.execute(
            "INSERT INTO support_access_policies (tenant_id, policy, changed_by) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE
                SET policy = EXCLUDED.policy, changed_by = EXCLUDED.changed_by, changed_at = now()",
            &[&tenant.0, &policy.as_str(), &by],
        )
        .await?;
        tx.commit().await?;
        Ok(before)
    }

    /// Opens a grant as the tenant's rule says: `None` when the rule is
    /// `never` (nothing is written). It begins at once unless an owner
    /// (`ask_first`) or a second operator (read-write) must approve it.
    pub async fn request_grant(
        &self,
        req: &GrantRequest<'_>,
    ) -> Result<Option<AccessGrant>, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The rule as it is now, held until the grant is in: a change of
        // rule waits for it (and applies to the next one).
        let policy = tx
            .query_opt(
                "SELECT policy FROM support_access_policies WHERE tenant_id = $1 FOR SHARE",
                &[&req.tenant.0],
            )
            .await?
            .and_then(|r| SupportPolicy::parse(r.get(0)))
            .unwrap_or(SupportPolicy::Allowed);
        if policy == SupportPolicy::Never {
            return Ok(None);
        }
        let id = Uuid::new_v4();
        let needs_owner = policy == SupportPolicy::AskFirst;
        let needs_operator = req.mode == AccessMode::ReadWrite;
        let begins = !needs_owner && !needs_operator;
        tx.execute(
            "INSERT INTO access_grants (id, tenant_id, operator_id, mode, reason, minutes,
                                        needs_owner, needs_operator, starts_at, ends_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
                     CASE WHEN $9 THEN now() END,
                     CASE WHEN $9 THEN now() + make_interval(mins => $6) END)",
            &[
                &id,
                &req.tenant.0,
                &req.operator,
                &req.mode.as_str(),
                &req.reason,
                &req.minutes,
                &needs_owner,
                &needs_operator,
                &begins,
            ],
        )
        .await?;
        let row = tx.query_one(&select("g.id = $1"), &[&id]).await?;
        tx.commit().await?;
        Ok(Some(grant(&row)))
    }

    /// One grant, by id.
    pub async fn access_grant(&self, id: Uuid) -> Result<Option<AccessGrant>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(&select("g.id = $1"), &[&id])
            .await?;
        Ok(row.as_ref().map(grant))
    }

    /// The operator's live grant on the tenant that serves the request: a
    /// read-write one first when it writes, else the one ending last.
    pub async fn live_grant(
        &self,
        tenant: TenantId,
        operator: Uuid,
        writes: bool,
    ) -> Result<Option<AccessGrant>, ControlError> {
        let sql = format!(
            "{} ORDER BY (g.mode = 'read_write') = $3 DESC, g.ends_at DESC LIMIT 1",
            select(
                "g.tenant_id = $1 AND g.operator_id = $2 AND g.ended_at IS NULL
                 AND g.starts_at <= now() AND now() < g.ends_at"
            )
        );
        let row = self
            .client()
            .await?
            .query_opt(&sql, &[&tenant.0, &operator, &writes])
            .await?;
        Ok(row.as_ref().map(grant))
    }

    /// An owner's approval of a grant waiting for one: the grant as it is
    /// now, or `None` when it was not waiting for an owner.
    pub async fn approve_grant_as_owner(
        &self,
        tenant: TenantId,
        id: Uuid,
        by: &str,
    ) -> Result<Option<AccessGrant>, ControlError> {
        self.approve(id, Some(tenant), Some(by), None).await
    }

    /// A second operator's approval of read-write access: `None` when it
    /// was not waiting for one, or `approver` is the one who asked.
    pub async fn approve_grant_as_operator(
        &self,
        id: Uuid,
        approver: Uuid,
    ) -> Result<Option<AccessGrant>, ControlError> {
        self.approve(id, None, None, Some(approver)).await
    }

    /// One approval (an owner's, `owner` with `tenant`, or an operator's),
    /// in one statement; the grant begins when it was the last it needed.
    async fn approve(
        &self,
        id: Uuid,
        tenant: Option<TenantId>,
        owner: Option<&str>,
        operator: Option<Uuid>,
    ) -> Result<Option<AccessGrant>, ControlError> {
        // Its own SET is not visible to its CASE: "or this very statement
        // brings it".
        let sql = format!(
            "UPDATE access_grants g
                SET owner_approved_by = coalesce($3::text, owner_approved_by),
                    owner_approved_at = CASE WHEN $3::text IS NOT NULL THEN now() ELSE owner_approved_at END,
                    operator_approved_by = coalesce($4::uuid, operator_approved_by),
                    operator_approved_at = CASE WHEN $4::uuid IS NOT NULL THEN now() ELSE operator_approved_at END,
                    starts_at = CASE WHEN (NOT needs_owner OR owner_approved_at IS NOT NULL OR $3::text IS NOT NULL)
                                      AND (NOT needs_operator OR operator_approved_at IS NOT NULL OR $4::uuid IS NOT NULL)
                                     THEN now() END,
                    ends_at = CASE WHEN (NOT needs_owner OR owner_approved_at IS NOT NULL OR $3::text IS NOT NULL)
                                    AND (NOT needs_operator OR operator_approved_at IS NOT NULL OR $4::uuid IS NOT NULL)
                                   THEN now() + make_interval(mins => minutes) END
              WHERE g.id = $1 AND g.ended_at IS NULL AND g.starts_at IS NULL
                AND g.requested_at > now() - {PENDING}
                AND (($3::text IS NOT NULL AND g.tenant_id = $2::uuid
                      AND g.needs_owner AND g.owner_approved_at IS NULL)
                  OR ($4::uuid IS NOT NULL AND g.operator_id <> $4::uuid
                      AND g.needs_operator AND g.operator_approved_at IS NULL))
              RETURNING g.id"
        );
        self.changed(&sql, &[&id, &tenant.map(|t| t.0), &owner, &operator], id)
            .await
    }

    /// Ends a grant early: `denied` (only one that has not begun) or
    /// `revoked` (one live or waiting). `None` when it could not be, or is
    /// not the tenant's (`tenant`, when given).
    pub async fn end_grant(
        &self,
        id: Uuid,
        tenant: Option<TenantId>,
        by: &str,
        how: GrantEnd,
    ) -> Result<Option<AccessGrant>, ControlError> {
        let (how, when) = match how {
            GrantEnd::Denied => ("denied", "g.starts_at IS NULL"),
            GrantEnd::Revoked => ("revoked", "(g.starts_at IS NULL OR now() < g.ends_at)"),
        };
        let sql = format!(
            "UPDATE access_grants g SET ended_at = now(), ended_by = $3, ended_how = $4
              WHERE g.id = $1 AND ($2::uuid IS NULL OR g.tenant_id = $2)
                AND g.ended_at IS NULL AND {when}
              RETURNING g.id"
        );
        self.changed(&sql, &[&id, &tenant.map(|t| t.0), &by, &how], id)
            .await
    }

    /// Runs `update` (`… RETURNING g.id`) on grant `id`: the grant as it
    /// is after it, or `None` when it changed nothing.
    async fn changed(
        &self,
        update: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        id: Uuid,
    ) -> Result<Option<AccessGrant>, ControlError> {
        let client = self.client().await?;
        if client.query_opt(update, params).await?.is_none() {
            return Ok(None);
        }
        let row = client.query_opt(&select("g.id = $1"), &[&id]).await?;
        Ok(row.as_ref().map(grant))
    }

    /// Grants, newest first: a tenant's (`tenant`), or every tenant's;
    /// requested before `before` (a cursor: the previous page's last).
    pub async fn access_grants(
        &self,
        tenant: Option<TenantId>,
        before: Option<OffsetDateTime>,
        limit: i64,
    ) -> Result<Vec<AccessGrant>, ControlError> {
        let sql = format!(
            "{} ORDER BY g.requested_at DESC, g.id DESC LIMIT $3",
            select(
                "($1::uuid IS NULL OR g.tenant_id = $1)
                 AND ($2::timestamptz IS NULL OR g.requested_at < $2)"
            )
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&tenant.map(|t| t.0), &before, &limit])
            .await?;
        Ok(rows.iter().map(grant).collect())
    }
}

/// How a grant ends early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantEnd {
    /// Refused before it began (an owner of an `ask_first` tenant).
    Denied,
    /// Ended by its operator, an admin operator or an owner.
    Revoked,
}
