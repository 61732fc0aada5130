//! Passwords: argon2id with OWASP's recommended parameters (19 MiB, 2
//! passes, 1 lane), a length and common-password policy, and rehashing on
//! log-in when the parameters of a stored hash are not the current ones.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LEN: usize = 10;
pub const MAX_LEN: usize = 128;

/// The most used passwords of at least `MIN_LEN` characters (shorter ones fail
/// the length rule anyway), compared case-insensitively.
const COMMON: &[&str] = &[
    "0000000000",
    "0123456789",
    "0987654321",
    "1111111111",
    "1122334455",
    "1234512345",
    "1234567890",
    "123456789a",
    "123456789q",
    "1234567890a",
    "1234567890q",
    "123123123123",
    "123qweasdzxc",
    "12345qwert",
    "12345678910",
    "1q2w3e4r5t",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "2222222222",
    "5555555555",
    "6666666666",
    "7777777777",
    "8888888888",
    "9876543210",
    "9999999999",
    "aaaaaaaaaa",
    "abc1234567",
    "abcd123456",
    "abcdefghij",
    "administrator",
    "asdfghjkl1",
    "asdfghjkl123",
    "baseball123",
    "changeme123",
    "charlie123",
    "dragon1234",
    "football123",
    "iloveyou12",
    "iloveyou123",
    "letmein123",
    "letmein1234",
    "liverpool123",
    "master1234",
    "michael123",
    "monkey1234",
    "p@ssw0rd123",
    "pass123456",
    "passw0rd12",
    "passw0rd123",
    "password00",
    "password01",
    "password12",
    "password123",
    "password1234",
    "password12345",
    "password!1",
    "princess123",
    "qazwsxedc123",
    "qazwsxedcrfv",
    "qwerty1234",
    "qwerty12345",
    "qwerty123456",
    "qwertyuiop",
    "qwertyuiop1",
    "qwertyuiop123",
    "shadow1234",
    "starwars123",
    "sunshine123",
    "superman123",
    "trustno1234",
    "welcome123",
    "welcome1234",
    "zaq12wsxcde",
    "zxcvbnm123",
    "zxcvbnmasdf",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("must be at least {MIN_LEN} characters")]
    TooShort,
    #[error("must be at most {MAX_LEN} characters")]
    TooLong,
    #[error("is one of the most common passwords; choose another")]
    Common,
}

/// The password rules: 10–128 characters, not a well-known password.
pub fn check_policy(password: &str) -> Result<(), PolicyError> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(PolicyError::TooShort);
    }
    if chars > MAX_LEN {
        return Err(PolicyError::TooLong);
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Err(PolicyError::Common);
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh salt.
pub fn hash(password: &str) -> String {
    hasher()
        .hash_password(password.as_bytes())
        .expect("argon2 with valid parameters and a fresh salt cannot fail")
        .to_string()
}

/// Whether `password` matches `stored`. A malformed stored hash matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Whether a stored hash was made with other parameters than today's (and so
/// should be replaced after a successful log-in).
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm.as_str() != "argon2id" {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => {
            p.m_cost() != Params::DEFAULT_M_COST
                || p.t_cost() != Params::DEFAULT_T_COST
                || p.p_cost() != Params::DEFAULT_P_COST
        }
        Err(_) => true,
    }
}

/// Whether `password` matches `stored`, in the same time whether or not
/// there is a stored hash (an unknown e-mail): a log-in's answer never
/// tells whether the account exists.
pub fn verify_or_burn(password: &str, stored: Option<&str>) -> bool {
    match stored {
        Some(stored) => verify(password, stored),
        None => {
            burn_equivalent_time(password);
            false
        }
    }
}

/// Work equal to one verification, for log-ins of unknown e-mails: the
/// answer takes as long as for a wrong password.
pub fn burn_equivalent_time(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("an unused password for timing only"));
    let _ = verify(password, dummy);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse battery!", &h));
        assert!(!verify("anything", "not a hash"));
        assert_ne!(h, hash("correct horse battery"), "salted");
        assert!(!needs_rehash(&h));
    }

    #[test]
    fn weaker_parameters_ask_for_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse battery")
        .unwrap()
        .to_string();
        assert!(verify("correct horse battery", &weak));
        assert!(needs_rehash(&weak));
        assert!(needs_rehash("garbage"));
    }

    #[test]
    fn policy_rejects_short_long_and_common_passwords() {
        assert_eq!(check_policy("short"), Err(PolicyError::TooShort));
        assert_eq!(check_policy(&"x".repeat(129)), Err(PolicyError::TooLong));
        assert_eq!(check_policy("Password123"), Err(PolicyError::Common));
        assert_eq!(check_policy("QWERTYUIOP"), Err(PolicyError::Common));
        assert_eq!(check_policy("ünïcødé-pässwörd"), Ok(()));
        assert_eq!(check_policy("correct horse battery"), Ok(()));
        // Characters, not bytes.
        assert_eq!(check_policy("ééééééééé"), Err(PolicyError::TooShort));
    }
}
