//! bulkhead: a database-per-tenant isolation platform for PostgreSQL.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod control;
pub mod fleet;
pub mod http;
pub mod migrations;
pub mod outbox;
pub mod pg;
pub mod pools;
pub mod provision;
pub mod report;
pub mod routing;
pub mod secret;
pub mod serve;
pub mod sql;

/// mimalloc for every binary built on this crate (the server, its tests and
/// benches): the request path allocates many small, short-lived objects on
/// two or more threads, which glibc's malloc serves with lock-protected
/// arenas and periodic consolidation.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
