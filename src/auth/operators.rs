//! Operators' credentials besides the password: the TOTP second factor
//! (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps, one step of skew either
//! way), single-use recovery codes, enrolment links, and the operator
//! session cookie — a name of its own (`bh_operator`), so tenant
//! authentication, which reads only `bh_session`, never sees it.

use axum::http::HeaderMap;
use rand::Rng;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Totp};

use crate::secret::Secret;

/// The operator session cookie.
pub const COOKIE_NAME: &str = "bh_operator";
/// Recovery codes made at each enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The issuer an authenticator app shows beside the account.
pub const ISSUER: &str = "bulkhead";
/// A TOTP step, in seconds.
pub const STEP: u64 = 30;

/// A fresh TOTP seed (see [`crate::secret::MasterSecret::operator_totp_secret`]).
pub fn new_seed() -> [u8; 16] {
    rand::rng().random()
}

fn totp(secret: &Secret<Vec<u8>>, account: &str) -> Totp {
    totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(secret.expose().clone())
        .with_issuer(Some(ISSUER))
        // `:` separates issuer and account in the URI's label.
        .with_account_name(account.replace(':', "_"))
        .build()
        .expect("a 160-bit secret, 6 digits and a 30 s step are valid TOTP parameters")
}

/// The `otpauth://totp/...` URI an authenticator app enrols from.
pub fn otpauth_uri(secret: &Secret<Vec<u8>>, account: &str) -> String {
    totp(secret, account)
        .to_url()
        .expect("an account name without `:` makes a valid URI")
}

/// `uri` (an `otpauth://` URI) as a QR code an authenticator app scans:
/// an SVG document (`svg`), or text for a terminal, two rows per line.
pub fn qr_code(uri: &str, svg: bool) -> String {
    use qrcode::render::{svg as svg_render, unicode};
    let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) else {
        return String::new();
    };
    if svg {
        code.render::<svg_render::Color<'_>>()
            .min_dimensions(200, 200)
            .build()
    } else {
        code.render::<unicode::Dense1x2>()
            .dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark)
            .build()
    }
}

/// The base32 secret, as an app takes it typed in (dev prints it).
pub fn base32_secret(secret: &Secret<Vec<u8>>) -> String {
    totp_rs::Secret::from(secret.expose().clone()).to_base32()
}

/// The time step of `code` if it is a valid code at `unix_time` (that
/// step, the one before or the one after). Whether the step was used
/// already is the caller's to check (replay).
pub fn check_code(secret: &Secret<Vec<u8>>, code: &str, unix_time: u64) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, "")
        .check(code, unix_time)
        .and_then(|step| i64::try_from(step).ok())
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The unambiguous lower-case alphabet of recovery codes (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Fresh recovery codes, `xxxx-xxxx-xxxx-xxxx` (about 79 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            let chars: Vec<char> = (0..16)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// What is kept of a recovery code: the SHA-256 of it without dashes or
/// spaces, in lower case (as typed, however grouped).
pub fn recovery_hash(code: &str) -> [u8; 32] {
    let normal: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    Sha256::digest(normal.as_bytes()).into()
}

/// A fresh enrolment token (256 random bits, hex); only its
/// [`super::sessions::hash`] is kept.
pub fn new_enrolment_token() -> String {
    crate::secret::random_hex(32)
}

/// The operator session cookie of a request, if it has one of the right shape.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    super::sessions::cookie_value(headers, COOKIE_NAME)
}

/// `Set-Cookie` for a new operator session: host-only (no `Domain`, so
/// only admin.<base> ever gets it back), HttpOnly, SameSite=Strict,
/// `Secure` unless cookies are insecure (dev).
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        crate::control::OPERATOR_SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret<Vec<u8>> {
        // RFC 6238's SHA-1 test key.
        Secret::new(b"12345678901234567890".to_vec())
    }

    #[test]
    fn the_enrolment_uri_renders_as_a_square_qr_code() {
        let uri = otpauth_uri(&secret(), "ops@example.com");
        let svg = qr_code(&uri, true);
        assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>"), "{svg}");
        // Text: two modules per character row, every row as wide.
        let text = qr_code(&uri, false);
        let rows: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(rows.len() >= 12, "{text}");
        assert!(rows.iter().all(|w| *w == rows[0]), "{rows:?}");
        assert!(
            rows[0] >= 2 * rows.len() - 2 && rows[0] <= 2 * rows.len() + 1,
            "{rows:?}"
        );
    }

    #[test]
    fn codes_match_rfc_6238_and_allow_one_step_of_skew() {
        // RFC 6238 Appendix B, SHA-1, last six digits of 94287082 at T=59.
        assert_eq!(check_code(&secret(), "287082", 59), Some(1));
        assert_eq!(check_code(&secret(), "287082", 59 + 30), Some(1));
        assert_eq!(check_code(&secret(), "287082", 59 + 60), None);
        assert_eq!(check_code(&secret(), "28708", 59), None);
        assert_eq!(check_code(&secret(), "abcdef", 59), None);
    }

    #[test]
    fn the_uri_carries_the_secret_in_base32() {
        let uri = otpauth_uri(&secret(), "ops@example.com");
        assert!(
            uri.starts_with("otpauth://totp/bulkhead:ops%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={}", base32_secret(&secret()))));
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        let c = &codes[0];
        assert_eq!(c.len(), 19);
        assert_eq!(
            recovery_hash(c),
            recovery_hash(&c.replace('-', " ").to_uppercase())
        );
        assert_ne!(recovery_hash(c), recovery_hash(&codes[1]));
    }

    #[test]
    fn operator_cookies_are_strict_host_only_and_secure_unless_dev() {
        let c = set_cookie(&"a".repeat(64), true);
        assert!(c.starts_with("bh_operator="));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        assert!(!c.to_lowercase().contains("domain"));
        assert!(!set_cookie(&"a".repeat(64), false).contains("Secure"));
    }
}
