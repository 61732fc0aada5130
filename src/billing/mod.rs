//! Stripe billing: the one client that speaks to Stripe, and a stand-in for it.

pub mod standin;
pub mod stripe;
