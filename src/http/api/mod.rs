//! The tenant API under `/api/`: JSON in, JSON out, every handler bound to the
//! caller's tenant through its extractors.

#[doc(hidden)]
pub mod admin;
#[doc(hidden)]
pub mod admin_access;
#[doc(hidden)]
pub mod admin_actions;
#[doc(hidden)]
pub mod admin_fleet;
#[doc(hidden)]
pub mod admin_tenants;
#[doc(hidden)]
pub mod audit;
#[doc(hidden)]
pub mod billing;
#[doc(hidden)]
pub mod invitations;
#[doc(hidden)]
pub mod members;
#[doc(hidden)]
pub mod people;
#[doc(hidden)]
pub mod settings;
#[doc(hidden)]
pub mod support_access;
#[doc(hidden)]
pub mod tokens;

use serde::{Deserialize, Serialize};
use tokio_postgres::Transaction;

use super::error::{ApiError, ApiResult};
use super::extract::Caller;
use super::state::AppState;
use crate::control::{Admission, Attempt};

/// `?cursor=<id>&limit=<n>`: ids below the cursor, newest first.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page (none: the first page).
    pub cursor: Option<String>,
    /// Items per page.
    pub limit: Option<i64>,
}

impl PageQuery {
    /// Items per page when `limit` is not given.
    pub const DEFAULT_LIMIT: i64 = 20;
    /// The most items a page may have.
    pub const MAX_LIMIT: i64 = 100;

    /// (cursor id, limit), validated.
    pub fn parse(&self) -> ApiResult<(i64, i64)> {
        let limit = self.limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        let cursor = match &self.cursor {
            None => i64::MAX,
            Some(c) => c
                .parse::<i64>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| ApiError::field("cursor", "not a cursor from this API"))?,
        };
        Ok((cursor, limit))
    }
}

/// A page of a list: `{"items": [...], "next_cursor": "..."}`.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A page of `items` asked for with `limit`; `id` gives an item's id,
    /// the cursor of the next page when this one is full.
    pub fn new(items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let next_cursor = (items.len() as i64 == limit)
            .then(|| items.last().map(|last| id(last).to_string()))
            .flatten();
        Self { items, next_cursor }
    }
}

/// Records a write in the tenant's own audit log, in the write's transaction.
pub async fn audit(
    tx: &Transaction<'_>,
    caller: &Caller,
    action: &str,
    object_type: &str,
    object_id: &str,
    detail: serde_json::Value,
) -> ApiResult<()> {
    tx.execute(
        "INSERT INTO audit_log (actor, actor_label, action, object_type, object_id, detail, client_ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &caller.actor_id(),
            &caller.label(),
            &action,
            &object_type,
            &object_id,
            &detail,
            &caller.ip,
        ],
    )
    .await?;
    Ok(())
}

/// Records a change made outside the tenant database (in the control plane)
/// in the tenant's audit log, in a transaction of its own.
pub async fn record(
    db: &mut crate::pools::TenantConn,
    caller: &Caller,
    action: &str,
    object_type: &str,
    object_id: &str,
    detail: serde_json::Value,
) -> ApiResult<()> {
    let tx = db.transaction().await?;
    audit(&tx, caller, action, object_type, object_id, detail).await?;
    tx.commit().await?;
    Ok(())
}

/// Admits and records a rate-limited attempt (see `control::attempts`):
/// its id, or 429 with `Retry-After` past a limit.
pub async fn admit(state: &AppState, attempt: &Attempt<'_>) -> ApiResult<i64> {
    match state.control.admit_attempt(attempt).await? {
        Admission::Admitted(id) => Ok(id),
        Admission::Refused(wait) => Err(ApiError::TooManyAttempts(wait.as_secs().max(1))),
    }
}

/// Runs a password hash or check for an admitted attempt; when no hashing
/// slot frees in time the attempt was never really made, so it is
/// forgotten before the 503.
pub async fn hash_for<T: Send + 'static>(
    state: &AppState,
    attempt: i64,
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    match state.hashing.run(work).await {
        Ok(out) => Ok(out),
        Err(e) => {
            state.control.forget_attempt(attempt).await?;
            Err(e.into())
        }
    }
}

/// Checks a required text field's length.
pub fn text_field(
    errors: &mut std::collections::BTreeMap<&'static str, String>,
    name: &'static str,
    value: &str,
    min: usize,
    max: usize,
) {
    let n = value.trim().chars().count();
    if n < min || value.chars().count() > max {
        errors.insert(name, format!("must be {min}-{max} characters"));
    }
}
