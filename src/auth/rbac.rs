//! Role-based access: the one table that says which role may do what. Every
//! handler names the permission it needs through the `Can<P>` extractor, and
//! every route is listed with that permission in the router, from which the
//! tests walk every route as every role.

use super::Role;

/// Something a caller may be allowed to do in a tenant, and the roles that
/// may: the platform's own (`Permission::PROJECT_READ`…) and any a product
/// built on bulkhead defines for its own routes, the same way:
///
/// ```
/// use bulkhead::auth::{Permission, Role};
/// const NOTES_WRITE: Permission =
///     Permission::new("notes.write", &[Role::Owner, Role::Admin, Role::Member]);
/// assert!(Role::Member.allows(NOTES_WRITE) && !Role::Viewer.allows(NOTES_WRITE));
/// ```
///
/// A role never has a permission a more powerful role lacks (checked by
/// [`Permission::check`], which the server runs on every permission it is
/// given at start-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Permission {
    name: &'static str,
    roles: &'static [Role],
}

use Role::{Admin, Member, Owner, Viewer};

const EVERYONE: &[Role] = &[Owner, Admin, Member, Viewer];
const WRITERS: &[Role] = &[Owner, Admin, Member];
const MANAGERS: &[Role] = &[Owner, Admin];
const OWNERS: &[Role] = &[Owner];

impl Permission {
    /// Read projects and tasks, and the tenant (every role).
    pub const PROJECT_READ: Permission = Permission::new("project.read", EVERYONE);
    /// Create, change and delete projects and tasks (all but viewers).
    pub const PROJECT_WRITE: Permission = Permission::new("project.write", WRITERS);
    /// List the members (every role).
    pub const MEMBER_READ: Permission = Permission::new("member.read", EVERYONE);
    /// Invite people, list and revoke invitations (owners, admins).
    pub const MEMBER_INVITE: Permission = Permission::new("member.invite", MANAGERS);
    /// Change roles and remove members (owners, admins).
    pub const MEMBER_MANAGE: Permission = Permission::new("member.manage", MANAGERS);
    /// Read the tenant's settings (every role).
    pub const SETTINGS_READ: Permission = Permission::new("settings.read", EVERYONE);
    /// Change the tenant's settings (owners, admins).
    pub const SETTINGS_WRITE: Permission = Permission::new("settings.write", MANAGERS);
    /// Read the tenant's audit log (owners, admins).
    pub const AUDIT_READ: Permission = Permission::new("audit.read", MANAGERS);
    /// Create, list and revoke API tokens (owners, admins).
    pub const TOKEN_MANAGE: Permission = Permission::new("token.manage", MANAGERS);
    /// See the tenant's plan, subscription and usage (owners, admins).
    pub const BILLING_READ: Permission = Permission::new("billing.read", MANAGERS);
    /// Manage the tenant's subscription (owners).
    pub const BILLING_MANAGE: Permission = Permission::new("billing.manage", OWNERS);
    /// Delete the tenant (owners).
    pub const TENANT_DELETE: Permission = Permission::new("tenant.delete", OWNERS);
    /// Set the rule for the vendor's staff seeing the tenant's data, and
    /// approve, deny or end their access (owners). Reading the rule and
    /// the grants takes `audit.read`.
    pub const SUPPORT_ACCESS_MANAGE: Permission = Permission::new("support_access.manage", OWNERS);

    /// The platform's own permissions.
    pub const PLATFORM: [Permission; 13] = [
        Self::PROJECT_READ,
        Self::PROJECT_WRITE,
        Self::MEMBER_READ,
        Self::MEMBER_INVITE,
        Self::MEMBER_MANAGE,
        Self::SETTINGS_READ,
        Self::SETTINGS_WRITE,
        Self::AUDIT_READ,
        Self::TOKEN_MANAGE,
        Self::BILLING_READ,
        Self::BILLING_MANAGE,
        Self::TENANT_DELETE,
        Self::SUPPORT_ACCESS_MANAGE,
    ];

