//! `migrate plan | run | resume`: the fleet migrator.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::Progress;
use crate::control::{ControlError, Run, RunFailure, RunTenant, Server};
use crate::migrations::{MigrateError, current_version};
use crate::provision::{ProvisionError, Provisioner, connect_to, connect_with_options};

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Tenants migrated at once on each server.
    pub concurrency: usize,
    /// Tenants migrated first, alone; any failure among them stops the run.
    pub canary: usize,
    /// Stop scheduling once this many tenants failed.
    pub max_failures: Option<usize>,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    /// Version to migrate to (default: the newest known).
    pub target: Option<i32>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            canary: 0,
            max_failures: None,
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(300),
            target: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error(
        "another migration run holds the fleet lock{}; wait for it, or stop it and run `bulkhead migrate resume`",
        .0.as_ref().map(|r| format!(" (run #{} by {})", r.id, r.holder)).unwrap_or_default()
    )]
    Locked(Option<Box<Run>>),
    #[error("invalid target version {target}: the known versions are 1 to {latest}")]
    BadTarget { target: i32, latest: i32 },
    #[error("nothing to resume: {0}")]
    NothingToResume(String),
    #[error("template on server `{server}`: {error}")]
    Template { server: String, error: String },
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl FleetError {
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            FleetError::BadTarget { .. } | FleetError::NothingToResume(_)
        ) || matches!(
            self,
            FleetError::Migrate(MigrateError::Changed { .. } | MigrateError::Invalid(_))
        ) || matches!(self, FleetError::Provision(e) if e.is_bad_input())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Succeeded,
    Failed,
    Interrupted,
}

impl RunState {
    fn as_str(self) -> &'static str {
        match self {
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub run: i64,
    pub state: RunState,
    pub target: i32,
    pub migrated: usize,
    pub failures: Vec<RunFailure>,
    /// Template and active tenants not at the target (empty after a success).
    pub drift: Vec<crate::control::VersionDrift>,
    pub elapsed_ms: u128,
}

/// What a migration run would do, from the control plane's records alone.
#[derive(Debug, Serialize)]
pub struct MigrationPlan {
    pub migrations: Vec<crate::migrations::MigrationName>,
    pub target: i32,
    pub templates: Vec<TemplateVersion>,
    /// Live tenants per version and status.
    pub tenants: Vec<crate::control::VersionCount>,
    /// Live tenants below the target, which a run would migrate.
    pub pending: i64,
    pub running: Option<Run>,
}

/// A server's template database and the version it is at (none before the
/// first tenant is created there).
#[derive(Debug, Serialize)]
pub struct TemplateVersion {
    pub server: String,
    pub version: Option<i32>,
}

/// Who holds the fleet lock, for the other processes' error messages.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!(
        "{}@{host} pid {}",
        crate::app::os_user(),
        std::process::id()
    )
}

fn check_target(p: &Provisioner, target: Option<i32>) -> Result<i32, FleetError> {
    let latest = p.schema().latest();
    let target = target.unwrap_or(latest);
    if target < 1 || target > latest {
        return Err(FleetError::BadTarget { target, latest });
    }
    Ok(target)
}

pub async fn plan(p: &Provisioner, target: Option<i32>) -> Result<MigrationPlan, FleetError> {
    let target = check_target(p, target)?;
    let control = p.control();
    let tenants = control.version_counts().await?;
    let pending = tenants
        .iter()
        .filter(|c| {
            c.version < target
                && !matches!(
                    c.status,
                    crate::control::Status::Provisioning | crate::control::Status::Deleting
                )
        })
        .map(|c| c.tenants)
        .sum();
    Ok(MigrationPlan {
        migrations: p.schema().versions(),
        target,
        templates: control
            .servers()
            .await?
            .into_iter()
            .map(|s| TemplateVersion {
                server: s.name,
                version: s.template_version,
            })
            .collect(),
        tenants,
        pending,
        running: control.running_run().await?,
    })
}

