//! The platform's own pages on a tenant's host: log-in and log-out (the
//! product's pages, the reference app's projects, come with it).

use askama::Template;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{Chrome, PageError, render, see_other};
use crate::auth::sessions;
use crate::control::{Slug, Status};
use crate::http::api::people;
use crate::http::extract::{Caller, ClientIp, Tenant, authority, host};
use crate::http::input::{Path, Query};
use crate::http::{Access, ApiError, AppState, Routes};
use crate::routing::Route;

/// The platform's pages.
pub(crate) fn routes(routes: Routes) -> Routes {
    use axum::routing::{get, post};
    routes
        .page("/", Access::Public, get(home))
        .page("/signup", Access::Public, post(signup))
        .page("/signup/check", Access::Public, get(check_slug))
        .page("/signup/{slug}", Access::Public, get(creating))
        .page("/login", Access::Public, get(login_page).post(login))
        .page("/logout", Access::Authenticated, post(logout))
}

/// `GET /`: on the apex, what this is and the sign-up form; on a tenant's
/// host, its projects (the log-in page first when not logged in).
async fn home(State(state): State<AppState>, parts: Parts) -> Result<Response, PageError> {
    match state.resolver.resolve(&host(&parts)?).await? {
        Route::Apex => render(&SignupPage::blank()),
        Route::Tenant(_) => Ok(see_other("/projects")),
        Route::Admin => Ok(see_other("/admin")),
        _ => Err(ApiError::NotFound.into()),
    }
}

/// 404 unless the request is for the apex.
async fn on_apex(state: &AppState, parts: &Parts) -> Result<(), PageError> {
    match state.resolver.resolve(&host(parts)?).await? {
        Route::Apex => Ok(()),
        _ => Err(ApiError::NotFound.into()),
    }
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    chrome: Chrome,
    organisation: String,
    slug: String,
    email: String,
    /// Field → what is wrong with it.
    errors: std::collections::BTreeMap<&'static str, String>,
}

impl SignupPage {
    fn blank() -> Self {
        Self {
            chrome: Chrome::anonymous("bulkhead"),
            organisation: String::new(),
            slug: String::new(),
            email: String::new(),
            errors: Default::default(),
        }
    }

    fn error(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }
}

