//! `bulkhead reconcile`: finish (or roll back) every tenant stuck half-way
//! through creation or deletion, and finish renaming tenants whose roles,
//! databases or schemas still carry slug-derived names, and give runtime
//! roles whose session limits differ from their plan's that plan's.

use clap::Args;

use super::output::json;
use super::{CliError, CliResult};
use crate::app::Bulkhead;

#[derive(Args, Debug)]
pub struct ReconcileArgs {
    /// Undo stuck creations (drop what they made, free the slug) instead of finishing them.
    #[arg(long)]
    pub rollback: bool,
    #[arg(long, env = "BULKHEAD_JSON")]
    pub json: bool,
}

pub async fn reconcile(app: &Bulkhead, args: ReconcileArgs) -> CliResult {
    let report = app.provisioner.reconcile(args.rollback).await?;
    if args.json {
        return json(&report);
    }
    if report.is_empty() {
        println!(
            "nothing to reconcile: no tenant is stuck in provisioning or deleting, none awaits its rename, every runtime role has its plan's session limits"
        );
        return Ok(());
    }
    for r in &report {
        println!("{} (was {}): {}", r.slug, r.was, r.outcome);
    }
    if report.iter().any(|r| r.outcome.starts_with("failed")) {
        return Err(CliError::Other(
            "some tenants could not be reconciled".into(),
        ));
    }
    Ok(())
}
