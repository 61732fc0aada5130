//! `Email`: an e-mail address checked and normalised once, so that two
//! spellings a person cannot tell apart are one account. Unicode NFC first
//! (`josé` with a precomposed é and with e + a combining accent are one
//! address), then lower case; a part that mixes alphabets whose letters look
//! alike (Latin `a` and Cyrillic `а`) is refused rather than stored as a
//! second account that looks identical in a member list.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A normalised e-mail address: `local@domain`, NFC, lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// Why a text is not an e-mail address, in words for the person typing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must be an e-mail address of at most 254 characters")]
    Length,
    #[error("must be an e-mail address")]
    Shape,
    #[error("mixes alphabets whose letters look alike (such as Latin and Cyrillic)")]
    MixedScripts,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email: String = raw.trim().nfc().collect::<String>().to_lowercase();
        if email.chars().count() < 3 || email.len() > 254 {
            return Err(EmailError::Length);
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err(EmailError::Shape);
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if local.is_empty()
            || local.len() > 64
            || !domain_ok
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(EmailError::Shape);
        }
        if std::iter::once(local)
            .chain(domain.split('.'))
            .any(mixes_scripts)
        {
            return Err(EmailError::MixedScripts);
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@` (a default display name).
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Email {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

/// The confusable alphabets a letter belongs to (others are let be: a name
/// wholly in Arabic, Han or Devanagari confuses no one with Latin).
fn script(c: char) -> Option<Script> {
    match c as u32 {
        0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F | 0x1E00..=0x1EFF => Some(Script::Latin),
        0x370..=0x3FF | 0x1F00..=0x1FFF => Some(Script::Greek),
        0x400..=0x52F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => Some(Script::Cyrillic),
        _ => None,
    }
    .filter(|_| c.is_alphabetic())
}

fn mixes_scripts(part: &str) -> bool {
    let mut seen = None;
    for s in part.chars().filter_map(script) {
        match seen {
            None => seen = Some(s),
            Some(first) if first != s => return true,
            Some(_) => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_lower_cased_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@.example.com",
            "ada@example..com",
            "ada\u{0}@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn composed_and_decomposed_spellings_are_one_address() {
        let composed = Email::parse("jos\u{e9}@example.com").unwrap();
        let decomposed = Email::parse("jose\u{301}@example.com").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(
            Email::parse("JOSE\u{301}@EXAMPLE.COM").unwrap(),
            composed,
            "and upper case too"
        );
    }

    #[test]
    fn look_alike_alphabets_mixed_in_one_part_are_refused() {
        // Cyrillic а (U+0430) among Latin letters.
        assert_eq!(
            Email::parse("\u{430}da@example.com"),
            Err(EmailError::MixedScripts)
        );
        assert_eq!(
            Email::parse("ada@ex\u{430}mple.com"),
            Err(EmailError::MixedScripts)
        );
        // One alphabet per part is fine, even different ones.
        assert!(Email::parse("\u{432}\u{430}\u{441}\u{44f}@example.com").is_ok());
        assert!(
            Email::parse("jos\u{e9}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}")
                .is_ok()
        );
        assert!(Email::parse("\u{5c0f}\u{660e}@example.com").is_ok());
    }
}
