//! Server-rendered pages: askama templates (checked at compile time, output
//! escaped by default), one layout, htmx and one stylesheet served from the
//! binary. Pages call the same domain code as the API, through the same
//! extractors: [`PageCan<P>`] is `Can<P>` for a page (a log-in page instead
//! of a 401); a form post's CSRF token comes as its `csrf` field
//! ([`form_csrf`]), and any error answer on a page route becomes an error
//! page ([`secure`]). Every form works without JavaScript; htmx only
//! enhances.
//!
//! Every page answer carries the security headers (see [`secure`]): a
//! `Content-Security-Policy` allowing this origin only and no inline
//! script, `frame-ancestors 'none'`, `nosniff`, `same-origin` referrers,
//! and HSTS unless cookies are not `Secure` (`dev`).

mod access;
pub(crate) mod admin;
pub mod assets;
mod billing;
mod members;
mod pages;
mod settings;

use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::auth::{Perm, sessions};
use crate::http::extract::{Caller, Can};
use crate::http::{ApiError, AppState};

/// The platform's pages.
pub(crate) fn routes(routes: crate::http::Routes) -> crate::http::Routes {
    let routes = pages::routes(routes);
    let routes = access::routes(routes);
    let routes = billing::routes(routes);
    let routes = members::routes(routes);
    let routes = settings::routes(routes);
    admin::routes(routes)
}

/// What the layout shows around every page of a tenant.
pub struct Chrome {
    /// This build's asset URLs.
    pub assets: &'static assets::AssetUrls,
    /// The organisation's slug.
    pub tenant: String,
    /// The person logged in (none on the log-in page).
    pub user: Option<String>,
    /// Their role's name.
    pub role: String,
    /// The session's CSRF token, for the forms.
    pub csrf: String,
    /// Whether the caller may read the audit log (its links shown).
    pub can_audit: bool,
    /// Whether the caller may manage API tokens (the link shown).
    pub can_tokens: bool,
}

impl Chrome {
    /// For `caller`'s pages.
    pub fn of(caller: &Caller) -> Self {
        let session = caller.session();
        Self {
            assets: assets::urls(),
            tenant: caller.tenant.slug.to_string(),
            user: session.map(|s| s.email.clone()),
            role: caller.role().as_str().to_string(),
            csrf: session.map(|s| s.csrf_token.clone()).unwrap_or_default(),
            can_audit: caller.role().allows(crate::auth::Permission::AUDIT_READ),
            can_tokens: caller.role().allows(crate::auth::Permission::TOKEN_MANAGE),
        }
    }

    /// Before log-in.
    pub fn anonymous(tenant: &str) -> Self {
        Self {
            assets: assets::urls(),
            tenant: tenant.to_string(),
            user: None,
            role: String::new(),
            csrf: String::new(),
            can_audit: false,
            can_tokens: false,
        }
    }
}

/// A page that could not be shown, as a page: the API's error for the same
/// request, with its status; no session (401) sends the browser to the
/// log-in page instead.
#[derive(Debug)]
pub struct PageError(pub ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    assets: &'static assets::AssetUrls,
    status: u16,
    title: &'a str,
    message: &'a str,
    /// A 503: the page asks again every two seconds (htmx) and shows what
    /// comes once it is served.
    retry: bool,
    /// A 5xx: the request's id, to quote when asking for help.
    request_id: Option<String>,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if matches!(self.0, ApiError::Unauthorized) {
            return see_other("/login");
        }
        // The API's answer says the status (and `Retry-After`).
        as_page(self.0.into_response())
    }
}

/// The error page for `status`.
fn error_page(status: StatusCode) -> Response {
    let title = match status.as_u16() {
        403 => "Not allowed",
        404 => "Not found",
        422 => "Please check what you entered",
        429 => "Too many attempts",
        503 => "Back in a moment",
        s if s >= 500 => "Something went wrong",
        _ => "That did not work",
    };
    let message = match status.as_u16() {
        403 => {
            "Your role in this organisation does not allow this, or the organisation is suspended."
        }
        404 => "There is nothing here.",
        429 => "Wait a few minutes, then try again.",
        503 => "This organisation is being set up or updated; this page reloads by itself.",
        s if s >= 500 => "Something went wrong on our side; it has been logged. Please try again.",
        _ => "",
    };
    let page = ErrorPage {
        assets: assets::urls(),
        status: status.as_u16(),
        title,
        message,
        retry: status == StatusCode::SERVICE_UNAVAILABLE,
        request_id: status
            .is_server_error()
            .then(crate::http::envelope::current_request_id)
            .flatten(),
    };
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(_) => status.into_response(),
    }
}

