//! The reference application: projects and their tasks, built on the
//! public API the way a team builds its own product (see `examples/notes`
//! for another): its routes are added to the platform's by [`builder`], and
//! its handlers reach the tenant only through the extractors (`Db`,
//! `Can<P>`). Members and settings, kept in the control plane, are the
//! platform's (every product has them).

mod pages;
#[doc(hidden)]
pub mod projects;
mod tasks;
mod tenant;

use crate::app::{Builder, Bulkhead};
use crate::auth::Permission;
use crate::http::api::audit;
use crate::http::extract::{Caller, TenantConn};
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
    use Access::Requires;
    pages::routes(routes)
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
}

/// Deletes row `id` of `table` and records `<object>.delete` in the audit
/// log, in one transaction; 404 if there is no such row.
async fn delete_audited(
    caller: &Caller,
    db: &mut TenantConn,
    table: &'static str,
    object: &'static str,
    id: i64,
) -> ApiResult<axum::http::StatusCode> {
    caller.require(Permission::PROJECT_WRITE)?;
    let tx = db.transaction().await?;
    // `table` is one of this module's own tables, never input.
    let sql = format!("DELETE FROM {table} WHERE id = $1");
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

#[cfg(test)]
mod tests {
    /// The reference app is built on the public API only, as a team's
    /// product would be: none of its files names a module hidden from the
    /// docs, or the server's internal state.
    #[test]
    fn the_reference_app_reaches_only_the_public_api() {
        let hidden = [
            "control",
            "fleet",
            "migrations",
            "outbox",
            "pg",
            "pools",
            "provision",
            "report",
            "routing",
            "secret",
            "sql",
        ];
        let files = [
            ("mod.rs", include_str!("mod.rs")),
            ("projects.rs", include_str!("projects.rs")),
            ("tasks.rs", include_str!("tasks.rs")),
            ("tenant.rs", include_str!("tenant.rs")),
        ];
        for (file, text) in files {
            // Not this test, which names what it looks for.
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            for module in hidden {
                let path = format!("crate::{module}::");
                assert!(!text.contains(&path), "{file} reaches into {path}");
            }
            for internal in [
                "AppState",
                "auth::sessions",
                "auth::passwords",
                "api::people",
            ] {
                assert!(!text.contains(internal), "{file} uses {internal}");
            }
        }
    }
}
