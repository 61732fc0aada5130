//! Which connections need the reset: every statement a connection sends is
//! read on its way to the server (its SQL text, from the protocol's Query
//! and Parse messages), and one whose text could leave state in the session
//! marks the connection dirty. Only a dirty connection is reset when it goes
//! back to its pool (see [`super::session`]): a reset costs the server two
//! statements, about a tenth of `route_overhead`'s throughput when run after
//! every request, and nothing at all for a request that only reads and writes
//! rows.
//!
//! What marks it (whole words, any case, anywhere in the text, string
//! literals included: a false alarm costs one reset, a miss a leak):
//! `BEGIN`/`START` (a transaction left open or failed), `SET` and
//! `set_config` (variables; `UPDATE … SET` too), any word holding
//! `advisory` (locks), `PREPARE`, `DECLARE` (cursors), `LISTEN`, `CALL` and
//! `DO` (code whose text is elsewhere). Temporary tables need no word: a
//! runtime role may not create them. Not seen: a function of the tenant's
//! own, called from a plain statement, that changes the session inside its
//! body (`PERFORM set_config(…, false)`, a session advisory lock); give it
//! a `SET` clause instead, which the server undoes when it returns.
//!
//! Read where the text is still plain: above TLS when the connection is
//! encrypted ([`Tapped`] wraps the TLS connector), on the socket otherwise.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// One connection's state, shared by the streams that read its statements.
#[derive(Default)]
pub(super) struct Dirt {
    dirty: AtomicBool,
    /// TLS took over: the socket now carries only ciphertext.
    encrypted: AtomicBool,
}

