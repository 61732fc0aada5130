//! `/api/projects/{id}/tasks` and `/api/tasks/{id}`.

use std::collections::BTreeMap;

use crate::http::input::Json;
use crate::http::input::{Path, Query, RowId};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::{Date, OffsetDateTime};
use tokio_postgres::Row;
use uuid::Uuid;

use super::delete_audited;
use crate::auth::perm;
use crate::http::api::{Page, PageQuery, audit, text_field};
use crate::http::extract::{Caller, Can, Db, TenantConn};
use crate::http::{ApiError, ApiResult};

const STATUSES: &[&str] = &["todo", "doing", "done"];

#[derive(Debug, Serialize)]
pub struct Task {
    pub id: i64,
    pub project_id: i64,
    pub title: String,
    pub body: String,
    pub status: String,
    pub assignee: Option<Uuid>,
    pub due_date: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The columns every query of this module returns, in [`task`]'s order
/// (a macro so that whole statements are `concat!`ed at compile time).
macro_rules! columns {
    () => {
        "id, project_id, title, body, status, assignee, due_date, created_at, updated_at"
    };
}

fn task(row: &Row) -> Task {
    Task {
        id: row.get(0),
        project_id: row.get(1),
        title: row.get(2),
        body: row.get(3),
        status: row.get(4),
        assignee: row.get(5),
        due_date: row.get::<_, Option<Date>>(6).map(|d| d.to_string()),
        created_at: row.get(7),
        updated_at: row.get(8),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    pub title: Option<String>,
    pub body: Option<String>,
    pub status: Option<String>,
    pub assignee: Option<Uuid>,
    /// `YYYY-MM-DD`
    pub due_date: Option<String>,
}

impl TaskInput {
    /// Validates; returns the parsed due date.
    fn validate(&self, creating: bool) -> ApiResult<Option<Date>> {
        let mut errors = BTreeMap::new();
        match (&self.title, creating) {
            (Some(title), _) => text_field(&mut errors, "title", title, 1, 500),
            (None, true) => {
                errors.insert("title", "is required".to_string());
            }
            (None, false) => {}
        }
        if let Some(body) = &self.body {
            text_field(&mut errors, "body", body, 0, 100_000);
        }
        if self
            .status
            .as_ref()
            .is_some_and(|s| !STATUSES.contains(&s.as_str()))
        {
            errors.insert("status", format!("must be one of {}", STATUSES.join(", ")));
        }
        let due = match &self.due_date {
            None => None,
            Some(d) => match parse_date(d) {
                Some(date) => Some(date),
                None => {
                    errors.insert("due_date", "must be a date as YYYY-MM-DD".to_string());
                    None
                }
            },
        };
        if errors.is_empty() {
            Ok(due)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

pub async fn list_tasks(
    _: Can<perm::ProjectRead>,
    Db(db): Db,
    Path(RowId(project)): Path<RowId>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Task>>> {
    let (cursor, limit) = q.parse()?;
    if db
        .query_opt("SELECT 1 FROM projects WHERE id = $1", &[&project])
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let rows = db
        .query(
            concat!(
                "SELECT ",
                columns!(),
                " FROM tasks WHERE project_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            ),
            &[&project, &cursor, &limit],
        )
        .await?;
    Ok(Json(Page::new(
        rows.iter().map(task).collect(),
        limit,
        |t| t.id,
    )))
}

pub async fn create_task(
    Can(caller, _): Can<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(project)): Path<RowId>,
    Json(input): Json<TaskInput>,
) -> ApiResult<(StatusCode, Json<Task>)> {
    let created = create(&mut db, &caller, project, &input).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates a task in `project` as `caller` (the API's and the project
/// page's), audited, in one transaction; 404 without such a project.
pub async fn create(
    db: &mut TenantConn,
    caller: &Caller,
    project: i64,
    input: &TaskInput,
) -> ApiResult<Task> {
    caller.require(crate::auth::Permission::PROJECT_WRITE)?;
    let due = input.validate(true)?;
    let tx = db.transaction().await?;
    if tx
        .query_opt("SELECT 1 FROM projects WHERE id = $1", &[&project])
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound);
    }
    let row = tx
        .query_one(
            concat!("INSERT INTO tasks (project_id, title, body, status, assignee, due_date, created_by)
                 VALUES ($1, $2, coalesce($3, ''), coalesce($4, 'todo'), $5, $6, $7) RETURNING ", columns!()),
            &[
                &project,
                &input.title.as_deref().map(str::trim),
                &input.body,
                &input.status,
                &input.assignee,
                &due,
                &caller.actor_id(),
            ],
        )
        .await?;
    let created = task(&row);
    audit(
        &tx,
        caller,
        "task.create",
        "task",
        &created.id.to_string(),
        json!({"project_id": project}),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// A project's tasks, oldest first (at most `limit`).
pub async fn of_project(db: &TenantConn, project: i64, limit: i64) -> ApiResult<Vec<Task>> {
    let rows = db
        .query(
            concat!(
                "SELECT ",
                columns!(),
                " FROM tasks WHERE project_id = $1 ORDER BY id LIMIT $2"
            ),
            &[&project, &limit],
        )
        .await?;
    Ok(rows.iter().map(task).collect())
}

pub async fn get_task(
    _: Can<perm::ProjectRead>,
    Db(db): Db,
    Path(RowId(id)): Path<RowId>,
) -> ApiResult<Json<Task>> {
    Ok(Json(one(&db, id).await?))
}

/// Task `id`, or 404.
pub async fn one(db: &TenantConn, id: i64) -> ApiResult<Task> {
    let row = db
        .query_opt(
            concat!("SELECT ", columns!(), " FROM tasks WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(task(&row))
}

pub async fn update_task(
    Can(caller, _): Can<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(id)): Path<RowId>,
    Json(input): Json<TaskInput>,
) -> ApiResult<Json<Task>> {
    Ok(Json(update(&mut db, &caller, id, &input).await?))
}

/// Changes task `id` as `caller` (the API's and the board's), audited;
/// 404 without such a task.
pub async fn update(
    db: &mut TenantConn,
    caller: &Caller,
    id: i64,
    input: &TaskInput,
) -> ApiResult<Task> {
    caller.require(crate::auth::Permission::PROJECT_WRITE)?;
    let due = input.validate(false)?;
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            concat!(
                "UPDATE tasks SET title = coalesce($2, title), body = coalesce($3, body),
                        status = coalesce($4, status), assignee = coalesce($5, assignee),
                        due_date = coalesce($6, due_date), updated_at = now()
                  WHERE id = $1 RETURNING ",
                columns!(),
                ""
            ),
            &[
                &id,
                &input.title.as_deref().map(str::trim),
                &input.body,
                &input.status,
                &input.assignee,
                &due,
            ],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    audit(
        &tx,
        caller,
        "task.update",
        "task",
        &id.to_string(),
        json!({"status": input.status}),
    )
    .await?;
    tx.commit().await?;
    Ok(task(&row))
}

pub async fn delete_task(
    Can(caller, _): Can<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(id)): Path<RowId>,
) -> ApiResult<StatusCode> {
    delete_audited(&caller, &mut db, "tasks", "task", id).await
}
