//! `/api/members`: who belongs to this tenant, their roles, removing them,
//! leaving.

use crate::http::input::Json;
use crate::http::input::Path;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::record;
use crate::auth::{Role, perm};
use crate::control::{MemberChange, MemberRow};
use crate::http::AppState;
use crate::http::extract::{Caller, Can, Db};
use crate::http::{ApiError, ApiResult};

pub async fn list_members(
    axum::extract::State(state): axum::extract::State<AppState>,
    Can(caller, _): Can<perm::MemberRead>,
) -> ApiResult<Json<serde_json::Value>> {
    let members = state.control.members(caller.tenant.id).await?;
    Ok(Json(json!({ "items": members })))
}

#[derive(Debug, Deserialize)]
pub struct RoleChange {
    pub role: String,
}

/// Nobody grants or touches a role above their own: admins manage admins,
/// members and viewers; only owners make or unmake owners.
fn check_ceiling(caller: &Caller, target: &MemberRow, new: Option<Role>) -> ApiResult<()> {
    let mine = caller.role();
    if target.role < mine || new.is_some_and(|r| r < mine) {
        return Err(ApiError::Forbidden);
    }
    Ok(())
}

async fn find(state: &AppState, caller: &Caller, user: Uuid) -> ApiResult<MemberRow> {
    state
        .control
        .members(caller.tenant.id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .ok_or(ApiError::NotFound)
}

fn outcome(change: MemberChange) -> ApiResult<()> {
    match change {
        MemberChange::Done => Ok(()),
        MemberChange::NoSuchMember => Err(ApiError::NotFound),
        MemberChange::LastOwner => Err(ApiError::field(
            "role",
            "the organisation's last owner cannot be removed or demoted: make someone else owner first",
        )),
    }
}

/// `PATCH /api/members/{user_id}` `{"role": ...}`.
pub async fn change_role(
    axum::extract::State(state): axum::extract::State<AppState>,
    Can(caller, _): Can<perm::MemberManage>,
    Db(mut db): Db,
    Path(user): Path<Uuid>,
    Json(change): Json<RoleChange>,
) -> ApiResult<Json<MemberRow>> {
    set_role(&state, &mut db, &caller, user, &change.role)
        .await
        .map(Json)
}

/// Gives member `user` the role named `role` (never above the caller's
/// own, never the last owner's), ends their cached sessions' old role and
/// records it in the tenant's audit log. The caller holds `member.manage`.
pub async fn set_role(
    state: &AppState,
    db: &mut crate::pools::TenantConn,
    caller: &Caller,
    user: Uuid,
    role: &str,
) -> ApiResult<MemberRow> {
    let role = Role::parse(role)
        .ok_or_else(|| ApiError::field("role", "must be owner, admin, member or viewer"))?;
    let target = find(state, caller, user).await?;
    check_ceiling(caller, &target, Some(role))?;
    outcome(
        state
            .control
            .change_member(caller.tenant.id, user, Some(role))
            .await?,
    )?;
    state
        .session_cache
        .forget_user(user, Some(caller.tenant.id));
    record(
        db,
        caller,
        "member.role",
        "member",
        &user.to_string(),
        json!({"from": target.role, "to": role.as_str()}),
    )
    .await?;
    Ok(MemberRow { role, ..target })
}

/// `DELETE /api/members/{user_id}`: the membership and the user's sessions here.
pub async fn remove_member(
    axum::extract::State(state): axum::extract::State<AppState>,
    Can(caller, _): Can<perm::MemberManage>,
    Db(mut db): Db,
    Path(user): Path<Uuid>,
) -> ApiResult<StatusCode> {
    remove(&state, &mut db, &caller, user).await
}

/// Ends member `user`'s membership (never above the caller's role, never
/// the last owner). The caller holds `member.manage`.
pub async fn remove(
    state: &AppState,
    db: &mut crate::pools::TenantConn,
    caller: &Caller,
    user: Uuid,
) -> ApiResult<StatusCode> {
    let target = find(state, caller, user).await?;
    check_ceiling(caller, &target, None)?;
    end_membership(
        state,
        db,
        caller,
        user,
        "member.remove",
        json!({"email": target.email, "role": target.role}),
    )
    .await
}

/// `POST /api/members/leave`: a logged-in person leaves this tenant (not its
/// last owner).
pub async fn leave(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    Db(mut db): Db,
) -> ApiResult<StatusCode> {
    leave_tenant(&state, &mut db, &caller).await
}

/// The caller, logged in, leaves the tenant (not its last owner).
pub async fn leave_tenant(
    state: &AppState,
    db: &mut crate::pools::TenantConn,
    caller: &Caller,
) -> ApiResult<StatusCode> {
    let session = caller
        .session()
        .ok_or_else(|| ApiError::BadRequest("tokens are not members".into()))?;
    end_membership(
        state,
        db,
        caller,
        session.user_id,
        "member.leave",
        json!({}),
    )
    .await
}

/// Ends `user`'s membership of the caller's tenant (never its last owner)
/// and records `action` in the tenant's audit log.
async fn end_membership(
    state: &AppState,
    db: &mut crate::pools::TenantConn,
    caller: &Caller,
    user: Uuid,
    action: &str,
    detail: serde_json::Value,
) -> ApiResult<StatusCode> {
    outcome(
        state
            .control
            .change_member(caller.tenant.id, user, None)
            .await?,
    )?;
    state
        .session_cache
        .forget_user(user, Some(caller.tenant.id));
    record(db, caller, action, "member", &user.to_string(), detail).await?;
    Ok(StatusCode::NO_CONTENT)
}
