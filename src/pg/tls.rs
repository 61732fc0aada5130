//! TLS to PostgreSQL servers, through rustls (ring). Every connection bulkhead
//! opens starts from a [`PgConfig`]: the URL's settings plus the TLS that its
//! `sslmode` and `sslrootcert` (or `--pg-ca-file`) ask for, with libpq's
//! meaning. No other module sees a rustls type.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::SslMode as TokioSslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::url::{self, RootCert, SslMode, UrlError};

/// `--pg-ca-file`: the CA used when a URL names none, process-wide like
/// libpq's `PGSSLROOTCERT`.
static DEFAULT_ROOT_CERT: RwLock<Option<PathBuf>> = RwLock::new(None);

/// Sets (or clears) the CA file for URLs without `sslrootcert`; a file that
/// cannot be read or holds no certificate is refused now, not at the first
/// connection.
pub fn set_default_root_cert(path: Option<&Path>) -> Result<(), UrlError> {
    if let Some(path) = path {
        load_file(path)?;
    }
    *DEFAULT_ROOT_CERT.write().expect("CA setting poisoned") = path.map(Path::to_path_buf);
    Ok(())
}

fn default_root_cert() -> Option<PathBuf> {
    DEFAULT_ROOT_CERT
        .read()
        .expect("CA setting poisoned")
        .clone()
}

/// Connection settings and the TLS to use with them.
#[derive(Clone)]
pub struct PgConfig {
    config: tokio_postgres::Config,
    mode: SslMode,
    /// The CA checked against (`None`: none given, or nothing checked).
    root: Option<RootCert>,
    tls: MakeTls,
}

/// The TLS maker handed to tokio-postgres and deadpool.
#[derive(Clone)]
pub struct MakeTls(MakeRustlsConnect);

/// The stream of a connection opened through a [`PgConfig`].
pub type TlsStream<S> = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = std::convert::Infallible;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Self::TlsConnect, Self::Error> {
        MakeTlsConnect::<S>::make_tls_connect(&mut self.0, hostname)
    }
}

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

impl PgConfig {
    /// Reads a connection string, with `--pg-ca-file` for a URL that names no CA.
    pub fn parse(conn: &str) -> Result<Self, UrlError> {
        Self::parse_with(conn, default_root_cert().as_deref())
    }

    /// Reads a connection string, with `default_ca` for a URL that names no CA.
    pub fn parse_with(conn: &str, default_ca: Option<&Path>) -> Result<Self, UrlError> {
        let (rest, params) = url::split(conn)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| UrlError::Syntax(e.to_string()))?;
        let mode = params.mode.unwrap_or(SslMode::Prefer);
        let given = params
            .root_cert
            .or_else(|| default_ca.map(|p| RootCert::File(p.to_path_buf())));
        // libpq: `require` verifies the chain when a CA was given; `prefer`
        // never does here, since failing it would only fall back to no TLS.
        let check = match mode {
            SslMode::Disable | SslMode::Prefer => Check::Nothing,
            SslMode::Require if given.is_none() => Check::Nothing,
            SslMode::Require | SslMode::VerifyCa => Check::Chain,
            SslMode::VerifyFull => Check::ChainAndName,
        };
        config.ssl_mode(match mode {
            SslMode::Disable => TokioSslMode::Disable,
            SslMode::Prefer => TokioSslMode::Prefer,
            _ => TokioSslMode::Require,
        });
        let root = match check {
            Check::Nothing => None,
            _ => Some(given.unwrap_or(RootCert::System)),
        };
        let roots = root.as_ref().map(roots).transpose()?;
        let tls = MakeTls(MakeRustlsConnect::new(client_config(check, roots)));
        Ok(Self {
            config,
            mode,
            root,
            tls,
        })
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// The TLS settings as libpq takes them (`sslmode`, `sslrootcert`), for
    /// the URLs and environment of other PostgreSQL clients (`pg_dump`).
    pub fn libpq_tls_params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("sslmode", self.mode.to_string())];
        match &self.root {
            Some(RootCert::File(path)) => params.push(("sslrootcert", path.display().to_string())),
            Some(RootCert::System) => params.push(("sslrootcert", "system".into())),
            None => {}
        }
        params
    }

    /// The TLS maker, for a pool's manager.
    pub fn tls(&self) -> MakeTls {
        self.tls.clone()
    }

    /// Opens one connection (the caller drives the returned connection).
    pub async fn connect(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<tokio_postgres::Socket, TlsStream<tokio_postgres::Socket>>,
        ),
        tokio_postgres::Error,
    > {
        self.config.connect(self.tls.clone()).await
    }

    /// Starts a connection on a socket already open to `host` (the host name
    /// the certificate is checked against under `verify-full`).
    pub async fn connect_raw<S>(
        &self,
        stream: S,
        host: &str,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<S, TlsStream<S>>,
        ),
        tokio_postgres::Error,
    >
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut make = self.tls.0.clone();
        let Ok(tls) = MakeTlsConnect::<S>::make_tls_connect(&mut make, host);
        self.config.connect_raw(stream, tls).await
    }

    /// [`Self::connect_raw`], with the TLS connector passed through `wrap`
    /// (which sees the stream above the TLS, where the protocol is plain).
    pub(crate) async fn connect_raw_wrapped<S, W>(
        &self,
        stream: S,
        host: &str,
        wrap: impl FnOnce(<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect) -> W,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<S, W::Stream>,
        ),
        tokio_postgres::Error,
    >
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        W: tokio_postgres::tls::TlsConnect<S>,
    {
        let mut make = self.tls.0.clone();
        let Ok(tls) = MakeTlsConnect::<S>::make_tls_connect(&mut make, host);
        self.config.connect_raw(stream, wrap(tls)).await
    }

    /// Asks the server to cancel what the connection of `token` is running,
    /// over a socket already open to `host`, with the same TLS as a
    /// connection (a cancel request carries the backend's secret key).
    pub(crate) async fn cancel_raw<S>(
        &self,
        token: &tokio_postgres::CancelToken,
        stream: S,
        host: &str,
    ) -> Result<(), tokio_postgres::Error>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut make = self.tls.0.clone();
        let Ok(tls) = MakeTlsConnect::<S>::make_tls_connect(&mut make, host);
        token.cancel_query_raw(stream, tls).await
    }
}