impl Dirt {
    /// Whether anything since the last [`Self::take`] may have left state.
    pub(super) fn take(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    fn mark(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

/// Reads the frontend messages written to one stream.
pub(super) struct Scan {
    dirt: Arc<Dirt>,
    /// Reading the socket under a TLS connection: stops once TLS starts.
    below_tls: bool,
    state: State,
    /// The message's header, or its SQL text, so far.
    buf: Vec<u8>,
}

enum State {
    /// Untyped messages: `SSLRequest`, `GSSENCRequest`, then `StartupMessage`.
    Startup,
    /// The 5-byte header of a typed message.
    Header,
    /// The body of a Query or Parse message, `left` bytes to go.
    Text { left: usize },
    /// Any other body, `left` bytes to go.
    Skip { left: usize },
    /// Lost track of the framing: every statement may be anything.
    Lost,
}

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;

impl Scan {
    pub(super) fn new(dirt: Arc<Dirt>, below_tls: bool) -> Self {
        Self {
            dirt,
            below_tls,
            state: State::Startup,
            buf: Vec::new(),
        }
    }

    /// Reads `bytes`, just written to the stream.
    pub(super) fn wrote(&mut self, mut bytes: &[u8]) {
        if self.below_tls && self.dirt.encrypted.load(Ordering::Acquire) {
            return;
        }
        while !bytes.is_empty() {
            match &mut self.state {
                State::Lost => {
                    self.dirt.mark();
                    return;
                }
                State::Startup | State::Header => {
                    let want = if matches!(self.state, State::Startup) {
                        8
                    } else {
                        5
                    };
                    let take = (want - self.buf.len()).min(bytes.len());
                    self.buf.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.buf.len() == want {
                        self.state = self.next_state();
                        self.buf.clear();
                        if matches!(self.state, State::Lost) {
                            self.dirt.mark();
                        }
                    }
                }
                State::Text { left } => {
                    let take = (*left).min(bytes.len());
                    self.buf.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    *left -= take;
                    if *left == 0 {
                        if may_leave_state(&self.buf) {
                            self.dirt.mark();
                        }
                        self.buf.clear();
                        self.state = State::Header;
                    }
                }
                State::Skip { left } => {
                    let take = (*left).min(bytes.len());
                    bytes = &bytes[take..];
                    *left -= take;
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
            }
        }
    }

    /// What follows the header in `buf`.
    fn next_state(&self) -> State {
        let len = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        match self.state {
            State::Startup => {
                let (length, code) = (len(&self.buf[..4]), len(&self.buf[4..8]) as u32);
                let rest = length.saturating_sub(8);
                if code == SSL_REQUEST || code == GSSENC_REQUEST {
                    // The answer decides what comes next; here, another
                    // untyped message (the StartupMessage) in either case.
                    return if length == 8 {
                        State::Startup
                    } else {
                        State::Lost
                    };
                }
                if length < 8 {
                    return State::Lost;
                }
                // The StartupMessage: typed messages follow it.
                skip_then_header(rest)
            }
            _ => {
                let (kind, length) = (self.buf[0], len(&self.buf[1..5]));
                let Some(body) = length.checked_sub(4) else {
                    return State::Lost;
                };
                match kind {
                    b'Q' | b'P' if body > 0 => State::Text { left: body },
                    _ => skip_then_header(body),
                }
            }
        }
    }
}

fn skip_then_header(left: usize) -> State {
    if left == 0 {
        State::Header
    } else {
        State::Skip { left }
    }
}

/// Whether a Query's or Parse's body (for Parse, the statement's name comes
/// first: a word of ours, `s<n>`, or empty) holds a word that may leave state.
/// One pass, no copy: it runs on every statement.
fn may_leave_state(text: &[u8]) -> bool {
    let in_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
    let mut i = 0;
    while i < text.len() {
        if !in_word(text[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && in_word(text[i]) {
            i += 1;
        }
        if marks(&text[start..i]) {
            return true;
        }
    }
    false
}

fn marks(word: &[u8]) -> bool {
    const WORDS: [&[u8]; 9] = [
        b"do",
        b"set",
        b"call",
        b"begin",
        b"start",
        b"listen",
        b"prepare",
        b"declare",
        b"set_config",
    ];
    if word.len() >= 8 && word.windows(8).any(|w| w.eq_ignore_ascii_case(b"advisory")) {
        return true;
    }
    WORDS
        .iter()
        .any(|w| w.len() == word.len() && w.eq_ignore_ascii_case(word))
}

/// A TLS connector whose streams are read like the socket is: the text is
/// plain only above TLS.
pub(super) struct Tapped<T> {
    inner: T,
    dirt: Arc<Dirt>,
}

impl<T> Tapped<T> {
    pub(super) fn new(inner: T, dirt: Arc<Dirt>) -> Self {
        Self { inner, dirt }
    }
}

impl<S, T> TlsConnect<S> for Tapped<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
{
    type Stream = TapStream<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        self.dirt.encrypted.store(true, Ordering::Release);
        let scan = Scan::new(self.dirt, false);
        let handshake = self.inner.connect(stream);
        Box::pin(async move {
            Ok(TapStream {
                inner: handshake.await?,
                scan,
            })
        })
    }
}

/// A TLS stream whose written plain text is read by a [`Scan`].
pub(super) struct TapStream<S> {
    inner: S,
    scan: Scan,
}

impl<S: AsyncRead + Unpin> AsyncRead for TapStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TapStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.scan.wrote(&buf[..n]);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: TlsStream + Unpin> TlsStream for TapStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn startup() -> Vec<u8> {
        let mut ssl = 8u32.to_be_bytes().to_vec();
        ssl.extend_from_slice(&SSL_REQUEST.to_be_bytes());
        let params = b"user\0t_x\0\0";
        ssl.extend_from_slice(&(8 + params.len() as u32).to_be_bytes());
        ssl.extend_from_slice(&196_608u32.to_be_bytes());
        ssl.extend_from_slice(params);
        ssl
    }

    /// Whether `messages`, written after the start-up in chunks of `chunk`
    /// bytes, mark the connection.
    fn marks(messages: &[Vec<u8>], chunk: usize) -> bool {
        let dirt = Arc::new(Dirt::default());
        let mut scan = Scan::new(dirt.clone(), true);
        let mut all = startup();
        all.extend(messages.concat());
        for piece in all.chunks(chunk) {
            scan.wrote(piece);
        }
        dirt.take()
    }

    fn parse(sql: &str) -> Vec<u8> {
        typed(b'P', format!("s7\0{sql}\0\0\0").as_bytes())
    }

    fn query(sql: &str) -> Vec<u8> {
        typed(b'Q', format!("{sql}\0").as_bytes())
    }

    #[test]
    fn plain_statements_leave_the_connection_clean() {
        let reads = [
            parse("SELECT id, name FROM projects WHERE id < $1 ORDER BY id DESC LIMIT $2"),
            typed(b'B', b"\0s7\0\0\0\0\0\0\0"),
            typed(b'E', b"\0\0\0\0\0"),
            typed(b'S', b""),
            query("INSERT INTO tasks (title) VALUES ('the settings page'); DELETE FROM t"),
            typed(b'C', b"Ss7\0"),
        ];
        for chunk in [1, 3, 7, 1000] {
            assert!(!marks(&reads, chunk), "chunk {chunk}");
        }
    }

    #[test]
    fn statements_that_may_leave_state_mark_it_however_they_are_split() {
        for sql in [
            "SET work_mem = '1GB'",
            "begin",
            "START TRANSACTION",
            "SELECT set_config('app.x', 'y', false)",
            "SELECT pg_advisory_lock(1)",
            "SELECT PG_TRY_ADVISORY_LOCK_SHARED(1)",
            "PREPARE p AS SELECT 1",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "LISTEN x",
            "CALL p()",
            "DO $$ BEGIN NULL; END $$",
            "UPDATE projects SET name = $1",
        ] {
            for chunk in [1, 4, 1000] {
                assert!(marks(&[parse(sql)], chunk), "{sql} (parse, {chunk})");
                assert!(
                    marks(&[query("SELECT 1"), query(sql)], chunk),
                    "{sql} (query, {chunk})"
                );
            }
        }
    }

    #[test]
    fn a_marked_connection_is_clean_again_once_taken() {
        let dirt = Arc::new(Dirt::default());
        let mut scan = Scan::new(dirt.clone(), true);
        scan.wrote(&startup());
        scan.wrote(&query("SET x = 1"));
        assert!(dirt.take());
        assert!(!dirt.take());
        scan.wrote(&query("SELECT 1"));
        assert!(!dirt.take());
    }

    #[test]
    fn the_socket_below_tls_stops_reading_once_tls_starts() {
        let dirt = Arc::new(Dirt::default());
        let mut below = Scan::new(dirt.clone(), true);
        below.wrote(&startup()[..8]);
        dirt.encrypted.store(true, Ordering::Release);
        below.wrote(b"\x16\x03\x01 ciphertext SET begin");
        assert!(!dirt.take());
    }

    #[test]
    fn framing_it_cannot_follow_marks_every_statement() {
        let dirt = Arc::new(Dirt::default());
        let mut scan = Scan::new(dirt.clone(), true);
        scan.wrote(&startup());
        scan.wrote(&[b'Q', 0, 0, 0, 2]);
        scan.wrote(b"anything");
        assert!(dirt.take());
        scan.wrote(b"more");
        assert!(dirt.take());
    }
}
