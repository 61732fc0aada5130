//! Connection strings as libpq reads them, TLS parameters included:
//! tokio-postgres knows only `sslmode=disable|prefer|require` and no
//! `sslrootcert`, so those two are taken out here and the rest handed on.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use tokio_postgres::config::Host;

/// libpq's `sslmode` (without `allow`, which has no use against a server
/// that offers TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it, never verified (a man in the middle can
    /// strip it anyway); libpq's default, and so ours.
    Prefer,
    /// TLS or nothing; the certificate is verified only against a CA that was
    /// given (`sslrootcert` or `--pg-ca-file`), as libpq does.
    Require,
    /// The certificate chains to a trusted CA; any host name.
    VerifyCa,
    /// The certificate chains to a trusted CA and names the URL's host.
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Result<Self, UrlError> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => return Err(UrlError::SslMode("allow (use prefer or stricter)".into())),
            other => return Err(UrlError::SslMode(other.into())),
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where trusted CA certificates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// `sslrootcert=system`: Mozilla's roots (libpq 16 takes the system's).
    System,
}

#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("unknown sslmode `{0}`: expected disable, prefer, require, verify-ca or verify-full")]
    SslMode(String),
    #[error("sslrootcert is empty")]
    EmptyRootCert,
    #[error("sslrootcert=system needs sslmode=verify-full (the default with it), not {0}")]
    SystemNeedsVerifyFull(SslMode),
    #[error("malformed connection string: {0}")]
    Syntax(String),
    #[error("CA file {path}: {detail}")]
    RootCertFile { path: String, detail: String },
}

/// What a connection string says about TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: Option<SslMode>,
    pub root_cert: Option<RootCert>,
}

/// Splits the TLS parameters out of a connection string (a `postgres://`
/// URL or libpq's `key=value` form): the rest, for
/// `tokio_postgres::Config`, and what they said. The last of a repeated
/// parameter wins, as in libpq.
pub fn split(conn: &str) -> Result<(String, TlsParams), UrlError> {
    let mut tls = TlsParams::default();
    let mut take = |key: &str, value: &str| -> Result<bool, UrlError> {
        match key {
            "sslmode" => tls.mode = Some(SslMode::parse(value)?),
            "sslrootcert" if value.is_empty() => return Err(UrlError::EmptyRootCert),
            "sslrootcert" if value == "system" => tls.root_cert = Some(RootCert::System),
            "sslrootcert" => tls.root_cert = Some(RootCert::File(PathBuf::from(value))),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = match url_parts(conn) {
        Some((base, query)) => {
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !take(&decode(key)?, &decode(value)?)? {
                    kept.push(pair);
                }
            }
            match kept.is_empty() {
                true => base.to_string(),
                false => format!("{base}?{}", kept.join("&")),
            }
        }
        None => {
            let mut kept = Vec::new();
            for (key, value) in key_values(conn)? {
                if !take(&key, &value)? {
                    kept.push(format!(
                        "{key}='{}'",
                        value.replace('\\', "\\\\").replace('\'', "\\'")
                    ));
                }
            }
            kept.join(" ")
        }
    };
    if tls.root_cert == Some(RootCert::System) {
        match tls.mode {
            None => tls.mode = Some(SslMode::VerifyFull),
            Some(SslMode::VerifyFull) => {}
            Some(weaker) => return Err(UrlError::SystemNeedsVerifyFull(weaker)),
        }
    }
    Ok((rest, tls))
}

/// The connection string with `sslmode=mode` added at its end (where it
/// wins over any earlier one).
pub fn with_ssl_mode(conn: &str, mode: SslMode) -> String {
    match url_parts(conn) {
        Some((_, query)) if !query.is_empty() => format!("{conn}&sslmode={mode}"),
        Some((base, _)) => format!("{base}?sslmode={mode}"),
        None => format!("{conn} sslmode={mode}"),
    }
}

/// Whether every host of the config is this machine (loopback addresses,
/// `localhost`, Unix sockets): traffic that never crosses a network.
pub fn is_local(config: &tokio_postgres::Config) -> bool {
    config.get_hosts().iter().all(|host| match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.to_canonical().is_loopback())
        }
    })
}

/// A URL's part before its parameters and the parameters (empty if none),
/// cut where tokio-postgres cuts it: the first `?` after the first `@`.
fn url_parts(conn: &str) -> Option<(&str, &str)> {
    let body = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|prefix| conn.strip_prefix(prefix))?;
    let after_credentials = body.find('@').map_or(0, |at| at + 1);
    let start = conn.len() - body.len() + after_credentials;
    Some(match conn[start..].find('?') {
        Some(q) => (&conn[..start + q], &conn[start + q + 1..]),
        None => (conn, ""),
    })
}

fn decode(s: &str) -> Result<String, UrlError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| UrlError::Syntax("a URL parameter is not UTF-8".into()))
}

