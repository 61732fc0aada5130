//! Who is calling: API tokens for machine clients and sessions for people,
//! each bound to exactly one tenant, and the roles they carry.

mod hashing;
pub mod passwords;
pub mod rbac;
pub mod sessions;
mod tokens;

pub use hashing::{Hashing, HashingError};
pub use rbac::{Perm, Permission, perm};
pub use sessions::{SessionCache, SessionSettings};
pub use tokens::{Role, TokenError, TokenInfo, Tokens};
