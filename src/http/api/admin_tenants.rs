//! The admin API's reads (admin.<base> only, `admin.read`): tenants found
//! by slug, name, custom domain or member e-mail; one tenant's detail (plan
//! and its source, size, counts, billing state); the platform audit log.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Page, PageQuery};
use crate::auth::operator_perm::AdminRead;
use crate::control::{AuditFilter, AuditRow, Mode, Plan, Slug, Tenant, TenantId};
use crate::http::error::{ApiError, ApiResult};
use crate::http::input::{Json, Query};
use crate::http::operator::OperatorCan;
use crate::http::state::AppState;
use crate::routing::TenantEntry;

/// The live (not deleted) tenant `slug`, or 404.
pub(crate) async fn tenant_named(state: &AppState, slug: &str) -> ApiResult<Tenant> {
    let slug = Slug::parse(slug).map_err(|_| ApiError::NotFound)?;
    state
        .control
        .tenant_by_slug(&slug)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `?q=&cursor=&limit=`: the cursor is the last slug of the previous page.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

fn summary(t: &Tenant) -> Value {
    json!({
        "id": t.id, "slug": t.slug, "display_name": t.display_name,
        "status": t.status, "plan": t.plan, "mode": t.mode, "server": t.server,
    })
}

/// `GET /api/admin/tenants`: tenants whose slug, display name, verified
/// custom domain or a member's e-mail contains `q`, by slug, in pages.
pub async fn search_tenants(
    State(state): State<AppState>,
    _: OperatorCan<AdminRead>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(PageQuery::DEFAULT_LIMIT);
    if !(1..=PageQuery::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field(
            "limit",
            format!("must be between 1 and {}", PageQuery::MAX_LIMIT),
        ));
    }
    let text = q.q.unwrap_or_default();
    if text.chars().count() > 200 {
        return Err(ApiError::field("q", "must be at most 200 characters"));
    }
    let found = state
        .control
        .search_tenants(&text, q.cursor.as_deref().unwrap_or(""), limit)
        .await?;
    let next_cursor = (found.len() as i64 == limit)
        .then(|| found.last().map(|t| t.slug.to_string()))
        .flatten();
    let items: Vec<Value> = found.iter().map(summary).collect();
    Ok(Json(json!({"items": items, "next_cursor": next_cursor})))
}

/// `GET /api/admin/tenants/{slug}`: status, plan and its source, mode,
/// server, schema version, counts, size, billing state.
pub async fn get_tenant(
    State(state): State<AppState>,
    _: OperatorCan<AdminRead>,
    Path(slug): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = tenant_named(&state, &slug).await?;
    let (members, invitations) = state.control.tenant_counts(t.id).await?;
    let subscriptions = state.control.billing_subscriptions(t.id).await?;
    let current = subscriptions
        .iter()
        .find(|s| s.status != "canceled")
        .or(subscriptions.first());
    let comp = state.control.comp_of(t.id).await?;
    // As GET /api/billing says it.
    let source = match (&comp, current) {
        (Some(_), _) => Some("comp"),
        (None, Some(s)) if matches!(s.status.as_str(), "active" | "trialing" | "past_due") => {
            Some("stripe")
        }
        (None, _) if t.plan == Plan::Pro => Some("manual"),
        _ => None,
    };
    let rfc = |at: time::OffsetDateTime| {
        at.format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    let mut body = summary(&t);
    body["schema_version"] = t.schema_version.into();
    body["created_at"] = rfc(t.created_at).into();
    body["plan_source"] = source.into();
    body["comp_until"] = comp.as_ref().and_then(|(until, _)| rfc(*until)).into();
    body["comp_reason"] = comp.map(|(_, why)| why).into();
    body["subscription"] = json!(current);
    body["subscription_status"] = current.map(|s| s.status.clone()).into();
    body["member_count"] = members.into();
    body["open_invitations"] = invitations.into();
    body["size_bytes"] = size_of(&state, &t).await.into();
    body["last_activity"] = state
        .control
        .last_activity(t.id)
        .await?
        .and_then(rfc)
        .into();
    Ok(Json(body))
}

/// The tenant's database (database mode) or its schema's tables (schema
/// mode), in bytes; `None` (logged) when its server cannot say now.
async fn size_of(state: &AppState, t: &Tenant) -> Option<i64> {
    let entry = TenantEntry::from_tenant(t, &state.provisioner.settings().shared_db);
    let size = async {
        let pool = state.pools.pool(&entry).await?;
        let db = state.pools.connect_to(&entry, &pool).await?;
        let row = match t.mode {
            Mode::Database => {
                db.query_one("SELECT pg_database_size(current_database())", &[])
                    .await?
            }
            Mode::Schema => {
                db.query_one(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'p')",
                    &[&t.schema()],
                )
                .await?
            }
        };
        Ok::<i64, ApiError>(row.get(0))
    };
    match size.await {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            tracing::warn!(tenant = %t.slug, error = %e, "admin: tenant size not read");
            None
        }
    }
}

/// `?cursor=&limit=&tenant=&actor=&action=`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    /// A tenant's slug.
    pub tenant: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
}

/// `GET /api/admin/audit`: the platform audit log, newest first, in cursor
/// pages, filtered by tenant, actor and action (each exact).
pub async fn list_platform_audit(
    State(state): State<AppState>,
    _: OperatorCan<AdminRead>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditRow>>> {
    let (cursor, limit) = PageQuery {
        cursor: q.cursor.clone(),
        limit: q.limit,
    }
    .parse()?;
    let tenant: Option<TenantId> = match &q.tenant {
        Some(slug) => match Slug::parse(slug) {
            Ok(slug) => state.control.tenant_by_slug(&slug).await?.map(|t| t.id),
            Err(_) => None,
        }
        // An unknown tenant has no rows: none rather than all.
        .or(Some(TenantId(uuid::Uuid::nil()))),
        None => None,
    };
    let filter = AuditFilter {
        tenant,
        actor: q.actor.as_deref(),
        action: q.action.as_deref(),
    };
    let items = state.control.audit_page(&filter, cursor, limit).await?;
    Ok(Json(Page::new(items, limit, |e: &AuditRow| e.id)))
}
