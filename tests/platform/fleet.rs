//! Fleet migrations against a real server: lockstep across both modes,
//! failures that stay local, timeouts, the fleet lock, kill -9 and resume.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::common::{TestFleet, connect, eventually};
use bulkhead::control::{Mode, Status};
use bulkhead::fleet::{self, FleetError, Progress, RunOptions, RunState};
use bulkhead::migrations::MigrateError;
use bulkhead::pg::describe;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

const V2: &str = "ALTER TABLE tasks ADD COLUMN priority int NOT NULL DEFAULT 0;
CREATE INDEX tasks_priority ON tasks (priority);
CREATE TABLE labels (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE);";

async fn run(fleet: &TestFleet, options: RunOptions) -> Result<fleet::RunReport, FleetError> {
    fleet::run(
        fleet.p(),
        &options,
        &Progress::Silent,
        &AtomicBool::new(false),
    )
    .await
}

async fn resume(fleet: &TestFleet) -> Result<fleet::RunReport, FleetError> {
    fleet::resume(
        fleet.p(),
        &RunOptions::default(),
        &Progress::Silent,
        &AtomicBool::new(false),
    )
    .await
}

async fn fleet_of(n: usize) -> (TestFleet, Vec<String>) {
    let fleet = TestFleet::new().await;
    let mut slugs = Vec::new();
    for i in 0..n {
        let mode = if i % 2 == 0 {
            Mode::Database
        } else {
            Mode::Schema
        };
        slugs.push(fleet.tenant(&format!("f{i}"), mode).await);
    }
    (fleet, slugs)
}

