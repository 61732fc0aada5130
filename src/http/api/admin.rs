//! Platform operators on the admin host (admin.<base> only; 404 anywhere
//! else): enrolment from a one-time link (password, TOTP, recovery codes),
//! log-in with a second factor, log-out, who-am-I. Every step that succeeds
//! leaves a row in the platform audit log.

use crate::http::input::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{admit, hash_for};
use crate::auth::{operators, passwords, sessions};
use crate::control::{Attempt, AttemptKind, Email, NewOperatorSession, Operator, OperatorSecrets};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::ClientIp;
use crate::http::operator::{OperatorCaller, admin_host};
use crate::http::state::AppState;

/// The actor an operator is in the platform audit log.
fn actor(op: &Operator) -> String {
    format!("operator:{}", op.email)
}

fn public(op: &Operator) -> Value {
    json!({"id": op.id, "email": op.email, "role": op.role})
}

/// Every operator credential tried (link, code, password) counts against
/// the address; a log-in also against the e-mail.
async fn count(state: &AppState, ip: &str, email: Option<&str>) -> ApiResult<i64> {
    let limits = &state.sessions;
    admit(
        state,
        &Attempt {
            kind: AttemptKind::OperatorLogin,
            email: email.map(|e| (e, limits.max_failures_per_email)),
            ip: (ip, limits.max_failures_per_ip),
            tenant: None,
            window: limits.login_window,
        },
    )
    .await
}

fn invalid_link() -> ApiError {
    ApiError::field(
        "token",
        "is not a valid enrolment link (used, replaced or expired?)",
    )
}

#[derive(Debug, Deserialize)]
pub struct EnrolRequest {
    pub token: String,
    pub password: String,
}

/// `POST /api/admin/enrol`: uses a one-time enrolment link to set the
/// password and a new second factor. Answers the `otpauth://` URI and ten
/// recovery codes, once; the operator can log in only after
/// `POST /api/admin/enrol/confirm` with a code from the app.
pub async fn enrol(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    parts: Parts,
    Json(req): Json<EnrolRequest>,
) -> ApiResult<Json<Value>> {
    admin_host(&parts, &state).await?;
    passwords::check_policy(&req.password)
        .map_err(|e| ApiError::field("password", e.to_string()))?;
    let ip = peer.to_string();
    let attempt = count(&state, &ip, None).await?;
    let token_hash = sessions::hash(req.token.trim());
    // The link before the hash: a wrong one costs no hashing slot.
    let op = state
        .control
        .enrolment(&token_hash)
        .await?
        .ok_or_else(invalid_link)?;
    let password = req.password.clone();
    let hash = hash_for(&state, attempt, move || passwords::hash(&password)).await?;
    let seed = operators::new_seed();
    let codes = operators::new_recovery_codes();
    let code_hashes: Vec<[u8; 32]> = codes.iter().map(|c| operators::recovery_hash(c)).collect();
    if !state
        .control
        .begin_enrolment(&token_hash, &hash, &seed, &code_hashes)
        .await?
    {
        return Err(invalid_link());
    }
    state.control.forget_attempt(attempt).await?;
    state
        .control
        .audit(
            &actor(&op),
            "operator.enrol",
            None,
            json!({"operator": op.id, "ip": ip}),
        )
        .await?;
    let secret = state.secret.operator_totp_secret(&seed);
    let uri = operators::otpauth_uri(&secret, &op.email);
    Ok(Json(json!({
        "operator": public(&op),
        "qr_svg": operators::qr_code(&uri, true),
        "otpauth_uri": uri,
        "secret": operators::base32_secret(&secret),
        "recovery_codes": codes,
        "next": "POST /api/admin/enrol/confirm with this token and a code from the app",
    })))
}

#[derive(Debug, Deserialize)]
pub struct ConfirmRequest {
    pub token: String,
    pub code: String,
}

/// `POST /api/admin/enrol/confirm`: a current TOTP code proves the app has
/// the secret; the enrolment is then complete and the link void.
pub async fn confirm_enrolment(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    parts: Parts,
    Json(req): Json<ConfirmRequest>,
) -> ApiResult<Json<Value>> {
    admin_host(&parts, &state).await?;
    let ip = peer.to_string();
    let attempt = count(&state, &ip, None).await?;
    let (op, seed) = state
        .control
        .pending_enrolment(&sessions::hash(req.token.trim()))
        .await?
        .ok_or_else(invalid_link)?;
    let secret = state.secret.operator_totp_secret(&seed);
    let step = operators::check_code(&secret, &req.code, operators::unix_now())
        .ok_or_else(|| ApiError::field("code", "is not the app's current code"))?;
    if !state.control.complete_enrolment(op.id, step).await? {
        return Err(invalid_link());
    }
    state.control.forget_attempt(attempt).await?;
    state
        .control
        .audit(
            &actor(&op),
            "operator.enrolled",
            None,
            json!({"operator": op.id, "ip": ip}),
        )
        .await?;
    Ok(Json(json!({"operator": public(&op), "enrolled": true})))
}

#[derive(Debug, Deserialize)]
pub struct AdminLoginRequest {
    pub email: String,
    pub password: String,
    /// The app's current code...
    pub totp: Option<String>,
    /// ...or one unused recovery code.
    pub recovery_code: Option<String>,
}

