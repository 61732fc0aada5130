//! The reference application: projects and their tasks, the tenant's
//! settings and its members, built on the public API the way a team builds
//! its own product (see `examples/notes` for another): its routes are added
//! to the platform's by [`builder`], and its handlers reach the tenant only
//! through the extractors (`Db`, `Can<P>`).

mod members;
#[doc(hidden)]
pub mod projects;
mod settings;
mod tasks;
mod tenant;

use crate::app::{Builder, Bulkhead};
use crate::auth::Permission;
use crate::http::api::audit;
use crate::http::extract::Caller;
use crate::http::{Access, ApiError, ApiResult, Routes};

/// The platform with the reference application on it: what the `bulkhead`
/// binary serves.
pub fn builder() -> Builder {
    Bulkhead::builder()
        .routes(routes)
        .demo("/api/projects", DEMO)
}

/// A few projects and tasks per `dev` tenant, written once.
const DEMO: &str = "DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM projects) THEN
        INSERT INTO projects (name, description) VALUES
            ('Website relaunch', 'New site before the spring campaign'),
            ('Customer onboarding', 'Make the first week delightful');
        INSERT INTO tasks (project_id, title, status, due_date)
        SELECT p.id, t.title, t.status, current_date + t.days
          FROM projects p
          CROSS JOIN (VALUES ('Draft the plan', 'done', 0), ('Review with the team', 'doing', 7),
                             ('Ship it', 'todo', 14)) AS t(title, status, days);
    END IF;
END $$";

fn routes(routes: Routes) -> Routes {
    use Access::{Authenticated, Requires};
    routes
        .get(
            "/api/tenant",
            Requires(Permission::PROJECT_READ),
            tenant::get_tenant,
        )
        .get(
            "/api/projects",
            Requires(Permission::PROJECT_READ),
            projects::list_projects,
        )
        .post(
            "/api/projects",
            Requires(Permission::PROJECT_WRITE),
            projects::create_project,
        )
        .get(
            "/api/projects/{id}",
            Requires(Permission::PROJECT_READ),
            projects::get_project,
        )
        .patch(
            "/api/projects/{id}",
            Requires(Permission::PROJECT_WRITE),
            projects::update_project,
        )
        .delete(
            "/api/projects/{id}",
            Requires(Permission::PROJECT_WRITE),
            projects::delete_project,
        )
        .get(
            "/api/projects/{id}/tasks",
            Requires(Permission::PROJECT_READ),
            tasks::list_tasks,
        )
        .post(
            "/api/projects/{id}/tasks",
            Requires(Permission::PROJECT_WRITE),
            tasks::create_task,
        )
        .get(
            "/api/tasks/{id}",
            Requires(Permission::PROJECT_READ),
            tasks::get_task,
        )
        .patch(
            "/api/tasks/{id}",
            Requires(Permission::PROJECT_WRITE),
            tasks::update_task,
        )
        .delete(
            "/api/tasks/{id}",
            Requires(Permission::PROJECT_WRITE),
            tasks::delete_task,
        )
        .get(
            "/api/members",
            Requires(Permission::MEMBER_READ),
            members::list_members,
        )
        .post("/api/members/leave", Authenticated, members::leave)
        .patch(
            "/api/members/{id}",
            Requires(Permission::MEMBER_MANAGE),
            members::change_role,
        )
        .delete(
            "/api/members/{id}",
            Requires(Permission::MEMBER_MANAGE),
            members::remove_member,
        )
        .get(
            "/api/settings",
            Requires(Permission::SETTINGS_READ),
            settings::get_settings,
        )
        .patch(
            "/api/settings",
            Requires(Permission::SETTINGS_WRITE),
            settings::patch_settings,
        )
}

/// Deletes row `id` of `table` and records `<object>.delete` in the audit
/// log, in one transaction; 404 if there is no such row.
async fn delete_audited(
    caller: &Caller,
    db: &mut crate::pools::TenantConn,
    table: &'static str,
    object: &'static str,
    id: i64,
) -> ApiResult<axum::http::StatusCode> {
    caller.require(Permission::PROJECT_WRITE)?;
    let tx = db.transaction().await?;
    let sql = format!(
        "DELETE FROM {} WHERE id = $1",
        crate::sql::Ident::new(table)
    );
    if tx.execute(&sql, &[&id]).await? == 0 {
        return Err(ApiError::NotFound);
    }
    audit(
        &tx,
        caller,
        &format!("{object}.delete"),
        object,
        &id.to_string(),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
