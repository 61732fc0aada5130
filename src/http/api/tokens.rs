//! `/api/tokens`: API tokens minted by a logged-in admin, never above the
//! creator's role; listed without their secrets, revoked at once.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::record;
use crate::auth::{Role, Tokens, perm};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Can, Db};
use crate::http::input::{Json, Path};
use crate::http::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    pub role: String,
}

/// `POST /api/tokens`: 201 with the token, shown this once.
pub async fn create_token(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::TokenManage>,
    Db(mut db): Db,
    Json(new): Json<NewToken>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = Role::parse(&new.role)
        .filter(|r| *r != Role::Owner)
        .ok_or_else(|| ApiError::field("role", "must be admin, member or viewer"))?;
    if role < caller.role() {
        return Err(ApiError::Forbidden);
    }
    let owner = caller.session().map(|s| s.user_id);
    let (row, secret) = Tokens::create_owned(
        &state.control,
        caller.tenant.id,
        role.as_str(),
        &new.name,
        owner,
    )
    .await
    .map_err(|e| match e {
        crate::auth::TokenError::Control(e) => ApiError::from(e),
        other => ApiError::field("name", other.to_string()),
    })?;
    record(
        &mut db,
        &caller,
        "token.create",
        "token",
        &row.id.to_string(),
        json!({"name": row.name, "role": row.role}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": secret.expose(), "id": row.id, "name": row.name, "role": row.role})),
    ))
}

pub async fn list_tokens(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::TokenManage>,
) -> ApiResult<Json<Value>> {
    let items = state.control.tokens(caller.tenant.id).await?;
    Ok(Json(json!({ "items": items })))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::TokenManage>,
    Db(mut db): Db,
    Path(id): Path<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    if !state.control.revoke_token(caller.tenant.id, id).await? {
        return Err(ApiError::NotFound);
    }
    record(
        &mut db,
        &caller,
        "token.revoke",
        "token",
        &id.to_string(),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