/// A template as a page (200).
pub fn render(page: &impl Template) -> Result<Response, PageError> {
    let body = page
        .render()
        .map_err(|e| ApiError::Internal(format!("a template failed: {e}")))?;
    Ok(Html(body).into_response())
}

/// A form's refusal as a line a person reads: each field's problem, or
/// the error's own words.
pub fn form_error(e: &ApiError) -> String {
    match e {
        ApiError::Validation(fields) => fields
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join("; "),
        ApiError::Forbidden => "Your role does not allow that.".into(),
        ApiError::TooManyAttempts(_) => {
            "Too many attempts. Wait a few minutes and try again.".into()
        }
        ApiError::Conflict(why) => why.clone(),
        ApiError::AccessRefused { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// `303 See Other` to `to` with the cookie `answer` sets (an API log-in's
/// or log-out's answer, turned into a page's).
pub fn see_other_with_cookie(to: &str, answer: &Response) -> Response {
    let mut response = see_other(to);
    if let Some(cookie) = answer.headers().get(axum::http::header::SET_COOKIE) {
        response
            .headers_mut()
            .insert(axum::http::header::SET_COOKIE, cookie.clone());
    }
    response
}

/// `303 See Other` to `to` (after a form post, or to the log-in page).
pub fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(LOCATION, v);
    }
    response
}

/// The caller, holding permission `P`, for a page: as `Can<P>`, but a
/// page answer (log-in page without a session, an error page else).
pub struct PageCan<P: Perm>(pub Caller, pub std::marker::PhantomData<P>);

impl<P: Perm> FromRequestParts<AppState> for PageCan<P> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        // Pages are for people: a bearer token is no page caller.
        if parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Err(PageError(ApiError::Unauthorized));
        }
        let Can(caller, _) = Can::<P>::from_request_parts(parts, state).await?;
        Ok(PageCan(caller, std::marker::PhantomData))
    }
}

/// The most a form may send.
const FORM_LIMIT: usize = 64 * 1024;

/// Form posts to pages: the session's CSRF token comes in the `csrf` field
/// and is moved into `X-CSRF-Token` (unless that is sent), so `Can<P>` and
/// `Db` check it exactly as they check the API's, `Origin` included. The
/// body is read (at most 64 KiB) and handed on unchanged.
pub async fn form_csrf(request: Request, next: axum::middleware::Next) -> Response {
    let is_form = request.headers().get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    if !is_form || request.headers().contains_key(sessions::CSRF_HEADER) {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return PageError(ApiError::PayloadTooLarge).into_response();
    };
    let token = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .ok()
        .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf"))
        .and_then(|(_, v)| HeaderValue::from_str(&v).ok());
    if let Some(token) = token {
        parts
            .headers
            .insert(HeaderName::from_static(sessions::CSRF_HEADER), token);
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// A page route's error in the API's shape (an extractor's, `Db`'s),
/// as an error page: the same status, a log-in page for 401.
fn as_page(response: Response) -> Response {
    let status = response.status();
    let json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(json && (status.is_client_error() || status.is_server_error())) {
        return response;
    }
    if status == StatusCode::UNAUTHORIZED {
        return see_other("/login");
    }
    let mut page = error_page(status);
    if let Some(v) = response.headers().get(axum::http::header::RETRY_AFTER) {
        page.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v.clone());
    }
    page
}

/// The security headers every page answer carries (a response layer on
/// the page routes).
pub async fn secure(State(state): State<AppState>, response: Response) -> Response {
    let mut response = as_page(response);
    add_security_headers(&mut response, &state);
    response
}

/// The pages' `Content-Security-Policy`: this origin only, no inline
/// script; forms may go to this origin and, as the upgrade and manage
/// buttons' answers redirect there, to Stripe's checkout and portal (or
/// the Stripe stand-in `dev` and the tests use).
fn csp(state: &AppState) -> HeaderValue {
    let stripe = match state
        .billing
        .settings()
        .stripe
        .as_ref()
        .and_then(|s| s.api_base.as_deref())
    {
        Some(base) => url::Url::parse(base)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default(),
        None => "https://checkout.stripe.com https://billing.stripe.com".into(),
    };
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; form-action 'self' {stripe}; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        )
    })
}

fn add_security_headers(response: &mut Response, state: &AppState) {
    let hsts = state.sessions.secure_cookies;
    let h = response.headers_mut();
    h.insert("content-security-policy", csp(state));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if hsts {
        h.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

/// What the router answers for a path it does not have, asked by a
/// browser (`Accept: text/html`) outside `/api/`: the 404 page, not the
/// API's JSON.
pub fn not_found_page(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    path: &str,
) -> Option<Response> {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if !wants_html || path.starts_with("/api/") {
        return None;
    }
    let mut page = error_page(StatusCode::NOT_FOUND);
    add_security_headers(&mut page, state);
    Some(page)
}
