//! People: sign-up on the apex host (which provisions the organisation's
//! tenant in the background), log-in and log-out on a tenant's host, and
//! who-am-I.

use std::collections::BTreeMap;

use crate::http::input::Json;
use axum::extract::State;
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{admit, hash_for};
use crate::auth::{passwords, sessions};
use crate::control::{Attempt, AttemptKind, Email, Mode, NewSession, Plan, Slug};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Caller, ClientIp, Tenant, host};
use crate::http::state::AppState;
use crate::provision::{CreateRequest, ProvisionError, Reserved};
use crate::routing::Route;

#[derive(Debug, Deserialize)]
pub struct SignupRequest {
    pub email: String,
    pub password: String,
    /// The organisation's name.
    pub organisation: String,
    /// The organisation's address: `<slug>.<base domain>`.
    pub slug: String,
    pub display_name: Option<String>,
}

/// `POST /api/signup` on the apex host: the user, the tenant (reserved now,
/// provisioned in the background) and the user's ownership of it; 202 with the
/// tenant's URL, which answers 503 until the tenant is active. Any invalid or
/// taken value is a 422 naming the field, and nothing is created.
pub async fn signup(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    parts: axum::http::request::Parts,
    Json(req): Json<SignupRequest>,
) -> ApiResult<Response> {
    let on = host(&parts)?;
    if !matches!(state.resolver.resolve(&on).await?, Route::Apex) {
        return Err(ApiError::NotFound);
    }
    let (slug, user) = sign_up(&state, peer, &req).await?;
    let url = state.tenant_url(&slug, crate::http::extract::authority(&parts).ok());
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "tenant": slug.as_str(),
            "url": url,
            "status": "provisioning",
            "user": {"id": user.id, "email": user.email, "display_name": user.display_name},
        })),
    )
        .into_response())
}

