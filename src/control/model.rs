//! The control plane's vocabulary: newtypes whose constructors validate, and the
//! enums stored as CHECK-constrained text.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use uuid::Uuid;

/// Slugs that can never name a tenant: they are host names bulkhead serves
/// itself, or names that would confuse an operator reading `pg_database`.
pub const RESERVED_SLUGS: &[&str] = &[
    "admin",
    "api",
    "app",
    "apps",
    "assets",
    "auth",
    "billing",
    "blog",
    "bulkhead",
    "cdn",
    "console",
    "dashboard",
    "dev",
    "docs",
    "ftp",
    "help",
    "imap",
    "internal",
    "login",
    "mail",
    "metrics",
    "mx",
    "ns1",
    "ns2",
    "pop",
    "postgres",
    "public",
    "root",
    "signup",
    "smtp",
    "staging",
    "static",
    "status",
    "support",
    "template",
    "template0",
    "template1",
    "test",
    "webhooks",
    "www",
];

/// A tenant's URL-safe name: `^[a-z][a-z0-9-]{1,30}[a-z0-9]$`, not reserved.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlugError {
    #[error(
        "invalid slug `{0}`: use 3-32 characters, lower-case letters, digits and hyphens, \
         starting with a letter and not ending with a hyphen"
    )]
    Invalid(String),
    #[error("slug `{0}` is reserved")]
    Reserved(String),
}

