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
pub mod reference;
pub mod report;
pub mod routing;
pub mod secret;
pub mod serve;
pub mod sql;
