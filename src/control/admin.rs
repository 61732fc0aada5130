//! What the admin API reads of the control plane: tenants found by what a
//! customer tells support (slug, name, custom domain, a member's e-mail),
//! counts for a tenant's detail page, the platform audit log in filtered
//! pages, and ending every session of a tenant.

use serde_json::Value;

use super::tenants::{columns_of, tenant};
use super::{ControlError, ControlPlane, Tenant, TenantId};

/// A platform audit row, with its id (the cursor of the next page).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub tenant_id: Option<uuid::Uuid>,
    pub detail: Value,
}

/// Which platform audit rows to list.
#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    pub tenant: Option<TenantId>,
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
}

/// `text` as a LIKE pattern matching it anywhere, its `%`, `_` and `\`
/// taken literally.
pub fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

impl ControlPlane {
    /// Tenants (not deleted) whose slug, display name, verified custom
    /// domain or a member's e-mail contains `q` (any case), by slug, after
    /// the slug `after`.
    pub async fn search_tenants(
        &self,
        q: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<Tenant>, ControlError> {
        let sql = format!(
            "SELECT {} FROM tenants t
              WHERE t.status <> 'deleted' AND t.slug > $2
                AND ($1 = '%%'
                     OR t.slug ILIKE $1 OR t.display_name ILIKE $1
                     OR EXISTS (SELECT 1 FROM domains d WHERE d.tenant_id = t.id
                                   AND d.verified_at IS NOT NULL AND d.host ILIKE $1)
                     OR EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
                                 WHERE m.tenant_id = t.id AND u.email ILIKE $1))
              ORDER BY t.slug LIMIT $3",
            columns_of("t")
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&contains_pattern(q.trim()), &after, &limit])
            .await?;
        rows.iter().map(tenant).collect()
    }

    /// (members, open invitations) of a tenant.
    pub async fn tenant_counts(&self, t: TenantId) -> Result<(i64, i64), ControlError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT (SELECT count(*) FROM memberships WHERE tenant_id = $1),
                        (SELECT count(*) FROM invitations WHERE tenant_id = $1
                            AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now())",
                &[&t.0],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }

    /// The platform audit log, newest first, below the id `before`.
    pub async fn audit_page(
        &self,
        filter: &AuditFilter<'_>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                        actor, action, tenant_id, detail
                   FROM audit_log
                  WHERE id < $1 AND ($2::uuid IS NULL OR tenant_id = $2)
                    AND ($3::text IS NULL OR actor = $3)
                    AND ($4::text IS NULL OR action = $4)
                  ORDER BY id DESC LIMIT $5",
                &[
                    &before,
                    &filter.tenant.map(|t| t.0),
                    &filter.actor,
                    &filter.action,
                    &limit,
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditRow {
                id: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                action: r.get(3),
                tenant_id: r.get(4),
                detail: r.get(5),
            })
            .collect())
    }

    /// Moves a tenant from status `from` to `to` in one statement: false
    /// (nothing changed) when it was not `from`, so of two moves at once
    /// one wins.
    pub async fn move_status(
        &self,
        t: TenantId,
        from: super::Status,
        to: super::Status,
    ) -> Result<bool, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE tenants SET status = $3, updated_at = now() WHERE id = $1 AND status = $2",
                &[&t.0, &from.as_str(), &to.as_str()],
            )
            .await?
            == 1)
    }

    /// When a person or a token last used the tenant, as far as the
    /// control plane knows (a session's last request, a token's last use).
    pub async fn last_activity(
        &self,
        t: TenantId,
    ) -> Result<Option<time::OffsetDateTime>, ControlError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT greatest((SELECT max(last_seen_at) FROM sessions WHERE tenant_id = $1),
                                 (SELECT max(last_used_at) FROM api_tokens WHERE tenant_id = $1))",
                &[&t.0],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Ends every session on a tenant (its members stay members); how many
    /// there were. The delete trigger's NOTIFY drops cached ones everywhere.
    pub async fn delete_tenant_sessions(&self, t: TenantId) -> Result<u64, ControlError> {
        Ok(self
            .client()
            .await?
            .execute("DELETE FROM sessions WHERE tenant_id = $1", &[&t.0])
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_wildcards_in_a_search_are_taken_literally() {
        assert_eq!(contains_pattern("acme"), "%acme%");
        assert_eq!(contains_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }
}
