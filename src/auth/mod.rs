//! Who is calling: API tokens for machine clients (sessions for people come
//! with the accounts work), each bound to exactly one tenant, and the roles
//! they carry.

mod tokens;

pub use tokens::{Role, TokenError, TokenInfo, Tokens};
