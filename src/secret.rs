//! Secrets: a wrapper whose `Debug`/`Display` never reveal the value, the
//! fleet's master secret, and the per-tenant runtime passwords derived from it.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// A value that must never reach a log line or a response by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The only way to read the value: greppable on purpose.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("BULKHEAD_SECRET must be at least 32 characters long (got {0})")]
    TooShort(usize),
    #[error("could not read or write the secret file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The fleet's master secret. Every tenant's runtime password is an HMAC of it,
/// so no tenant password is ever stored anywhere.
#[derive(Clone)]
pub struct MasterSecret(Secret<Vec<u8>>);

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterSecret(***)")
    }
}

impl MasterSecret {
    pub fn parse(value: &str) -> Result<Self, SecretError> {
        let value = value.trim();
        if value.len() < 32 {
            return Err(SecretError::TooShort(value.len()));
        }
        Ok(Self(Secret::new(value.as_bytes().to_vec())))
    }

    /// Reads the secret from `path`, generating it (0600) on first use. Dev only:
    /// production passes `BULKHEAD_SECRET`.
    pub fn load_or_generate(path: &Path) -> Result<Self, SecretError> {
        let io = |source| SecretError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let value = random_hex(32);
                write_private_file(path, &value).map_err(io)?;
                Self::parse(&value)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The runtime password of a tenant at a credential generation: 256 bits of
    /// HMAC-SHA256 output, hex encoded.
    pub fn tenant_password(&self, tenant: Uuid, generation: i32) -> Secret<String> {
        let mut mac =
            HmacSha256::new_from_slice(self.0.expose()).expect("HMAC accepts keys of any length");
        mac.update(b"bulkhead tenant runtime password v1\0");
        mac.update(tenant.as_bytes());
        mac.update(&generation.to_be_bytes());
        Secret::new(hex::encode(mac.finalize().into_bytes()))
    }

    /// An operator's TOTP secret (RFC 6238, 160 bits) for the seed its row
    /// keeps: the control plane alone does not give it, and a new seed
    /// (`operator reset-mfa`) voids the old one.
    pub fn operator_totp_secret(&self, seed: &[u8]) -> Secret<Vec<u8>> {
        let mut mac =
            HmacSha256::new_from_slice(self.0.expose()).expect("HMAC accepts keys of any length");
        mac.update(b"bulkhead operator totp secret v1\0");
        mac.update(seed);
        Secret::new(mac.finalize().into_bytes()[..20].to_vec())
    }

    /// The CSRF token of a session: bound to it, unguessable without both the
    /// session's cookie value and this secret, never stored.
    pub fn csrf_token(&self, session: &str) -> String {
        let mut mac =
            HmacSha256::new_from_slice(self.0.expose()).expect("HMAC accepts keys of any length");
        mac.update(b"bulkhead session csrf v1\0");
        mac.update(session.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// `n` random bytes, hex encoded.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Writes `contents` to a new file readable by its owner only.
pub fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Iteration count of the SCRAM verifiers set on tenant roles. The passwords are
/// 256-bit HMAC outputs, so key stretching adds no security to them, while every
/// iteration is paid on each new connection (see DESIGN.md, "Pool router").
pub const TENANT_SCRAM_ITERATIONS: u32 = 1;

/// A PostgreSQL SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>`)
/// for `password`, as `ALTER ROLE ... PASSWORD` accepts it pre-computed.
///
/// For machine-made passwords of printable ASCII (tenant passwords, the
/// embedded cluster's): the password is hashed as it is, without SASLprep,
/// which PostgreSQL and clients apply and which leaves printable ASCII
/// unchanged. A person's password (a ligature, a no-break space) would be
/// normalised by the client and never match.
pub fn scram_verifier(password: &str, iterations: u32) -> String {
    debug_assert!(
        password.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
        "scram_verifier takes printable ASCII only (no SASLprep here)"
    );
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    scram_verifier_with_salt(password, iterations, &salt)
}

fn scram_verifier_with_salt(password: &str, iterations: u32, salt: &[u8]) -> String {
    // RFC 5802's `Hi` is PBKDF2-HMAC-SHA256 with one 32-byte block.
    let iterations = iterations.max(1);
    let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, iterations);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac_sha256(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        B64.encode(salt),
        B64.encode(stored_key),
        B64.encode(server_key)
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        let m = MasterSecret::parse(&"x".repeat(40)).unwrap();
        assert!(!format!("{m:?}").contains('x'));
    }

    #[test]
    fn short_master_secret_is_refused() {
        assert!(matches!(
            MasterSecret::parse("short"),
            Err(SecretError::TooShort(5))
        ));
    }

    #[test]
    fn tenant_passwords_differ_by_tenant_and_generation() {
        let m = MasterSecret::parse(&"k".repeat(32)).unwrap();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let pa1 = m.tenant_password(a, 1);
        assert_eq!(pa1.expose().len(), 64);
        assert_eq!(pa1, m.tenant_password(a, 1));
        assert_ne!(pa1, m.tenant_password(a, 2));
        assert_ne!(pa1, m.tenant_password(b, 1));
    }

    #[test]
    fn scram_verifier_has_postgres_format_and_is_salted() {
        let v = scram_verifier("pencil", 1);
        let re_ok = v.starts_with("SCRAM-SHA-256$1:") && v.matches('$').count() == 2;
        assert!(re_ok, "{v}");
        assert_ne!(
            v,
            scram_verifier("pencil", 1),
            "each verifier gets its own salt"
        );
        let salt = [7u8; 16];
        assert_eq!(
            scram_verifier_with_salt("pencil", 2, &salt),
            scram_verifier_with_salt("pencil", 2, &salt)
        );
        assert_ne!(
            scram_verifier_with_salt("pencil", 1, &salt),
            scram_verifier_with_salt("pencil", 2, &salt)
        );
    }

    #[test]
    fn scram_verifier_matches_an_independent_computation() {
        // RFC 7677's example password, salt and iteration count; the keys
        // computed with Python's hashlib.pbkdf2_hmac and hmac. That
        // PostgreSQL accepts these verifiers is tests/scram.rs.
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        assert_eq!(
            scram_verifier_with_salt("pencil", 4096, &salt),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$\
             WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
             wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }
}
