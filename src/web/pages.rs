//! The platform's own pages on a tenant's host: log-in and log-out (the
//! product's pages, the reference app's projects, come with it).

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Chrome, PageError, render, see_other};
use crate::auth::sessions;
use crate::http::api::people;
use crate::http::extract::{Caller, ClientIp, Tenant};
use crate::http::{Access, ApiError, AppState, Routes};

/// The platform's pages.
pub(crate) fn routes(routes: Routes) -> Routes {
    use axum::routing::{get, post};
    routes
        .page("/", Access::Public, get(home))
        .page("/login", Access::Public, get(login_page).post(login))
        .page("/logout", Access::Authenticated, post(logout))
}

/// `GET /`: the tenant's first page (log-in first when not logged in).
async fn home(tenant: Result<Tenant, ApiError>) -> Result<Response, PageError> {
    tenant?;
    Ok(see_other("/projects"))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    email: String,
    error: Option<String>,
}

/// `GET /login`: the log-in form of the tenant the host names.
async fn login_page(tenant: Result<Tenant, ApiError>) -> Result<Response, PageError> {
    let Tenant(tenant) = tenant?;
    render(&LoginPage {
        chrome: Chrome::anonymous(tenant.slug.as_str()),
        email: String::new(),
        error: None,
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
