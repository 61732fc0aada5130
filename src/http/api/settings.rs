//! `/api/settings`: the tenant's settings, a JSON object of known keys, each
//! validated; `null` resets a key to its default.

use crate::http::input::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::record;
use crate::auth::perm;
use crate::http::AppState;
use crate::http::extract::{Can, Db};
use crate::http::{ApiError, ApiResult};

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
