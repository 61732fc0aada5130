//! People pages: the members with their roles (change, remove, leave),
//! the pending invitations (invite, revoke; the plan's seats shown) and the
//! page an invitation's mailed link opens. The API's domain code does the
//! work; the page shows a control only to a role allowed to use it.

use askama::Template;
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::{Chrome, PageCan, PageError, form_error, render, see_other};
use crate::auth::{Permission, Role, perm};
use crate::control::{InvitationRow, MemberRow};
use crate::http::api::{invitations, members};
use crate::http::extract::{Caller, ClientIp, Db, Tenant, authority};
use crate::http::input::{Path, Query};
use crate::http::{Access, ApiError, AppState, Routes};

pub(super) fn routes(routes: Routes) -> Routes {
    use axum::routing::{get, post};
    let manage = Access::Requires(Permission::MEMBER_MANAGE);
    routes
        .page(
            "/members",
            Access::Requires(Permission::MEMBER_READ),
            get(list),
        )
        .page(
            "/members/invite",
            Access::Requires(Permission::MEMBER_INVITE),
            post(invite),
        )
        .page("/members/{id}/role", manage, post(change_role))
        .page("/members/{id}/remove", manage, post(remove))
        .page("/members/leave", Access::Authenticated, post(leave))
        .page(
            "/invitations/{id}/revoke",
            Access::Requires(Permission::MEMBER_INVITE),
            post(revoke),
        )
        .page("/join", Access::Public, get(join_page).post(join))
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    /// The roles the caller may give (none: no role controls).
    grantable: Vec<Role>,
    can_invite: bool,
    /// The roles the caller may invite with (never above their own).
    invitable: Vec<Role>,
    /// The logged-in person, to offer "leave" on their own row.
    me: Option<Uuid>,
    /// The plan's seats, when it has a limit: (plan, allowed, taken).
    seats: Option<(String, i64, i64)>,
    error: Option<String>,
    /// The invite form's fields, kept after an error.
    email: String,
    role: String,
}

impl MembersPage {
    /// Whether the caller may change or remove `m` (never above their
    /// own role).
    fn manages(&self, m: &MemberRow) -> bool {
        !self.grantable.is_empty() && self.grantable.contains(&m.role) && Some(m.user_id) != self.me
    }

    fn is_me(&self, m: &MemberRow) -> bool {
        Some(m.user_id) == self.me
    }

    fn at_seat_limit(&self) -> bool {
        self.seats
            .as_ref()
            .is_some_and(|(_, allowed, taken)| taken >= allowed)
    }

    fn date(t: &time::OffsetDateTime) -> String {
        t.date().to_string()
    }
}

async fn page(
    state: &AppState,
    caller: &Caller,
    error: Option<String>,
    email: String,
    role: String,
) -> Result<MembersPage, PageError> {
    let tenant = &caller.tenant;
    let can_invite = caller.role().allows(Permission::MEMBER_INVITE);
    let invitations = if can_invite {
        state.control.pending_invitations(tenant.id).await?
    } else {
        Vec::new()
    };
    let seats = match tenant.plan.max_members() {
        Some(allowed) => Some((
            tenant.plan.as_str().to_string(),
            allowed,
            state.control.seats_taken(tenant.id).await?,
        )),
        None => None,
    };
    let at_or_below: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| *r >= caller.role())
        .collect();
    let grantable = if caller.role().allows(Permission::MEMBER_MANAGE) {
        at_or_below.clone()
    } else {
        Vec::new()
    };
    Ok(MembersPage {
        chrome: Chrome::of(caller),
        members: state.control.members(tenant.id).await?,
        invitations,
        grantable,
        can_invite,
        invitable: at_or_below,
        me: caller.session().map(|s| s.user_id),
        seats,
        error,
        email,
        role,
    })
}

/// The page again, with what went wrong and its status (a 422, a 402 at
/// the seat limit, a 403 above the caller's role); other errors as pages.
async fn refused(
    state: &AppState,
    caller: &Caller,
    e: ApiError,
    email: String,
    role: String,
) -> Result<Response, PageError> {
    if !matches!(
        e,
        ApiError::Validation(_) | ApiError::PlanLimit { .. } | ApiError::Forbidden
    ) {
        return Err(e.into());
    }
    let text = form_error(&e);
    let status = e.into_response().status();
    let body = render(&page(state, caller, Some(text), email, role).await?)?;
    Ok((status, body).into_response())
}

