//! The HTTP layer: routes, extractors and the one error shape. It calls into
//! the areas (routing, pools, auth, control); no area depends on it.

pub mod api;
mod client_ip;
pub use client_ip::parse_network;
mod envelope;
mod error;
pub mod extract;
mod ops;
mod peer;
pub use peer::Peer;
mod router;
pub use router::{Access, RouteSpec, routes};
mod state;

use axum::Router;

pub use error::{ApiError, ApiResult, RETRY_AFTER_SECS};
pub use ops::metrics_handle;
pub use state::{App, AppState};

/// The application router with what wraps every request (see [`envelope`]):
/// request ids, a tracing span, a 30 s limit, responses counted by status.
pub fn app(state: AppState) -> Router {
    with_envelope(router::router(state))
}

#[doc(hidden)]
pub fn with_envelope(router: Router) -> Router {
    router.layer(envelope::EnvelopeLayer::new(envelope::REQUEST_TIMEOUT))
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
    axum::serve(listener, app.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
}
