//! Who is calling: API tokens for machine clients and sessions for people,
//! each bound to exactly one tenant, and the roles they carry.

mod hashing;
pub mod operator_rbac;
#[doc(hidden)]
pub mod operators;
#[doc(hidden)]
pub mod passwords;
pub mod rbac;
#[doc(hidden)]
pub mod sessions;
mod tokens;

#[doc(hidden)]
pub use hashing::{Hashing, HashingError};
pub use operator_rbac::{OperatorPerm, OperatorPermission, operator_perm};
pub use rbac::{Perm, Permission, perm};
#[doc(hidden)]
pub use sessions::{SessionCache, SessionSettings};
pub use tokens::Role;
#[doc(hidden)]
pub use tokens::{TokenError, TokenInfo, Tokens};
