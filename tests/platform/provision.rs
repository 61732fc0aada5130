//! The provisioner against a real server: create, verify, suspend, rotate,
//! delete with export, crash-resume after every step, reconcile.

use crate::common::{TestFleet, connect, pg};
use bulkhead::control::{Mode, Plan, Status, Step};
use bulkhead::provision::{CreateOutcome, CreateRequest, ProvisionError};

fn request(slug: &str, mode: Mode) -> CreateRequest {
    CreateRequest {
        slug: slug.to_string(),
        display_name: Some(format!("Tenant {slug}")),
        mode,
        plan: Plan::Free,
        server: None,
    }
}

async fn create_verify_and_use(mode: Mode) {
    let fleet = TestFleet::new().await;
    let slug = fleet.slug("new");
    let outcome = fleet.p().create(&request(&slug, mode)).await.unwrap();
    let CreateOutcome::Created(tenant) = outcome else {
        panic!("expected a new tenant, got {outcome:?}");
    };
    assert_eq!(tenant.status, Status::Active);
    assert_eq!(tenant.mode, mode);
    assert_eq!(tenant.step, None);
    assert_eq!(tenant.schema_version, 1);

    let client = fleet.as_tenant(&slug).await;
    let row = client
        .query_one(
            "SELECT current_user::text, current_database()::text, current_schemas(false)::text[]",
            &[],
        )
        .await
        .unwrap();
    // Named from an opaque id, never from the slug.
    let name = tenant.pg_name.to_string();
    assert!(
        name.starts_with("t_") && !name.contains(&slug) && !name.contains("new"),
        "{name}"
    );
    let expected_db = match mode {
        Mode::Database => name.clone(),
        Mode::Schema => fleet.args.shared_db.clone(),
    };
    let expected_schema = match mode {
        Mode::Database => "public".to_string(),
        Mode::Schema => name.clone(),
    };
    assert_eq!(row.get::<_, String>(0), name);
    assert_eq!(row.get::<_, String>(1), expected_db);
    assert_eq!(row.get::<_, Vec<String>>(2), vec![expected_schema]);

    // The runtime role can do DML on its own tables...
    client
        .execute("INSERT INTO projects (name) VALUES ('first')", &[])
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM projects", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    // ...but not touch the migration history.
    let err = client
        .execute("DELETE FROM bulkhead_schema_history", &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE)
    );

    // A second create is idempotent and says so.
    let again = fleet.p().create(&request(&slug, mode)).await.unwrap();
    assert!(matches!(again, CreateOutcome::AlreadyExists(t) if t.id == tenant.id));
    assert_eq!(fleet.tenant_rows(&slug).await, 1);
}

#[tokio::test]
async fn database_tenant_is_created_active_verified_and_usable() {
    create_verify_and_use(Mode::Database).await;
}

#[tokio::test]
async fn schema_tenant_is_created_active_verified_and_usable() {
    create_verify_and_use(Mode::Schema).await;
}

async fn suspend_and_resume(mode: Mode) {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("susp", mode).await;
    assert_eq!(
        fleet.p().suspend(&slug).await.unwrap().status,
        Status::Suspended
    );
    // Suspending twice is a no-op; resuming an active tenant too.
    assert_eq!(
        fleet.p().suspend(&slug).await.unwrap().status,
        Status::Suspended
    );
    assert_eq!(
        fleet.p().resume(&slug).await.unwrap().status,
        Status::Active
    );
    assert_eq!(
        fleet.p().resume(&slug).await.unwrap().status,
        Status::Active
    );
    let audit = fleet
        .p()
        .control()
        .audit_entries(
            Some(
                fleet
                    .p()
                    .control()
                    .tenant_by_slug(&bulkhead::control::Slug::parse(&slug).unwrap())
                    .await
                    .unwrap()
                    .unwrap()
                    .id,
            ),
            10,
        )
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        ["tenant.resume", "tenant.suspend", "tenant.create"]
    );
}

#[tokio::test]
async fn database_tenant_suspends_and_resumes() {
    suspend_and_resume(Mode::Database).await;
}

#[tokio::test]
async fn schema_tenant_suspends_and_resumes() {
    suspend_and_resume(Mode::Schema).await;
}