#[derive(Debug, Deserialize)]
struct SignupForm {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /signup` (apex): the API's sign-up from a form; on to the page
/// that waits for the workspace, or the form again with each field's
/// problem (422; 429 past the limit).
async fn signup(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    parts: Parts,
    axum::Form(form): axum::Form<SignupForm>,
) -> Result<Response, PageError> {
    on_apex(&state, &parts).await?;
    let req = people::SignupRequest {
        email: form.email.clone(),
        password: form.password,
        organisation: form.organisation.clone(),
        slug: form.slug.clone(),
        display_name: None,
    };
    match people::sign_up(&state, peer, &req).await {
        Ok((slug, _)) => Ok(see_other(&format!("/signup/{slug}"))),
        Err(ApiError::Validation(errors)) => {
            let page = render(&SignupPage {
                chrome: Chrome::anonymous("bulkhead"),
                organisation: form.organisation,
                slug: form.slug,
                email: form.email,
                errors,
            })?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct SlugQuery {
    #[serde(default)]
    slug: String,
}

/// `GET /signup/check?slug=` (apex): whether the address is free, as the
/// line under the sign-up form's field (htmx swaps it in as one types).
async fn check_slug(
    State(state): State<AppState>,
    parts: Parts,
    Query(q): Query<SlugQuery>,
) -> Result<Response, PageError> {
    on_apex(&state, &parts).await?;
    let text = q.slug.trim();
    let (ok, line) = match Slug::parse(text) {
        _ if text.is_empty() => (true, String::new()),
        Err(e) => (false, format!("Address {e}")),
        Ok(slug) => match state.control.tenant_by_slug(&slug).await? {
            Some(_) => (false, format!("{slug} is taken")),
            None => (true, format!("{slug} is available")),
        },
    };
    let class = if ok { "status" } else { "error" };
    // Text only, escaped: the slug is whatever was typed.
    let line = askama::filters::escape(&line, askama::filters::Html)
        .map(|e| e.to_string())
        .unwrap_or_default();
    Ok(Html(format!(
        "<p class=\"{class}\" id=\"slug-check\" role=\"status\">{line}</p>"
    ))
    .into_response())
}

#[derive(Template)]
#[template(path = "creating.html")]
struct CreatingPage {
    chrome: Chrome,
    slug: String,
}

/// `GET /signup/{slug}` (apex): "your workspace is being created", polled
/// by htmx every two seconds (a link without JavaScript); once the tenant
/// is active, on to its log-in page.
async fn creating(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    parts: Parts,
) -> Result<Response, PageError> {
    on_apex(&state, &parts).await?;
    let parsed = Slug::parse(&slug).map_err(|_| ApiError::NotFound)?;
    let tenant = state
        .control
        .tenant_by_slug(&parsed)
        .await?
        .ok_or(ApiError::NotFound)?;
    match tenant.status {
        Status::Active => {
            let url = state.tenant_url(&parsed, authority(&parts).ok());
            let login = format!("{url}/login");
            if parts.headers.contains_key("hx-request") {
                let mut response = StatusCode::NO_CONTENT.into_response();
                if let Ok(v) = HeaderValue::from_str(&login) {
                    response.headers_mut().insert("hx-redirect", v);
                }
                return Ok(response);
            }
            Ok(see_other(&login))
        }
        Status::Provisioning => render(&CreatingPage {
            chrome: Chrome::anonymous("bulkhead"),
            slug: parsed.to_string(),
        }),
        _ => Err(ApiError::NotFound.into()),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    email: String,
    error: Option<String>,
    /// Just joined through an invitation: says so.
    joined: bool,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    joined: Option<String>,
}

/// `GET /login`: the log-in form of the tenant the host names.
async fn login_page(
    tenant: Result<Tenant, ApiError>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let Tenant(tenant) = tenant?;
    render(&LoginPage {
        chrome: Chrome::anonymous(tenant.slug.as_str()),
        email: String::new(),
        error: None,
        joined: q.joined.is_some(),
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: the API's log-in, from a form; the session's cookie and
/// on to the projects, or the form again with what went wrong.
async fn login(
    State(state): State<AppState>,
    tenant: Result<Tenant, ApiError>,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, PageError> {
    let Tenant(tenant) = tenant?;
    match people::log_in(&state, &tenant, peer, &headers, &form.email, &form.password).await {
        Ok(done) => {
            let mut response = see_other("/projects");
            let cookie = sessions::set_cookie(&done.value, &state.sessions);
            if let Ok(v) = cookie.parse() {
                response.headers_mut().insert(SET_COOKIE, v);
            }
            Ok(response)
        }
        Err(
            e @ (ApiError::InvalidCredentials
            | ApiError::Validation(_)
            | ApiError::TooManyAttempts(_)),
        ) => {
            let status = e.into_response().status();
            let error = match status.as_u16() {
                429 => "Too many attempts. Wait a few minutes and try again.",
                _ => "Wrong e-mail or password.",
            };
            let page = render(&LoginPage {
                chrome: Chrome::anonymous(tenant.slug.as_str()),
                email: form.email,
                error: Some(error.into()),
                joined: false,
            })?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /logout`: ends this session (its CSRF token as the `csrf` field).
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, PageError> {
    if let Some(session) = caller.session() {
        state.control.delete_session(&session.session_hash).await?;
        state
            .session_cache
            .forget(session.session_hash, caller.tenant.id)
            .await;
    }
    let mut response = see_other("/login");
    if let Ok(v) = sessions::clear_cookie(&state.sessions).parse() {
        response.headers_mut().insert(SET_COOKIE, v);
    }
    Ok(response)
}
