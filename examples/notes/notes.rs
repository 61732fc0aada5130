//! A product that is not the reference app, built on bulkhead the way a team
//! builds its own: one tenant table (`notes`), two permissions of its own,
//! four routes. Everything it uses is bulkhead's public API.
//!
//! What bulkhead guarantees each handler: the caller is authenticated for the
//! tenant the request's host names and holds the permission its `Can<P>`
//! asks for, before the handler runs; `Db` is a connection that can only
//! reach that tenant's database, logged in as its runtime role; writes go in
//! the tenant's own audit log with `audit`, in the write's transaction.

use bulkhead::app::{Builder, Bulkhead};
use bulkhead::auth::{Perm, Permission, Role};
use bulkhead::http::api::audit;
use bulkhead::http::extract::{Can, Db};
use bulkhead::http::input::{Json, Path, RowId};
use bulkhead::http::{Access, ApiError, ApiResult, Routes};
use serde::{Deserialize, Serialize};

/// Reading notes: every member.
pub struct NotesRead;
impl Perm for NotesRead {
    const PERMISSION: Permission = Permission::new(
        "notes.read",
        &[Role::Owner, Role::Admin, Role::Member, Role::Viewer],
    );
}

/// Writing notes: everyone but viewers.
pub struct NotesWrite;
impl Perm for NotesWrite {
    const PERMISSION: Permission =
        Permission::new("notes.write", &[Role::Owner, Role::Admin, Role::Member]);
}

/// The notes product: bulkhead's platform (people, tokens, invitations,
/// audit…) with the notes table, permissions and routes.
pub fn product() -> Builder {
    Bulkhead::builder()
        .tenant_migration("V1001__notes", include_str!("migrations/V1001__notes.sql"))
        .permission(NotesRead::PERMISSION)
        .permission(NotesWrite::PERMISSION)
        .routes(routes)
        .demo(
            "/api/notes",
            "INSERT INTO notes (body, created_by)
             SELECT 'Welcome to notes', 'dev' WHERE NOT EXISTS (SELECT 1 FROM notes)",
        )
}

fn routes(routes: Routes) -> Routes {
    let (read, write) = (
        Access::Requires(NotesRead::PERMISSION),
        Access::Requires(NotesWrite::PERMISSION),
    );
    routes
        .get("/api/notes", read, list)
        .post("/api/notes", write, create)
        .get("/api/notes/{id}", read, get)
        .delete("/api/notes/{id}", write, delete)
}

#[derive(Serialize)]
pub struct Note {
    id: i64,
    body: String,
    created_by: String,
}

fn note(row: &tokio_postgres::Row) -> Note {
    Note {
        id: row.get(0),
        body: row.get(1),
        created_by: row.get(2),
    }
}

#[derive(Deserialize)]
pub struct NewNote {
    body: String,
}

/// `GET /api/notes`: the newest 100.
async fn list(_: Can<NotesRead>, Db(db): Db) -> ApiResult<axum::Json<Vec<Note>>> {
    let rows = db
        .query(
            "SELECT id, body, created_by FROM notes ORDER BY id DESC LIMIT 100",
            &[],
        )
        .await?;
    Ok(axum::Json(rows.iter().map(note).collect()))
}

/// `POST /api/notes` `{"body": "..."}`: 201 with the note, audited.
async fn create(
    Can(caller, _): Can<NotesWrite>,
    Db(mut db): Db,
    Json(new): Json<NewNote>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<Note>)> {
    let length = new.body.chars().count();
    if !(1..=10_000).contains(&length) {
        return Err(ApiError::field("body", "must be 1-10000 characters"));
    }
    let tx = db.transaction().await?;
    let row = tx
        .query_one(
            "INSERT INTO notes (body, created_by) VALUES ($1, $2)
             RETURNING id, body, created_by",
            &[&new.body, &caller.label()],
        )
        .await?;
    let created = note(&row);
    let detail = serde_json::json!({"length": length});
    audit(
        &tx,
        &caller,
        "note.create",
        "note",
        &created.id.to_string(),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok((axum::http::StatusCode::CREATED, axum::Json(created)))
}

/// `GET /api/notes/{id}`: this tenant's note, else 404.
async fn get(_: Can<NotesRead>, Db(db): Db, Path(id): Path<RowId>) -> ApiResult<axum::Json<Note>> {
    let row = db
        .query_opt(
            "SELECT id, body, created_by FROM notes WHERE id = $1",
            &[&id.0],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(axum::Json(note(&row)))
}

/// `DELETE /api/notes/{id}`: 204, audited; 404 if there is no such note.
async fn delete(
    Can(caller, _): Can<NotesWrite>,
    Db(mut db): Db,
    Path(id): Path<RowId>,
) -> ApiResult<axum::http::StatusCode> {
    let tx = db.transaction().await?;
    if tx
        .execute("DELETE FROM notes WHERE id = $1", &[&id.0])
        .await?
        == 0
    {
        return Err(ApiError::NotFound);
    }
    let detail = serde_json::json!({});
    audit(
        &tx,
        &caller,
        "note.delete",
        "note",
        &id.0.to_string(),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
