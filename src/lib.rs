//! bulkhead: a database-per-tenant isolation platform for PostgreSQL.
//!
//! A product is built on it with [`app::Bulkhead::builder`]: its tenant
//! migrations, its permissions ([`auth::Permission`]) and its routes
//! ([`http::Routes`]), whose handlers take the extractors of
//! [`http::extract`] (a connection that can only reach the caller's tenant,
//! the caller and its role) and answer [`http::ApiResult`]. [`cli::run_with`]
//! makes it a command line with every `bulkhead` command; [`serve::start`]
//! runs its server in a process of your own. `examples/notes` is one such
//! product; [`reference`](mod@reference) is the one the `bulkhead` binary serves.
//!
//! The modules hidden from these docs are the platform's internals, public
//! only for this project's own tests and benchmarks: no stability is
//! promised for them.
#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod config;
#[doc(hidden)]
pub mod control;
#[doc(hidden)]
pub mod fleet;
pub mod http;
#[doc(hidden)]
pub mod migrations;
#[doc(hidden)]
pub mod outbox;
#[doc(hidden)]
pub mod pg;
#[doc(hidden)]
pub mod pools;
#[doc(hidden)]
pub mod provision;
pub mod reference;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod routing;
#[doc(hidden)]
pub mod secret;
pub mod serve;
#[doc(hidden)]
pub mod sql;
pub mod web;
