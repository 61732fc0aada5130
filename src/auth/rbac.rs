//! Role-based access: the one table that says which role may do what. Every
//! handler names the permission it needs through the `Can<P>` extractor, and
//! every route is listed with that permission in the router, from which the
//! tests walk every route as every role.

use serde::Serialize;

use super::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Permission {
    ProjectRead,
    ProjectWrite,
    MemberRead,
    MemberInvite,
    MemberManage,
    SettingsRead,
    SettingsWrite,
    AuditRead,
    TokenManage,
    BillingManage,
    TenantDelete,
}

use Permission::*;
use Role::{Admin, Member, Owner, Viewer};

/// Permission -> the roles that have it.
const TABLE: &[(Permission, &[Role])] = &[
    (ProjectRead, &[Owner, Admin, Member, Viewer]),
    (ProjectWrite, &[Owner, Admin, Member]),
    (MemberRead, &[Owner, Admin, Member, Viewer]),
    (MemberInvite, &[Owner, Admin]),
    (MemberManage, &[Owner, Admin]),
    (SettingsRead, &[Owner, Admin, Member, Viewer]),
    (SettingsWrite, &[Owner, Admin]),
    (AuditRead, &[Owner, Admin]),
    (TokenManage, &[Owner, Admin]),
    (BillingManage, &[Owner]),
    (TenantDelete, &[Owner]),
];

impl Permission {
    pub const ALL: [Permission; 11] = [
        ProjectRead,
        ProjectWrite,
        MemberRead,
        MemberInvite,
        MemberManage,
        SettingsRead,
        SettingsWrite,
        AuditRead,
        TokenManage,
        BillingManage,
        TenantDelete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRead => "project.read",
            ProjectWrite => "project.write",
            MemberRead => "member.read",
            MemberInvite => "member.invite",
            MemberManage => "member.manage",
            SettingsRead => "settings.read",
            SettingsWrite => "settings.write",
            AuditRead => "audit.read",
            TokenManage => "token.manage",
            BillingManage => "billing.manage",
            TenantDelete => "tenant.delete",
        }
    }
}

impl Role {
    pub fn allows(self, permission: Permission) -> bool {
        TABLE
            .iter()
            .find(|(p, _)| *p == permission)
            .is_some_and(|(_, roles)| roles.contains(&self))
    }
}

/// A permission as a type, for `Can<P>`.
pub trait Perm: Send + Sync + 'static {
    const PERMISSION: Permission;
}

/// Marker types, one per permission: `Can<perm::ProjectWrite>`.
pub mod perm {
    use super::{Perm, Permission};

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {
            $(
                pub struct $name;
                impl Perm for $name {
                    const PERMISSION: Permission = Permission::$name;
                }
            )*
        };
    }

    markers!(
        ProjectRead,
        ProjectWrite,
        MemberRead,
        MemberInvite,
        MemberManage,
        SettingsRead,
        SettingsWrite,
        AuditRead,
        TokenManage,
        BillingManage,
        TenantDelete,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_is_in_the_table_and_owners_have_them_all() {
        for p in Permission::ALL {
            assert!(TABLE.iter().any(|(q, _)| *q == p), "{p:?}");
            assert!(Owner.allows(p), "{p:?}");
        }
        assert_eq!(TABLE.len(), Permission::ALL.len());
    }

    #[test]
    fn a_role_never_has_a_permission_a_more_powerful_role_lacks() {
        for p in Permission::ALL {
            for pair in Role::ALL.windows(2) {
                assert!(
                    !pair[1].allows(p) || pair[0].allows(p),
                    "{:?} has {p:?} but {:?} does not",
                    pair[1],
                    pair[0]
                );
            }
        }
        assert!(Viewer.allows(ProjectRead) && !Viewer.allows(ProjectWrite));
        assert!(!Admin.allows(TenantDelete) && !Member.allows(MemberInvite));
    }
}
