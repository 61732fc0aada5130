//! The tenant's own record pages: the audit log (vendor access
//! highlighted) and vendor access itself (the rule, every grant, an
//! owner's approve / deny / end), on the API's domain code.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, PageCan, PageError, render, see_other};
use crate::auth::{Permission, perm};
use crate::control::{AccessGrant, SupportPolicy};
use crate::http::api::audit::{AuditEntry, entries};
use crate::http::api::support_access::{Decision, change_policy, decide};
use crate::http::extract::Db;
use crate::http::input::{Path, Query};
use crate::http::{Access, ApiError, AppState, Routes};

/// Rows per page of the audit log.
const PER_PAGE: i64 = 50;

pub(super) fn routes(routes: Routes) -> Routes {
    use axum::routing::{get, post};
    routes
        .page(
            "/audit",
            Access::Requires(Permission::AUDIT_READ),
            get(audit),
        )
        .page(
            "/support-access",
            Access::Requires(Permission::AUDIT_READ),
            get(support_access).post(set_policy),
        )
        .page(
            "/support-access/{id}",
            Access::Requires(Permission::SUPPORT_ACCESS_MANAGE),
            post(decide_grant),
        )
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    chrome: Chrome,
    entries: Vec<AuditEntry>,
    action: String,
    older: Option<i64>,
}

impl AuditPage {
    /// A row written by the vendor's staff (`platform:<operator>`).
    fn vendor(e: &AuditEntry) -> bool {
        e.actor_label.starts_with("platform:")
    }

    /// A row to stand out: the vendor's, or about the vendor's access.
    fn marked(e: &AuditEntry) -> bool {
        Self::vendor(e) || e.action.starts_with("support_access.")
    }

    /// The reason a row carries, if any.
    fn reason(e: &AuditEntry) -> Option<&str> {
        e.detail.get("reason").and_then(|r| r.as_str())
    }
}

/// `?action=&cursor=`.
#[derive(Debug, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    action: String,
    cursor: Option<i64>,
}

/// `GET /audit`: the tenant's log, newest first, 50 a page, of one action
/// or area when asked.
async fn audit(
    PageCan(caller, _): PageCan<perm::AuditRead>,
    Db(db): Db,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    if q.action.chars().count() > 64 {
        return Err(ApiError::field("action", "must be at most 64 characters").into());
    }
    let before = q.cursor.unwrap_or(i64::MAX);
    let entries = entries(&db, before, PER_PAGE, Some(&q.action)).await?;
    let older = (entries.len() as i64 == PER_PAGE)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    render(&AuditPage {
        chrome: Chrome::of(&caller),
        entries,
        action: q.action,
        older,
    })
}

#[derive(Template)]
#[template(path = "support_access.html")]
struct AccessPage {
    chrome: Chrome,
    policy: SupportPolicy,
    grants: Vec<AccessGrant>,
    can_manage: bool,
}

impl AccessPage {
    fn when(at: Option<time::OffsetDateTime>) -> String {
        at.map(|t| format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute()))
            .unwrap_or_default()
    }

    /// When the grant was asked for.
    fn asked(g: &AccessGrant) -> String {
        Self::when(Some(g.requested_at))
    }

    /// When it ends (or ended).
    fn until(g: &AccessGrant) -> String {
        Self::when(g.ends_at)
    }

    fn decisions(g: &AccessGrant) -> &'static [(&'static str, &'static str)] {
        match g.state.as_str() {
            "awaiting_owner" => &[("approve", "Approve"), ("deny", "Deny")],
            "awaiting_operator" => &[("deny", "Deny")],
            "live" => &[("revoke", "End now")],
            _ => &[],
        }
    }
}

/// `GET /support-access`: the rule and the grants on this tenant's data.
async fn support_access(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::AuditRead>,
) -> Result<Response, PageError> {
    let tenant = caller.tenant.id;
    render(&AccessPage {
        chrome: Chrome::of(&caller),
        policy: state.control.support_policy(tenant).await?,
        grants: state.control.access_grants(Some(tenant), None, 50).await?,
        can_manage: caller.role().allows(Permission::SUPPORT_ACCESS_MANAGE),
    })
}

#[derive(Debug, Deserialize)]
struct PolicyForm {
    #[serde(default)]
    policy: String,
}

/// `POST /support-access`: an owner sets the rule.
async fn set_policy(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::SupportAccessManage>,
    Db(mut db): Db,
    axum::Form(form): axum::Form<PolicyForm>,
) -> Result<Response, PageError> {
    change_policy(&state, &caller, &mut db, &form.policy).await?;
    Ok(see_other("/support-access"))
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    #[serde(default)]
    decision: String,
}

/// `POST /support-access/{id}`: an owner approves, denies or ends a grant.
async fn decide_grant(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::SupportAccessManage>,
    Db(mut db): Db,
    Path(id): Path<Uuid>,
    axum::Form(form): axum::Form<DecisionForm>,
) -> Result<Response, PageError> {
    let decision = Decision::parse(&form.decision)
        .ok_or_else(|| ApiError::field("decision", "must be approve, deny or revoke"))?;
    decide(&state, &caller, &mut db, id, decision).await?;
    Ok(see_other("/support-access"))
}