/// Signs a person up (the API's and the sign-up page's): every field
/// checked (422 naming each bad one, nothing created), counted per client
/// address, then the user, the tenant reserved, the ownership, the audit
/// row; the tenant is provisioned in the background. The tenant's slug and
/// the user.
pub async fn sign_up(
    state: &AppState,
    peer: std::net::IpAddr,
    req: &SignupRequest,
) -> ApiResult<(Slug, crate::control::User)> {
    let mut fields = BTreeMap::new();
    let email = Email::parse(&req.email)
        .map_err(|e| fields.insert("email", e.to_string()))
        .ok();
    if let Err(e) = passwords::check_policy(&req.password) {
        fields.insert("password", e.to_string());
    }
    let organisation = req.organisation.trim().to_string();
    if organisation.is_empty() || organisation.chars().count() > 200 {
        fields.insert("organisation", "must be 1-200 characters".into());
    }
    let display_name = req
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .or_else(|| {
            email
                .as_deref()
                .and_then(|e| e.split('@').next())
                .map(str::to_string)
        })
        .unwrap_or_default();
    if display_name.chars().count() > 200 {
        fields.insert("display_name", "must be at most 200 characters".into());
    }
    let slug = Slug::parse(req.slug.trim())
        .map_err(|e| fields.insert("slug", e.to_string()))
        .ok();
    if let Some(slug) = &slug
        && state.control.tenant_by_slug(slug).await?.is_some()
    {
        fields.insert("slug", "is taken".into());
    }
    if let Some(email) = &email
        && state.control.user_by_email(email).await?.is_some()
    {
        fields.insert("email", "already has an account: log in instead".into());
    }
    let (Some(email), Some(slug)) = (email, slug) else {
        return Err(ApiError::Validation(fields));
    };
    if !fields.is_empty() {
        return Err(ApiError::Validation(fields));
    }

    // Each sign-up creates a database: a limit per client address, counted
    // once the input is valid (a typo corrected costs nothing).
    let ip = peer.to_string();
    let limits = &state.sessions;
    admit(
        state,
        &Attempt {
            kind: AttemptKind::Signup,
            email: None,
            ip: (&ip, limits.max_signups_per_ip),
            tenant: None,
            window: limits.signup_window,
        },
    )
    .await?;
    let password = req.password.clone();
    let hash = state
        .hashing
        .run(move || passwords::hash(&password))
        .await?;
    let user = state
        .control
        .insert_user(&email, &display_name, &hash)
        .await?
        .ok_or_else(|| ApiError::field("email", "already has an account: log in instead"))?;
    let request = CreateRequest {
        slug: slug.to_string(),
        display_name: Some(organisation),
        mode: Mode::Database,
        plan: Plan::Free,
        server: None,
    };
    let tenant = match state.provisioner.reserve(&request).await {
        Ok(Reserved::New(tenant)) => tenant,
        other => {
            // Taken meanwhile, quarantined, or no server: undo the user.
            state.control.discard_user(user.id).await?;
            return Err(match other {
                Ok(Reserved::Existing(_)) => ApiError::field("slug", "is taken"),
                Err(ProvisionError::SlugQuarantined { .. }) => {
                    ApiError::field("slug", "is not available yet")
                }
                Err(ProvisionError::Slug(e)) => ApiError::field("slug", e.to_string()),
                // Out of room or a server away: worth retrying later.
                Err(
                    e @ (ProvisionError::NoCapacity
                    | ProvisionError::ServerDraining(_)
                    | ProvisionError::ServerUnreachable { .. }),
                ) => {
                    tracing::error!(error = %crate::report::chain(&e), "sign-up could not reserve a tenant");
                    ApiError::Unavailable
                }
                Err(ProvisionError::Control(e)) if e.is_unreachable() => e.into(),
                // Anything else is no reason to retry (the input was checked).
                Err(e) => ApiError::Internal(format!("sign-up could not reserve a tenant: {e}")),
                Ok(Reserved::New(_)) => unreachable!("handled above"),
            });
        }
    };
    state
        .control
        .add_membership(user.id, tenant.id, crate::control::Role::Owner)
        .await?;
    state
        .control
        .audit(
            &format!("user:{email}"),
            "tenant.signup",
            Some(tenant.id),
            json!({"user": user.id}),
        )
        .await?;
    let provisioner = state.provisioner.clone();
    let slug_text = tenant.slug.to_string();
    tokio::spawn(async move {
        if let Err(e) = provisioner.complete(tenant).await {
            // Recorded on the tenant; `bulkhead reconcile` finishes it.
            tracing::error!(tenant = %slug_text, error = %crate::report::chain(&e), "provisioning after sign-up failed");
        }
    });
    Ok((slug, user))
}

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `POST /api/login` on a tenant's host. A wrong password, an unknown e-mail
/// and a user who is not a member of this tenant get one identical answer,
/// in about the same time. Failures are recorded and, past a limit per
/// e-mail or per client address, refused with 429 + `Retry-After`. A new
/// session each time (any session the client presented ends).
pub async fn login(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ClientIp(peer): ClientIp,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    let done = log_in(&state, &tenant, peer, &headers, &req.email, &req.password).await?;
    let body = json!({
        "user": {"id": done.user.id, "email": done.user.email, "display_name": done.user.display_name},
        "role": done.role,
        "csrf_token": state.secret.csrf_token(&done.value),
    });
    Ok((
        [(
            SET_COOKIE,
            sessions::set_cookie(&done.value, &state.sessions),
        )],
        Json(body),
    )
        .into_response())
}

/// A log-in that succeeded: the new session's cookie value, who, and
/// their role in the tenant.
pub struct LoggedIn {
    /// The `bh_session` cookie's value.
    pub value: String,
    pub user: crate::control::User,
    pub role: crate::auth::Role,
}

