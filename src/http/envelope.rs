//! What wraps every request, as one layer: a request id (the caller's own
//! `x-request-id`, else a new one) in its span and on its response, a tracing
//! span (`tenant` is recorded in it once resolved), a time limit (504), and
//! the response counted by status.
//!
//! One hand-written layer rather than four from tower-http: each of those
//! wraps the request in a future of its own, and `route_overhead` measured
//! the four together at about a tenth of a request's CPU outside PostgreSQL.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service};
use tracing::Span;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest a request may take before it is answered 504.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct EnvelopeLayer {
    ids: RequestIds,
    timeout: Duration,
}

impl EnvelopeLayer {
    pub fn new(timeout: Duration) -> Self {
        Self {
            ids: RequestIds::new(),
            timeout,
        }
    }
}

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Envelope<S> {
        Envelope {
            inner,
            ids: self.ids.clone(),
            timeout: self.timeout,
        }
    }
}

#[derive(Clone)]
pub struct Envelope<S> {
    inner: S,
    ids: RequestIds,
    timeout: Duration,
}

impl<S> Service<Request<Body>> for Envelope<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = EnvelopeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Handlers see the id in the span, not in the request's headers: one
        // header fewer to insert (and a header map that need not grow).
        let id = match request.headers().get(&REQUEST_ID) {
            Some(given) => given.clone(),
            None => self.ids.next(),
        };
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = id.to_str().unwrap_or("-"),
            tenant = tracing::field::Empty,
        );
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        EnvelopeFuture {
            inner,
            deadline: tokio::time::sleep(self.timeout),
            span,
            id: Some(id),
            started: Instant::now(),
        }
    }
}

pin_project! {
    pub struct EnvelopeFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        deadline: Sleep,
        span: Span,
        id: Option<HeaderValue>,
        started: Instant,
    }
}

impl<F, E> Future for EnvelopeFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(result) => result?,
            Poll::Pending => {
                ready!(this.deadline.poll(cx));
                StatusCode::GATEWAY_TIMEOUT.into_response()
            }
        };
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        let status = response.status();
        metrics::counter!("bulkhead_http_requests_total", "status" => status_label(status))
            .increment(1);
        let latency_ms = this.started.elapsed().as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), latency_ms, "finished");
        }
        Poll::Ready(Ok(response))
    }
}

/// The status as a label without an allocation for the common ones.
fn status_label(status: StatusCode) -> std::borrow::Cow<'static, str> {
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

    fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .expect("hex digits and a dash are a valid header value")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app(limit: Duration) -> Router {
        Router::new()
            .route("/quick", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "too late"
                }),
            )
            .layer(EnvelopeLayer::new(limit))
    }

    async fn call(path: &str, id: Option<&str>, limit: Duration) -> Response<Body> {
        let mut request = Request::get(path);
        if let Some(id) = id {
            request = request.header(REQUEST_ID, id);
        }
        app(limit)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_request_past_the_limit_is_answered_504_with_its_id() {
        let started = Instant::now();
        let response = call("/slow", Some("slow-1"), Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.headers()[REQUEST_ID], "slow-1");
    }

    #[tokio::test]
    async fn ids_are_kept_when_given_and_made_distinct_when_not() {
        let given = call("/quick", Some("caller-7"), REQUEST_TIMEOUT).await;
        assert_eq!(given.status(), StatusCode::OK);
        assert_eq!(given.headers()[REQUEST_ID], "caller-7");
        let layer = EnvelopeLayer::new(REQUEST_TIMEOUT);
        let (a, b) = (layer.ids.next(), layer.ids.next());
        assert_ne!(a, b);
        let made = call("/quick", None, REQUEST_TIMEOUT).await;
        let id = made.headers()[REQUEST_ID].to_str().unwrap();
        let (prefix, n) = id.split_once('-').unwrap();
        assert_eq!(prefix.len(), 8);
        assert!(u64::from_str_radix(n, 16).is_ok(), "{id}");
    }
}