/// `GET /members`.
async fn list(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::MemberRead>,
) -> Result<Response, PageError> {
    render(&page(&state, &caller, None, String::new(), "member".into()).await?)
}

#[derive(Debug, Deserialize)]
struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /members/invite`: mails an invitation, then back to the list.
async fn invite(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::MemberInvite>,
    Db(mut db): Db,
    parts: Parts,
    axum::Form(form): axum::Form<InviteForm>,
) -> Result<Response, PageError> {
    let new = invitations::NewInvitation {
        email: form.email.clone(),
        role: form.role.clone(),
    };
    let host = authority(&parts).ok();
    match invitations::invite_member(&state, &mut db, &caller, host, &new).await {
        Ok(_) => Ok(see_other("/members")),
        Err(e) => refused(&state, &caller, e, form.email, form.role).await,
    }
}

#[derive(Debug, Deserialize)]
struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /members/{id}/role`.
async fn change_role(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::MemberManage>,
    Db(mut db): Db,
    Path(user): Path<Uuid>,
    axum::Form(form): axum::Form<RoleForm>,
) -> Result<Response, PageError> {
    match members::set_role(&state, &mut db, &caller, user, &form.role).await {
        Ok(_) => Ok(see_other("/members")),
        Err(e) => refused(&state, &caller, e, String::new(), "member".into()).await,
    }
}

/// `POST /members/{id}/remove`.
async fn remove(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::MemberManage>,
    Db(mut db): Db,
    Path(user): Path<Uuid>,
) -> Result<Response, PageError> {
    match members::remove(&state, &mut db, &caller, user).await {
        Ok(_) => Ok(see_other("/members")),
        Err(e) => refused(&state, &caller, e, String::new(), "member".into()).await,
    }
}

/// `POST /members/leave`: the caller leaves; their session ends with it,
/// so on to the log-in page.
async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    Db(mut db): Db,
) -> Result<Response, PageError> {
    match members::leave_tenant(&state, &mut db, &caller).await {
        Ok(_) => Ok(see_other("/login")),
        Err(e) => refused(&state, &caller, e, String::new(), "member".into()).await,
    }
}

/// `POST /invitations/{id}/revoke`.
async fn revoke(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::MemberInvite>,
    Db(mut db): Db,
    Path(id): Path<Uuid>,
) -> Result<Response, PageError> {
    invitations::withdraw(&state, &mut db, &caller, id).await?;
    Ok(see_other("/members"))
}

#[derive(Template)]
#[template(path = "join.html")]
struct JoinPage {
    chrome: Chrome,
    code: String,
    display_name: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JoinQuery {
    #[serde(default)]
    code: String,
}

/// `GET /join?code=`: the mailed link's page, a form to accept with. The
/// code is not looked at until the form is sent (and counted there).
async fn join_page(
    tenant: Result<Tenant, ApiError>,
    Query(q): Query<JoinQuery>,
) -> Result<Response, PageError> {
    let Tenant(tenant) = tenant?;
    render(&JoinPage {
        chrome: Chrome::anonymous(tenant.slug.as_str()),
        code: q.code,
        display_name: String::new(),
        error: None,
    })
}

#[derive(Debug, Deserialize)]
struct JoinForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

/// `POST /join`: accepts the invitation (creating the account when the
/// e-mail has none), then the log-in page; or the form with what is wrong.
async fn join(
    State(state): State<AppState>,
    tenant: Result<Tenant, ApiError>,
    ClientIp(peer): ClientIp,
    axum::Form(form): axum::Form<JoinForm>,
) -> Result<Response, PageError> {
    let Tenant(tenant) = tenant?;
    let acceptance = invitations::Acceptance {
        token: form.code.trim().to_string(),
        password: Some(form.password).filter(|p| !p.is_empty()),
        display_name: Some(form.display_name.clone()),
    };
    match invitations::accept_invitation(&state, &tenant, peer, &acceptance).await {
        Ok(_) => Ok(see_other("/login?joined=1")),
        Err(e @ (ApiError::Validation(_) | ApiError::TooManyAttempts(_))) => {
            let error = form_error(&e);
            let status = e.into_response().status();
            let body = render(&JoinPage {
                chrome: Chrome::anonymous(tenant.slug.as_str()),
                code: form.code,
                display_name: form.display_name,
                error: Some(error),
            })?;
            Ok((status, body).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
