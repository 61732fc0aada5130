//! Tenant connections over a socket whose close waits for the server.
//!
//! tokio-postgres ends a connection by sending Terminate and closing its own
//! side; the backend is still exiting then, and still holds one of
//! PostgreSQL's `max_connections` slots. A budget slot freed at that moment
//! would let the next connection in before the old one is gone, and under load
//! PostgreSQL answers "remaining connection slots are reserved". Here the
//! close shuts our side for writing and then reads until the server closes
//! its own, which it does only after the backend has left the count.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::Host;

pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

pub(super) struct DrainingStream {
    inner: Box<dyn Io>,
    draining: bool,
    /// Reads the statements written, while they are plain text.
    scan: Option<super::dirt::Scan>,
}

impl DrainingStream {
    /// Opens a socket to the first of the config's hosts that answers; with
    /// the host's name, which its TLS certificate must carry.
    pub(super) async fn connect(
        config: &tokio_postgres::Config,
        timeout: Duration,
    ) -> io::Result<(Self, String)> {
        let ports = config.get_ports();
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no host configured");
        for (i, host) in config.get_hosts().iter().enumerate() {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            let attempt = async {
                let inner: Box<dyn Io> = match host {
                    Host::Tcp(name) => {
                        let stream = tokio::net::TcpStream::connect((name.as_str(), port)).await?;
                        stream.set_nodelay(true)?;
                        Box::new(stream)
                    }
                    Host::Unix(dir) => Box::new(
                        tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                            .await?,
                    ),
                };
                Ok::<_, io::Error>(inner)
            };
            match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(inner)) => {
                    let name = match host {
                        Host::Tcp(name) => name.clone(),
                        // PostgreSQL has no TLS on Unix sockets: no name to check.
                        Host::Unix(_) => String::new(),
                    };
                    let stream = Self {
                        inner,
                        draining: false,
                        scan: None,
                    };
                    return Ok((stream, name));
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
            }
        }
        Err(last)
    }
}

impl DrainingStream {
    /// Has `scan` read what is written from now on.
    pub(super) fn scanned_by(mut self, scan: super::dirt::Scan) -> Self {
        self.scan = Some(scan);
        self
    }
}

impl AsyncRead for DrainingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for DrainingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let (Poll::Ready(Ok(n)), Some(scan)) = (&written, &mut this.scan) {
            scan.wrote(&buf[..*n]);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Our side closed, then everything the server still sends discarded
    /// until it closes its side (or the socket fails: gone either way).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.draining {
            ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
            self.draining = true;
        }
        let mut scratch = [0u8; 256];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut self.inner).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => continue,
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}
