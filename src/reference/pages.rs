//! The reference app's pages: the projects list with its create form (the
//! free plan's limit shown before it is hit). Built as a team would build
//! theirs, on `bulkhead::web`: `PageCan` for who may, `Db` for
//! the tenant's data, the same domain code as the API's handlers.

use askama::Template;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::projects::{self, NewProject, Project};
use super::tasks::{self, Task, TaskInput};
use crate::auth::{Permission, perm};
use crate::http::extract::Db;
use crate::http::input::{Path, RowId};
use crate::http::{ApiError, Routes};
use crate::web::{Chrome, PageCan, PageError, form_error, render, see_other};

/// How many projects the page lists.
const SHOWN: i64 = 50;

pub(super) fn routes(routes: Routes) -> Routes {
    use crate::http::Access::Requires;
    use axum::routing::{get, post};
    routes
        .page(
            "/projects",
            Requires(Permission::PROJECT_READ),
            get(list).post(create),
        )
        .page(
            "/projects/{id}",
            Requires(Permission::PROJECT_READ),
            get(board).post(add_task),
        )
        .page(
            "/tasks/{id}/status",
            Requires(Permission::PROJECT_WRITE),
            post(move_task),
        )
        .page(
            "/tasks/{id}",
            Requires(Permission::PROJECT_READ),
            get(task_page).post(save_task),
        )
        .page(
            "/tasks/{id}/delete",
            Requires(Permission::PROJECT_WRITE),
            post(delete_task),
        )
        .page(
            "/projects/{id}/edit",
            Requires(Permission::PROJECT_WRITE),
            post(edit_project),
        )
        .page(
            "/projects/{id}/delete",
            Requires(Permission::PROJECT_WRITE),
            post(delete_project),
        )
}

/// How many tasks the board shows.
const TASKS_SHOWN: i64 = 500;

/// One column of the board.
struct Column {
    status: &'static str,
    title: &'static str,
    tasks: Vec<Task>,
}

#[derive(Template)]
#[template(path = "project.html")]
struct BoardPage {
    chrome: Chrome,
    project: Project,
    columns: Vec<Column>,
    can_write: bool,
    error: Option<String>,
}

/// The other columns a task may move to, as (status, button label).
fn moves(from: &str) -> Vec<(&'static str, &'static str)> {
    [("todo", "To do"), ("doing", "Doing"), ("done", "Done")]
        .into_iter()
        .filter(|(s, _)| *s != from)
        .collect()
}

async fn board_page(
    caller: &crate::http::extract::Caller,
    db: &crate::http::extract::TenantConn,
    id: i64,
    error: Option<String>,
) -> Result<BoardPage, PageError> {
    let project = projects::one(db, id).await?;
    let mut tasks = tasks::of_project(db, id, TASKS_SHOWN).await?;
    let columns = [("todo", "To do"), ("doing", "Doing"), ("done", "Done")]
        .into_iter()
        .map(|(status, title)| Column {
            status,
            title,
            tasks: {
                let (these, rest) = tasks.drain(..).partition(|t| t.status == status);
                tasks = rest;
                these
            },
        })
        .collect();
    Ok(BoardPage {
        chrome: Chrome::of(caller),
        project,
        columns,
        can_write: caller.role().allows(Permission::PROJECT_WRITE),
        error,
    })
}

/// `GET /projects/{id}`: its tasks as a board of three columns.
async fn board(
    PageCan(caller, _): PageCan<perm::ProjectRead>,
    Db(db): Db,
    Path(RowId(id)): Path<RowId>,
) -> Result<Response, PageError> {
    render(&board_page(&caller, &db, id, None).await?)
}

#[derive(Debug, Deserialize)]
struct NewTaskForm {
    #[serde(default)]
    title: String,
}

