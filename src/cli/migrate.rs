//! `bulkhead migrate ...`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Subcommand};

use super::output::{json, table, when};
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::fleet::{self, Progress, RunOptions, RunReport, RunState};

#[derive(Subcommand, Debug)]
pub enum MigrateCommand {
    /// What a run would do: versions known to this binary, the templates' and
    /// tenants' versions, how many tenants would migrate. Applies nothing.
    Plan {
        #[arg(long, env = "BULKHEAD_MIGRATE_TARGET")]
        target: Option<i32>,
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
    },
    /// Migrate every server's template, then a canary cohort, then every other
    /// tenant, to the target version. Exit code 3 if tenants failed, 130 if interrupted.
    Run(RunArgs),
    /// Retry the failed and not-yet-migrated tenants of the last unfinished run.
    Resume(RunArgs),
    /// The last runs, counts per state, failures with their errors, and whether
    /// the fleet is at one version.
    Status {
        #[arg(long, env = "BULKHEAD_JSON")]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Tenants migrated at once on each server.
    #[arg(long, env = "BULKHEAD_MIGRATE_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Tenants migrated first; any failure among them stops the run.
    #[arg(long, env = "BULKHEAD_MIGRATE_CANARY", default_value_t = 0)]
    pub canary: usize,
    /// Stop scheduling tenants after this many failures.
    #[arg(long, env = "BULKHEAD_MIGRATE_MAX_FAILURES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_failures: Option<u64>,
    /// Per-tenant lock_timeout: a tenant whose tables are locked fails after this
    /// long instead of stalling the run (e.g. 5s, 500ms).
    #[arg(long, env = "BULKHEAD_MIGRATE_LOCK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Per-tenant statement_timeout (e.g. 5m).
    #[arg(long, env = "BULKHEAD_MIGRATE_STATEMENT_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub statement_timeout: Duration,
    /// Version to migrate to (default: the newest this binary knows). Not for resume.
    #[arg(long, env = "BULKHEAD_MIGRATE_TARGET")]
    pub target: Option<i32>,
    /// Progress as JSON lines on stdout even on a terminal.
    #[arg(long, env = "BULKHEAD_JSON")]
    pub json: bool,
}

/// `5s`, `500ms`, `5m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (try 5s, 500ms, 5m)"))?;
    let millis = match unit {
        "ms" => n,
        "" | "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use ms, s, m, h or d)"
            ));
        }
    };
    if millis == 0 {
        return Err("a timeout must be greater than zero".into());
    }
    Ok(Duration::from_millis(millis))
}

/// [`parse_duration`], and `0` for none at all.
pub fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    if s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

impl RunArgs {
    fn options(&self) -> RunOptions {
        RunOptions {
            concurrency: self.concurrency as usize,
            canary: self.canary,
            max_failures: self.max_failures.map(|n| n as usize),
            lock_timeout: self.lock_timeout,
            statement_timeout: self.statement_timeout,
            target: self.target,
        }
    }
}

pub async fn run(app: &Bulkhead, cmd: MigrateCommand) -> CliResult {
    let p = &app.provisioner;
    match cmd {
        MigrateCommand::Plan {
            target,
            json: as_json,
        } => {
            let plan = fleet::plan(p, target).await?;
            if as_json {
                return json(&plan);
            }
            println!("migrations in this binary:");
            for m in &plan.migrations {
                println!("  V{}__{}", m.version, m.name);
            }
            println!("target version: {}", plan.target);
            println!("templates:");
            for t in &plan.templates {
                let v = t.version.map_or("none yet".to_string(), |v| v.to_string());
                println!("  {}: {v}", t.server);
            }
            let rows: Vec<Vec<String>> = plan
                .tenants
                .iter()
                .map(|c| {
                    vec![
                        c.version.to_string(),
                        c.status.to_string(),
                        c.tenants.to_string(),
                    ]
                })
                .collect();
            table(&["VERSION", "STATUS", "TENANTS"], &rows);
            println!(
                "a run would migrate {} tenant(s) to version {}",
                plan.pending, plan.target
            );
            if let Some(r) = plan.running {
                println!(
                    "run #{} is in progress ({}, since {})",
                    r.id,
                    r.holder,
                    when(r.started_at)
                );
            }
            Ok(())
        }
        MigrateCommand::Run(args) => execute(app, args, false).await,
        MigrateCommand::Resume(args) => execute(app, args, true).await,
        MigrateCommand::Status { json: as_json } => status(app, as_json).await,
    }
}

