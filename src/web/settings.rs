//! A tenant's settings page (everyone reads, managers change), its API
//! tokens (a new one shown once; list; revoke) and ending every session of
//! the person logged in. Each form calls the API's own handler with the
//! caller its page extractor let in, so the page refuses and audits
//! exactly as the API does.

use std::marker::PhantomData;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Chrome, PageCan, PageError, form_error, render, see_other, see_other_with_cookie};
use crate::auth::{Permission, Role, perm};
use crate::control::TokenRow;
use crate::http::api::{people, settings, tokens};
use crate::http::extract::{Caller, Can, Db};
use crate::http::input::{Json, Path};
use crate::http::{Access, ApiError, AppState, Routes};

pub(super) fn routes(routes: Routes) -> Routes {
    use axum::routing::{get, post};
    routes
        .page(
            "/settings",
            Access::Requires(Permission::SETTINGS_READ),
            get(settings_page).post(save),
        )
        .page(
            "/tokens",
            Access::Requires(Permission::TOKEN_MANAGE),
            get(tokens_page).post(create_token),
        )
        .page(
            "/tokens/{id}/revoke",
            Access::Requires(Permission::TOKEN_MANAGE),
            post(revoke_token),
        )
        .page(
            "/logout/everywhere",
            Access::Authenticated,
            post(everywhere),
        )
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    timezone: String,
    week_start: String,
    default_task_status: String,
    email_notifications: bool,
    can_write: bool,
    saved: bool,
    error: Option<String>,
}

impl SettingsPage {
    fn of(caller: &Caller, values: &Value, saved: bool, error: Option<String>) -> Self {
        let text = |k: &str| values[k].as_str().unwrap_or_default().to_string();
        Self {
            chrome: Chrome::of(caller),
            timezone: text("timezone"),
            week_start: text("week_start"),
            default_task_status: text("default_task_status"),
            email_notifications: values["email_notifications"].as_bool().unwrap_or(true),
            can_write: caller.role().allows(Permission::SETTINGS_WRITE),
            saved,
            error,
        }
    }
}

#[derive(Debug, Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

/// `GET /settings`.
async fn settings_page(
    state: State<AppState>,
    PageCan(caller, _): PageCan<perm::SettingsRead>,
    crate::http::input::Query(q): crate::http::input::Query<SavedQuery>,
) -> Result<Response, PageError> {
    let Json(values) = settings::get_settings(state, Can(caller.clone(), PhantomData)).await?;
    render(&SettingsPage::of(&caller, &values, q.saved.is_some(), None))
}

#[derive(Debug, Deserialize)]
struct SettingsForm {
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    week_start: String,
    #[serde(default)]
    default_task_status: String,
    /// A checkbox: sent only when ticked.
    email_notifications: Option<String>,
}

/// `POST /settings`: all four at once, all valid or none saved.
async fn save(
    state: State<AppState>,
    PageCan(caller, _): PageCan<perm::SettingsWrite>,
    db: Db,
    axum::Form(form): axum::Form<SettingsForm>,
) -> Result<Response, PageError> {
    let patch = json!({
        "timezone": form.timezone.trim(),
        "week_start": form.week_start,
        "default_task_status": form.default_task_status,
        "email_notifications": form.email_notifications.is_some(),
    });
    match settings::patch_settings(
        state,
        Can(caller.clone(), PhantomData),
        db,
        Json(patch.clone()),
    )
    .await
    {
        Ok(_) => Ok(see_other("/settings?saved=1")),
        Err(e @ ApiError::Validation(_)) => {
            let page = render(&SettingsPage::of(
                &caller,
                &patch,
                false,
                Some(form_error(&e)),
            ))?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    /// The roles a token may have here (never above the caller's, never
    /// owner).
    roles: Vec<Role>,
    /// A token just made: its name and secret, shown this once.
    created: Option<(String, String)>,
    error: Option<String>,
    name: String,
}

impl TokensPage {
    fn date(t: &Option<time::OffsetDateTime>) -> String {
        t.map(|t| t.date().to_string())
            .unwrap_or_else(|| "never".into())
    }
}

async fn tokens_of(
    state: &AppState,
    caller: &Caller,
    created: Option<(String, String)>,
    error: Option<String>,
    name: String,
) -> Result<TokensPage, PageError> {
    let tokens = state
        .control
        .tokens(caller.tenant.id)
        .await?
        .into_iter()
        .filter(|t| t.revoked_at.is_none())
        .collect();
    Ok(TokensPage {
        chrome: Chrome::of(caller),
        tokens,
        roles: Role::ALL
            .into_iter()
            .filter(|r| *r != Role::Owner && *r >= caller.role())
            .collect(),
        created,
        error,
        name,
    })
}

/// `GET /tokens`.
async fn tokens_page(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::TokenManage>,
) -> Result<Response, PageError> {
    render(&tokens_of(&state, &caller, None, None, String::new()).await?)
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// `POST /tokens`: the new token, shown on this answer only (201).
async fn create_token(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::TokenManage>,
    db: Db,
    axum::Form(form): axum::Form<TokenForm>,
) -> Result<Response, PageError> {
    let new = tokens::NewToken {
        name: form.name.clone(),
        role: form.role,
    };
    let can = Can(caller.clone(), PhantomData);
    match tokens::create_token(State(state.clone()), can, db, Json(new)).await {
        Ok((status, Json(made))) => {
            let secret = made["token"].as_str().unwrap_or_default().to_string();
            let name = made["name"].as_str().unwrap_or_default().to_string();
            let page = tokens_of(&state, &caller, Some((name, secret)), None, String::new());
            Ok((status, render(&page.await?)?).into_response())
        }
        Err(e @ (ApiError::Validation(_) | ApiError::Forbidden)) => {
            let text = form_error(&e);
            let status = e.into_response().status();
            let page = tokens_of(&state, &caller, None, Some(text), form.name).await?;
            Ok((status, render(&page)?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /tokens/{id}/revoke`.
async fn revoke_token(
    state: State<AppState>,
    PageCan(caller, _): PageCan<perm::TokenManage>,
    db: Db,
    Path(id): Path<uuid::Uuid>,
) -> Result<Response, PageError> {
    tokens::revoke_token(state, Can(caller, PhantomData), db, Path(id)).await?;
    Ok(see_other("/tokens"))
}

/// `POST /logout/everywhere`: ends every session of this person, on every
/// tenant and device; on to the log-in page.
async fn everywhere(state: State<AppState>, caller: Caller) -> Result<Response, PageError> {
    let done = people::logout_everywhere(state, caller).await?;
    Ok(see_other_with_cookie("/login", &done))
}
