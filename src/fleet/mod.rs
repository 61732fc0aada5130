//! Fleet migrations in lockstep: moves every server's template and every
//! tenant database (or schema) to one version of the tenant schema, under a
//! fleet-wide lock, template first, then a canary cohort, then everyone else.

mod progress;
mod run;

pub use progress::Progress;
pub use run::{
    FleetError, MigrationPlan, RunOptions, RunReport, RunState, TemplateVersion, plan, resume, run,
};
