//! The HTTP API against real PostgreSQL, as one test binary (one cluster
//! booted, one link): the request path and its isolation (`serve`), people
//! and sessions (`people`), every route as every role (`rbac`), the edges
//! of the HTTP layer tried as an attacker would (`edges`), and what a team's
//! own handler cannot break (`handlers`).

#[path = "../common/mod.rs"]
mod common;

mod edges;
mod handlers;
mod outage;
mod people;
mod rbac;
mod serve;