/// libpq's `key = value` pairs, values bare or single-quoted, `\` escaping
/// the next character in both.
fn key_values(conn: &str) -> Result<Vec<(String, String)>, UrlError> {
    let mut pairs = Vec::new();
    let mut chars = conn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            return match chars.peek() {
                None => Ok(pairs),
                Some(_) => Err(UrlError::Syntax("a parameter without a name".into())),
            };
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(UrlError::Syntax(format!("`{key}` is not followed by `=`")));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\'') if quoted => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) if quoted || !c.is_whitespace() => value.push(c),
                Some(_) => break,
                None if quoted => {
                    return Err(UrlError::Syntax(format!("unterminated quote in `{key}`")));
                }
                None => break,
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_of(conn: &str) -> TlsParams {
        split(conn).expect("valid").1
    }

    #[test]
    fn each_sslmode_is_read_and_taken_out_of_the_url() {
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let (rest, tls) =
                split(&format!("postgres://u:p@db.example:5432/x?sslmode={mode}")).expect("valid");
            assert_eq!(tls.mode.map(SslMode::as_str), Some(mode));
            assert_eq!(rest, "postgres://u:p@db.example:5432/x");
            rest.parse::<tokio_postgres::Config>()
                .expect("tokio-postgres takes the rest");
        }
    }

    #[test]
    fn no_sslmode_means_none_given() {
        assert_eq!(tls_of("postgres://u@h/x"), TlsParams::default());
        assert_eq!(tls_of("host=h user=u"), TlsParams::default());
    }

    #[test]
    fn other_parameters_are_kept_as_they_were() {
        let (rest, tls) = split(
            "postgresql://u:p%3Fw@h1:1,h2:2/db?application_name=a%20b&sslrootcert=%2Ftmp%2Fca.pem\
             &target_session_attrs=read-write&sslmode=verify-ca",
        )
        .expect("valid");
        assert_eq!(
            rest,
            "postgresql://u:p%3Fw@h1:1,h2:2/db?application_name=a%20b&target_session_attrs=read-write"
        );
        assert_eq!(tls.mode, Some(SslMode::VerifyCa));
        assert_eq!(
            tls.root_cert,
            Some(RootCert::File(PathBuf::from("/tmp/ca.pem")))
        );
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        let (rest, tls) = split("postgres://u:a?b@h/db?sslmode=require").expect("valid");
        assert_eq!(rest, "postgres://u:a?b@h/db");
        assert_eq!(tls.mode, Some(SslMode::Require));
    }

    #[test]
    fn key_value_strings_are_read_too() {
        let (rest, tls) = split(
            "host=db.example user=u password='it\\'s a secret' sslmode = verify-full sslrootcert='/etc/ca dir/ca.pem'",
        )
        .expect("valid");
        assert_eq!(tls.mode, Some(SslMode::VerifyFull));
        assert_eq!(
            tls.root_cert,
            Some(RootCert::File(PathBuf::from("/etc/ca dir/ca.pem")))
        );
        let config: tokio_postgres::Config = rest.parse().expect("tokio-postgres takes the rest");
        assert_eq!(config.get_password(), Some(&b"it's a secret"[..]));
    }

    #[test]
    fn unknown_or_weak_sslmodes_are_refused_by_name() {
        for (mode, says) in [
            ("verify_full", "verify_full"),
            ("allow", "allow"),
            ("", "``"),
        ] {
            let err = split(&format!("postgres://u:secret@h/x?sslmode={mode}"))
                .expect_err("refused")
                .to_string();
            assert!(err.contains(says) && err.contains("verify-full"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
        let err = split("host=h sslmode=on").expect_err("refused").to_string();
        assert!(err.contains("unknown sslmode `on`"), "{err}");
    }

    #[test]
    fn sslrootcert_system_means_verify_full_and_nothing_weaker() {
        let tls = tls_of("postgres://h/x?sslrootcert=system");
        assert_eq!(tls.mode, Some(SslMode::VerifyFull));
        assert_eq!(tls.root_cert, Some(RootCert::System));
        let err = split("postgres://h/x?sslrootcert=system&sslmode=require").expect_err("refused");
        assert!(err.to_string().contains("verify-full"), "{err}");
        assert!(matches!(
            split("postgres://h/x?sslrootcert="),
            Err(UrlError::EmptyRootCert)
        ));
    }

    #[test]
    fn malformed_key_value_strings_are_refused() {
        assert!(split("host=h password='open").is_err());
        assert!(split("host").is_err());
    }

    #[test]
    fn a_mode_is_added_where_it_wins() {
        assert_eq!(
            with_ssl_mode("postgres://u@h/x", SslMode::VerifyFull),
            "postgres://u@h/x?sslmode=verify-full"
        );
        assert_eq!(
            with_ssl_mode("postgres://u@h/x?application_name=a", SslMode::Require),
            "postgres://u@h/x?application_name=a&sslmode=require"
        );
        assert_eq!(
            with_ssl_mode("host=h", SslMode::VerifyCa),
            "host=h sslmode=verify-ca"
        );
    }

    #[test]
    fn loopback_hosts_are_local_and_others_not() {
        let local = |conn: &str| is_local(&conn.parse().expect("valid"));
        assert!(local("postgres://u@127.0.0.1:5432/x"));
        assert!(local("postgres://u@localhost/x"));
        assert!(local("postgres://u@[::1]:5432/x"));
        assert!(local("postgres://u@[::ffff:127.0.0.1]:5432/x"));
        assert!(local("host=/var/run/postgresql user=u"));
        assert!(!local("postgres://u@db.example/x"));
        assert!(!local("postgres://u@10.0.0.5/x"));
        assert!(!local("postgres://u@127.0.0.1,db.example/x"));
    }
}
