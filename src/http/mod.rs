//! The HTTP layer: routes, extractors and the one error shape. It calls into
//! the areas (routing, pools, auth, control); no area depends on it.

pub mod api;
mod client_ip;
pub use client_ip::parse_network;
mod error;
pub mod extract;
mod ops;
mod router;
pub use router::{Access, RouteSpec, routes};
mod state;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ApiResult, RETRY_AFTER_SECS};
pub use ops::metrics_handle;
pub use state::{App, AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The application router with its middleware: request ids, a tracing span per
/// request (`tenant` is recorded once resolved) whose response hook counts
/// statuses, a timeout.
pub fn app(state: AppState) -> Router {
    router::router(state)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<_>| {
                    let id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(),
                        request_id = %id, tenant = tracing::field::Empty)
                })
                .on_response(count_status),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RequestIds::new()))
}

/// Counts responses by status, and logs them as `DefaultOnResponse` would
/// (at debug level).
fn count_status<B>(response: &axum::http::Response<B>, latency: Duration, span: &tracing::Span) {
    metrics::counter!("bulkhead_http_requests_total", "status" => status_label(response.status()))
        .increment(1);
    tower_http::trace::OnResponse::<B>::on_response(
        tower_http::trace::DefaultOnResponse::new(),
        response,
        latency,
        span,
    );
}

/// The status as a label without an allocation for the common ones.
fn status_label(status: axum::http::StatusCode) -> std::borrow::Cow<'static, str> {
    match status.as_u16() {
        200 => "200".into(),
        201 => "201".into(),
        202 => "202".into(),
        204 => "204".into(),
        other => other.to_string().into(),
    }
}

/// Request ids `<process>-<n>`: a random 8-hex-digit prefix per process (two
/// instances behind one proxy do not collide) and a counter. Cheaper than a
/// random UUID per request, which costs a `getrandom` system call.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        Self {
            prefix: crate::secret::random_hex(4).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
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
