//! What each operator role may do on the admin host: one table, as
//! [`super::rbac`] is for tenant roles. Every admin route is registered with
//! the permission it needs (see `http::router`), and its handler enforces it
//! with `OperatorCan<P>` before anything is read or changed.

use crate::control::OperatorRole;

/// Something an operator may be allowed to do, and the roles that may.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorPermission {
    name: &'static str,
    roles: &'static [OperatorRole],
}

use OperatorRole::{Admin, Support};

impl OperatorPermission {
    /// Search tenants, read their detail and the platform audit log
    /// (support and admin).
    pub const ADMIN_READ: OperatorPermission =
        OperatorPermission::new("admin.read", &[Support, Admin]);
    /// Suspend, reinstate, comp, end sessions (admin only).
    pub const ADMIN_WRITE: OperatorPermission = OperatorPermission::new("admin.write", &[Admin]);

    /// Ask for break-glass access to a tenant's data, use one's own live
    /// grant, end it (support and admin; read-write access is for admins
    /// only, and needs a second one's approval).
    pub const ACCESS_REQUEST: OperatorPermission =
        OperatorPermission::new("access.request", &[Support, Admin]);
    /// Approve another operator's read-write access (admin only).
    pub const ACCESS_APPROVE: OperatorPermission =
        OperatorPermission::new("access.approve", &[Admin]);

    /// Every operator permission.
    pub const ALL: [OperatorPermission; 4] = [
        Self::ADMIN_READ,
        Self::ADMIN_WRITE,
        Self::ACCESS_REQUEST,
        Self::ACCESS_APPROVE,
    ];

    const fn new(name: &'static str, roles: &'static [OperatorRole]) -> Self {
        Self { name, roles }
    }

    /// Its name, `area.verb`.
    pub fn as_str(self) -> &'static str {
        self.name
    }

    /// The operator roles that hold it.
    pub fn roles(self) -> &'static [OperatorRole] {
        self.roles
    }

    /// Whether `role` holds it.
    pub fn allows(self, role: OperatorRole) -> bool {
        self.roles.contains(&role)
    }
}

impl std::fmt::Display for OperatorPermission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// An operator permission as a type, for `OperatorCan<P>`.
pub trait OperatorPerm: Send + Sync + 'static {
    /// The permission this type stands for.
    const PERMISSION: OperatorPermission;
}

/// Marker types, one per operator permission.
pub mod operator_perm {
    use super::{OperatorPerm, OperatorPermission};

    /// `OperatorCan<AdminRead>`: [`OperatorPermission::ADMIN_READ`].
    pub struct AdminRead;
    impl OperatorPerm for AdminRead {
        const PERMISSION: OperatorPermission = OperatorPermission::ADMIN_READ;
    }

    /// `OperatorCan<AdminWrite>`: [`OperatorPermission::ADMIN_WRITE`].
    pub struct AdminWrite;
    impl OperatorPerm for AdminWrite {
        const PERMISSION: OperatorPermission = OperatorPermission::ADMIN_WRITE;
    }

    /// `OperatorCan<AccessRequest>`: [`OperatorPermission::ACCESS_REQUEST`].
    pub struct AccessRequest;
    impl OperatorPerm for AccessRequest {
        const PERMISSION: OperatorPermission = OperatorPermission::ACCESS_REQUEST;
    }

    /// `OperatorCan<AccessApprove>`: [`OperatorPermission::ACCESS_APPROVE`].
    pub struct AccessApprove;
    impl OperatorPerm for AccessApprove {
        const PERMISSION: OperatorPermission = OperatorPermission::ACCESS_APPROVE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_reads_and_only_admins_write() {
        assert!(OperatorPermission::ADMIN_READ.allows(Support));
        assert!(OperatorPermission::ADMIN_READ.allows(Admin));
        assert!(!OperatorPermission::ADMIN_WRITE.allows(Support));
        assert!(OperatorPermission::ADMIN_WRITE.allows(Admin));
        // An admin holds everything support holds.
        for p in OperatorPermission::ALL {
            assert!(!p.allows(Support) || p.allows(Admin), "{p}");
        }
    }
}
