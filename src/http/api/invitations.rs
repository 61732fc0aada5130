//! `/api/invitations`: inviting people by e-mail with a role (a single-use,
//! expiring token, of which only the hash is kept, sent through the outbox),
//! listing and revoking pending invitations, and accepting one.

use std::time::Duration;

use crate::http::input::Json;
use crate::http::input::Path;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{admit, hash_for, record};
use crate::auth::{Role, passwords, perm, sessions};
use crate::control::{Accepted, Attempt, AttemptKind, Email, InvitationRow};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{Can, ClientIp, Db, Tenant};
use crate::http::state::AppState;
use crate::outbox::Mail;

/// How long an invitation can be accepted.
pub const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    pub email: String,
    pub role: String,
}

/// `POST /api/invitations`: 201 with the invitation (never its token, which
/// goes to the invitee only).
pub async fn invite(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::MemberInvite>,
    Db(mut db): Db,
    parts: axum::http::request::Parts,
    Json(new): Json<NewInvitation>,
) -> ApiResult<(StatusCode, Json<InvitationRow>)> {
    let host = crate::http::extract::authority(&parts).ok();
    let invitation = invite_member(&state, &mut db, &caller, host, &new).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// Invites `new.email` with `new.role` (never above the caller's own, not
/// past the plan's seats), mails the code with a link to the tenant's own
/// host and records it in the tenant's audit log. The caller holds
/// `member.invite`; `request_host` is the host the request came to.
pub async fn invite_member(
    state: &AppState,
    db: &mut crate::pools::TenantConn,
    caller: &crate::http::extract::Caller,
    request_host: Option<&str>,
    new: &NewInvitation,
) -> ApiResult<InvitationRow> {
    let email = Email::parse(&new.email).map_err(|e| ApiError::field("email", e.to_string()))?;
    let role = Role::parse(&new.role)
        .ok_or_else(|| ApiError::field("role", "must be owner, admin, member or viewer"))?;
    // Nobody invites above their own role.
    if role < caller.role() {
        return Err(ApiError::Forbidden);
    }
    let tenant = &caller.tenant;
    if state
        .control
        .members(tenant.id)
        .await?
        .iter()
        .any(|m| m.email == email.as_str())
    {
        return Err(ApiError::field("email", "is already a member"));
    }
    if let Some(allowed) = tenant.plan.max_members()
        && state.control.seats_taken(tenant.id).await? >= allowed
    {
        return Err(ApiError::PlanLimit {
            plan: tenant.plan.as_str(),
            what: "members",
            allowed,
        });
    }
    let token = crate::secret::random_hex(32);
    let inviter = caller.session().map(|s| s.user_id);
    let invitation = state
        .control
        .insert_invitation(
            tenant.id,
            &email,
            role,
            &sessions::hash(&token),
            inviter,
            LIFETIME,
        )
        .await?;
    mail_invitation(state, &tenant.slug, request_host, &email, role, &token).await?;
    record(
        db,
        caller,
        "member.invite",
        "invitation",
        &invitation.id.to_string(),
        json!({"email": email, "role": role.as_str()}),
    )
    .await?;
    Ok(invitation)
}

/// Mails an invitation's code to `email`, with a link to the tenant's own
/// host whichever host it was made on (`request_host`: on the API or the
/// admin host, accepting there would find no tenant).
pub async fn mail_invitation(
    state: &AppState,
    slug: &crate::control::Slug,
    request_host: Option<&str>,
    email: &str,
    role: Role,
    token: &str,
) -> ApiResult<()> {
    let url = state.tenant_url(slug, request_host);
    // Short lines: mail stays 7-bit and readable, the code on a line of its own.
    let body = format!(
        "You are invited to join {slug} as {role}.\n\n\
         Accept it here (valid for 7 days, once):\n\n\
         {url}/join?code={token}\n\n\
         Or with the API, and this code:\n\n\
         {token}\n\n\
         curl -X POST {url}/api/invitations/accept \\\n  \
         -H 'content-type: application/json' \\\n  \
         -d '{{\"token\": \"<the code>\", \"password\": \"<yours>\"}}'\n\n\
         (The password is needed only if you have no account yet.)\n",
        role = role.as_str(),
    );
    state
        .outbox
        .send(&Mail {
            to: email,
            subject: &format!("Your invitation to {slug}"),
            body: &body,
        })
        .await
        .map_err(|e| ApiError::Internal(format!("outbox: {e}")))?;
    Ok(())
}

pub async fn list_invitations(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::MemberInvite>,
) -> ApiResult<Json<serde_json::Value>> {
    let items = state.control.pending_invitations(caller.tenant.id).await?;
    Ok(Json(json!({ "items": items })))
}

pub async fn revoke_invitation(
    State(state): State<AppState>,
    Can(caller, _): Can<perm::MemberInvite>,
    Db(mut db): Db,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    withdraw(&state, &mut db, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes the caller's tenant's pending invitation `id` (404 if there is
/// none) and records it. The caller holds `member.invite`.
pub async fn withdraw(
    state: &AppState,
    db: &mut crate::pools::TenantConn,
    caller: &crate::http::extract::Caller,
    id: Uuid,
) -> ApiResult<()> {
    if !state
        .control
        .revoke_invitation(caller.tenant.id, id)
        .await?
    {
        return Err(ApiError::NotFound);
    }
    record(
        db,
        caller,
        "invitation.revoke",
        "invitation",
        &id.to_string(),
        json!({}),
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    pub token: String,
    /// Needed when the invited e-mail has no account yet.
    pub password: Option<String>,
    pub display_name: Option<String>,
}

/// `POST /api/invitations/accept` on the inviting tenant's host: once, before
/// it expires; creates the account if the e-mail has none.
pub async fn accept(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ClientIp(peer): ClientIp,
    Json(a): Json<Acceptance>,
) -> ApiResult<Json<serde_json::Value>> {
    let (email, role) = accept_invitation(&state, &tenant, peer, &a).await?;
    Ok(Json(
        json!({"tenant": tenant.slug.as_str(), "email": email, "role": role}),
    ))
}

/// Accepts the invitation `a.token` to `tenant` (from `peer`, counted
/// against its limit): the invited e-mail and the role it now has.
pub async fn accept_invitation(
    state: &AppState,
    tenant: &crate::routing::TenantEntry,
    peer: std::net::IpAddr,
    a: &Acceptance,
) -> ApiResult<(String, Role)> {
    let invalid = || {
        ApiError::field(
            "token",
            "is not a valid invitation (used, revoked or expired?)",
        )
    };
    // Every code tried counts against the address (one that works is
    // forgotten again), so codes cannot be guessed at speed.
    let ip = peer.to_string();
    let limits = &state.sessions;
    let attempt = admit(
        state,
        &Attempt {
            kind: AttemptKind::Invitation,
            email: None,
            ip: (&ip, limits.max_invitation_attempts_per_ip),
            tenant: Some(tenant.id),
            window: limits.login_window,
        },
    )
    .await?;
    if a.token.len() != 64 || !a.token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let token_hash = sessions::hash(&a.token);
    // The code first: nothing is hashed for a made-up one, nor for an
    // e-mail that already has its account.
    let Some(pending) = state
        .control
        .pending_invitation(tenant.id, &token_hash)
        .await?
    else {
        return Err(invalid());
    };
    let new_user = match (&a.password, pending.has_account) {
        (Some(password), false) => {
            passwords::check_policy(password)
                .map_err(|e| ApiError::field("password", e.to_string()))?;
            let password = password.clone();
            let hash = hash_for(state, attempt, move || passwords::hash(&password)).await?;
            let name = a
                .display_name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty() && n.chars().count() <= 200)
                .unwrap_or("New member")
                .to_string();
            Some((name, hash))
        }
        _ => None,
    };
    let outcome = state
        .control
        .accept_invitation(
            tenant.id,
            &token_hash,
            new_user.as_ref().map(|(n, h)| (n.as_str(), h.as_str())),
        )
        .await?;
    match outcome {
        Accepted::Joined { user, email, role } => {
            state.control.forget_attempt(attempt).await?;
            state
                .control
                .audit(
                    &format!("user:{email}"),
                    "member.join",
                    Some(tenant.id),
                    json!({"user": user, "role": role}),
                )
                .await?;
            Ok((email, role))
        }
        Accepted::Invalid => Err(invalid()),
        Accepted::NeedsPassword => Err(ApiError::field(
            "password",
            "set a password (10-128 characters) to create your account",
        )),
        Accepted::AlreadyMember => Err(ApiError::field("token", "you are already a member")),
    }
}
