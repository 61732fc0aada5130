//! The HTTP layer: routes, extractors and the one error shape. It calls into
//! the areas (routing, pools, auth, control); no area depends on it.

pub mod api;
mod error;
pub mod extract;
mod ops;
mod router;
pub use router::{Access, RouteSpec, routes};
mod state;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, Request};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiResult, RETRY_AFTER_SECS};
pub use ops::metrics_handle;
pub use state::{App, AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application router with its middleware: request ids, a tracing span per
/// request (`tenant` is recorded once resolved), a status counter, a timeout.
pub fn app(state: AppState) -> Router {
    router::router(state)
        .layer(axum::middleware::from_fn(count_status))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(),
                    request_id = %id, tenant = tracing::field::Empty)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn count_status(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let response = next.run(req).await;
    metrics::counter!("bulkhead_http_requests_total", "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

/// The metrics router, for its own listener.
pub fn metrics_app() -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(ops::render_metrics))
        .with_state(metrics_handle())
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
