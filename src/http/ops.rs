//! Operations endpoints: liveness, readiness, the on-demand TLS question, and
//! Prometheus metrics (served on a listener of their own).

use std::sync::OnceLock;

use axum::extract::State;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::input::{Path, Query};
use super::state::AppState;
use crate::control::{ControlError, HealthState, Status};
use crate::routing::{HostName, Route};

pub async fn healthz() -> &'static str {
    "ok"
}

/// `ready` (200) when the control plane answers; `degraded: serving from
/// cache…` (200: keep this instance in rotation, it serves every tenant it
/// knew) while the control plane is away within the stale window; 503
/// `control_plane_unavailable` when it is away for longer, or does not answer.
pub async fn readyz(State(state): State<AppState>) -> ApiResult<String> {
    let health = state.control.health();
    match health.state() {
        HealthState::Stale { away } => {
            return Ok(format!(
                "degraded: serving from cache (control plane unreachable for {}s;                  cached answers trusted for {}s more)",
                away.as_secs(),
                health.stale_for().saturating_sub(away).as_secs()
            ));
        }
        HealthState::Down { away } => return Err(ControlError::Away(away).into()),
        HealthState::Up => {}
    }
    match state.control.ping().await {
        Ok(()) => Ok("ready".into()),
        Err(e) => {
            tracing::warn!(error = %crate::report::chain(&e), "not ready: control plane unreachable");
            Err(if e.is_unreachable() {
                e.into()
            } else {
                ApiError::Unavailable
            })
        }
    }
}

#[derive(Deserialize)]
pub struct AskQuery {
    domain: Option<String>,
}

/// Caddy's `on_demand_tls ask`: 200 only for hosts bulkhead would serve, so a
/// certificate is never issued for an arbitrary name pointed at us.
pub async fn tls_ask(
    State(state): State<AppState>,
    Query(q): Query<AskQuery>,
) -> ApiResult<&'static str> {
    let host = q
        .domain
        .as_deref()
        .and_then(|d| HostName::parse(d).ok())
        .ok_or_else(|| ApiError::field("domain", "must be a host name"))?;
    let certify = match state.resolver.resolve(&host).await? {
        Route::Tenant(t) => certifies(t.status),
        Route::Apex | Route::Admin | Route::Api => true,
        _ => false,
    };
    if certify {
        Ok("ok")
    } else {
        Err(ApiError::NotFound)
    }
}

/// Whether a tenant's host gets a certificate, decided per status: every
/// tenant that is or will be served gets one, so what it answers (the 403 of a
/// suspended tenant, the 503 of one being created or migrated) arrives over
/// TLS; a tenant on its way out gets none, so nothing new is issued for a
/// name about to be released.
pub fn certifies(status: Status) -> bool {
    match status {
        Status::Active
        | Status::Provisioning
        | Status::Suspended
        | Status::Migrating
        | Status::MigrationFailed => true,
        Status::Deleting | Status::Deleted => false,
    }
}

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

pub async fn render_metrics(State(handle): State<PrometheusHandle>) -> String {
    handle.render()
}

/// `/.well-known/bulkhead-verify/{token}`: answers the token of a domain
/// waiting for verification, on that domain's own host only.
pub async fn domain_verification(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<String> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(crate::routing::HostError::Missing)?;
    let host = HostName::parse(host)?;
    match state.control.domain(host.as_str()).await? {
        Some(d) if d.verification_token == token => Ok(token),
        _ => Err(ApiError::NotFound),
    }
}
