//! [`Standing`]: where the caller's tenant stands with billing, for a
//! product's own routes (`GET /api/tenant` of the reference application).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use time::OffsetDateTime;

use crate::http::extract::Caller;
use crate::http::{ApiError, AppState};

/// The caller's tenant's billing standing: its plan, and, while a failed
/// payment keeps it on pro for a grace period, when that ends.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Standing {
    /// `free` or `pro`.
    pub plan: &'static str,
    /// When the tenant moves to free unless its payment goes through
    /// (`None`: no payment is overdue, or it is not known just now).
    #[serde(with = "time::serde::rfc3339::option")]
    pub grace_ends_at: Option<OffsetDateTime>,
}

impl FromRequestParts<AppState> for Standing {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let tenant = &caller.tenant;
        let mut grace_ends_at = None;
        // Only a pro tenant can be in its grace period: a free one costs
        // no query.
        if tenant.plan == crate::control::Plan::Pro && state.billing.enabled() {
            match state.control.billing_subscriptions(tenant.id).await {
                Ok(subs) => {
                    grace_ends_at = subs
                        .iter()
                        .filter(|s| s.status == "past_due")
                        .filter_map(|s| s.past_due_since)
                        .map(|since| since + state.billing.settings().grace)
                        .max();
                }
                // The plan is known (cached); only the grace end is not.
                Err(e) => {
                    tracing::debug!(error = %crate::report::chain(&e), "billing standing: grace end unknown")
                }
            }
        }
        Ok(Standing {
            plan: tenant.plan.as_str(),
            grace_ends_at,
        })
    }
}