/// Logs `email` in to `tenant` with `password` (the API's and the log-in
/// page's): counted and limited before the hash, one answer for every
/// failure, the session presented in `headers` (if any) replaced.
pub async fn log_in(
    state: &AppState,
    tenant: &crate::routing::TenantEntry,
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    email: &str,
    password: &str,
) -> ApiResult<LoggedIn> {
    let settings = &state.sessions;
    // Not an address at all: no account can match, nothing to count.
    let email = Email::parse(email).map_err(|e| ApiError::field("email", e.to_string()))?;
    let ip = peer.to_string();
    // Counted before the hash, atomically: attempts sent all at once cannot
    // all slip under the limit.
    let attempt = admit(
        state,
        &Attempt {
            kind: AttemptKind::Login,
            email: Some((&email, settings.max_failures_per_email)),
            ip: (&ip, settings.max_failures_per_ip),
            tenant: Some(tenant.id),
            window: settings.login_window,
        },
    )
    .await?;
    let user = state.control.user_by_email(&email).await?;
    let given = password.to_string();
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let password_ok = hash_for(state, attempt, move || {
        passwords::verify_or_burn(&given, stored.as_deref())
    })
    .await?;
    let member = match (&user, password_ok) {
        (Some(u), true) => state.control.membership_role(u.id, tenant.id).await?,
        _ => None,
    };
    let (Some(user), Some(role)) = (user, member) else {
        // The attempt stays recorded: it is a failure now.
        tracing::info!(tenant = %tenant.slug, %ip, "failed log-in");
        return Err(ApiError::InvalidCredentials);
    };
    state.control.forget_attempt(attempt).await?;
    if passwords::needs_rehash(&user.password_hash) {
        let password = password.to_string();
        // Best effort: the log-in stands even when no slot is free for it.
        if let Ok(fresh) = state.hashing.run(move || passwords::hash(&password)).await {
            state.control.set_password_hash(user.id, &fresh).await?;
        }
    }
    if let Some(old) = sessions::presented(headers) {
        state.control.delete_session(&sessions::hash(old)).await?;
    }
    let value = sessions::new_session_value();
    let user_agent: String = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(500)
        .collect();
    state
        .control
        .insert_session(&NewSession {
            id_hash: &sessions::hash(&value),
            user: user.id,
            tenant: tenant.id,
            lifetime: settings.absolute,
            user_agent: &user_agent,
            ip: &ip,
        })
        .await?;
    tracing::info!(tenant = %tenant.slug, user = %user.id, "log-in");
    Ok(LoggedIn { value, user, role })
}

/// `POST /api/logout`: ends this session.
pub async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let session = caller
        .session()
        .ok_or_else(|| ApiError::BadRequest("log-out ends a session; this is a token".into()))?;
    state.control.delete_session(&session.session_hash).await?;
    state
        .session_cache
        .forget(session.session_hash, caller.tenant.id)
        .await;
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, sessions::clear_cookie(&state.sessions))],
    )
        .into_response())
}

/// `POST /api/logout-everywhere`: ends every session of this user, on every
/// tenant and device.
pub async fn logout_everywhere(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Response> {
    let session = caller
        .session()
        .ok_or_else(|| ApiError::BadRequest("log-out ends sessions; this is a token".into()))?;
    let ended = state.control.delete_user_sessions(session.user_id).await?;
    state.session_cache.forget_user(session.user_id, None);
    Ok((
        [(SET_COOKIE, sessions::clear_cookie(&state.sessions))],
        Json(json!({"ended": ended})),
    )
        .into_response())
}

/// `GET /api/me`: the caller, its role here, and (for a session) the CSRF
/// token its writes must carry.
pub async fn me(caller: Caller) -> Json<serde_json::Value> {
    let tenant = caller.tenant.slug.as_str();
    Json(match &caller.principal {
        crate::http::extract::Principal::Session(s) => json!({
            "tenant": tenant,
            "role": s.role,
            "user": {"id": s.user_id, "email": s.email, "display_name": s.display_name},
            "csrf_token": s.csrf_token,
        }),
        crate::http::extract::Principal::Token(t) => json!({
            "tenant": tenant,
            "role": t.role,
            "token": {"id": t.id, "name": t.name},
        }),
        crate::http::extract::Principal::BreakGlass(o) => json!({
            "tenant": tenant,
            "role": o.role,
            "operator": {"id": o.operator_id, "email": o.email, "grant": o.grant_id},
        }),
    })
}