/// A new run: every live tenant below the target.
pub async fn run(
    p: &Provisioner,
    options: &RunOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<RunReport, FleetError> {
    let target = check_target(p, options.target)?;
    let lock = fleet_lock(p).await?;
    let params = json!({
        "concurrency": options.concurrency, "canary": options.canary,
        "max_failures": options.max_failures, "target": target,
        "lock_timeout_ms": options.lock_timeout.as_millis() as u64,
        "statement_timeout_ms": options.statement_timeout.as_millis() as u64,
    });
    let result = async {
        let run = p.control().start_run(target, &holder(), &params).await?;
        execute(p, run, target, options, progress, stop).await
    }
    .await;
    lock.release().await?;
    result
}

/// Finishes the last run that did not succeed: its failed, interrupted and
/// never-started tenants.
pub async fn resume(
    p: &Provisioner,
    options: &RunOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<RunReport, FleetError> {
    let lock = fleet_lock(p).await?;
    let result = resume_locked(p, options, progress, stop).await;
    lock.release().await?;
    result
}

async fn resume_locked(
    p: &Provisioner,
    options: &RunOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<RunReport, FleetError> {
    let last = p
        .control()
        .runs(1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| FleetError::NothingToResume("no migration run was ever started".into()))?;
    if last.state == "succeeded" {
        return Err(FleetError::NothingToResume(format!(
            "the last run (#{}) succeeded",
            last.id
        )));
    }
    let target = check_target(p, Some(last.target_version))?;
    p.control().reopen_run(last.id, &holder()).await?;
    execute(p, last.id, target, options, progress, stop).await
}

async fn fleet_lock(p: &Provisioner) -> Result<crate::control::FleetLock, FleetError> {
    match p
        .control()
        .try_fleet_lock(crate::control::FLEET_LOCK_GRACE)
        .await?
    {
        Some(lock) => {
            // We hold the lock: any run still marked running lost its process.
            p.control().interrupt_stale_runs().await?;
            Ok(lock)
        }
        None => Err(FleetError::Locked(
            p.control().running_run().await?.map(Box::new),
        )),
    }
}

async fn execute(
    p: &Provisioner,
    run: i64,
    target: i32,
    options: &RunOptions,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<RunReport, FleetError> {
    let started = Instant::now();
    let servers: HashMap<String, Server> = p
        .control()
        .servers()
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    for server in servers.values() {
        if let Err(e) = migrate_template(p, server, target, progress).await {
            p.control().finish_run(run, "failed").await?;
            return Err(e);
        }
    }
    let todo = p.control().run_todo(run).await?;
    let canary = options.canary.min(todo.len());
    let batch = Batch {
        p,
        run,
        target,
        options,
        progress,
        stop,
        servers: &servers,
        failures: AtomicUsize::new(0),
        migrated: AtomicUsize::new(0),
    };
    if canary > 0 {
        progress.phase("canary", canary);
        batch.migrate_all(&todo[..canary]).await;
    }
    let canary_failed = batch.failures.load(Ordering::SeqCst) > 0;
    if !canary_failed && !stop.load(Ordering::SeqCst) {
        progress.phase("fleet", todo.len() - canary);
        batch.migrate_all(&todo[canary..]).await;
    }
    progress.finish();

    let failures = p.control().run_failures(run).await?;
    let counts = p
        .control()
        .run_by_id(run)
        .await?
        .map(|r| r.counts)
        .unwrap_or_default();
    let state = if !failures.is_empty() || canary_failed {
        RunState::Failed
    } else if counts.pending + counts.running > 0 {
        RunState::Interrupted
    } else {
        RunState::Succeeded
    };
    p.control().finish_run(run, state.as_str()).await?;
    let drift = p.control().version_drift(target).await?;
    Ok(RunReport {
        run,
        state,
        target,
        migrated: batch.migrated.load(Ordering::SeqCst),
        failures,
        drift,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

/// Moves a server's template to `target` (and checks that no applied migration
/// was changed, even when there is nothing to apply).
async fn migrate_template(
    p: &Provisioner,
    server: &Server,
    target: i32,
    progress: &Progress,
) -> Result<(), FleetError> {
    if server.template_version.is_none() {
        return Ok(());
    }
    let fail = |error: String| FleetError::Template {
        server: server.name.clone(),
        error,
    };
    let maintenance = p.maintenance(server).await?;
    let key = p.template_lock_key();
    maintenance
        .execute("SELECT pg_advisory_lock(hashtext($1))", &[&key])
        .await
        .map_err(|e| fail(crate::pg::describe(&e)))?;
    let result = async {
        let mut client = connect_to(server, &p.settings().template_db).await?;
        let version = p
            .schema()
            .apply(&mut client, &p.template_owner(), "public", Some(target))
            .await?;
        drop(client);
        crate::provision::wait_for_no_sessions(&maintenance, &p.settings().template_db)
            .await
            .map_err(|e| fail(crate::pg::describe(&e)))?;
        p.control()
            .set_template_version(&server.name, version)
            .await?;
        Ok::<i32, FleetError>(version)
    }
    .await;
    maintenance
        .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key])
        .await
        .map_err(|e| fail(crate::pg::describe(&e)))?;
    let version = result.map_err(|e| match e {
        FleetError::Migrate(MigrateError::Changed { .. }) => e,
        other => fail(other.to_string()),
    })?;
    progress.template(&server.name, version);
    Ok(())
}

/// One batch of tenants, migrated with bounded concurrency per server.
struct Batch<'a> {
    p: &'a Provisioner,
    run: i64,
    target: i32,
    options: &'a RunOptions,
    progress: &'a Progress,
    stop: &'a AtomicBool,
    servers: &'a HashMap<String, Server>,
    failures: AtomicUsize,
    migrated: AtomicUsize,
}

impl Batch<'_> {
    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
            || self
                .options
                .max_failures
                .is_some_and(|max| self.failures.load(Ordering::SeqCst) >= max)
    }

    async fn migrate_all(&self, tenants: &[RunTenant]) {
        let mut queues: HashMap<&str, Mutex<VecDeque<&RunTenant>>> = HashMap::new();
        for t in tenants {
            queues
                .entry(t.server.as_str())
                .or_default()
                .get_mut()
                .expect("not shared yet")
                .push_back(t);
        }
        let workers = queues.values().flat_map(|queue| {
            (0..self.options.concurrency.max(1)).map(move |_| self.worker(queue))
        });
        futures::future::join_all(workers).await;
    }

    async fn worker(&self, queue: &Mutex<VecDeque<&RunTenant>>) {
        loop {
            if self.should_stop() {
                return;
            }
            let Some(tenant) = queue.lock().expect("queue poisoned").pop_front() else {
                return;
            };
            let started = Instant::now();
            let outcome = self.migrate_one(tenant).await;
            let (version, error) = match outcome {
                Ok(Some(v)) => (v, None),
                Ok(None) => continue, // no longer a tenant to migrate (deleted, …)
                Err((v, e)) => (v, Some(e)),
            };
            if error.is_some() {
                self.failures.fetch_add(1, Ordering::SeqCst);
            } else {
                self.migrated.fetch_add(1, Ordering::SeqCst);
            }
            self.progress.tenant(
                tenant.slug.as_str(),
                version,
                started.elapsed().as_millis(),
                error.as_deref(),
                self.failures.load(Ordering::SeqCst),
            );
        }
    }

    /// `Ok(Some(version))` on success, `Ok(None)` if skipped, `Err((version, error))`.
    async fn migrate_one(&self, t: &RunTenant) -> Result<Option<i32>, (i32, String)> {
        let control = self.p.control();
        let internal = |e: ControlError| (0, e.to_string());
        let tenant = match control
            .begin_tenant_migration(self.run, t.id)
            .await
            .map_err(internal)?
        {
            Some(tenant) => tenant,
            None => return Ok(None),
        };
        let result = self.apply(&tenant).await;
        let (version, error) = match &result {
            Ok(v) => (*v, None),
            Err((v, e)) => (*v, Some(e.as_str())),
        };
        control
            .end_tenant_migration(self.run, t.id, version, error)
            .await
            .map_err(internal)?;
        result.map(Some)
    }

    async fn apply(&self, tenant: &crate::control::Tenant) -> Result<i32, (i32, String)> {
        let before = tenant.schema_version;
        let server = self
            .servers
            .get(&tenant.server)
            .ok_or_else(|| (before, format!("unknown server `{}`", tenant.server)))?;
        let db = tenant.database(&self.p.settings().shared_db);
        // A lock held by live traffic fails this tenant quickly instead of
        // stalling the fleet behind it. Set at connection start: no round trip.
        let options = format!(
            "-c lock_timeout={} -c statement_timeout={}",
            self.options.lock_timeout.as_millis(),
            self.options.statement_timeout.as_millis()
        );
        let mut client = connect_with_options(server, &db, &options)
            .await
            .map_err(|e| (before, e.to_string()))?;
        let schema = tenant.schema();
        match self
            .p
            .schema()
            .apply(
                &mut client,
                &tenant.owner_role(),
                &schema,
                Some(self.target),
            )
            .await
        {
            Ok(v) => Ok(v),
            Err(e) => {
                // Earlier migrations of this run may have committed before the failing one.
                let reached = current_version(&client, &schema).await.unwrap_or(before);
                Err((reached, e.to_string()))
            }
        }
    }
}
