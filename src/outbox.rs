//! Outgoing e-mail (invitations). With an SMTP relay configured
//! (`--smtp-relay`, see [`RelaySpec`]: the local MTA, or a provider's
//! submission server over TLS with a user and password) messages go through
//! it; otherwise, and whenever the relay fails, each message is written as an
//! `.eml` file into the outbox directory (`$BULKHEAD_HOME/outbox/`),
//! atomically, so nothing is lost. Messages carry secrets (invitation
//! tokens): the log says where a message went, never what it says, and the
//! relay's password appears in no log line or error.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
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
    /// The relay as given, its password (if any) left out.
    #[error(
        "invalid SMTP relay `{0}`: {1} (expected host:port, \
         smtp://[user:password@]host[:port]?tls=required, or smtps://[user:password@]host[:port])"
    )]
    BadRelay(String, String),
    #[error("SMTP relay CA file {0}: {1}")]
    BadCa(PathBuf, String),
    #[error("writing to the outbox: {0}")]
    Io(#[from] io::Error),
}

/// How to reach the relay, parsed from `--smtp-relay`:
///
/// - `host:port`: plain SMTP, no log-in (the local MTA, a sidecar);
/// - `smtp://host[:port]` (port 25): the same;
/// - `smtp://user:password@host[:port]?tls=required` (port 587): STARTTLS,
///   refused if the server does not offer it, then log-in;
/// - `smtps://user:password@host[:port]` (port 465): TLS from the first byte.
///
/// `?tls=opportunistic` (STARTTLS if offered) is allowed only without a
/// password, and so is plain SMTP: a password never crosses the network in
/// the clear. User and password are percent-decoded. Certificates are checked
/// against Mozilla's roots, plus those of `--smtp-ca-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySpec {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    Plain,
    Opportunistic,
    StartTls,
    Implicit,
}

impl RelaySpec {
    pub fn parse(given: &str) -> Result<Self, OutboxError> {
        let bad = |why: &str| OutboxError::BadRelay(redacted(given), why.to_string());
        if !given.contains("://") {
            if given.contains('@') {
                return Err(bad(
                    "a log-in needs a URL: smtps://user:password@host or smtp://user:password@host?tls=required",
                ));
            }
            let (host, port) = given
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| bad("no port"))?;
            return Ok(Self {
                host: host.trim_matches(['[', ']']).to_string(),
                port,
                security: Security::Plain,
                credentials: None,
            });
        }
        let url = url::Url::parse(given).map_err(|_| bad("not a URL"))?;
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::Plain, 25),
            ("smtp", Some("required")) => (Security::StartTls, 587),
            ("smtp", Some("opportunistic")) => (Security::Opportunistic, 587),
            ("smtps", None) => (Security::Implicit, 465),
            ("smtp" | "smtps", Some(_)) => return Err(bad("tls= takes required or opportunistic")),
            _ => return Err(bad("the scheme is smtp or smtps")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| bad("user or password is not valid UTF-8"))
        };
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            (_, None) => return Err(bad("a user needs a password")),
            (user, Some(password)) => Some((decode(user)?, decode(password)?)),
        };
        if credentials.is_some() && matches!(security, Security::Plain | Security::Opportunistic) {
            return Err(bad(
                "a password is sent only over TLS: use smtps:// or ?tls=required",
            ));
        }
        Ok(Self {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }

    /// Where the relay is, for logs: no user, no password.
    pub fn address(&self) -> String {
        let scheme = match self.security {
            Security::Implicit => "smtps",
            _ => "smtp",
        };
        format!("{scheme}://{}:{}", self.host, self.port)
    }

    fn transport(
        &self,
        ca: Option<&Certificate>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let tls = || {
            let mut parameters = TlsParameters::builder(self.host.clone());
            if let Some(ca) = ca {
                parameters = parameters.add_root_certificate(ca.clone());
            }
            parameters.build_rustls().map_err(|e| e.to_string())
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .timeout(Some(Duration::from_secs(10)));
        builder = match self.security {
            Security::Plain => builder,
            Security::Opportunistic => builder.tls(Tls::Opportunistic(tls()?)),
            Security::StartTls => builder.tls(Tls::Required(tls()?)),
            Security::Implicit => builder.tls(Tls::Wrapper(tls()?)),
        };
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(builder.build())
    }
}

/// `given` with the password of a URL replaced, for error messages.
fn redacted(given: &str) -> String {
    match url::Url::parse(given) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) if given.contains("://") => url.to_string(),
        // Not a URL (or `user:password@host:port` read as one): whatever
        // stands before the last `@` may be a password.
        _ => match given.rfind('@') {
            Some(at) => {
                let start = given.find("//").map_or(0, |i| i + 2).min(at);
                format!("{}***{}", &given[..start], &given[at..])
            }
            None => given.to_string(),
        },
    }
}