/// `POST /projects/{id}`: a new task in "to do".
async fn add_task(
    PageCan(caller, _): PageCan<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(id)): Path<RowId>,
    axum::Form(form): axum::Form<NewTaskForm>,
) -> Result<Response, PageError> {
    let input = TaskInput {
        title: Some(form.title),
        body: None,
        status: None,
        assignee: None,
        due_date: None,
    };
    match tasks::create(&mut db, &caller, id, &input).await {
        Ok(_) => Ok(see_other(&format!("/projects/{id}"))),
        Err(e @ ApiError::Validation(_)) => {
            let message = form_error(&e);
            let body = render(&board_page(&caller, &db, id, Some(message)).await?)?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct MoveForm {
    #[serde(default)]
    status: String,
}

/// `POST /tasks/{id}/status`: moves a task to another column, then back
/// to its board.
async fn move_task(
    PageCan(caller, _): PageCan<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(id)): Path<RowId>,
    axum::Form(form): axum::Form<MoveForm>,
) -> Result<Response, PageError> {
    let input = TaskInput {
        title: None,
        body: None,
        status: Some(form.status),
        assignee: None,
        due_date: None,
    };
    let task = tasks::update(&mut db, &caller, id, &input).await?;
    Ok(see_other(&format!("/projects/{}", task.project_id)))
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
            let message = form_error(&e);
            let status = e.into_response().status();
            let body = render(&page(&caller, &db, Some(message), form.name).await?)?;
            Ok((status, body).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    chrome: Chrome,
    task: Task,
    /// Who it can be assigned to: (user id, name and e-mail).
    members: Vec<(uuid::Uuid, String)>,
    can_write: bool,
    error: Option<String>,
}

impl TaskPage {
    fn assigned(&self, id: &uuid::Uuid) -> bool {
        self.task.assignee.as_ref() == Some(id)
    }
}

async fn task_of(
    state: &crate::http::AppState,
    caller: &crate::http::extract::Caller,
    task: Task,
    error: Option<String>,
) -> Result<TaskPage, PageError> {
    let members = state
        .control
        .members(caller.tenant.id)
        .await?
        .into_iter()
        .map(|m| (m.user_id, format!("{} ({})", m.display_name, m.email)))
        .collect();
    Ok(TaskPage {
        chrome: Chrome::of(caller),
        task,
        members,
        can_write: caller.role().allows(Permission::PROJECT_WRITE),
        error,
    })
}

/// `GET /tasks/{id}`: a task, and the form that edits it (title, notes,
/// column, assignee, due date).
async fn task_page(
    axum::extract::State(state): axum::extract::State<crate::http::AppState>,
    PageCan(caller, _): PageCan<perm::ProjectRead>,
    db: Db,
    Path(RowId(id)): Path<RowId>,
) -> Result<Response, PageError> {
    let task = tasks::one(&db.0, id).await?;
    render(&task_of(&state, &caller, task, None).await?)
}

#[derive(Debug, Deserialize)]
struct TaskForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    due_date: String,
}

/// `POST /tasks/{id}`: saves the form, then back to the board; or the form
/// with what is wrong (422).
async fn save_task(
    axum::extract::State(state): axum::extract::State<crate::http::AppState>,
    PageCan(caller, _): PageCan<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(id)): Path<RowId>,
    axum::Form(form): axum::Form<TaskForm>,
) -> Result<Response, PageError> {
    let assignee = match form.assignee.as_str() {
        "" => None,
        text => Some(
            text.parse::<uuid::Uuid>()
                .map_err(|_| ApiError::field("assignee", "is not a member"))?,
        ),
    };
    if let Some(user) = assignee
        && !state
            .control
            .members(caller.tenant.id)
            .await?
            .iter()
            .any(|m| m.user_id == user)
    {
        return Err(ApiError::field("assignee", "is not a member").into());
    }
    let input = TaskInput {
        title: Some(form.title.clone()),
        body: Some(form.body.clone()),
        status: Some(form.status.clone()),
        assignee,
        due_date: Some(form.due_date.clone()).filter(|d| !d.is_empty()),
    };
    match tasks::update(&mut db, &caller, id, &input).await {
        Ok(task) => Ok(see_other(&format!("/projects/{}", task.project_id))),
        Err(e @ ApiError::Validation(_)) => {
            let mut task = tasks::one(&db, id).await?;
            // What was typed, kept.
            task.title = form.title;
            task.body = form.body;
            let page = task_of(&state, &caller, task, Some(form_error(&e))).await?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /tasks/{id}/delete`: then its project's board.
async fn delete_task(
    PageCan(caller, _): PageCan<perm::ProjectWrite>,
    Db(db): Db,
    Path(RowId(id)): Path<RowId>,
) -> Result<Response, PageError> {
    let task = tasks::one(&db, id).await?;
    let can = crate::http::extract::Can(caller, std::marker::PhantomData);
    tasks::delete_task(can, Db(db), Path(RowId(id))).await?;
    Ok(see_other(&format!("/projects/{}", task.project_id)))
}

#[derive(Debug, Deserialize)]
struct ProjectForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /projects/{id}/edit`: a new name and description.
async fn edit_project(
    PageCan(caller, _): PageCan<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(id)): Path<RowId>,
    axum::Form(form): axum::Form<ProjectForm>,
) -> Result<Response, PageError> {
    let patch = projects::ProjectPatch {
        name: Some(form.name),
        description: Some(form.description),
        archived: None,
    };
    match projects::update(&mut db, &caller, id, &patch).await {
        Ok(_) => Ok(see_other(&format!("/projects/{id}"))),
        Err(e @ ApiError::Validation(_)) => {
            let page = render(&board_page(&caller, &db, id, Some(form_error(&e))).await?)?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /projects/{id}/delete`: the project and its tasks; then the list.
async fn delete_project(
    PageCan(caller, _): PageCan<perm::ProjectWrite>,
    db: Db,
    Path(RowId(id)): Path<RowId>,
) -> Result<Response, PageError> {
    let can = crate::http::extract::Can(caller, std::marker::PhantomData);
    projects::delete_project(can, db, Path(RowId(id))).await?;
    Ok(see_other("/projects"))
}
