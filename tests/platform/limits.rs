//! Session limits of tenant runtime roles: a new tenant's role has its plan's,
//! a tenant made before limits existed (or whose plan changed, or whose role
//! changed its own) gets them from `reconcile`, and the role cannot lift the
//! one it could abuse without a timeout's help (temporary file space).

use bulkhead::control::{Mode, Plan};
use bulkhead::provision::SessionLimits;
use tokio_postgres::error::SqlState;

use crate::common::TestFleet;

/// `SHOW` of the three limits in a new session of the tenant's runtime role.
async fn shown(fleet: &TestFleet, slug: &str) -> [String; 3] {
    let client = fleet.as_tenant(slug).await;
    let mut out: [String; 3] = Default::default();
    for (i, name) in [
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "temp_file_limit",
    ]
    .iter()
    .enumerate()
    {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .unwrap();
        out[i] = row.get(0);
    }
    out
}

/// The role's defaults for every database, as the catalog keeps them.
async fn role_settings(fleet: &TestFleet, slug: &str) -> Vec<String> {
    let role = fleet.tenant_row(slug).await.runtime_role().to_string();
    fleet
        .admin("postgres")
        .await
        .query_one(
            "SELECT coalesce(s.setconfig, '{}') FROM pg_roles r
               LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = 0
              WHERE r.rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
        .get(0)
}

fn free() -> [String; 3] {
    ["5s", "10s", "256MB"].map(String::from)
}

#[tokio::test]
async fn a_new_tenants_runtime_role_starts_every_session_with_its_plans_limits() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("bounded", Mode::Schema).await;
    assert_eq!(shown(&fleet, &slug).await, free());
    let settings = role_settings(&fleet, &slug).await;
    for wanted in SessionLimits::of(Plan::Free).settings() {
        assert!(settings.contains(&wanted), "{wanted} not in {settings:?}");
    }
    // The role cannot lift the one limit it may not SET itself.
    let tenant = fleet.as_tenant(&slug).await;
    for sql in [
        "SET temp_file_limit = -1",
        "ALTER ROLE CURRENT_USER SET temp_file_limit = -1",
        "ALTER ROLE CURRENT_USER RESET temp_file_limit",
    ] {
        let e = tenant.batch_execute(sql).await.unwrap_err();
        assert_eq!(
            e.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e:?}"
        );
    }
}

#[tokio::test]
async fn reconcile_gives_a_tenant_made_before_limits_its_plans_and_is_idempotent() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("older", Mode::Database).await;
    let role = fleet.tenant_row(&slug).await.runtime_role().to_string();
    // As a tenant made by an earlier release: no defaults at all.
    fleet
        .admin("postgres")
        .await
        .batch_execute(&format!("ALTER ROLE \"{role}\" RESET ALL"))
        .await
        .unwrap();
    assert_eq!(
        shown(&fleet, &slug).await,
        ["0", "0", "-1"].map(String::from)
    );

    let report = fleet.p().reconcile(false).await.unwrap();
    let ours: Vec<_> = report.iter().filter(|r| r.slug == slug).collect();
    assert_eq!(ours.len(), 1, "{report:?}");
    assert_eq!(ours[0].outcome, "session limits set to the free plan's");
    assert_eq!(shown(&fleet, &slug).await, free());
    // Nothing left to do the second time.
    assert!(fleet.p().reconcile(false).await.unwrap().is_empty());

    // The role changes its own default back: the next reconcile restores it.
    fleet
        .as_tenant(&slug)
        .await
        .batch_execute("ALTER ROLE CURRENT_USER SET statement_timeout = 0")
        .await
        .unwrap();
    assert_eq!(shown(&fleet, &slug).await[0], "0");
    let report = fleet.p().reconcile(false).await.unwrap();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(shown(&fleet, &slug).await, free());
}

#[tokio::test]
async fn a_plan_change_moves_the_roles_limits_to_the_new_plans() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("upgraded", Mode::Database).await;
    let tenant = fleet.tenant_row(&slug).await;
    fleet
        .p()
        .control()
        .set_plan(tenant.id, Plan::Pro)
        .await
        .unwrap();
    let report = fleet.p().reconcile(false).await.unwrap();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0].outcome, "session limits set to the pro plan's");
    assert_eq!(
        shown(&fleet, &slug).await,
        ["30s", "1min", "4GB"].map(String::from)
    );
    // Straight away, without a reconcile: what a plan change calls.
    fleet
        .p()
        .control()
        .set_plan(tenant.id, Plan::Free)
        .await
        .unwrap();
    let tenant = fleet.tenant_row(&slug).await;
    fleet.p().apply_limits(&tenant).await.unwrap();
    assert_eq!(shown(&fleet, &slug).await, free());
}
