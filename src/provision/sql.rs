//! The provisioning SQL, from `provisioning/`: one reviewable file per statement group.

pub const OWNER_ROLE: &str = include_str!("../../provisioning/owner_role.sql");
pub const RUNTIME_ROLE: &str = include_str!("../../provisioning/runtime_role.sql");
pub const RUNTIME_CREDENTIALS: &str = include_str!("../../provisioning/runtime_credentials.sql");
pub const TEMPLATE_OWNER: &str = include_str!("../../provisioning/template_owner.sql");
pub const TEMPLATE_CREATE: &str = include_str!("../../provisioning/template_create.sql");
pub const TEMPLATE_LOCKDOWN: &str = include_str!("../../provisioning/template_lockdown.sql");
pub const DATABASE_CREATE: &str = include_str!("../../provisioning/database_create.sql");
pub const DATABASE_OPEN: &str = include_str!("../../provisioning/database_open.sql");
pub const DATABASE_LOCKDOWN: &str = include_str!("../../provisioning/database_lockdown.sql");
pub const DATABASE_GRANTS: &str = include_str!("../../provisioning/database_grants.sql");
pub const SHARED_CREATE: &str = include_str!("../../provisioning/shared_create.sql");
pub const SHARED_LOCKDOWN: &str = include_str!("../../provisioning/shared_lockdown.sql");
pub const SCHEMA_CREATE: &str = include_str!("../../provisioning/schema_create.sql");
pub const SCHEMA_GRANTS: &str = include_str!("../../provisioning/schema_grants.sql");
pub const HISTORY_REVOKE: &str = include_str!("../../provisioning/history_revoke.sql");
pub const VERIFY: &str = include_str!("../../provisioning/verify.sql");
pub const TERMINATE: &str = include_str!("../../provisioning/terminate.sql");
pub const DATABASE_DROP: &str = include_str!("../../provisioning/database_drop.sql");
pub const SCHEMA_DROP: &str = include_str!("../../provisioning/schema_drop.sql");
pub const ROLES_DROP: &str = include_str!("../../provisioning/roles_drop.sql");
pub const SERVER_LOCKDOWN: &str = include_str!("../../provisioning/server_lockdown.sql");
pub const PRIVILEGE_AUDIT: &str = include_str!("../../provisioning/privilege_audit.sql");

/// Wraps a multi-statement file in one transaction.
pub fn in_transaction(sql: &str) -> String {
    format!("BEGIN;\n{sql}\nCOMMIT;")
}
