//! `/api/audit`: the tenant's own log of every write, newest first, kept in
//! the tenant's database (written in the write's own transaction, see
//! [`super::audit()`]).

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Page, PageQuery};
use crate::auth::perm;
use crate::http::error::ApiResult;
use crate::http::extract::{Can, Db};
use crate::http::input::{Json, Query};

#[derive(Debug, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Option<Uuid>,
    pub actor_label: String,
    pub action: String,
    pub object_type: String,
    pub object_id: Option<String>,
    pub client_ip: Option<std::net::IpAddr>,
    pub detail: serde_json::Value,
}

/// `?cursor=&limit=&action=`: `action` is an action (`project.create`) or
/// its area (`support_access`: every vendor access).
#[derive(Debug, serde::Deserialize)]
pub struct AuditQuery {
    pub cursor: Option<String>,
    pub limit: Option<i64>,
    pub action: Option<String>,
}

/// `GET /api/audit`: newest first, in cursor pages, of one action or area
/// when asked.
pub async fn list_audit(
    _: Can<perm::AuditRead>,
    Db(db): Db,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let (cursor, limit) = PageQuery {
        cursor: q.cursor,
        limit: q.limit,
    }
    .parse()?;
    let items = entries(&db, cursor, limit, q.action.as_deref()).await?;
    Ok(Json(Page::new(items, limit, |e: &AuditEntry| e.id)))
}

/// The tenant's audit rows below id `before`, newest first: all, or of
/// `action` (an action, or an area: `support_access` is every
/// `support_access.*`). The API's and the audit page's.
pub async fn entries(
    db: &crate::http::extract::TenantConn,
    before: i64,
    limit: i64,
    action: Option<&str>,
) -> ApiResult<Vec<AuditEntry>> {
    let action = action.map(str::trim).filter(|a| !a.is_empty());
    let rows = db
        .query(
            "SELECT id, at, actor, actor_label, action, object_type, object_id, client_ip, detail
               FROM audit_log
              WHERE id < $1 AND ($3::text IS NULL OR action = $3 OR starts_with(action, $3 || '.'))
              ORDER BY id DESC LIMIT $2",
            &[&before, &limit, &action],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at: r.get(1),
            actor: r.get(2),
            actor_label: r.get(3),
            action: r.get(4),
            object_type: r.get(5),
            object_id: r.get(6),
            client_ip: r.get(7),
            detail: r.get(8),
        })
        .collect())
}
