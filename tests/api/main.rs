//! The HTTP API against real PostgreSQL, as one test binary (one cluster
//! booted, one link): the request path and its isolation (`serve`), people
//! and sessions (`people`), platform operators on the admin host
//! (`operators`) and the admin API they use (`admin`) with break-glass access to a tenant's
//! data (`break_glass`), every route as every role (`rbac`), the edges of
//! the HTTP layer tried as an attacker would (`edges`), the control plane away
//! (`outage`), a tenant server stopped under load (`tenant_outage`), what a
//! team's own handler cannot break (`handlers`), and a product of its own on
//! the public API (`notes`).

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod billing;
mod break_glass;
mod edges;
mod handlers;
mod notes;
mod operators;
mod outage;
mod pages;
mod people;
mod rbac;
mod serve;
mod tenant_outage;
