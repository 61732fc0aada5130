//! Outgoing e-mail (invitations). With an SMTP relay configured
//! (`--smtp-relay host:port`, e.g. the local MTA or a sidecar that holds the
//! provider's TLS and credentials) messages go through it; otherwise, and
//! whenever the relay fails, each message is written as an `.eml` file into
//! the outbox directory (`$BULKHEAD_HOME/outbox/`), atomically, so nothing is
//! lost. Messages carry secrets (invitation tokens): the log says where a
//! message went, never what it says.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Clone, Default)]
pub struct Outbox {
    dir: Option<PathBuf>,
    relay: Option<Relay>,
}

#[derive(Clone)]
struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    address: String,
}

pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// Where a message went.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Relayed,
    Written(PathBuf),
    /// Neither a relay nor a directory is configured.
    Dropped,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("invalid sender address `{0}`")]
    BadFrom(String),
    #[error("invalid SMTP relay `{0}` (expected host:port)")]
    BadRelay(String),
    #[error("writing to the outbox: {0}")]
    Io(#[from] io::Error),
}

impl Outbox {
    /// `dir`: where messages are written (and fall back to); `relay`:
    /// `host:port` of an SMTP relay, with `from` as the sender.
    pub fn new(dir: Option<PathBuf>, relay: Option<&str>, from: &str) -> Result<Self, OutboxError> {
        let relay = match relay {
            None => None,
            Some(address) => {
                let (host, port) = address
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                    .filter(|(h, _)| !h.is_empty())
                    .ok_or_else(|| OutboxError::BadRelay(address.to_string()))?;
                let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(port)
                    .timeout(Some(Duration::from_secs(10)))
                    .build();
                Some(Relay {
                    transport,
                    from: from
                        .parse()
                        .map_err(|_| OutboxError::BadFrom(from.to_string()))?,
                    address: address.to_string(),
                })
            }
        };
        Ok(Self { dir, relay })
    }

    pub async fn send(&self, mail: &Mail<'_>) -> Result<Delivery, OutboxError> {
        if let Some(relay) = &self.relay {
            match relay.send(mail).await {
                Ok(()) => {
                    tracing::info!(to = %mail.to, relay = %relay.address, "message relayed");
                    return Ok(Delivery::Relayed);
                }
                Err(e) => {
                    tracing::warn!(to = %mail.to, relay = %relay.address, error = %e,
                        "SMTP relay failed; keeping the message in the outbox");
                }
            }
        }
        self.write(mail)
    }

    fn write(&self, mail: &Mail<'_>) -> Result<Delivery, OutboxError> {
        let Some(dir) = &self.dir else {
            tracing::warn!(to = %mail.to, subject = %mail.subject, "no outbox configured: message dropped");
            return Ok(Delivery::Dropped);
        };
        std::fs::create_dir_all(dir)?;
        let now = time::OffsetDateTime::now_utc();
        let name = format!(
            "{}-{}.eml",
            now.unix_timestamp_nanos(),
            crate::secret::random_hex(4)
        );
        let date = now
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let text = format!(
            "To: {}\r\nSubject: {}\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            mail.to,
            mail.subject,
            mail.body.replace('\n', "\r\n")
        );
        // Written whole or not at all: a crash never leaves half a message.
        let partial = dir.join(format!(".{name}.partial"));
        std::fs::write(&partial, text)?;
        let path = dir.join(name);
        std::fs::rename(&partial, &path)?;
        tracing::info!(to = %mail.to, path = %path.display(), "message written to the outbox");
        Ok(Delivery::Written(path))
    }
}

impl Relay {
    async fn send(&self, mail: &Mail<'_>) -> Result<(), String> {
        let to: Mailbox = mail.to.parse().map_err(|e| format!("recipient: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body.to_string())
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