/// Whether a session waits for a lock on the tenant's `tasks` table, asked
/// over `holder`: a superuser session in the tenant's database (`admin_of`),
/// usually the one holding the lock.
async fn someone_waits_for_tasks(holder: &Client) -> bool {
    holder
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_locks
              WHERE relation = 'tasks'::regclass AND NOT granted
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn history_versions(fleet: &TestFleet, slug: &str) -> Vec<i32> {
    fleet
        .admin_of(slug)
        .await
        .query(
            "SELECT version FROM bulkhead_schema_history ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_fleet_in_both_modes_migrates_in_lockstep_and_tenants_use_but_cannot_drop_new_objects() {
    let (mut fleet, slugs) = fleet_of(6).await;
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;

    let report = run(
        &fleet,
        RunOptions {
            canary: 2,
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.state, RunState::Succeeded);
    assert_eq!(report.migrated, 6);
    assert!(
        report.failures.is_empty() && report.drift.is_empty(),
        "{report:?}"
    );
    assert_eq!(
        fleet
            .p()
            .control()
            .server("local")
            .await
            .unwrap()
            .unwrap()
            .template_version,
        Some(2)
    );

    for slug in &slugs {
        let t = fleet.tenant_row(slug).await;
        assert_eq!((t.status, t.schema_version), (Status::Active, 2), "{slug}");
        assert_eq!(history_versions(&fleet, slug).await, [1, 2]);
        let client = fleet.as_tenant(slug).await;
        client
            .execute("INSERT INTO labels (name) VALUES ('urgent')", &[])
            .await
            .unwrap();
        let priority = client
            .prepare("SELECT priority FROM tasks")
            .await
            .unwrap_or_else(|e| panic!("{slug}: tasks.priority: {}", describe(&e)));
        assert_eq!(priority.columns()[0].type_(), &Type::INT4, "{slug}");
        // Refused as not the owner (42501), not as missing (42P01, 42704).
        for ddl in [
            "DROP TABLE labels",
            "ALTER TABLE labels ADD COLUMN x int",
            "DROP INDEX tasks_priority",
        ] {
            let err = client
                .batch_execute(ddl)
                .await
                .expect_err(&format!("{slug}: {ddl} succeeded"));
            assert_eq!(
                err.code(),
                Some(&SqlState::INSUFFICIENT_PRIVILEGE),
                "{slug}: {ddl}: {}",
                describe(&err)
            );
        }
    }
    // New tenants start at the fleet's version, in both modes.
    for (base, mode) in [("late-db", Mode::Database), ("late-sc", Mode::Schema)] {
        let slug = fleet.tenant(base, mode).await;
        assert_eq!(fleet.tenant_row(&slug).await.schema_version, 2);
        assert_eq!(history_versions(&fleet, &slug).await, [1, 2]);
    }
    // A second run has nothing to do, and says the invariant holds.
    let again = run(&fleet, RunOptions::default()).await.unwrap();
    assert_eq!((again.state, again.migrated), (RunState::Succeeded, 0));
    assert!(again.drift.is_empty());
}

#[tokio::test]
async fn plan_applies_nothing() {
    let (mut fleet, slugs) = fleet_of(2).await;
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    let plan = fleet::plan(fleet.p(), None).await.unwrap();
    assert_eq!(plan.target, 2);
    assert_eq!(plan.pending, 2);
    assert_eq!(plan.templates.len(), 1);
    assert_eq!(
        (plan.templates[0].server.as_str(), plan.templates[0].version),
        ("local", Some(1))
    );
    for slug in &slugs {
        assert_eq!(history_versions(&fleet, slug).await, [1]);
        assert_eq!(fleet.tenant_row(slug).await.schema_version, 1);
    }
    assert!(fleet.p().control().runs(1).await.unwrap().is_empty());
    // --json names every field: objects, not bare arrays.
    let out = fleet
        .cli()
        .args(["migrate", "plan", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["templates"][0]["server"], "local", "{json}");
    assert_eq!(json["templates"][0]["version"], 1, "{json}");
    assert_eq!(json["migrations"][1]["version"], 2, "{json}");
    assert_eq!(json["migrations"][1]["name"], "labels", "{json}");
    assert_eq!(json["tenants"][0]["version"], 1, "{json}");
    assert_eq!(json["tenants"][0]["status"], "active", "{json}");
    assert_eq!(json["tenants"][0]["tenants"], 2, "{json}");
    let out = fleet
        .cli()
        .args(["migrate", "status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let drift = json["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 3, "template and two tenants below V2: {json}");
    assert!(
        drift
            .iter()
            .all(|d| d["what"].is_string() && d["version"] == 1),
        "{json}"
    );
}

#[tokio::test]
async fn one_failing_tenant_fails_alone_and_resume_completes_after_the_fix() {
    let (mut fleet, slugs) = fleet_of(4).await;
    let victim = &slugs[1]; // schema mode
    fleet
        .admin_of(victim)
        .await
        .batch_execute("CREATE TABLE labels (conflict int)")
        .await
        .unwrap();
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;

    // Through the binary: the exit status reports the failure.
    let out = fleet.cli().args(["migrate", "run"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("\"slug\":\"{victim}\"")) && stdout.contains("already exists"),
        "{stdout}"
    );

    let t = fleet.tenant_row(victim).await;
    assert_eq!(t.status, Status::MigrationFailed);
    assert_eq!(t.schema_version, 1);
    assert!(t.last_error.unwrap().contains("already exists"));
    for slug in slugs.iter().filter(|s| *s != victim) {
        let t = fleet.tenant_row(slug).await;
        assert_eq!((t.status, t.schema_version), (Status::Active, 2), "{slug}");
    }
    let last = &fleet.p().control().runs(1).await.unwrap()[0];
    assert_eq!(last.state, "failed");
    let failures = fleet.p().control().run_failures(last.id).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(&failures[0].slug, victim);

    fleet
        .admin_of(victim)
        .await
        .batch_execute("DROP TABLE labels")
        .await
        .unwrap();
    let report = resume(&fleet).await.unwrap();
    assert_eq!((report.state, report.migrated), (RunState::Succeeded, 1));
    assert!(report.drift.is_empty(), "{:?}", report.drift);
    assert_eq!(fleet.tenant_row(victim).await.status, Status::Active);
    let err = resume(&fleet).await.unwrap_err();
    assert!(matches!(err, FleetError::NothingToResume(_)), "{err}");
}

#[tokio::test]
async fn max_failures_stops_scheduling_after_the_first_failure() {
    let (mut fleet, slugs) = fleet_of(5).await;
    for slug in &slugs {
        fleet
            .admin_of(slug)
            .await
            .batch_execute("CREATE TABLE labels (conflict int)")
            .await
            .unwrap();
    }
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    let report = run(
        &fleet,
        RunOptions {
            concurrency: 1,
            max_failures: Some(1),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.state, RunState::Failed);
    assert_eq!(report.failures.len(), 1);
    let counts = fleet
        .p()
        .control()
        .run_by_id(report.run)
        .await
        .unwrap()
        .unwrap()
        .counts;
    assert_eq!(counts.failed, 1);
    assert_eq!(counts.pending, 4, "{counts:?}");
}

#[tokio::test]
async fn a_tenant_whose_table_is_locked_fails_by_lock_timeout_instead_of_blocking_the_run() {
    let (mut fleet, slugs) = fleet_of(3).await;
    let locked = &slugs[0];
    let holder = fleet.admin_of(locked).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE tasks IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    let report = run(
        &fleet,
        RunOptions {
            lock_timeout: Duration::from_millis(200),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.state, RunState::Failed);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(&report.failures[0].slug, locked);
    assert!(
        report.failures[0].error.contains("lock timeout"),
        "{}",
        report.failures[0].error
    );
    assert_eq!(report.migrated, 2);
    holder.batch_execute("COMMIT").await.unwrap();
    assert_eq!(resume(&fleet).await.unwrap().state, RunState::Succeeded);
}

#[tokio::test]
async fn a_second_concurrent_run_is_refused_naming_the_holder() {
    let (mut fleet, slugs) = fleet_of(2).await;
    // The first run blocks on a locked table; the second waits only the
    // lock's short grace, not for the first run.
    let holder = fleet.admin_of(&slugs[0]).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE tasks IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    let mut first = fleet
        .cli()
        .args(["migrate", "run", "--lock-timeout", "60s"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the first run to start", || async {
        fleet.p().control().running_run().await.unwrap().is_some()
    })
    .await;
    let out = fleet.cli().args(["migrate", "run"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another migration run holds the fleet lock (run #"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    let err = run(&fleet, RunOptions::default()).await.unwrap_err();
    assert!(matches!(err, FleetError::Locked(Some(_))), "{err}");

    holder.batch_execute("COMMIT").await.unwrap();
    assert!(first.wait().unwrap().success());
}

#[tokio::test]
async fn a_run_waits_out_a_fleet_lock_released_within_the_grace() {
    let (mut fleet, slugs) = fleet_of(2).await;
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    let control = fleet.p().control().clone();
    let held = control
        .try_fleet_lock(Duration::ZERO)
        .await
        .unwrap()
        .expect("nobody holds it yet");
    assert!(
        control
            .try_fleet_lock(Duration::ZERO)
            .await
            .unwrap()
            .is_none(),
        "held means held"
    );
    // Like a killed run's connection, closed while the new run waits: released
    // only once the run is seen waiting for it, having started nothing.
    let control_db = connect(fleet.args.control_url.as_ref().unwrap())
        .await
        .unwrap();
    let releaser = async {
        eventually("the run to wait for the fleet lock", || async {
            control_db
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks
                      WHERE locktype = 'advisory' AND NOT granted
                        AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
                    &[],
                )
                .await
                .unwrap()
                .get(0)
        })
        .await;
        assert!(
            control.runs(1).await.unwrap().is_empty(),
            "a run started without the fleet lock"
        );
        held.release().await.unwrap();
    };
    let (report, ()) = tokio::join!(run(&fleet, RunOptions::default()), releaser);
    let report = report.unwrap();
    assert_eq!(report.state, RunState::Succeeded, "{report:?}");
    for slug in &slugs {
        assert_eq!(history_versions(&fleet, slug).await, [1, 2]);
    }
}

#[tokio::test]
async fn a_run_killed_midway_is_completed_by_resume_without_migrating_anyone_twice() {
    let (mut fleet, slugs) = fleet_of(8).await;
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    // Tenants go in slug order, one at a time: the third one's migration
    // waits on this lock, so the run is killed with it in flight.
    let in_flight = &slugs[2];
    let holder = fleet.admin_of(in_flight).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE tasks IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let mut child = fleet
        .cli()
        .args([
            "migrate",
            "run",
            "--concurrency",
            "1",
            "--lock-timeout",
            "60s",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("a tenant's migration to wait on the lock", || {
        someone_waits_for_tasks(&holder)
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let run = fleet.p().control().runs(1).await.unwrap().remove(0);
    assert_eq!(run.state, "running", "a killed run cannot record its end");
    assert_eq!(
        (run.counts.succeeded, run.counts.running, run.counts.failed),
        (2, 1, 0),
        "killed with one tenant in flight: {:?}",
        run.counts
    );
    assert!(run.counts.pending > 0, "{:?}", run.counts);
    assert_eq!(fleet.tenant_row(in_flight).await.status, Status::Migrating);
    // Its orphaned session gets the lock, finds its client gone and rolls back.
    holder.batch_execute("COMMIT").await.unwrap();

    let report = resume(&fleet).await.unwrap();
    assert_eq!(report.state, RunState::Succeeded, "{report:?}");
    assert!(report.drift.is_empty());
    for slug in &slugs {
        assert_eq!(
            history_versions(&fleet, slug).await,
            [1, 2],
            "{slug} migrated twice or not at all"
        );
        assert_eq!(fleet.tenant_row(slug).await.status, Status::Active);
    }
}

#[tokio::test]
async fn a_changed_already_applied_migration_is_refused_naming_the_file() {
    let (mut fleet, _slugs) = fleet_of(2).await;
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    assert_eq!(
        run(&fleet, RunOptions::default()).await.unwrap().state,
        RunState::Succeeded
    );

    std::fs::write(
        dir.join("V2__labels.sql"),
        format!("{V2}\n-- edited after release"),
    )
    .unwrap();
    fleet.with_migrations(&dir).await;
    let err = run(&fleet, RunOptions::default()).await.unwrap_err();
    assert!(
        matches!(&err, FleetError::Migrate(MigrateError::Changed { file }) if file == "V2__labels.sql"),
        "{err}"
    );
    let out = fleet.cli().args(["migrate", "run"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("V2__labels.sql was changed after it was applied"),
        "{stderr}"
    );
}

#[tokio::test]
async fn ctrl_c_lets_in_flight_tenants_finish_and_records_the_run_as_interrupted() {
    use tokio::io::AsyncBufReadExt;

    let (mut fleet, slugs) = fleet_of(8).await;
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    // As in the kill -9 test: the third tenant's migration waits on this lock,
    // so Ctrl-C arrives with it in flight.
    let in_flight = &slugs[2];
    let holder = fleet.admin_of(in_flight).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE tasks IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let mut cli = fleet.cli();
    cli.args([
        "migrate",
        "run",
        "--concurrency",
        "1",
        "--lock-timeout",
        "60s",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let mut child = tokio::process::Command::from(cli).spawn().unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let stderr = stderr.clone();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Some(line) = lines.next_line().await.unwrap() {
                let mut all = stderr.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        })
    };
    eventually("a tenant's migration to wait on the lock", || {
        someone_waits_for_tasks(&holder)
    })
    .await;
    let before = fleet.p().control().runs(1).await.unwrap().remove(0).counts;
    assert_eq!((before.succeeded, before.running), (2, 1), "{before:?}");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Printed as the run stops scheduling; only then may the tenant in
    // flight finish, or the run could go on to the next one.
    eventually("the run to say it was interrupted", || async {
        stderr.lock().unwrap().contains("interrupted:")
    })
    .await;
    holder.batch_execute("COMMIT").await.unwrap();
    let status = child.wait().await.unwrap();
    reader.await.unwrap();
    let stderr = stderr.lock().unwrap().clone();
    assert_eq!(status.code(), Some(130), "{stderr}");

    let run = fleet.p().control().runs(1).await.unwrap().remove(0);
    assert_eq!(run.state, "interrupted");
    assert_eq!(
        (run.counts.succeeded, run.counts.running, run.counts.failed),
        (3, 0, 0),
        "the tenant in flight was finished and no other started: {:?}",
        run.counts
    );
    assert_eq!(run.counts.pending, before.pending, "{:?}", run.counts);
    assert_eq!(history_versions(&fleet, in_flight).await, [1, 2]);
    for slug in &slugs {
        let status = fleet.tenant_row(slug).await.status;
        assert_eq!(status, Status::Active, "{slug} left {status}");
    }
    assert_eq!(resume(&fleet).await.unwrap().state, RunState::Succeeded);
}

#[tokio::test]
async fn tenants_on_two_servers_migrate_and_both_templates_move() {
    let mut fleet = TestFleet::new().await;
    fleet.second_server("second").await;
    let mut slugs = Vec::new();
    for (i, server) in ["local", "second", "local", "second"].iter().enumerate() {
        let slug = fleet.slug(&format!("srv{i}"));
        fleet
            .p()
            .create(&bulkhead::provision::CreateRequest {
                slug: slug.clone(),
                display_name: None,
                mode: if i < 2 { Mode::Database } else { Mode::Schema },
                plan: bulkhead::control::Plan::Free,
                server: Some(server.to_string()),
            })
            .await
            .unwrap();
        slugs.push(slug);
    }
    let dir = fleet.migrations_dir(&[("V2__labels.sql", V2)]);
    fleet.with_migrations(&dir).await;
    let report = run(
        &fleet,
        RunOptions {
            concurrency: 2,
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (report.state, report.migrated),
        (RunState::Succeeded, 4),
        "{report:?}"
    );
    for server in ["local", "second"] {
        let s = fleet.p().control().server(server).await.unwrap().unwrap();
        assert_eq!(s.template_version, Some(2), "{server}");
    }
    for slug in &slugs {
        assert_eq!(fleet.tenant_row(slug).await.schema_version, 2);
        fleet
            .as_tenant(slug)
            .await
            .execute("INSERT INTO labels (name) VALUES ('x')", &[])
            .await
            .unwrap();
    }
}