    /// A permission named `name` (`area.verb`), held by `roles`.
    pub const fn new(name: &'static str, roles: &'static [Role]) -> Self {
        Self { name, roles }
    }

    /// Its name, `area.verb`.
    pub fn as_str(self) -> &'static str {
        self.name
    }

    /// The roles that hold it.
    pub fn roles(self) -> &'static [Role] {
        self.roles
    }

    /// Refuses a permission whose name is not `area.verb` in lower case, or
    /// that a role has while a more powerful one lacks it; the owner always
    /// has every permission.
    pub fn check(self) -> Result<(), String> {
        let well_named = self.name.split_once('.').is_some_and(|(area, verb)| {
            [area, verb].iter().all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
        });
        if !well_named {
            return Err(format!(
                "permission `{}`: name it area.verb in lower case",
                self.name
            ));
        }
        for pair in Role::ALL.windows(2) {
            if self.roles.contains(&pair[1]) && !self.roles.contains(&pair[0]) {
                return Err(format!(
                    "permission `{}`: {} has it but {} does not",
                    self.name,
                    pair[1].as_str(),
                    pair[0].as_str()
                ));
            }
        }
        if !self.roles.contains(&Owner) {
            return Err(format!(
                "permission `{}`: the owner must have it",
                self.name
            ));
        }
        Ok(())
    }
}

impl serde::Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Role {
    /// Whether this role holds `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        permission.roles.contains(&self)
    }
}

/// A permission as a type, for `Can<P>`.
pub trait Perm: Send + Sync + 'static {
    /// The permission this type stands for.
    const PERMISSION: Permission;
}

/// Marker types, one per permission: `Can<perm::ProjectWrite>`.
pub mod perm {
    use super::{Perm, Permission};

    macro_rules! markers {
        ($($name:ident = $constant:ident),* $(,)?) => {
            $(
                #[doc = concat!("`Can<", stringify!($name), ">`: [`Permission::", stringify!($constant), "`].")]
                pub struct $name;
                impl Perm for $name {
                    const PERMISSION: Permission = Permission::$constant;
                }
            )*
        };
    }

    markers!(
        ProjectRead = PROJECT_READ,
        ProjectWrite = PROJECT_WRITE,
        MemberRead = MEMBER_READ,
        MemberInvite = MEMBER_INVITE,
        MemberManage = MEMBER_MANAGE,
        SettingsRead = SETTINGS_READ,
        SettingsWrite = SETTINGS_WRITE,
        AuditRead = AUDIT_READ,
        TokenManage = TOKEN_MANAGE,
        BillingRead = BILLING_READ,
        BillingManage = BILLING_MANAGE,
        TenantDelete = TENANT_DELETE,
        SupportAccessManage = SUPPORT_ACCESS_MANAGE,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_permissions_pass_the_check_and_are_named_once() {
        for p in Permission::PLATFORM {
            p.check().unwrap();
            assert_eq!(
                Permission::PLATFORM
                    .iter()
                    .filter(|q| q.name == p.name)
                    .count(),
                1
            );
        }
        assert!(Viewer.allows(Permission::PROJECT_READ));
        assert!(!Viewer.allows(Permission::PROJECT_WRITE));
        assert!(!Admin.allows(Permission::TENANT_DELETE));
        assert!(!Member.allows(Permission::MEMBER_INVITE));
    }

    #[test]
    fn a_permission_out_of_order_or_badly_named_is_refused() {
        let viewers_only = Permission::new("notes.peek", &[Viewer, Owner]);
        assert!(viewers_only.check().unwrap_err().contains("viewer has it"));
        let no_owner = Permission::new("notes.none", &[]);
        assert!(no_owner.check().unwrap_err().contains("owner"));
        for bad in [
            "notes",
            "Notes.write",
            "notes.",
            ".write",
            "notes.write now",
        ] {
            assert!(Permission::new(bad, &[Owner]).check().is_err(), "{bad}");
        }
        Permission::new("notes.write", &[Owner, Admin, Member])
            .check()
            .unwrap();
    }
}