impl std::ops::Deref for PgConfig {
    type Target = tokio_postgres::Config;

    fn deref(&self) -> &tokio_postgres::Config {
        &self.config
    }
}

impl std::ops::DerefMut for PgConfig {
    fn deref_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.config
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(source: &RootCert) -> Result<Arc<RootCertStore>, UrlError> {
    let mut store = RootCertStore::empty();
    match source {
        RootCert::System => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        RootCert::File(path) => {
            for cert in load_file(path)? {
                store.add(cert).map_err(|e| UrlError::RootCertFile {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
            }
        }
    }
    Ok(Arc::new(store))
}

fn load_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, UrlError> {
    let fail = |detail: String| UrlError::RootCertFile {
        path: path.display().to_string(),
        detail,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(fail("no certificate in it".into()));
    }
    Ok(certs)
}

fn client_config(check: Check, roots: Option<Arc<RootCertStore>>) -> rustls::ClientConfig {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match (check, roots) {
        (Check::ChainAndName, Some(roots)) => {
            match WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build() {
                Ok(verifier) => verifier,
                // Only for an empty store, which `roots` never makes: then
                // nothing can be trusted.
                Err(_) => Arc::new(Verifier {
                    roots: Arc::new(RootCertStore::empty()),
                    algorithms,
                    check: Check::Chain,
                }),
            }
        }
        (check, roots) => Arc::new(Verifier {
            roots: roots.unwrap_or_else(|| Arc::new(RootCertStore::empty())),
            algorithms,
            check,
        }),
    };
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth()
}

/// `verify-ca` (the chain, not the name) and the unverified modes; the
/// handshake's own signatures are always checked.
#[derive(Debug)]
struct Verifier {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
    check: Check,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.check != Check::Nothing {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                &self.roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TLS failure in the error's chain, said in terms of the settings that
/// fix it; `None` if it is not about TLS.
pub fn explain(e: &tokio_postgres::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        let inner = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        if let Some(tls) = s
            .downcast_ref::<rustls::Error>()
            .or_else(|| inner.and_then(|i| i.downcast_ref::<rustls::Error>()))
        {
            return Some(explain_rustls(tls));
        }
        if s.to_string() == "server does not support TLS" {
            return Some(
                "the server does not accept TLS connections, and sslmode requires TLS".into(),
            );
        }
        source = s.source();
    }
    None
}

fn explain_rustls(e: &rustls::Error) -> String {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return format!("TLS handshake failed: {e}");
    };
    match cert {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "the server's TLS certificate is not signed by a trusted CA \
             (sslrootcert in the URL, or --pg-ca-file)"
                .into()
        }
        CertificateError::NotValidForName => {
            "the server's TLS certificate is not valid for the URL's host name (sslmode=verify-full)"
                .into()
        }
        CertificateError::NotValidForNameContext { expected, .. } => format!(
            "the server's TLS certificate is not valid for host `{}` (sslmode=verify-full \
             checks the URL's host name; verify-ca does not)",
            expected.to_str()
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the server's TLS certificate has expired".into()
        }
        other => format!("the server's TLS certificate was refused: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(conn: &str) -> PgConfig {
        PgConfig::parse_with(conn, None).expect("valid")
    }

    #[test]
    fn modes_map_onto_what_tokio_postgres_enforces() {
        for (mode, enforced) in [
            ("disable", TokioSslMode::Disable),
            ("prefer", TokioSslMode::Prefer),
            ("require", TokioSslMode::Require),
            ("verify-ca", TokioSslMode::Require),
            ("verify-full", TokioSslMode::Require),
        ] {
            let config = parse(&format!("postgres://u@db.example/x?sslmode={mode}"));
            assert_eq!(config.get_ssl_mode(), enforced, "{mode}");
            assert_eq!(config.ssl_mode().as_str(), mode);
        }
        assert_eq!(parse("postgres://u@h/x").ssl_mode(), SslMode::Prefer);
    }

    #[test]
    fn libpq_gets_the_ca_that_is_checked_against() {
        let params = |conn: &str| parse(conn).libpq_tls_params();
        assert_eq!(
            params("postgres://h/x?sslmode=verify-full"),
            [
                ("sslmode", "verify-full".into()),
                ("sslrootcert", "system".into())
            ]
        );
        assert_eq!(
            params("postgres://h/x?sslmode=require"),
            [("sslmode", "require".to_string())]
        );
        assert_eq!(
            params("postgres://h/x"),
            [("sslmode", "prefer".to_string())]
        );
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused_by_name() {
        let err = PgConfig::parse_with(
            "postgres://u:pw@h/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
            None,
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        assert!(!err.contains("pw"), "{err}");

        let empty = std::env::temp_dir().join(format!("bulkhead-empty-ca-{}", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = PgConfig::parse_with("postgres://h/x?sslmode=require", Some(&empty))
            .err()
            .expect("refused")
            .to_string();
        // Unchecked modes do not read it.
        let prefer = PgConfig::parse_with("postgres://h/x?sslmode=prefer", Some(&empty));
        let _ = std::fs::remove_file(&empty);
        assert!(err.contains("no certificate"), "{err}");
        assert!(prefer.is_ok());
    }
}
