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

/// `GET /api/audit`: newest first, in cursor pages.
pub async fn list_audit(
    _: Can<perm::AuditRead>,
    Db(db): Db,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let (cursor, limit) = q.parse()?;
    let rows = db
        .query(
            "SELECT id, at, actor, actor_label, action, object_type, object_id, client_ip, detail
               FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
            &[&cursor, &limit],
        )
        .await?;
    let items = rows
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
        .collect();
    Ok(Json(Page::new(items, limit, |e: &AuditEntry| e.id)))
}