async fn execute(app: &Bulkhead, args: RunArgs, resume: bool) -> CliResult {
    let p = &app.provisioner;
    let progress = if args.json {
        Progress::JsonLines
    } else {
        Progress::auto()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing the tenants in flight, scheduling no more");
                stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let options = args.options();
    let report = if resume {
        fleet::resume(p, &options, &progress, &stop).await
    } else {
        fleet::run(p, &options, &progress, &stop).await
    };
    watcher.abort();
    let report = report?;
    print_report(&report, args.json)?;
    match report.state {
        RunState::Succeeded => Ok(()),
        RunState::Failed => Err(CliError::Exit(
            3,
            format!(
                "run #{} finished with {} failed tenant(s); fix them and run `bulkhead migrate resume`",
                report.run,
                report.failures.len()
            ),
        )),
        RunState::Interrupted => Err(CliError::Exit(
            130,
            format!(
                "run #{} was interrupted; `bulkhead migrate resume` finishes it",
                report.run
            ),
        )),
    }
}

fn print_report(report: &RunReport, as_json: bool) -> CliResult {
    if as_json {
        let line = serde_json::json!({"event": "done", "report": report});
        println!("{line}");
        return Ok(());
    }
    let secs = report.elapsed_ms as f64 / 1000.0;
    println!(
        "run #{}: {:?} — {} tenant(s) migrated to version {} in {secs:.1}s",
        report.run, report.state, report.migrated, report.target
    );
    for f in &report.failures {
        println!("  failed: {}: {}", f.slug, f.error);
    }
    if report.state == RunState::Succeeded {
        if report.drift.is_empty() {
            println!(
                "invariant holds: every template and active tenant is at version {}",
                report.target
            );
        } else {
            for d in &report.drift {
                println!(
                    "  not at version {}: {} (at {})",
                    report.target, d.what, d.version
                );
            }
        }
    }
    Ok(())
}

async fn status(app: &Bulkhead, as_json: bool) -> CliResult {
    let p = &app.provisioner;
    let control = p.control();
    let map = |e: crate::control::ControlError| CliError::Provision(e.into());
    let runs = control.runs(5).await.map_err(map)?;
    let latest = p.schema().latest();
    let drift = control.version_drift(latest).await.map_err(map)?;
    let failures = match runs.first() {
        Some(r) => control.run_failures(r.id).await.map_err(map)?,
        None => Vec::new(),
    };
    let versions = control.version_counts().await.map_err(map)?;
    if as_json {
        return json(&serde_json::json!({
            "latest": latest, "runs": runs, "failures": failures,
            "tenants": versions, "drift": drift, "invariant_holds": drift.is_empty(),
        }));
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                format!("#{}", r.id),
                r.state.clone(),
                r.target_version.to_string(),
                r.counts.succeeded.to_string(),
                r.counts.failed.to_string(),
                (r.counts.pending + r.counts.running).to_string(),
                when(r.started_at),
                r.holder.clone(),
            ]
        })
        .collect();
    table(
        &[
            "RUN", "STATE", "TARGET", "DONE", "FAILED", "LEFT", "STARTED", "BY",
        ],
        &rows,
    );
    for f in &failures {
        println!("failed: {}: {}", f.slug, f.error);
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|c| {
            vec![
                c.version.to_string(),
                c.status.to_string(),
                c.tenants.to_string(),
            ]
        })
        .collect();
    table(&["VERSION", "STATUS", "TENANTS"], &rows);
    if drift.is_empty() {
        println!("invariant holds: every template and active tenant is at version {latest}");
    } else {
        println!("not at version {latest}:");
        for d in &drift {
            println!("  {} (at {})", d.what, d.version);
        }
    }
    Ok(())
}
