//! The HTTP layer: routes, extractors and the one error shape. It calls into
//! the areas (routing, pools, auth, control); no area depends on it.

pub mod api;
mod authn;
pub mod break_glass;
mod caller;
mod client_ip;
mod db;
#[doc(hidden)]
pub use client_ip::parse_network;
pub(crate) mod envelope;
#[doc(hidden)]
pub use envelope::Envelope;
mod error;
pub mod extract;
mod gate;
pub mod input;
mod listener;
pub use listener::HttpLimits;
#[doc(hidden)]
pub use listener::serve;
pub(crate) mod operator;
mod ops;
mod peer;
#[doc(hidden)]
pub use peer::Peer;
mod router;
pub(crate) use router::specs as router_specs;
pub use router::{Access, OperatorRouteSpec, RouteSpec, Routes, operator_routes, routes};
mod state;

use axum::Router;

pub use error::{ApiError, ApiResult, RETRY_AFTER_SECS};
#[doc(hidden)]
pub use ops::metrics_handle;
pub use state::{App, AppState};

/// The application: the platform's routes and `product`'s, inside what wraps
/// every request (see [`Envelope`]): request ids, a tracing span, a 30 s
/// limit, responses counted by status.
pub fn app(state: AppState, product: &crate::app::Product) -> Envelope<Router> {
    with_envelope(router::router(router::all(product), state))
}

/// `router` inside the envelope, once around the whole router rather than
/// around each of its routes (`Router::layer`), which would box and clone
/// every route's service once more per request.
#[doc(hidden)]
pub fn with_envelope(router: Router) -> Envelope<Router> {
    with_envelope_limit(router, envelope::REQUEST_TIMEOUT)
}

/// [`with_envelope`] with another time limit than 30 s (tests).
#[doc(hidden)]
pub fn with_envelope_limit(router: Router, limit: std::time::Duration) -> Envelope<Router> {
    use tower::Layer;
    envelope::EnvelopeLayer::new(limit).layer(router)
}

/// The metrics router, for its own listener.
pub fn metrics_app() -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(ops::render_metrics))
        .with_state(metrics_handle())
}