impl Outbox {
    /// `dir`: where messages are written (and fall back to); `relay`: the
    /// SMTP relay (see [`RelaySpec`]), whose certificates may also be signed
    /// by those in the PEM file `ca_file`; `from`: the sender.
    pub fn new(
        dir: Option<PathBuf>,
        relay: Option<&str>,
        ca_file: Option<&Path>,
        from: &str,
    ) -> Result<Self, OutboxError> {
        let relay = match relay {
            None => None,
            Some(given) => {
                let spec = RelaySpec::parse(given)?;
                let ca = ca_file.map(read_ca).transpose()?;
                let transport = spec
                    .transport(ca.as_ref())
                    .map_err(|e| OutboxError::BadRelay(spec.address(), e))?;
                Some(Relay {
                    transport,
                    from: from
                        .parse()
                        .map_err(|_| OutboxError::BadFrom(from.to_string()))?,
                    address: spec.address(),
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

/// The certificates of a PEM file (at least one).
fn read_ca(path: &Path) -> Result<Certificate, OutboxError> {
    let bad = |why: String| OutboxError::BadCa(path.to_path_buf(), why);
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(bad("no PEM certificate in it".into()));
    }
    Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(given: &str) -> RelaySpec {
        RelaySpec::parse(given).unwrap_or_else(|e| panic!("{given}: {e}"))
    }

    fn refused(given: &str) -> String {
        RelaySpec::parse(given).unwrap_err().to_string()
    }

    #[test]
    fn relay_forms_and_their_ports_and_security() {
        let plain = |host: &str, port| RelaySpec {
            host: host.into(),
            port,
            security: Security::Plain,
            credentials: None,
        };
        assert_eq!(spec("localhost:25"), plain("localhost", 25));
        assert_eq!(spec("[::1]:2525"), plain("::1", 2525));
        assert_eq!(spec("smtp://mx.example.com"), plain("mx.example.com", 25));
        let s = spec("smtps://postmaster%40example.com:p%40ss%3Aw%2Frd@smtp.example.com");
        assert_eq!((s.port, s.security), (465, Security::Implicit));
        assert_eq!(
            s.credentials,
            Some(("postmaster@example.com".into(), "p@ss:w/rd".into()))
        );
        let s = spec("smtp://u:p@smtp.example.com?tls=required");
        assert_eq!((s.port, s.security), (587, Security::StartTls));
        let s = spec("smtp://smtp.example.com:2587?tls=opportunistic");
        assert_eq!((s.port, s.security), (2587, Security::Opportunistic));
        assert_eq!(s.address(), "smtp://smtp.example.com:2587");
    }

    #[test]
    fn a_password_is_never_sent_in_the_clear_nor_shown() {
        for given in [
            "smtp://u:hunter2@smtp.example.com",
            "smtp://u:hunter2@smtp.example.com:587?tls=opportunistic",
            "smtps://u:hunter2@smtp.example.com?tls=nonsense",
            "http://u:hunter2@smtp.example.com",
            "smtp://u:hunter2@",
        ] {
            let e = refused(given);
            assert!(!e.contains("hunter2"), "{e}");
            assert!(e.contains("invalid SMTP relay"), "{e}");
        }
        assert!(refused("smtp://u:hunter2@smtp.example.com").contains("only over TLS"));
        assert!(refused("smtp://justauser@smtp.example.com?tls=required").contains("password"));
        assert!(refused("smtp.example.com").contains("no port"));
        // Not even a URL, yet a password-looking part is kept out.
        let e = refused("smtp://u:hunter2@exa mple.com:x");
        assert!(!e.contains("hunter2"), "{e}");
        let e = refused("u:hunter2@smtp.example.com:587");
        assert!(!e.contains("hunter2") && e.contains("needs a URL"), "{e}");
        // A relay that is fine: its address for logs has no credentials.
        let s = spec("smtps://u:hunter2@smtp.example.com");
        assert_eq!(s.address(), "smtps://smtp.example.com:465");
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir =
            std::env::temp_dir().join(format!("bulkhead-ca-{}", crate::secret::random_hex(4)));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Outbox::new(
            None,
            Some("smtps://u:p@localhost"),
            Some(&empty),
            "a@example.com",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let missing = dir.join("missing.pem");
        let e = Outbox::new(None, Some("localhost:25"), Some(&missing), "a@example.com")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
