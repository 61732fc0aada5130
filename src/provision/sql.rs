//! The provisioning SQL, from `provisioning/`: one reviewable file per statement group.

pub const OWNER_ROLE: &str = include_str!("../../provisioning/owner_role.sql");
pub const RUNTIME_ROLE: &str = include_str!("../../provisioning/runtime_role.sql");
pub const RUNTIME_CREDENTIALS: &str = include_str!("../../provisioning/runtime_credentials.sql");
pub const RUNTIME_LIMITS: &str = include_str!("../../provisioning/runtime_limits.sql");
pub const ROLE_SETTINGS: &str = include_str!("../../provisioning/role_settings.sql");
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
pub const SCHEMA_PIN: &str = include_str!("../../provisioning/schema_pin.sql");
pub const ROLE_RENAME: &str = include_str!("../../provisioning/role_rename.sql");
pub const DATABASE_CLOSE: &str = include_str!("../../provisioning/database_close.sql");
pub const DATABASE_TERMINATE: &str = include_str!("../../provisioning/database_terminate.sql");
pub const DATABASE_RENAME: &str = include_str!("../../provisioning/database_rename.sql");
pub const SCHEMA_RENAME: &str = include_str!("../../provisioning/schema_rename.sql");
pub const HISTORY_REVOKE: &str = include_str!("../../provisioning/history_revoke.sql");
pub const VERIFY: &str = include_str!("../../provisioning/verify.sql");
pub const TERMINATE: &str = include_str!("../../provisioning/terminate.sql");
pub const DATABASE_DROP: &str = include_str!("../../provisioning/database_drop.sql");
pub const SCHEMA_DROP: &str = include_str!("../../provisioning/schema_drop.sql");
pub const ROLES_DROP: &str = include_str!("../../provisioning/roles_drop.sql");
pub const SERVER_LOCKDOWN: &str = include_str!("../../provisioning/server_lockdown.sql");
pub const PRIVILEGE_AUDIT: &str = include_str!("../../provisioning/privilege_audit.sql");

/// Runs a multi-statement file as one transaction. On failure the
/// transaction is rolled back before the error is returned, so a pooled
/// connection never goes back to its pool inside an aborted transaction
/// (its next user would see "current transaction is aborted" instead of
/// the real error).
pub async fn in_transaction(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<(), tokio_postgres::Error> {
    let result = client
        .batch_execute(&format!("BEGIN;\n{sql}\nCOMMIT;"))
        .await;
    if result.is_err() {
        // Outside a transaction this is only a warning; a broken connection
        // fails here too and is dropped by its pool.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}
