//! An SMTP server on a loopback port that accepts every message and keeps
//! its text: what a relay would receive. The client under test is the real
//! one, speaking SMTP over TCP. It can also be a provider's submission
//! server: TLS (STARTTLS or from the first byte) with a certificate of a CA
//! made for it, and a log-in that must succeed before any mail is taken.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Security {
    /// No TLS offered.
    Plain,
    /// STARTTLS offered (and required before a log-in).
    StartTls,
    /// TLS from the first byte (`smtps`).
    Implicit,
}

/// A message as the server took it.
#[derive(Clone, Debug)]
pub struct Received {
    pub text: String,
    pub tls: bool,
    /// Who had logged in, if anyone.
    pub user: Option<String>,
}

struct Config {
    security: Security,
    login: Option<(String, String)>,
    acceptor: Option<TlsAcceptor>,
}

#[derive(Default)]
struct Seen {
    received: Vec<Received>,
    /// Every AUTH attempt: (user as presented, over TLS?).
    attempts: Vec<(String, bool)>,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    /// The CA that signed the server's certificate (for `localhost` and
    /// 127.0.0.1), in PEM, when it speaks TLS.
    pub ca_pem: Option<String>,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::start_with(Security::Plain, None).await
    }

    /// A server speaking `security`, taking mail only after a log-in as
    /// `login` (user, password) when given.
    pub async fn start_with(security: Security, login: Option<(&str, &str)>) -> Self {
        let (acceptor, ca_pem) = match security {
            Security::Plain => (None, None),
            _ => {
                let (acceptor, ca) = tls();
                (Some(acceptor), Some(ca))
            }
        };
        let config = Arc::new(Config {
            security,
            login: login.map(|(u, p)| (u.to_string(), p.to_string())),
            acceptor,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let kept = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (config, kept) = (config.clone(), kept.clone());
                tokio::spawn(async move {
                    let _ = connection(stream, &config, &kept).await;
                });
            }
        });
        Self {
            addr,
            ca_pem,
            seen,
            task,
        }
    }

    /// The texts of the messages taken.
    pub fn messages(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.text).collect()
    }

    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().received.clone()
    }

    /// Every log-in attempt: the user presented, and whether over TLS.
    pub fn auth_attempts(&self) -> Vec<(String, bool)> {
        self.seen.lock().unwrap().attempts.clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CA, and an acceptor with a certificate it signed for this machine.
fn tls() -> (TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key)
    .unwrap();
    (TlsAcceptor::from(Arc::new(config)), ca.pem())
}

async fn connection(stream: TcpStream, config: &Config, seen: &Mutex<Seen>) -> std::io::Result<()> {
    let acceptor = config.acceptor.as_ref();
    if config.security == Security::Implicit {
        let tls = acceptor.unwrap().accept(stream).await?;
        session(tls, config, seen, true, true).await?;
        return Ok(());
    }
    if let Some(plain) = session(stream, config, seen, false, true).await? {
        let tls = acceptor.unwrap().accept(plain).await?;
        session(tls, config, seen, true, false).await?;
    }
    Ok(())
}

/// One SMTP conversation on `stream`; gives the stream back when the client
/// asked for STARTTLS (and was told to go ahead).
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: &Config,
    seen: &Mutex<Seen>,
    tls: bool,
    greet: bool,
) -> std::io::Result<Option<S>> {
    let mut io = BufReader::new(stream);
    if greet {
        say(&mut io, b"220 test ESMTP\r\n").await?;
    }
    let mut user: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let command = line.trim_end();
        let mut words = command.split_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                let mut reply = String::from("250-test\r\n");
                if !tls && config.security == Security::StartTls {
                    reply.push_str("250-STARTTLS\r\n");
                }
                if config.login.is_some() {
                    reply.push_str("250-AUTH PLAIN LOGIN\r\n");
                }
                reply + "250 8BITMIME\r\n"
            }
            "STARTTLS" if !tls && config.security == Security::StartTls => {
                say(&mut io, b"220 go ahead\r\n").await?;
                assert!(io.buffer().is_empty(), "client spoke before TLS");
                return Ok(Some(io.into_inner()));
            }
            "AUTH" => {
                let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                let (given_user, given_password) = match mechanism.as_str() {
                    "PLAIN" => {
                        let encoded = match words.next() {
                            Some(e) => e.to_string(),
                            None => ask(&mut io, "334 \r\n").await?,
                        };
                        let decoded = BASE64.decode(encoded.trim()).unwrap_or_default();
                        let parts: Vec<String> = decoded
                            .split(|b| *b == 0)
                            .map(|p| String::from_utf8_lossy(p).into_owned())
                            .collect();
                        (
                            parts.get(1).cloned().unwrap_or_default(),
                            parts.get(2).cloned().unwrap_or_default(),
                        )
                    }
                    "LOGIN" => {
                        let u = ask(&mut io, "334 VXNlcm5hbWU6\r\n").await?;
                        let p = ask(&mut io, "334 UGFzc3dvcmQ6\r\n").await?;
                        let text = |s: &str| {
                            String::from_utf8_lossy(&BASE64.decode(s.trim()).unwrap_or_default())
                                .into_owned()
                        };
                        (text(&u), text(&p))
                    }
                    _ => {
                        say(&mut io, b"504 unknown mechanism\r\n").await?;
                        continue;
                    }
                };
                seen.lock()
                    .unwrap()
                    .attempts
                    .push((given_user.clone(), tls));
                match &config.login {
                    Some((u, p)) if *u == given_user && *p == given_password => {
                        user = Some(given_user);
                        "235 authenticated\r\n".into()
                    }
                    _ => "535 bad credentials\r\n".into(),
                }
            }
            "MAIL" if config.login.is_some() && user.is_none() => {
                "530 authentication required\r\n".into()
            }
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => "250 OK\r\n".into(),
            "DATA" => {
                say(&mut io, b"354 go ahead\r\n").await?;
                let mut text = String::new();
                loop {
                    line.clear();
                    if io.read_line(&mut line).await? == 0 {
                        return Ok(None);
                    }
                    let l = line.trim_end_matches(['\r', '\n']);
                    if l == "." {
                        break;
                    }
                    text.push_str(l);
                    text.push('\n');
                }
                seen.lock().unwrap().received.push(Received {
                    text,
                    tls,
                    user: user.clone(),
                });
                "250 queued\r\n".into()
            }
            "QUIT" => {
                say(&mut io, b"221 bye\r\n").await?;
                return Ok(None);
            }
            _ => "502 not implemented\r\n".into(),
        };
        say(&mut io, reply.as_bytes()).await?;
    }
}

/// Sends a 334 prompt and reads the client's answer line.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    prompt: &str,
) -> std::io::Result<String> {
    say(io, prompt.as_bytes()).await?;
    let mut answer = String::new();
    io.read_line(&mut answer).await?;
    Ok(answer.trim_end().to_string())
}

/// Writes `bytes` and pushes them out (through TLS too).
async fn say<S: AsyncWrite + Unpin>(io: &mut S, bytes: &[u8]) -> std::io::Result<()> {
    io.write_all(bytes).await?;
    io.flush().await
}