async fn rotate(mode: Mode) {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("rot", mode).await;
    let old_url = fleet.p().connect_url(&slug).await.unwrap();
    let old_conn = connect(old_url.expose()).await.unwrap();
    let t = fleet.p().rotate_credentials(&slug).await.unwrap();
    assert_eq!(t.credential_generation, 2);
    let new_url = fleet.p().connect_url(&slug).await.unwrap();
    assert_ne!(old_url, new_url);

    let err = connect(old_url.expose()).await.unwrap_err();
    let db_err = err.as_db_error().expect("a server error");
    assert_eq!(
        db_err.code(),
        &tokio_postgres::error::SqlState::INVALID_PASSWORD
    );
    connect(new_url.expose())
        .await
        .expect("the new password works");
    // An open connection keeps working until it is recycled.
    old_conn.query_one("SELECT 1", &[]).await.unwrap();
}

#[tokio::test]
async fn database_tenant_credentials_rotate() {
    rotate(Mode::Database).await;
}

#[tokio::test]
async fn schema_tenant_credentials_rotate() {
    rotate(Mode::Schema).await;
}

async fn delete_with_export(mode: Mode) {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("del", mode).await;
    fleet
        .as_tenant(&slug)
        .await
        .batch_execute("INSERT INTO projects (name) VALUES ('keep me'), ('and me')")
        .await
        .unwrap();
    let dir = crate::common::scratch(&format!("export-{}", fleet.id));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{slug}.dump"));
    let name = fleet.pg_name(&slug).await;

    let t = fleet.p().delete(&slug, Some(&file)).await.unwrap();
    assert_eq!(t.status, Status::Deleted);
    assert!(t.slug_reusable_at.is_some());
    assert!(
        fleet.traces_of(&slug).await.is_empty(),
        "{:?}",
        fleet.traces_of(&slug).await
    );
    assert!(matches!(
        fleet.p().connect_url(&slug).await,
        Err(ProvisionError::UnknownTenant(_))
    ));

    // The export restores into a scratch database with every row.
    let scratch = format!("restore_{}", fleet.id);
    crate::common::create_private_database(&scratch).await;
    let bindir = bulkhead::pg::Binaries::find().unwrap();
    let out = std::process::Command::new(bindir.tool("pg_restore"))
        .args(["--no-owner", "--no-privileges", "--dbname"])
        .arg(pg().url(&scratch))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = fleet.admin(&scratch).await;
    let table = match mode {
        Mode::Database => "public.projects".to_string(),
        Mode::Schema => format!("\"{name}\".projects"),
    };
    let names: Vec<String> = restored
        .query(&format!("SELECT name FROM {table} ORDER BY id"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["keep me", "and me"]);

    // The slug is quarantined.
    let err = fleet.p().create(&request(&slug, mode)).await.unwrap_err();
    assert!(
        matches!(err, ProvisionError::SlugQuarantined { .. }),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn database_tenant_is_deleted_with_a_restorable_export() {
    delete_with_export(Mode::Database).await;
}

#[tokio::test]
async fn schema_tenant_is_deleted_with_a_restorable_export() {
    delete_with_export(Mode::Schema).await;
}

/// Fails the creation right after each step in turn, then finishes it by
/// running `create` again (even steps) or `reconcile` (odd steps).
async fn crash_after_every_step(mode: Mode) {
    let mut fleet = TestFleet::new().await;
    for (i, &step) in Step::CREATE.iter().enumerate() {
        let slug = fleet.slug(&format!("crash{i}"));
        fleet.fail_after(Some(step));
        let err = fleet.p().create(&request(&slug, mode)).await.unwrap_err();
        assert!(
            matches!(err, ProvisionError::Injected(s) if s == step),
            "{err}"
        );
        let tenant = fleet
            .p()
            .control()
            .tenant_by_slug(&bulkhead::control::Slug::parse(&slug).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tenant.status, Status::Provisioning);
        assert_eq!(tenant.step, Some(step));

        fleet.fail_after(None);
        if i % 2 == 0 {
            let outcome = fleet.p().create(&request(&slug, mode)).await.unwrap();
            assert!(matches!(outcome, CreateOutcome::Created(_)), "{outcome:?}");
        } else {
            let report = fleet.p().reconcile(false).await.unwrap();
            assert!(
                report
                    .iter()
                    .any(|r| r.slug == slug && r.outcome == "created"),
                "{report:?}"
            );
        }
        let tenant = fleet
            .p()
            .control()
            .tenant_by_slug(&bulkhead::control::Slug::parse(&slug).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tenant.status, Status::Active, "after a crash after {step}");
        assert_eq!(tenant.schema_version, 1);
        assert_eq!(fleet.tenant_rows(&slug).await, 1);
        let client = fleet.as_tenant(&slug).await;
        client
            .execute("INSERT INTO projects (name) VALUES ('x')", &[])
            .await
            .unwrap();
        let mut traces = fleet.traces_of(&slug).await;
        traces.sort();
        let name = tenant.pg_name;
        let mut expected = vec![format!("role {name}"), format!("role {name}_owner")];
        expected.push(match mode {
            Mode::Database => format!("database {name}"),
            Mode::Schema => format!("schema {name}"),
        });
        expected.sort();
        assert_eq!(
            traces, expected,
            "exactly one of each after a crash after {step}"
        );
    }
}

#[tokio::test]
async fn database_creation_resumes_after_a_crash_after_every_step() {
    crash_after_every_step(Mode::Database).await;
}

#[tokio::test]
async fn schema_creation_resumes_after_a_crash_after_every_step() {
    crash_after_every_step(Mode::Schema).await;
}

#[tokio::test]
async fn a_crash_while_creating_the_database_leaves_no_orphan_after_rollback() {
    let mut fleet = TestFleet::new().await;
    let slug = fleet.slug("orphan");
    fleet.fail_after(Some(Step::Storage));
    fleet
        .p()
        .create(&request(&slug, Mode::Database))
        .await
        .unwrap_err();
    assert!(fleet.database_exists(&fleet.pg_name(&slug).await).await);
    fleet.fail_after(None);

    let report = fleet.p().reconcile(true).await.unwrap();
    assert!(
        report
            .iter()
            .any(|r| r.slug == slug && r.outcome == "rolled back"),
        "{report:?}"
    );
    assert!(
        fleet.traces_of(&slug).await.is_empty(),
        "{:?}",
        fleet.traces_of(&slug).await
    );
    // A rolled-back creation frees its slug at once.
    let outcome = fleet
        .p()
        .create(&request(&slug, Mode::Database))
        .await
        .unwrap();
    assert!(matches!(outcome, CreateOutcome::Created(_)));
}

#[tokio::test]
async fn an_interrupted_deletion_is_finished_by_reconcile() {
    let mut fleet = TestFleet::new().await;
    let slug = fleet.tenant("halfdel", Mode::Schema).await;
    fleet.fail_after(Some(Step::Drop));
    fleet.p().delete(&slug, None).await.unwrap_err();
    fleet.fail_after(None);
    let report = fleet.p().reconcile(false).await.unwrap();
    assert!(
        report
            .iter()
            .any(|r| r.slug == slug && r.outcome == "deleted"),
        "{report:?}"
    );
    assert!(fleet.traces_of(&slug).await.is_empty());
    assert!(fleet.p().reconcile(false).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_runtime_role_can_connect_to_exactly_one_database_and_is_member_of_nothing() {
    let fleet = TestFleet::new().await;
    let a = fleet.tenant("audita", Mode::Database).await;
    let b = fleet.tenant("auditb", Mode::Schema).await;
    let (a, b) = (fleet.pg_name(&a).await, fleet.pg_name(&b).await);
    // No lock against other tests' creations: a database is created closed
    // and opened only once PUBLIC's CONNECT is revoked, so no moment exists
    // in which a role could connect to one that is not its own.
    let audit = fleet.p().privilege_audit("local").await.unwrap();
    for name in [&a, &b] {
        let role = audit
            .iter()
            .find(|r| &r.role == name)
            .unwrap_or_else(|| panic!("{name} missing from {audit:?}"));
        assert!(role.is_isolated(), "{role:?}");
    }
    let a_role = audit.iter().find(|r| r.role == a).unwrap();
    assert_eq!(a_role.databases, std::slice::from_ref(&a));
    let b_role = audit.iter().find(|r| r.role == b).unwrap();
    assert_eq!(
        b_role.databases,
        std::slice::from_ref(&fleet.args.shared_db)
    );
    // Every tenant role on the whole server, including other tests' tenants
    // (some half-way through creation, not yet granted their database).
    for role in &audit {
        assert!(role.connectable <= 1, "{role:?}");
        assert!(
            !role.temp && role.memberships == 0 && !role.privileged,
            "{role:?}"
        );
    }
}

#[tokio::test]
async fn placement_picks_the_open_server_with_most_free_capacity_and_skips_drained_ones() {
    let fleet = TestFleet::new().await;
    fleet
        .p()
        .add_server(&bulkhead::provision::AddServer {
            name: "big".into(),
            admin_url: bulkhead::secret::Secret::new(pg().url("postgres")),
            capacity: 5000,
            budget: 10,
        })
        .await
        .unwrap();
    let slug = fleet.tenant("placed", Mode::Database).await;
    let t = fleet
        .p()
        .control()
        .tenant_by_slug(&bulkhead::control::Slug::parse(&slug).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.server, "big");
    fleet.p().drain_server("big").await.unwrap();
    let slug = fleet.tenant("placed2", Mode::Schema).await;
    let t = fleet
        .p()
        .control()
        .tenant_by_slug(&bulkhead::control::Slug::parse(&slug).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.server, "local");
    let err = fleet
        .p()
        .create(&CreateRequest {
            server: Some("big".into()),
            ..request(&fleet.slug("nope"), Mode::Database)
        })
        .await
        .unwrap_err();
    assert!(matches!(err, ProvisionError::ServerDraining(_)), "{err}");
    assert!(fleet.traces_of(&fleet.slug("nope")).await.is_empty());
}

/// Creates `n` tenants at once, alternating modes; every one must be created.
async fn create_concurrently(fleet: &TestFleet, base: &str, n: usize) {
    let mode = |i: usize| {
        if i.is_multiple_of(2) {
            Mode::Schema
        } else {
            Mode::Database
        }
    };
    let requests: Vec<CreateRequest> = (0..n)
        .map(|i| request(&fleet.slug(&format!("{base}{i}")), mode(i)))
        .collect();
    let results = futures::future::join_all(requests.iter().map(|r| fleet.p().create(r))).await;
    for (r, result) in requests.iter().zip(results) {
        match result {
            Ok(CreateOutcome::Created(t)) => assert_eq!(t.status, Status::Active),
            other => panic!("{}: {other:?}", r.slug),
        }
    }
}

#[tokio::test]
async fn concurrent_creates_in_both_modes_all_succeed() {
    let fleet = TestFleet::new().await;
    // Warm up: the first tenant of each mode creates the template / shared db.
    fleet.tenant("warm-db", Mode::Database).await;
    fleet.tenant("warm-sc", Mode::Schema).await;
    create_concurrently(&fleet, "par", 8).await;
}

#[tokio::test]
async fn concurrent_first_creates_race_to_make_the_template_and_shared_database() {
    let fleet = TestFleet::new().await;
    create_concurrently(&fleet, "cold", 6).await;
}

/// Admin connections are outside every tenant budget, so they must not linger
/// after provisioning: the ones to a schema tenant's shared database close
/// once idle (10 s).
#[tokio::test]
async fn admin_connections_close_once_idle() {
    let fleet = TestFleet::new().await;
    let slug = fleet.slug("idle");
    fleet
        .p()
        .create(&request(&slug, Mode::Schema))
        .await
        .unwrap();
    let shared = fleet.p().settings().shared_db.clone();
    let admin = fleet.admin("postgres").await;
    let open = || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                  WHERE application_name = 'bulkhead-provisioner' AND datname = $1",
                &[&shared],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert!(
        open().await > 0,
        "provisioning left no admin connection to {shared}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    while open().await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "admin connections to {shared} still open after 40 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Audits the server over and over while database-mode tenants are being
/// created: a database is created closed and opened only once PUBLIC's
/// CONNECT is revoked, so no audit may ever find a role that can reach a
/// database besides its own (an open new database would count for all).
#[tokio::test]
async fn no_audit_taken_during_creations_sees_a_role_reach_two_databases() {
    let fleet = TestFleet::new().await;
    let first = fleet.tenant("watch", Mode::Database).await;
    let first = fleet.pg_name(&first).await;
    let requests: Vec<CreateRequest> = (0..6)
        .map(|i| request(&fleet.slug(&format!("burst{i}")), Mode::Database))
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let creating = async {
        let results = futures::future::join_all(requests.iter().map(|r| fleet.p().create(r))).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        results
    };
    let auditing = async {
        let mut audits = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let audit = fleet.p().privilege_audit("local").await.unwrap();
            let mine = audit.iter().find(|r| r.role == first).unwrap();
            assert_eq!(mine.databases, std::slice::from_ref(&first), "{mine:?}");
            for role in &audit {
                assert!(role.connectable <= 1 && !role.temp, "{role:?}");
            }
            audits += 1;
        }
        audits
    };
    let (results, audits) = futures::join!(creating, auditing);
    for result in results {
        assert!(
            matches!(result, Ok(CreateOutcome::Created(_))),
            "{result:?}"
        );
    }
    assert!(
        audits > 1,
        "only {audits} audit(s) ran during the creations"
    );
}

/// Every catalog a tenant's runtime role can read, each row as text.
const CATALOG_QUERIES: &[&str] = &[
    "SELECT * FROM pg_catalog.pg_roles",
    "SELECT * FROM pg_catalog.pg_user",
    "SELECT * FROM pg_catalog.pg_group",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT * FROM pg_catalog.pg_auth_members",
    "SELECT * FROM pg_catalog.pg_database",
    "SELECT * FROM pg_catalog.pg_namespace",
    "SELECT * FROM pg_catalog.pg_class",
    "SELECT * FROM pg_catalog.pg_tables",
    "SELECT * FROM pg_catalog.pg_shdescription",
    "SELECT * FROM pg_catalog.pg_description",
    "SELECT * FROM pg_catalog.pg_db_role_setting",
    "SELECT * FROM pg_catalog.pg_default_acl",
    "SELECT * FROM pg_catalog.pg_shdepend",
    "SELECT * FROM pg_catalog.pg_stat_activity",
    "SELECT datname, usename, application_name FROM pg_catalog.pg_stat_activity",
    "SELECT * FROM pg_catalog.pg_stat_database",
    "SELECT * FROM pg_catalog.pg_locks",
    "SELECT * FROM pg_catalog.pg_tablespace",
    "SELECT * FROM pg_catalog.pg_settings",
    "SELECT * FROM pg_catalog.pg_shseclabel",
    "SELECT * FROM pg_catalog.pg_prepared_xacts",
    "SELECT * FROM pg_catalog.pg_replication_slots",
    "SELECT * FROM information_schema.schemata",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM information_schema.applicable_roles",
    "SELECT * FROM information_schema.enabled_roles",
    "SELECT * FROM information_schema.administrable_role_authorizations",
    "SELECT * FROM information_schema.table_privileges",
    "SELECT * FROM information_schema.role_table_grants",
    "SELECT * FROM information_schema.usage_privileges",
    "SELECT * FROM information_schema.role_usage_grants",
    "SELECT * FROM information_schema.column_privileges",
];

#[tokio::test]
async fn no_catalog_a_tenant_can_read_names_another_tenant() {
    let fleet = TestFleet::new().await;
    // Distinctive words, in slugs and display names alike.
    let words = ["zebracorp", "quokkaworks", "narwhalia", "pangolinco"];
    let modes = [Mode::Database, Mode::Database, Mode::Schema, Mode::Schema];
    let mut tenants = Vec::new();
    for (word, mode) in words.iter().zip(modes) {
        let slug = fleet.slug(word);
        fleet
            .p()
            .create(&CreateRequest {
                display_name: Some(format!("{} Holdings", word.to_uppercase())),
                ..request(&slug, mode)
            })
            .await
            .unwrap();
        tenants.push((slug.clone(), fleet.pg_name(&slug).await, mode));
    }
    // Every tenant has a session open, so pg_stat_activity shows them all.
    let mut sessions = Vec::new();
    for (slug, _, _) in &tenants {
        sessions.push(fleet.as_tenant(slug).await);
    }
    for (attacker, (slug, name, mode)) in sessions.iter().zip(&tenants) {
        let mut seen = String::new();
        for query in CATALOG_QUERIES {
            let rows = match attacker
                .query(&format!("SELECT x::text FROM ({query}) x"), &[])
                .await
            {
                Ok(rows) => rows,
                // Unreadable is as good as nameless; nothing else may fail.
                Err(e) => {
                    assert_eq!(
                        e.code(),
                        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
                        "{query} as {slug}: {e}"
                    );
                    continue;
                }
            };
            for row in rows {
                let text = row.get::<_, Option<String>>(0).unwrap_or_default();
                let lower = text.to_lowercase();
                for word in words {
                    assert!(
                        !lower.contains(word),
                        "{query} as {slug} ({mode}) names a tenant: {text}"
                    );
                }
                seen.push_str(&text);
                seen.push('\n');
            }
        }
        // The catalogs were read: every other tenant's role is listed, by its
        // opaque name only; schema-mode tenants see each other's schemas.
        for (other_slug, other, other_mode) in &tenants {
            assert!(seen.contains(other.as_str()), "{other} not seen by {slug}");
            if *mode == Mode::Schema && *other_mode == Mode::Schema && other_slug != slug {
                let schemas = attacker
                    .query(
                        "SELECT nspname::text FROM pg_namespace WHERE nspname = $1",
                        &[other],
                    )
                    .await
                    .unwrap();
                assert_eq!(schemas.len(), 1, "{other}'s schema not visible to {slug}");
            }
        }
        assert!(!name.contains(slug.as_str()));
    }
}

/// Renames a tenant's objects by hand, as a superuser.
async fn rename_by_hand(fleet: &TestFleet, mode: Mode, from: &str, to: &str) {
    let admin = fleet.admin("postgres").await;
    admin
        .batch_execute(&format!(
            "ALTER ROLE \"{from}_owner\" RENAME TO \"{to}_owner\";
             ALTER ROLE \"{from}\" RENAME TO \"{to}\";"
        ))
        .await
        .unwrap();
    match mode {
        Mode::Database => {
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{from}\" ALLOW_CONNECTIONS false;
                     SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                      WHERE datname = '{from}';"
                ))
                .await
                .unwrap();
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE \"{from}\" RENAME TO \"{to}\";
                     ALTER DATABASE \"{to}\" ALLOW_CONNECTIONS true;"
                ))
                .await
                .unwrap();
        }
        Mode::Schema => {
            let shared = &fleet.args.shared_db;
            fleet
                .admin(shared)
                .await
                .batch_execute(&format!(
                    "ALTER SCHEMA \"{from}\" RENAME TO \"{to}\";
                     ALTER ROLE \"{to}\" IN DATABASE \"{shared}\" SET search_path = \"{to}\";
                     SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{to}';"
                ))
                .await
                .unwrap();
        }
    }
}

/// Puts a tenant where every tenant made before opaque names is after the
/// control-plane migration: objects named `t_<slug>`, and the control plane
/// recording that name. Returns the name.
async fn make_slug_named(fleet: &TestFleet, slug: &str, mode: Mode) -> String {
    let from = fleet.pg_name(slug).await;
    let to = format!("t_{slug}");
    rename_by_hand(fleet, mode, &from, &to).await;
    fleet
        .control_sql(
            "UPDATE tenants SET pg_name = 't_' || slug WHERE slug = $1 AND status <> 'deleted'",
            slug,
        )
        .await;
    assert!(fleet.tenant_row(slug).await.needs_rename());
    to
}

/// Exactly the tenant's roles and database or schema, named `name`.
fn traces_named(name: &str, mode: Mode) -> Vec<String> {
    let mut expected = vec![
        format!("role {name}"),
        format!("role {name}_owner"),
        match mode {
            Mode::Database => format!("database {name}"),
            Mode::Schema => format!("schema {name}"),
        },
    ];
    expected.sort();
    expected
}

/// Its projects' names, through the server (pool router and all).
async fn project_names(
    server: &bulkhead::serve::Running,
    slug: &str,
    token: &str,
) -> Option<String> {
    let r = crate::common::http(
        server.addr,
        "GET",
        &format!("{slug}.localhost"),
        "/api/projects",
        Some(token),
        None,
    )
    .await;
    (r.status == 200).then(|| {
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(",")
    })
}

async fn slug_named_tenant_is_renamed_and_still_serves(mode: Mode) {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("legacy", mode).await;
    fleet
        .as_tenant(&slug)
        .await
        .batch_execute("INSERT INTO projects (name) VALUES ('kept')")
        .await
        .unwrap();
    let server = crate::common::serve(&fleet, |_| {}).await;
    let token = fleet.token(&slug, "member").await;
    let old = make_slug_named(&fleet, &slug, mode).await;
    // Served under the old names, as it was before the upgrade.
    crate::common::eventually("served under its slug-derived names", || async {
        project_names(&server, &slug, &token).await.as_deref() == Some("kept")
    })
    .await;
    let mut traces = fleet.traces_of(&slug).await;
    traces.sort();
    assert_eq!(traces, traces_named(&old, mode));

    let report = fleet.p().reconcile(false).await.unwrap();
    assert!(
        report
            .iter()
            .any(|r| r.slug == slug && r.outcome == bulkhead::provision::RENAMED),
        "{report:?}"
    );
    let tenant = fleet.tenant_row(&slug).await;
    let new = tenant.pg_name.to_string();
    assert!(!tenant.needs_rename() && !new.contains("legacy"), "{new}");
    let mut traces = fleet.traces_of(&slug).await;
    traces.sort();
    assert_eq!(
        traces,
        traces_named(&new, mode),
        "only the new names remain"
    );

    // Routing and pools follow the new names.
    crate::common::eventually("served under its new names", || async {
        project_names(&server, &slug, &token).await.as_deref() == Some("kept")
    })
    .await;
    let client = fleet.as_tenant(&slug).await;
    let row = client
        .query_one(
            "SELECT current_user::text, current_schemas(false)::text[], count(*)
               FROM projects",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), new);
    let schema = match mode {
        Mode::Database => "public".to_string(),
        Mode::Schema => new.clone(),
    };
    assert_eq!(row.get::<_, Vec<String>>(1), [schema]);
    assert_eq!(row.get::<_, i64>(2), 1);
    // Done: nothing left for the next reconcile.
    assert!(fleet.p().reconcile(false).await.unwrap().is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_slug_named_database_tenant_is_renamed_by_reconcile_and_still_serves() {
    slug_named_tenant_is_renamed_and_still_serves(Mode::Database).await;
}

#[tokio::test]
async fn a_slug_named_schema_tenant_is_renamed_by_reconcile_and_still_serves() {
    slug_named_tenant_is_renamed_and_still_serves(Mode::Schema).await;
}

/// Leaves a slug-named tenant as a reconcile that died half-way through its
/// rename would: the target recorded, the owner role renamed, the database
/// closed. Returns the target.
async fn interrupt_a_rename(fleet: &TestFleet, slug: &str, mode: Mode) -> String {
    let old = make_slug_named(fleet, slug, mode).await;
    let next = bulkhead::control::PgName::mint().to_string();
    let cp = connect(fleet.args.control_url.as_ref().unwrap())
        .await
        .unwrap();
    cp.execute(
        "UPDATE tenants SET pg_name_next = $2 WHERE slug = $1 AND status <> 'deleted'",
        &[&slug, &next],
    )
    .await
    .unwrap();
    let admin = fleet.admin("postgres").await;
    admin
        .batch_execute(&format!(
            "ALTER ROLE \"{old}_owner\" RENAME TO \"{next}_owner\""
        ))
        .await
        .unwrap();
    if mode == Mode::Database {
        admin
            .batch_execute(&format!("ALTER DATABASE \"{old}\" ALLOW_CONNECTIONS false"))
            .await
            .unwrap();
    }
    next
}

async fn interrupted_rename_is_finished(mode: Mode) {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("halfway", mode).await;
    fleet
        .as_tenant(&slug)
        .await
        .batch_execute("INSERT INTO projects (name) VALUES ('kept')")
        .await
        .unwrap();
    let next = interrupt_a_rename(&fleet, &slug, mode).await;

    let report = fleet.p().reconcile(false).await.unwrap();
    assert!(
        report
            .iter()
            .any(|r| r.slug == slug && r.outcome == bulkhead::provision::RENAMED),
        "{report:?}"
    );
    let tenant = fleet.tenant_row(&slug).await;
    assert_eq!(
        tenant.pg_name.as_str(),
        next,
        "finished with the recorded name"
    );
    assert_eq!(tenant.pg_name_next, None);
    let mut traces = fleet.traces_of(&slug).await;
    traces.sort();
    assert_eq!(traces, traces_named(&next, mode));
    let n: i64 = fleet
        .as_tenant(&slug)
        .await
        .query_one("SELECT count(*) FROM projects", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert!(fleet.p().reconcile(false).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_interrupted_rename_of_a_database_tenant_is_finished_by_reconcile() {
    interrupted_rename_is_finished(Mode::Database).await;
}

#[tokio::test]
async fn an_interrupted_rename_of_a_schema_tenant_is_finished_by_reconcile() {
    interrupted_rename_is_finished(Mode::Schema).await;
}

#[tokio::test]
async fn deleting_a_tenant_whose_rename_was_interrupted_leaves_nothing() {
    for mode in [Mode::Database, Mode::Schema] {
        let fleet = TestFleet::new().await;
        let slug = fleet.tenant("halfdrop", mode).await;
        interrupt_a_rename(&fleet, &slug, mode).await;
        fleet.p().delete(&slug, None).await.unwrap();
        assert!(
            fleet.traces_of(&slug).await.is_empty(),
            "{mode}: {:?}",
            fleet.traces_of(&slug).await
        );
    }
}

async fn search_path_stays_pinned(mode: Mode) {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("pin", mode).await;
    let tenant = fleet.tenant_row(&slug).await;
    let own = fleet.as_tenant(&slug).await;
    own.batch_execute("INSERT INTO projects (name) VALUES ('mine')")
        .await
        .unwrap();
    // The attack: the runtime role changes its own defaults, everywhere it may.
    let db = tenant.database(&fleet.args.shared_db);
    own.batch_execute(&format!(
        "ALTER ROLE CURRENT_USER SET search_path = pg_catalog;
         ALTER ROLE CURRENT_USER IN DATABASE \"{db}\" SET search_path = pg_catalog;"
    ))
    .await
    .expect("PostgreSQL lets a role change its own defaults");
    // Which reach every connection that does not pin its own path...
    let url = fleet.p().connect_url(&slug).await.unwrap();
    let unpinned = url.expose().split('?').next().unwrap().to_string();
    let raw = connect(&unpinned).await.unwrap();
    let path: String = raw
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(path, "pg_catalog");
    let err = raw.query("SELECT * FROM projects", &[]).await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
    );
    // ...but not bulkhead's: a fresh connection through the pool router (a
    // new server has no pool yet) resolves to the tenant's own tables.
    let server = crate::common::serve(&fleet, |_| {}).await;
    let token = fleet.token(&slug, "member").await;
    assert_eq!(
        project_names(&server, &slug, &token).await.as_deref(),
        Some("mine")
    );
    server.stop().await.unwrap();
    // The provisioner's own runtime connections (verify, connect-url) too.
    let pinned: String = connect(url.expose())
        .await
        .unwrap()
        .query_one("SELECT current_setting('search_path')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pinned, format!("\"{}\"", tenant.schema()));
}

#[tokio::test]
async fn a_database_tenant_role_cannot_move_the_search_path_of_bulkheads_connections() {
    search_path_stays_pinned(Mode::Database).await;
}

#[tokio::test]
async fn a_schema_tenant_role_cannot_move_the_search_path_of_bulkheads_connections() {
    search_path_stays_pinned(Mode::Schema).await;
}