/// `POST /api/admin/login`: password and a second factor. A wrong password,
/// a wrong or replayed code, an unknown e-mail, an operator not enrolled or
/// disabled: one identical 401. Counted before the hash, per e-mail and per
/// address, as user log-ins are.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(peer): ClientIp,
    parts: Parts,
    Json(req): Json<AdminLoginRequest>,
) -> ApiResult<Response> {
    admin_host(&parts, &state).await?;
    let email = Email::parse(&req.email).map_err(|e| ApiError::field("email", e.to_string()))?;
    let ip = peer.to_string();
    let attempt = count(&state, &ip, Some(&email)).await?;
    let found = state.control.operator_secrets(&email).await?;
    let password = req.password.clone();
    let stored = found.as_ref().and_then(|f| f.password_hash.clone());
    let password_ok = hash_for(&state, attempt, move || {
        passwords::verify_or_burn(&password, stored.as_deref())
    })
    .await?;
    let eligible = found.as_ref().is_some_and(|f| {
        password_ok && f.operator.enrolled_at.is_some() && f.operator.disabled_at.is_none()
    });
    let factor = second_factor(&state, found.as_ref(), eligible, &req).await?;
    let (Some(found), Some(factor)) = (found.filter(|_| eligible), factor) else {
        // The attempt stays recorded: it is a failure now.
        tracing::info!(%ip, "failed operator log-in");
        return Err(ApiError::InvalidCredentials);
    };
    let op = found.operator;
    state.control.forget_attempt(attempt).await?;
    if let Some(old) = operators::presented(&parts.headers) {
        state
            .control
            .delete_operator_session(&sessions::hash(old))
            .await?;
    }
    let value = sessions::new_session_value();
    let user_agent: String = parts
        .headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(500)
        .collect();
    state
        .control
        .insert_operator_session(&NewOperatorSession {
            id_hash: &sessions::hash(&value),
            operator: op.id,
            user_agent: &user_agent,
            ip: &ip,
        })
        .await?;
    state
        .control
        .audit(
            &actor(&op),
            "operator.login",
            None,
            json!({"operator": op.id, "ip": ip, "factor": factor}),
        )
        .await?;
    tracing::info!(operator = %op.id, "operator log-in");
    let body = json!({
        "operator": public(&op),
        "csrf_token": state.secret.csrf_token(&value),
        "recovery_codes_left": state.control.recovery_codes_left(op.id).await?,
    });
    let cookie = operators::set_cookie(&value, state.sessions.secure_cookies);
    Ok(([(SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Which second factor let the operator in (`totp`, `recovery_code`), if
/// one did: a TOTP code whose step was not used before, or an unused
/// recovery code (used up now). Only an `eligible` operator (right
/// password, enrolled, not disabled) gets in, but the work done is the same
/// either way (a code is checked against a stand-in secret, a recovery code
/// looked up), so the time taken does not tell a right password from a
/// wrong one.
async fn second_factor(
    state: &AppState,
    found: Option<&OperatorSecrets>,
    eligible: bool,
    req: &AdminLoginRequest,
) -> ApiResult<Option<&'static str>> {
    let id = found.map_or(uuid::Uuid::nil(), |f| f.operator.id);
    if let Some(code) = &req.totp {
        let seed = found
            .and_then(|f| f.totp_seed.clone())
            .unwrap_or_else(|| vec![0; 16]);
        let secret = state.secret.operator_totp_secret(&seed);
        let step = operators::check_code(&secret, code, operators::unix_now());
        return Ok(match step {
            // A right code: known only to whoever has the secret.
            Some(step) if eligible => state
                .control
                .use_totp_step(id, step)
                .await?
                .then_some("totp"),
            _ => None,
        });
    }
    if let Some(code) = &req.recovery_code {
        let hash = operators::recovery_hash(code);
        return Ok(state
            .control
            .use_recovery_code(id, &hash, eligible)
            .await?
            .then_some("recovery_code"));
    }
    Ok(None)
}

/// `POST /api/admin/logout`: ends this operator session.
pub async fn logout(State(state): State<AppState>, caller: OperatorCaller) -> ApiResult<Response> {
    state
        .control
        .delete_operator_session(&caller.session_hash)
        .await?;
    state
        .control
        .audit(
            &actor(&caller.operator),
            "operator.logout",
            None,
            json!({"operator": caller.operator.id, "ip": caller.ip.map(|i| i.to_string())}),
        )
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(
            SET_COOKIE,
            operators::clear_cookie(state.sessions.secure_cookies),
        )],
    )
        .into_response())
}

/// `GET /api/admin/me`: the operator, its role, the CSRF token its writes
/// must carry, and how many recovery codes it has left.
pub async fn me(State(state): State<AppState>, caller: OperatorCaller) -> ApiResult<Json<Value>> {
    let left = state
        .control
        .recovery_codes_left(caller.operator.id)
        .await?;
    Ok(Json(json!({
        "operator": public(&caller.operator),
        "csrf_token": caller.csrf_token,
        "recovery_codes_left": left,
    })))
}
