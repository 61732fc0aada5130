//! What wraps every request, as one layer: a request id (the caller's own
//! `x-request-id`, else a new one) in its span and on its response, a tracing
//! span (`tenant` is recorded in it once resolved), a time limit (504), and
//! the response counted by status. A request past its limit (or whose client
//! went away) is dropped, and with it any query its handler was running: its
//! tenant connection cancels the query on the server.
//!
//! One hand-written layer rather than four from tower-http: each of those
//! wraps the request in a future of its own, and `route_overhead` measured
//! the four together at about a tenth of a request's CPU outside PostgreSQL.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use metrics::Counter;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service};
use tracing::Span;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest a request may take before it is answered 504.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Holds only the time limit: request ids and status counters are process
/// wide, so the per-request clone of the service (hyper clones it for every
/// request) shares no reference count between the cores.
#[derive(Clone)]
pub struct EnvelopeLayer {
    timeout: Duration,
}

impl EnvelopeLayer {
    pub fn new(timeout: Duration) -> Self {
        // Before any status counter is looked up (see `count`).
        let _ = super::ops::metrics_handle();
        Self { timeout }
    }
}

impl<S> Layer<S> for EnvelopeLayer {
    type Service = Envelope<S>;

    fn layer(&self, inner: S) -> Envelope<S> {
        Envelope {
            inner,
            timeout: self.timeout,
        }
    }
}

#[doc(hidden)]
#[derive(Clone)]
pub struct Envelope<S> {
    inner: S,
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
            None => next_request_id(),
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
        let started = Instant::now();
        EnvelopeFuture {
            inner,
            deadline: tokio::time::sleep_until((started + self.timeout).into()),
            span,
            id: Some(id),
            started,
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
        // Marks the handler's poll: a tenant connection dropped outside one
        // was dropped with its request unfinished (see `pools::request`).
        let polled = {
            let _handler = crate::pools::HandlerPoll::enter();
            let _id = this.id.as_ref().map(CurrentId::enter);
            this.inner.poll(cx)
        };
        let mut response = match polled {
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
        if status.as_u16() >= 400 {
            super::error::ensure_error_shape(&mut response);
        }
        count(status);
        let latency_ms = this.started.elapsed().as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), latency_ms, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), latency_ms, "finished");
        }
        Poll::Ready(Ok(response))
    }
}

/// The request id (its first 64 bytes) while this thread polls the
/// request's handler: an error page shows it. A copy on the stack, no
/// allocation per poll.
type IdCopy = Option<([u8; 64], u8)>;

thread_local! {
    static CURRENT_ID: std::cell::Cell<IdCopy> = const { std::cell::Cell::new(None) };
}

/// Sets the thread's current request id while it lives, then puts back
/// the one before (another request's, polled around this one).
struct CurrentId(IdCopy);

impl CurrentId {
    fn enter(id: &HeaderValue) -> Self {
        let bytes = id.as_bytes();
        let len = bytes.len().min(64);
        let mut copy = [0u8; 64];
        copy[..len].copy_from_slice(&bytes[..len]);
        CurrentId(CURRENT_ID.with(|c| c.replace(Some((copy, len as u8)))))
    }
}

impl Drop for CurrentId {
    fn drop(&mut self) {
        CURRENT_ID.with(|c| c.set(self.0));
    }
}

/// The id of the request whose handler this thread is polling, if any (an
/// error page for a 500 shows it, to be quoted when asking for help).
pub fn current_request_id() -> Option<String> {
    CURRENT_ID
        .with(|c| c.get())
        .map(|(bytes, len)| String::from_utf8_lossy(&bytes[..usize::from(len)]).into_owned())
}

/// `bulkhead_http_requests_total` by status: each status's counter is looked
/// up in the recorder once, then kept (a lookup builds and hashes a labelled
/// key on every call). The recorder is installed before the first layer is
/// made, so no handle kept here belongs to a recorder that was not there yet.
fn count(status: StatusCode) {
    // Every code `StatusCode` can hold: 100 to 999.
    static COUNTERS: [OnceLock<Counter>; 900] = [const { OnceLock::new() }; 900];
    let code = status.as_u16();
    COUNTERS[usize::from(code - 100)]
        .get_or_init(
            || metrics::counter!("bulkhead_http_requests_total", "status" => code.to_string()),
        )
        .increment(1);
}

/// Request ids `<process>-<n>`: a random 8-hex-digit prefix per process (two
/// instances behind one proxy do not collide) and a counter. Cheaper than a
/// random UUID per request, which costs a `getrandom` system call. Each thread
/// takes numbers from the process's counter a block at a time, so the
/// counter's cache line is not fought over on every request.
fn next_request_id() -> HeaderValue {
    use std::cell::Cell;
    use std::io::Write;
    const BLOCK: u64 = 1024;
    static PREFIX: LazyLock<String> = LazyLock::new(|| crate::secret::random_hex(4));
    static BLOCKS: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        /// The next number this thread hands out, and the end of its block.
        static RANGE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
    }
    let n = RANGE.with(|range| {
        let (mut next, mut end) = range.get();
        if next == end {
            next = BLOCKS.fetch_add(1, Ordering::Relaxed) * BLOCK + 1;
            end = next + BLOCK;
        }
        range.set((next + 1, end));
        next
    });
    // 8 hex digits, a dash and at most 16 more: on the stack.
    let mut id = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut id[..]);
    write!(cursor, "{}-{n:x}", *PREFIX).expect("an id fits in 32 bytes");
    let len = cursor.position() as usize;
    HeaderValue::from_bytes(&id[..len]).expect("hex digits and a dash are a valid header value")
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

    /// What `bulkhead_http_requests_total` says for `code` now (0 if absent).
    fn counted(code: u16) -> u64 {
        let text = crate::http::ops::metrics_handle().render();
        let series = format!("bulkhead_http_requests_total{{status=\"{code}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .map_or(0, |n| n.trim().parse().unwrap())
    }

    #[test]
    fn every_status_code_is_counted_even_the_unusual_ones() {
        // Other tests count too, in parallel: compare each with itself.
        let _ = EnvelopeLayer::new(REQUEST_TIMEOUT);
        for code in [100, 200, 599, 600, 999] {
            let before = counted(code);
            count(StatusCode::from_u16(code).unwrap());
            count(StatusCode::from_u16(code).unwrap());
            assert!(counted(code) >= before + 2, "status {code} not counted");
        }
    }

    #[tokio::test]
    async fn ids_are_kept_when_given_and_made_distinct_when_not() {
        let given = call("/quick", Some("caller-7"), REQUEST_TIMEOUT).await;
        assert_eq!(given.status(), StatusCode::OK);
        assert_eq!(given.headers()[REQUEST_ID], "caller-7");
        let (a, b) = (next_request_id(), next_request_id());
        assert_ne!(a, b);
        // Another thread takes its numbers from another block.
        let c = std::thread::spawn(next_request_id).join().unwrap();
        assert!(c != a && c != b);
        let made = call("/quick", None, REQUEST_TIMEOUT).await;
        let id = made.headers()[REQUEST_ID].to_str().unwrap();
        let (prefix, n) = id.split_once('-').unwrap();
        assert_eq!(prefix.len(), 8);
        assert!(u64::from_str_radix(n, 16).is_ok(), "{id}");
    }
}
