//! What a handler takes from a request, in one place to import from: the
//! tenant ([`Tenant`], `gate`), the caller ([`Caller`], [`Can`], `authn`),
//! the client's address ([`ClientIp`]) and a connection to the tenant's
//! database ([`Db`], `db`). The security path reads top-down in those
//! modules: host, tenant and gate; then the caller; then the connection.

pub use super::authn::Can;
pub use super::caller::{BreakGlassOperator, Caller, CallerData, Principal, SessionUser};
pub use super::db::Db;
pub use super::gate::{ClientIp, Tenant, authority, host};
/// The connection [`Db`] holds (see its docs).
pub use crate::pools::TenantConn;
