//! `/api/projects`: list (cursor pages), create, read, update, delete.

use std::collections::BTreeMap;

use crate::http::input::Json;
use crate::http::input::{Path, Query, RowId};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::delete_audited;
use crate::auth::perm;
use crate::http::api::{Page, PageQuery, audit, text_field};
use crate::http::extract::{Caller, Can, Db, TenantConn};
use crate::http::{ApiError, ApiResult};

#[derive(Debug, Serialize)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub archived: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The columns every query of this module returns, in [`project`]'s order
/// (a macro so that whole statements are `concat!`ed at compile time).
macro_rules! columns {
    () => {
        "id, name, description, archived, created_at, updated_at"
    };
}

/// The columns [`Project::from_row`] reads, in order.
pub const PROJECT_COLUMNS: &str = columns!();

impl Project {
    /// A row of [`PROJECT_COLUMNS`] (also what the `route_overhead` bench's baseline uses).
    pub fn from_row(row: &Row) -> Self {
        project(row)
    }
}

fn project(row: &Row) -> Project {
    Project {
        id: row.get(0),
        name: row.get(1),
        description: row.get(2),
        archived: row.get(3),
        created_at: row.get(4),
        updated_at: row.get(5),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub archived: Option<bool>,
}

fn validate(name: Option<&str>, description: Option<&str>) -> ApiResult<()> {
    let mut errors = BTreeMap::new();
    if let Some(name) = name {
        text_field(&mut errors, "name", name, 1, 200);
    }
    if let Some(description) = description {
        text_field(&mut errors, "description", description, 0, 10_000);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

pub async fn list_projects(
    _: Can<perm::ProjectRead>,
    Db(db): Db,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Project>>> {
    let (cursor, limit) = q.parse()?;
    let rows = db
        .query(
            concat!(
                "SELECT ",
                columns!(),
                " FROM projects WHERE id < $1 ORDER BY id DESC LIMIT $2"
            ),
            &[&cursor, &limit],
        )
        .await?;
    Ok(Json(Page::new(
        rows.iter().map(project).collect(),
        limit,
        |p| p.id,
    )))
}

pub async fn create_project(
    Can(caller, _): Can<perm::ProjectWrite>,
    Db(mut db): Db,
    Json(new): Json<NewProject>,
) -> ApiResult<(StatusCode, Json<Project>)> {
    let created = create(&mut db, &caller, &new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates a project as `caller` (the API's and the projects page's): the
/// plan's limit checked under a lock, the write audited, one transaction.
pub async fn create(db: &mut TenantConn, caller: &Caller, new: &NewProject) -> ApiResult<Project> {
    caller.require(crate::auth::Permission::PROJECT_WRITE)?;
    validate(Some(&new.name), Some(&new.description))?;
    let tx = db.transaction().await?;
    if let Some(allowed) = caller.tenant.plan.max_projects() {
        // Serialises this tenant's creates, so two at once cannot both pass.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('bulkhead projects ' || current_user))",
            &[],
        )
        .await?;
        let existing: i64 = tx
            .query_one("SELECT count(*) FROM projects", &[])
            .await?
            .get(0);
        if existing >= allowed {
            return Err(ApiError::PlanLimit {
                plan: caller.tenant.plan.as_str(),
                what: "projects",
                allowed,
            });
        }
    }
    let row = tx
        .query_one(
            concat!("INSERT INTO projects (name, description, created_by) VALUES ($1, $2, $3) RETURNING ", columns!()),
            &[&new.name.trim(), &new.description, &caller.actor_id()],
        )
        .await?;
    let created = project(&row);
    audit(
        &tx,
        caller,
        "project.create",
        "project",
        &created.id.to_string(),
        json!({"name": created.name}),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Project `id`, or 404.
pub async fn one(db: &TenantConn, id: i64) -> ApiResult<Project> {
    let row = db
        .query_opt(
            concat!("SELECT ", columns!(), " FROM projects WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(project(&row))
}

/// The newest `limit` projects.
pub async fn newest(db: &TenantConn, limit: i64) -> ApiResult<Vec<Project>> {
    let rows = db
        .query(
            concat!(
                "SELECT ",
                columns!(),
                " FROM projects ORDER BY id DESC LIMIT $1"
            ),
            &[&limit],
        )
        .await?;
    Ok(rows.iter().map(project).collect())
}

pub async fn get_project(
    _: Can<perm::ProjectRead>,
    Db(db): Db,
    Path(RowId(id)): Path<RowId>,
) -> ApiResult<Json<Project>> {
    let row = db
        .query_opt(
            concat!("SELECT ", columns!(), " FROM projects WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(project(&row)))
}

pub async fn update_project(
    Can(caller, _): Can<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(id)): Path<RowId>,
    Json(patch): Json<ProjectPatch>,
) -> ApiResult<Json<Project>> {
    Ok(Json(update(&mut db, &caller, id, &patch).await?))
}

/// Changes project `id` as `caller` (the API's and the pages'), audited;
/// 404 without such a project.
pub async fn update(
    db: &mut TenantConn,
    caller: &Caller,
    id: i64,
    patch: &ProjectPatch,
) -> ApiResult<Project> {
    caller.require(crate::auth::Permission::PROJECT_WRITE)?;
    validate(patch.name.as_deref(), patch.description.as_deref())?;
    let tx = db.transaction().await?;
    let row = tx
        .query_opt(
            concat!("UPDATE projects SET name = coalesce($2, name), description = coalesce($3, description),
                        archived = coalesce($4, archived), updated_at = now()
                  WHERE id = $1 RETURNING ", columns!()),
            &[&id, &patch.name.as_deref().map(str::trim), &patch.description, &patch.archived],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    let changed = json!({"name": patch.name, "description": patch.description.is_some(), "archived": patch.archived});
    audit(
        &tx,
        caller,
        "project.update",
        "project",
        &id.to_string(),
        changed,
    )
    .await?;
    tx.commit().await?;
    Ok(project(&row))
}

pub async fn delete_project(
    Can(caller, _): Can<perm::ProjectWrite>,
    Db(mut db): Db,
    Path(RowId(id)): Path<RowId>,
) -> ApiResult<StatusCode> {
    delete_audited(&caller, &mut db, "projects", "project", id).await
}
