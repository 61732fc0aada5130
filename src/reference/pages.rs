//! The reference app's pages: the projects list with its create form (the
//! free plan's limit shown before it is hit). Built as a team would build
//! theirs, on `bulkhead::web`: `PageCan` for who may, `Db` for
//! the tenant's data, the same domain code as the API's handlers.

use askama::Template;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::projects::{self, NewProject, Project};
use crate::auth::{Permission, perm};
use crate::http::extract::Db;
use crate::http::{ApiError, Routes};
use crate::web::{Chrome, PageCan, PageError, render, see_other};

/// How many projects the page lists.
const SHOWN: i64 = 50;

pub(super) fn routes(routes: Routes) -> Routes {
    use axum::routing::get;
    routes.page(
        "/projects",
        crate::http::Access::Requires(Permission::PROJECT_READ),
        get(list).post(create),
    )
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    chrome: Chrome,
    projects: Vec<Project>,
    can_write: bool,
    /// The plan's limit, when it has one: (plan, allowed).
    limit: Option<(String, i64)>,
    /// Total projects (for the limit).
    count: i64,
    error: Option<String>,
    name: String,
}

impl ProjectsPage {
    fn at_limit(&self) -> bool {
        self.limit
            .as_ref()
            .is_some_and(|(_, allowed)| self.count >= *allowed)
    }
}

async fn page(
    caller: &crate::http::extract::Caller,
    db: &crate::http::extract::TenantConn,
    error: Option<String>,
    name: String,
) -> Result<ProjectsPage, PageError> {
    let projects = projects::newest(db, SHOWN).await?;
    let count: i64 = db
        .query_one("SELECT count(*) FROM projects", &[])
        .await
        .map_err(ApiError::from)?
        .get(0);
    let plan = caller.tenant.plan;
    Ok(ProjectsPage {
        chrome: Chrome::of(caller),
        projects,
        can_write: caller.role().allows(Permission::PROJECT_WRITE),
        limit: plan.max_projects().map(|n| (plan.as_str().to_string(), n)),
        count,
        error,
        name,
    })
}

/// `GET /projects`.
async fn list(
    PageCan(caller, _): PageCan<perm::ProjectRead>,
    Db(db): Db,
) -> Result<Response, PageError> {
    render(&page(&caller, &db, None, String::new()).await?)
}

#[derive(Debug, Deserialize)]
struct NewProjectForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /projects`: creates one, then back to the list; or the list with
/// what went wrong (422, 402 at the plan's limit).
async fn create(
    PageCan(caller, _): PageCan<perm::ProjectWrite>,
    Db(mut db): Db,
    axum::Form(form): axum::Form<NewProjectForm>,
) -> Result<Response, PageError> {
    let new = NewProject {
        name: form.name.clone(),
        description: form.description,
    };
    match projects::create(&mut db, &caller, &new).await {
        Ok(_) => Ok(see_other("/projects")),
        Err(e @ (ApiError::Validation(_) | ApiError::PlanLimit { .. })) => {
            let message = match &e {
                ApiError::Validation(fields) => fields
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            let status = e.into_response().status();
            let body = render(&page(&caller, &db, Some(message), form.name).await?)?;
            Ok((status, body).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
