//! `/api/settings`: the tenant's settings, a JSON object of known keys, each
//! validated; `null` resets a key to its default. And `/api/tokens`: API
//! tokens minted by a logged-in admin, never above the creator's role.

use crate::http::input::Json;
use crate::http::input::Path;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::record;
use crate::auth::{Role, Tokens, perm};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Can, Db};
use crate::http::state::AppState;

/// A setting's rule: `Err` says what a valid value looks like.
type Check = fn(&Value) -> Result<(), &'static str>;

/// A setting's default.
type Default = fn() -> Value;

/// Every known key: its default and its rule.
const KEYS: &[(&str, Default, Check)] = &[
    (
        "timezone",
        || json!("UTC"),
        |v| {
            let s = v.as_str().ok_or("must be a string such as Europe/Paris")?;
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.split('/').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
                });
            if ok {
                Ok(())
            } else {
                Err("must be a time zone name such as Europe/Paris")
            }
        },
    ),
    (
        "week_start",
        || json!("monday"),
        |v| match v.as_str() {
            Some("monday" | "sunday") => Ok(()),
            _ => Err("must be monday or sunday"),
        },
    ),
    (
        "default_task_status",
        || json!("todo"),
        |v| match v.as_str() {
            Some("todo" | "doing" | "done") => Ok(()),
            _ => Err("must be todo, doing or done"),
        },
    ),
    (
        "email_notifications",
        || json!(true),
        |v| {
            if v.is_boolean() {
                Ok(())
            } else {
                Err("must be true or false")
            }
        },
    ),
];

fn effective(stored: &Value) -> Value {
    let mut out = Map::new();
    for (key, default, _) in KEYS {
        out.insert(
            (*key).to_string(),
            stored.get(*key).cloned().unwrap_or_else(default),
        );
    }
    Value::Object(out)
}

pub async fn get_settings(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::SettingsRead>,
) -> ApiResult<Json<Value>> {
    let stored = state.control.tenant_settings(caller.tenant.id).await?;
    Ok(Json(effective(&stored)))
}

/// `PATCH /api/settings` with an object of changes: all valid or none applied.
pub async fn patch_settings(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::SettingsWrite>,
    Db(mut db): Db,
    Json(patch): Json<Value>,
) -> ApiResult<Json<Value>> {
    let Value::Object(changes) = &patch else {
        return Err(ApiError::BadRequest(
            "send a JSON object of settings".into(),
        ));
    };
    let mut fields = std::collections::BTreeMap::new();
    let mut stored = state.control.tenant_settings(caller.tenant.id).await?;
    for (key, value) in changes {
        let Some((known, _, check)) = KEYS.iter().find(|(k, _, _)| k == key) else {
            fields.insert("settings", format!("unknown setting `{key}`"));
            continue;
        };
        if value.is_null() {
            stored.as_object_mut().map(|o| o.remove(*known));
        } else if let Err(message) = check(value) {
            fields.insert(*known, message.to_string());
        } else {
            stored[*known] = value.clone();
        }
    }
    if !fields.is_empty() {
        return Err(ApiError::Validation(fields));
    }
    state
        .control
        .set_tenant_settings(caller.tenant.id, &stored)
        .await?;
    record(
        &mut db,
        &caller,
        "settings.update",
        "settings",
        "",
        patch.clone(),
    )
    .await?;
    Ok(Json(effective(&stored)))
}

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
