//! Host names as they arrive in `Host` headers: normalised (lower case, port
//! and trailing dot stripped, IDNA to ASCII) and validated before anything
//! looks them up. Garbage never reaches the control plane.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("missing Host header")]
    Missing,
    #[error("malformed host name")]
    Malformed,
    #[error("IP addresses are not served as hosts")]
    IpLiteral,
    #[error("host name too long")]
    TooLong,
    /// RFC 9112 §3.2: a request with more than one `Host` is refused, never
    /// read one way here and another way by a proxy in front.
    #[error("more than one Host header")]
    Duplicate,
}

/// A normalised, validated DNS host name: `acme.example.com`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostName(String);

impl HostName {
    /// Parses a `Host` header value (`Acme.Example.COM:8080.` and friends).
    pub fn parse(raw: &str) -> Result<Self, HostError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(HostError::Missing);
        }
        if raw.len() > 300 {
            return Err(HostError::TooLong);
        }
        if raw.starts_with('[') {
            return Err(HostError::IpLiteral);
        }
        let name = match raw.rsplit_once(':') {
            Some((name, port)) => {
                if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HostError::Malformed);
                }
                if port.parse::<u32>().map_or(true, |p| p == 0 || p > 65535) {
                    return Err(HostError::Malformed);
                }
                name
            }
            None => raw,
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.contains(['/', '\\', '@', ' ', '%', '?', '#', ':']) {
            return Err(HostError::Malformed);
        }
        // The common case, a lower-case ASCII name, needs no IDNA processing
        // (validate() checks every label the same way).
        if name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !name.split('.').any(|l| l.starts_with("xn--"))
        {
            return Self::validate(name.to_string());
        }
        let ascii = idna::domain_to_ascii(name).map_err(|_| HostError::Malformed)?;
        Self::validate(ascii)
    }

    fn validate(name: String) -> Result<Self, HostError> {
        if name.is_empty() {
            return Err(HostError::Malformed);
        }
        if name.len() > 253 {
            return Err(HostError::TooLong);
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok()
            || name
                .split('.')
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(HostError::IpLiteral);
        }
        for label in name.split('.') {
            let ok = (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(if label.len() > 63 {
                    HostError::TooLong
                } else {
                    HostError::Malformed
                });
            }
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first label if this host is exactly `<label>.<base>`.
    pub fn subdomain_of(&self, base: &HostName) -> Option<&str> {
        let prefix = self.0.strip_suffix(&base.0)?.strip_suffix('.')?;
        (!prefix.is_empty() && !prefix.contains('.')).then_some(prefix)
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_table() {
        let ok = [
            ("acme.localhost", "acme.localhost"),
            ("ACME.LocalHost", "acme.localhost"),
            ("acme.localhost:8080", "acme.localhost"),
            ("acme.localhost.", "acme.localhost"),
            ("acme.localhost.:443", "acme.localhost"),
            ("  acme.example.com ", "acme.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("acme.localhost.evil.com", "acme.localhost.evil.com"),
            ("localhost", "localhost"),
        ];
        for (raw, want) in ok {
            assert_eq!(
                HostName::parse(raw).map(|h| h.0),
                Ok(want.to_string()),
                "{raw:?}"
            );
        }
        let long_label = format!("{}.example.com", "a".repeat(64));
        let long_name = format!("{}.com", ["abcdefghij"; 25].join("."));
        let bad = [
            ("", HostError::Missing),
            ("   ", HostError::Missing),
            ("acme.localhost:", HostError::Malformed),
            ("acme.localhost:99999", HostError::Malformed),
            ("acme.localhost:0", HostError::Malformed),
            ("acme.localhost:80a", HostError::Malformed),
            ("acme..localhost", HostError::Malformed),
            (".acme.localhost", HostError::Malformed),
            ("-acme.localhost", HostError::Malformed),
            ("acme_co.localhost", HostError::Malformed),
            ("acme.localhost/x", HostError::Malformed),
            ("user@acme.localhost", HostError::Malformed),
            ("a b.localhost", HostError::Malformed),
            ("acme%2elocalhost", HostError::Malformed),
            ("127.0.0.1", HostError::IpLiteral),
            ("127.0.0.1:8080", HostError::IpLiteral),
            ("[::1]:8080", HostError::IpLiteral),
            ("[::1]", HostError::IpLiteral),
            (&long_label, HostError::TooLong),
            (&long_name, HostError::TooLong),
        ];
        for (raw, want) in bad {
            assert_eq!(HostName::parse(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn subdomain_is_one_label_under_the_base() {
        let base = HostName::parse("localhost").unwrap();
        let sub = |h: &str| {
            HostName::parse(h)
                .unwrap()
                .subdomain_of(&base)
                .map(str::to_string)
        };
        assert_eq!(sub("acme.localhost"), Some("acme".into()));
        assert_eq!(sub("a.b.localhost"), None);
        assert_eq!(sub("localhost"), None);
        assert_eq!(sub("acmelocalhost"), None);
        assert_eq!(sub("acme.localhost.evil.com"), None);
    }
}
