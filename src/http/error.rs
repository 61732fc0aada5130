//! One error type for every handler, one JSON shape for every error:
//! `{"error": {"code": "...", "message": "...", "fields": {...}}}`.
//! Internals (SQL, hosts) go to the log, never to the response.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::control::ControlError;
use crate::pools::PoolError;
use crate::routing::HostError;

/// Seconds a client is asked to wait before retrying a 503.
pub const RETRY_AFTER_SECS: u32 = 5;

/// What a handler answers when it cannot do what was asked: each variant is
/// one status and `code` of the JSON error shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `bad_host`: the `Host` is not a host name.
    #[error("bad host: {0}")]
    BadHost(#[from] HostError),
    /// Unknown host, deleted tenant, another tenant's id or token: one body.
    #[error("not found")]
    NotFound,
    /// 401 `unauthorized`: no session or token, or not a live one.
    #[error("authentication required")]
    Unauthorized,
    /// 403 `forbidden`: the caller's role lacks the permission.
    #[error("your role may not do this")]
    Forbidden,
    /// 403 `tenant_suspended`.
    #[error("this organisation is suspended")]
    Suspended,
    /// 503 `unavailable` with `Retry-After`: try again shortly.
    #[error("temporarily unavailable")]
    Unavailable,
    /// What needs the control plane while it cannot be reached (sign-up,
    /// log-in, anything not already in this process's caches).
    #[error("the control plane is unavailable; try again shortly")]
    ControlPlaneUnavailable,
    /// 503 `billing_disabled`: this instance has no Stripe key configured.
    #[error("billing is not set up on this instance (no Stripe key is configured)")]
    BillingDisabled,
    /// 503 `billing_unavailable` with `Retry-After`: Stripe could not be
    /// reached; nothing was half-made, retry.
    #[error("the payment provider could not be reached; nothing was changed, try again shortly")]
    BillingUnavailable,
    /// 502 `billing_error`: Stripe refused what was asked of it (its message).
    #[error("the payment provider refused the request: {0}")]
    BillingRefused(String),
    /// 403 for break-glass access: `code` says why (`no_access_grant`: no
    /// live grant; `support_access_never`: the tenant allows none;
    /// `read_only_grant`: a write under a read-only grant).
    #[error("{message}")]
    AccessRefused {
        /// The error's code.
        code: &'static str,
        /// What the operator is told.
        message: String,
    },
    /// 409 `conflict`: the request does not fit the resource's state.
    #[error("{0}")]
    Conflict(String),
    /// Wrong e-mail, wrong password, or not a member of this tenant: one answer.
    #[error("wrong e-mail or password")]
    InvalidCredentials,
    /// Too many log-ins, invitation codes or sign-ups from one e-mail or
    /// address; retry after this many seconds.
    #[error("too many attempts; try again later")]
    TooManyAttempts(u64),
    /// 403 `csrf`: a cookie write without its token, or from another origin.
    #[error("missing or wrong CSRF token, or a request from another origin")]
    Csrf,
    /// The tenant's plan allows no more of something.
    #[error("the {plan} plan allows {allowed} {what}; upgrade to pro for unlimited {what}")]
    PlanLimit {
        /// The plan's name.
        plan: &'static str,
        /// What it limits (`projects`).
        what: &'static str,
        /// How many it allows.
        allowed: i64,
    },
    /// 422 `validation`: these fields, each with what is wrong with it.
    #[error("invalid input")]
    Validation(BTreeMap<&'static str, String>),
    /// One field of the request that does not fit, named as the client
    /// wrote it (`tags[1]`, `limit`).
    #[error("invalid input")]
    BadField {
        /// The field, as the client wrote it.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// 415: the body is not sent as JSON.
    #[error("send the body as JSON, with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 413.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 405, with `Allow`.
    #[error("this path does not take this method")]
    MethodNotAllowed,
    /// 400 `bad_request`, with a message for the client.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 500 `internal`: the detail goes to the log, never to the client.
    #[error("internal error")]
    Internal(String),
    /// Anything unexpected, with its cause kept for the log.
    #[error("internal error")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// 500 for an error the handler did not expect (logged with its causes).
    pub fn unexpected(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ApiError::Unexpected(Box::new(e))
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        if e.is_unreachable() {
            metrics::counter!("bulkhead_control_plane_unavailable_total").increment(1);
            tracing::warn!(error = %crate::report::chain(&e), "control plane unavailable");
            return ApiError::ControlPlaneUnavailable;
        }
        ApiError::unexpected(e)
    }
}

impl From<crate::auth::HashingError> for ApiError {
    fn from(e: crate::auth::HashingError) -> Self {
        match e {
            crate::auth::HashingError::Busy(_) => ApiError::Unavailable,
            other => ApiError::unexpected(other),
        }
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        if e.is_retryable() {
            metrics::counter!("bulkhead_pool_unavailable_total").increment(1);
            tracing::warn!(error = %crate::report::chain(&e), "no tenant connection available");
            ApiError::Unavailable
        } else {
            ApiError::unexpected(e)
        }
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match e.code() {
            Some(c) if *c == SqlState::QUERY_CANCELED || *c == SqlState::LOCK_NOT_AVAILABLE => {
                ApiError::Unavailable
            }
            _ if crate::pools::server_went_away(&e) => {
                tracing::warn!(error = %crate::pg::describe(&e), "the tenant's server went away mid-request");
                ApiError::Unavailable
            }
            _ => ApiError::unexpected(e),
        }
    }
}

impl ApiError {
    /// 422 for one field: `name` and what is wrong with it.
    pub fn field(name: &'static str, message: impl Into<String>) -> Self {
        let mut fields = BTreeMap::new();
        fields.insert(name, message.into());
        ApiError::Validation(fields)
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadHost(_) => (StatusCode::BAD_REQUEST, "bad_host"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Suspended => (StatusCode::FORBIDDEN, "tenant_suspended"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::ControlPlaneUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "control_plane_unavailable")
            }
            ApiError::BillingDisabled => (StatusCode::SERVICE_UNAVAILABLE, "billing_disabled"),
            ApiError::BillingUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "billing_unavailable")
            }
            ApiError::BillingRefused(_) => (StatusCode::BAD_GATEWAY, "billing_error"),
            ApiError::AccessRefused { code, .. } => (StatusCode::FORBIDDEN, code),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            ApiError::PlanLimit { .. } => (StatusCode::PAYMENT_REQUIRED, "plan_limit"),
            ApiError::Validation(_) | ApiError::BadField { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation")
            }
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Internal(_) | ApiError::Unexpected(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                "internal error".to_string()
            }
            ApiError::Unexpected(cause) => {
                tracing::error!(error = %crate::report::chain(&**cause), "request failed");
                "internal error".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({"error": {"code": code, "message": message}});
        if let ApiError::Validation(fields) = &self {
            body["error"]["fields"] = json!(fields);
        }
        if let ApiError::BadField { field, message } = &self {
            body["error"]["fields"] = json!({ field: message });
        }
        if let ApiError::PlanLimit {
            plan,
            what,
            allowed,
        } = &self
        {
            body["error"]["limit"] = json!({"plan": plan, "what": what, "allowed": allowed});
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if let ApiError::TooManyAttempts(secs) = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
        }
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What a handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

/// Makes an error response that is not in the one shape (a framework's own,
/// an empty 504) into `{"error": {"code", "message"}}` for its status, keeping
/// its headers (`Allow`, `Retry-After`…). What bulkhead's own handlers answer
/// is already in shape and left alone: JSON, or a page's HTML.
pub fn ensure_error_shape(response: &mut Response) {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return;
    }
    // JSON: the API's; HTML: a page's error page (see `crate::web`).
    let in_shape = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if in_shape {
        return;
    }
    let reason = status.canonical_reason().unwrap_or("error");
    let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
    let body = json!({"error": {"code": code, "message": reason.to_ascii_lowercase()}});
    *response.body_mut() = axum::body::Body::from(body.to_string());
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
}
