//! Operations endpoints: liveness, readiness, the on-demand TLS question, and
//! Prometheus metrics (served on a listener of their own).

use std::sync::OnceLock;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

use super::state::AppState;
use crate::routing::{HostName, Route};

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the control plane answers.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.control.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: control plane unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "control plane unreachable")
        }
    }
}

#[derive(Deserialize)]
pub struct AskQuery {
    domain: Option<String>,
}

/// Caddy's `on_demand_tls ask`: 200 only for hosts bulkhead would serve, so a
/// certificate is never issued for an arbitrary name pointed at us.
pub async fn tls_ask(State(state): State<AppState>, Query(q): Query<AskQuery>) -> StatusCode {
    let Some(host) = q.domain.as_deref().and_then(|d| HostName::parse(d).ok()) else {
        return StatusCode::BAD_REQUEST;
    };
    match state.resolver.resolve(&host).await {
        Ok(Route::Tenant(t)) if t.status != crate::control::Status::Deleted => StatusCode::OK,
        Ok(Route::Apex | Route::Admin | Route::Api) => StatusCode::OK,
        Ok(_) => StatusCode::NOT_FOUND,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
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
    axum::extract::Path(token): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<String, super::ApiError> {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .ok_or(crate::routing::HostError::Missing)?;
    let host = HostName::parse(host)?;
    match state.control.domain(host.as_str()).await? {
        Some(d) if d.verification_token == token => Ok(token),
        _ => Err(super::ApiError::NotFound),
    }
}