impl Slug {
    pub fn parse(s: &str) -> Result<Self, SlugError> {
        let b = s.as_bytes();
        let valid = (3..=32).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[b.len() - 1] != b'-';
        if !valid {
            return Err(SlugError::Invalid(s.to_string()));
        }
        if RESERVED_SLUGS.contains(&s) || s.starts_with("pg-") || s.starts_with("bulkhead-") {
            return Err(SlugError::Reserved(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a tenant's objects are called on its server: its runtime login role,
/// its database (database mode) or schema (schema mode), and with `_owner`
/// appended its owner role. `pg_roles`, `pg_database` and `pg_namespace` are
/// readable by every role, so the name says nothing about the tenant: `t_`
/// and [`PgName::ID_LEN`] random base32 characters, minted when the tenant is
/// reserved and recorded in the control plane (the slug lives only there).
/// Tenants made before carry `t_<slug>` until `reconcile` renames them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PgName(String);

impl PgName {
    /// Random characters in a minted name: 80 bits.
    pub const ID_LEN: usize = 16;

    /// A new random name.
    pub fn mint() -> Self {
        use rand::Rng;
        const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut rng = rand::rng();
        let id: String = (0..Self::ID_LEN)
            .map(|_| char::from(BASE32[rng.random_range(0..BASE32.len())]))
            .collect();
        Self(format!("t_{id}"))
    }

    /// The name tenants were given before names were opaque: `t_<slug>`.
    pub fn from_slug(slug: &Slug) -> Self {
        Self(format!("t_{slug}"))
    }

    /// A recorded name: `t_` and 3-32 lower-case letters, digits or hyphens
    /// (a minted id, or a slug), so that `<name>_owner` fits in 63 bytes.
    pub fn parse(s: &str) -> Result<Self, String> {
        let valid = s.strip_prefix("t_").is_some_and(|id| {
            (3..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        });
        if valid {
            Ok(Self(s.to_string()))
        } else {
            Err(format!("invalid catalog name `{s}`"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The runtime LOGIN role: the name itself.
    pub fn runtime_role(&self) -> &str {
        &self.0
    }

    /// The NOLOGIN role that owns the tenant's objects.
    pub fn owner_role(&self) -> String {
        format!("{}_owner", self.0)
    }
}

impl fmt::Display for PgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant's id: minted by the provisioner, never taken from a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Declares an enum stored as CHECK-constrained text, with its parser.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} `{}` (expected one of: {})",
                        stringify!($name).to_lowercase(),
                        other,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

text_enum!(
    /// Where a tenant is in its life.
    Status {
        Provisioning => "provisioning",
        Active => "active",
        Suspended => "suspended",
        Migrating => "migrating",
        MigrationFailed => "migration_failed",
        Deleting => "deleting",
        Deleted => "deleted",
    }
);

text_enum!(
    /// Database per tenant, or schema per tenant in a shared database.
    Mode {
        Database => "database",
        Schema => "schema",
    }
);

text_enum!(
    Plan {
        Free => "free",
        Pro => "pro",
    }
);

impl Plan {
    /// Most projects a tenant on this plan may have (`None`: unlimited).
    pub fn max_projects(self) -> Option<i64> {
        match self {
            Plan::Free => Some(3),
            Plan::Pro => None,
        }
    }

    /// Most members a tenant on this plan may have (`None`: unlimited).
    pub fn max_members(self) -> Option<i64> {
        match self {
            Plan::Free => Some(5),
            Plan::Pro => None,
        }
    }
}

text_enum!(
    /// The provisioner's and the deleter's steps, in order. The step a tenant
    /// records is the one about to run.
    Step {
        Reserve => "reserve",
        Roles => "roles",
        Storage => "storage",
        Grants => "grants",
        Migrate => "migrate",
        Verify => "verify",
        Export => "export",
        Drop => "drop",
        Tombstone => "tombstone",
    }
);

impl Step {
    /// The creation steps, in order.
    pub const CREATE: &'static [Step] = &[
        Step::Reserve,
        Step::Roles,
        Step::Storage,
        Step::Grants,
        Step::Migrate,
        Step::Verify,
    ];
}

text_enum!(
    /// A database server's placement state.
    ServerState {
        Open => "open",
        Draining => "draining",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules() {
        for ok in ["acme", "a-1", "acme-co", "x2z", &"a".repeat(32)] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "Acme",
            "1acme",
            "acme-",
            "-acme",
            "ac_me",
            "ac.me",
            "acmé",
            &"a".repeat(33),
            "a b",
            "acme\0",
        ] {
            assert!(
                matches!(Slug::parse(bad), Err(SlugError::Invalid(_))),
                "{bad:?}"
            );
        }
        for reserved in ["admin", "www", "api", "postgres", "template1", "bulkhead-x"] {
            assert!(
                matches!(Slug::parse(reserved), Err(SlugError::Reserved(_))),
                "{reserved}"
            );
        }
    }

    #[test]
    fn minted_names_are_opaque_valid_and_distinct() {
        let a = PgName::mint();
        let b = PgName::mint();
        assert_ne!(a, b);
        for name in [&a, &b] {
            let id = name.as_str().strip_prefix("t_").unwrap();
            assert_eq!(id.len(), PgName::ID_LEN);
            assert!(id.bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7')));
            assert_eq!(PgName::parse(name.as_str()).as_ref(), Ok(name));
            assert_eq!(name.owner_role(), format!("{name}_owner"));
        }
    }

    #[test]
    fn slug_derived_names_still_parse_and_fit_postgres_identifier_limit() {
        let s = Slug::parse(&"a".repeat(32)).unwrap();
        let name = PgName::from_slug(&s);
        assert_eq!(PgName::parse(name.as_str()), Ok(name.clone()));
        assert!(name.owner_role().len() <= 63);
        assert_eq!(
            PgName::from_slug(&Slug::parse("acme-co").unwrap()).runtime_role(),
            "t_acme-co"
        );
        for bad in [
            "",
            "t_",
            "t_ab",
            "acme",
            "t_Acme",
            "t_a\"b",
            "t_a b",
            &format!("t_{}", "a".repeat(33)),
        ] {
            assert!(PgName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enums_round_trip_through_text() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), *s);
        }
        assert!(
            "nope"
                .parse::<Mode>()
                .unwrap_err()
                .contains("database, schema")
        );
    }
}
