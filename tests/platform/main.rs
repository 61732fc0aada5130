//! The platform against real PostgreSQL, as one test binary (one cluster
//! booted, one link): provisioning and its state machine (`provision`), the
//! isolation contract tried as a hostile tenant (`hostile`), lockstep fleet
//! migrations (`fleet`), SCRAM verifiers as PostgreSQL checks them (`scram`),
//! TLS to tenant servers (`tls`), runtime roles' session limits (`limits`)
//! and the `bulkhead` binary itself (`cli`).

#[path = "../common/mod.rs"]
mod common;

mod cli;
mod fleet;
mod hostile;
mod limits;
mod provision;
mod scram;
mod tls;
