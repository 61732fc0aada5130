//! The admin API on admin.localhost against a real control plane: every
//! admin route as each operator role (from the permission table), without a
//! session and with a tenant owner's cookie; tenant search and detail; the
//! actions (suspend, reinstate, comp, end sessions), each with its reason
//! in the platform audit log and in the tenant's own.

use crate::common::{HttpClient, TestFleet, eventually, serve};
use crate::operators::{ADMIN, PASSWORD, code, cookie, enrol, login, operator};
use crate::people::{member, session};
use bulkhead::control::{Mode, OperatorRole};
use bulkhead::http::operator_routes;
use serde_json::{Value, json};

/// A logged-in operator of `role`: its client (cookie and CSRF token) and
/// e-mail.
pub(crate) async fn operator_client(
    fleet: &TestFleet,
    server: &bulkhead::serve::Running,
    role: OperatorRole,
) -> (HttpClient, String) {
    let admin = HttpClient::new(server.addr, ADMIN);
    let email = format!("{}-{}@example.com", role.as_str(), fleet.id);
    let token = operator(fleet, &email, role).await;
    let (uri, _) = enrol(&admin, &token).await;
    let r = login(&admin, &email, PASSWORD, json!({"totp": code(&uri, 1)})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    let client = admin
        .header("cookie", &cookie(&r))
        .header("x-csrf-token", &csrf);
    (client, email)
}

/// A tenant's owner, logged in on its host: the client and the cookie.
pub(crate) async fn owner(
    fleet: &TestFleet,
    server: &bulkhead::serve::Running,
    slug: &str,
) -> (HttpClient, String, String) {
    let email = format!("owner-{slug}@example.com");
    member(fleet, slug, &email, "owner").await;
    let (cookie, csrf) = session(server.addr, slug, &email).await;
    let client = HttpClient::tenant(server, slug).session(&cookie, &csrf);
    (client, cookie, email)
}

/// The platform audit rows of `action`: (actor, detail).
async fn platform_rows(fleet: &TestFleet, action: &str) -> Vec<(String, Value)> {
    fleet
        .p()
        .control()
        .audit_entries(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| (e.actor, e.detail))
        .collect()
}

/// The tenant's own audit rows of `action`: (actor_label, detail).
async fn tenant_rows(fleet: &TestFleet, slug: &str, action: &str) -> Vec<(String, Value)> {
    fleet
        .as_tenant(slug)
        .await
        .query(
            "SELECT actor_label, detail FROM audit_log WHERE action = $1",
            &[&action],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn every_admin_route_answers_each_operator_role_as_the_permission_table_says() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("opmatrix", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let (support, _) = operator_client(&fleet, &server, OperatorRole::Support).await;
    let (admin, _) = operator_client(&fleet, &server, OperatorRole::Admin).await;
    let (_, owner_cookie, _) = owner(&fleet, &server, &slug).await;
    let nobody = HttpClient::new(server.addr, ADMIN);
    let tenant_owner = HttpClient::new(server.addr, ADMIN).header("cookie", &owner_cookie);

    // A grant for the routes that name one (and the view to use it).
    let r = support
        .post(
            &format!("/api/admin/tenants/{slug}/access"),
            json!({"reason": "the permission matrix walks every route"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let grant = r.json()["id"].as_str().unwrap().to_string();
    // A finished fleet run for the routes that name one.
    let control = fleet.p().control();
    let run = control
        .start_run(2, "matrix", &serde_json::json!({}))
        .await
        .unwrap();
    control.finish_run(run, "succeeded").await.unwrap();

    let routes = operator_routes();
    assert!(routes.len() >= 8, "{routes:?}");
    for spec in routes {
        let method = spec.method.as_str();
        let path = spec
            .path
            .replace("{slug}", &slug)
            .replace("{grant}", &grant)
            .replace("{run}", &run.to_string())
            .replace("{invitation}", &uuid::Uuid::new_v4().to_string())
            .replace("{*path}", "projects");
        let route = format!("{method} {}", spec.path);
        // Writes without a reason: refused before anything changes.
        let body = (method != "GET").then(|| json!({}));
        for (role, client) in [
            (OperatorRole::Support, &support),
            (OperatorRole::Admin, &admin),
        ] {
            let r = client.send(method, &path, body.clone()).await;
            if spec.permission.allows(role) {
                // Past the permission: whatever the request then meets
                // (a 403 of break-glass's own: no grant, a read-only one).
                assert!(
                    ![401, 404, 405].contains(&r.status)
                        && r.json()["error"]["code"] != "forbidden",
                    "{route} as {role}: {} {}",
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(r.status, 403, "{route} as {role}: {}", r.body);
                assert_eq!(r.json()["error"]["code"], "forbidden", "{route}");
            }
        }
        let r = nobody.send(method, &path, body.clone()).await;
        assert_eq!(r.status, 401, "{route} without a session: {}", r.body);
        let r = tenant_owner.send(method, &path, body.clone()).await;
        assert_eq!(r.status, 401, "{route} with a tenant cookie: {}", r.body);
        // Nowhere but the admin host.
        let r = HttpClient::tenant(&server, &slug)
            .header("cookie", &owner_cookie)
            .send(method, &path, body)
            .await;
        assert_eq!(r.status, 404, "{route} on a tenant host: {}", r.body);
    }
    // Nothing changed: every write lacked its reason.
    assert_eq!(fleet.tenant_row(&slug).await.status.as_str(), "active");
}

#[tokio::test]
async fn search_finds_a_tenant_by_slug_member_email_and_domain_and_a_comp_lifts_the_limit() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("findme", Mode::Schema).await;
    let other = fleet.tenant("notme", Mode::Database).await;
    let server = serve(&fleet, |_| {}).await;
    let (admin, operator_email) = operator_client(&fleet, &server, OperatorRole::Admin).await;
    let (owner, _, owner_email) = owner(&fleet, &server, &slug).await;
    let tenant = fleet.tenant_row(&slug).await;
    let domain = format!("tasks-{}.example.org", fleet.id);
    fleet
        .p()
        .control()
        .insert_domain(tenant.id, &domain, "token")
        .await
        .unwrap()
        .unwrap();
    let cp = fleet.admin(&fleet.control_db()).await;
    cp.execute(
        "UPDATE domains SET verified_at = now() WHERE host = $1",
        &[&domain],
    )
    .await
    .unwrap();

    let slugs = |r: &Value| -> Vec<String> {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["slug"].as_str().unwrap().to_string())
            .collect()
    };
    for q in [slug.as_str(), owner_email.as_str(), domain.as_str()] {
        let r = admin.get(&format!("/api/admin/tenants?q={q}")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(slugs(&r.json()), vec![slug.clone()], "q={q}");
    }
    // A LIKE wildcard is a character like any other.
    let r = admin.get("/api/admin/tenants?q=%25").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(slugs(&r.json()).is_empty(), "{}", r.body);
    // Pages by slug.
    let suffix = fleet.id.to_string();
    let first = admin
        .get(&format!("/api/admin/tenants?q={suffix}&limit=1"))
        .await
        .json();
    assert_eq!(slugs(&first).len(), 1, "{first}");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = admin
        .get(&format!(
            "/api/admin/tenants?q={suffix}&limit=1&cursor={cursor}"
        ))
        .await
        .json();
    let mut both = [slugs(&first), slugs(&second)].concat();
    both.sort();
    let mut expected = vec![slug.clone(), other.clone()];
    expected.sort();
    assert_eq!(both, expected);

    // Free: the fourth project is refused.
    for n in 1..=3 {
        let r = owner
            .post("/api/projects", json!({"name": format!("p{n}")}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = owner.post("/api/projects", json!({"name": "p4"})).await;
    assert_eq!(r.status, 402, "{}", r.body);

    let detail = admin.get(&format!("/api/admin/tenants/{slug}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let d = detail.json();
    assert_eq!(d["plan"], "free");
    assert_eq!(d["plan_source"], Value::Null);
    assert_eq!(d["mode"], "schema");
    assert_eq!(d["member_count"], 1);
    assert_eq!(d["open_invitations"], 0);
    assert!(d["size_bytes"].as_i64().unwrap() > 0, "{d}");
    // The owner's session has just been used.
    let last = d["last_activity"].as_str().unwrap_or_else(|| panic!("{d}"));
    let last =
        time::OffsetDateTime::parse(last, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(
        (time::OffsetDateTime::now_utc() - last).whole_minutes() < 5,
        "{d}"
    );
    let other_detail = admin
        .get(&format!("/api/admin/tenants/{other}"))
        .await
        .json();
    assert!(
        other_detail["size_bytes"].as_i64().unwrap() > 0,
        "{other_detail}"
    );
    assert_eq!(
        admin.get("/api/admin/tenants/no-such-tenant").await.status,
        404
    );

    // A comp without a reason changes nothing.
    let r = admin
        .post(
            &format!("/api/admin/tenants/{slug}/comp"),
            json!({"until": "2099-01-31", "reason": "  "}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(platform_rows(&fleet, "tenant.comp").await.is_empty());
    let r = admin
        .post(
            &format!("/api/admin/tenants/{slug}/comp"),
            json!({"until": "2099-01-31", "reason": "conference sponsor"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = admin
        .get(&format!("/api/admin/tenants/{slug}"))
        .await
        .json();
    assert_eq!(d["plan"], "pro", "{d}");
    assert_eq!(d["plan_source"], "comp", "{d}");
    assert_eq!(d["comp_reason"], "conference sponsor");
    // Every instance hears of the plan by NOTIFY.
    eventually("the comp to lift the free limit", || async {
        owner
            .post("/api/projects", json!({"name": "p4"}))
            .await
            .status
            == 201
    })
    .await;
    let rows = platform_rows(&fleet, "tenant.comp").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, format!("operator:{operator_email}"));
    assert_eq!(rows[0].1["reason"], "conference sponsor");

    // Ending it: the plan returns to free.
    let r = admin
        .send(
            "DELETE",
            &format!("/api/admin/tenants/{slug}/comp"),
            Some(json!({"reason": "sponsorship over"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = admin
        .get(&format!("/api/admin/tenants/{slug}"))
        .await
        .json();
    assert_eq!(d["plan"], "free", "{d}");
    assert_eq!(platform_rows(&fleet, "tenant.uncomp").await.len(), 1);
}

#[tokio::test]
async fn suspend_and_reinstate_each_leave_one_platform_and_one_tenant_audit_row() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("suspendme", Mode::Database).await;
    let server = serve(&fleet, |_| {}).await;
    let (admin, operator_email) = operator_client(&fleet, &server, OperatorRole::Admin).await;
    let (owner, _, _) = owner(&fleet, &server, &slug).await;
    let suspend = format!("/api/admin/tenants/{slug}/suspend");

    for body in [
        json!({}),
        json!({"reason": ""}),
        json!({"reason": "x".repeat(501)}),
    ] {
        let r = admin.post(&suspend, body).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(
            r.json()["error"]["fields"]["reason"].is_string(),
            "{}",
            r.body
        );
    }
    assert_eq!(fleet.tenant_row(&slug).await.status.as_str(), "active");
    assert_eq!(owner.get("/api/me").await.status, 200);
    assert!(platform_rows(&fleet, "tenant.suspend").await.is_empty());

    // Five at once: one suspends, four find it suspended; one audit row.
    let tries = (0..5).map(|_| admin.post(&suspend, json!({"reason": "abuse report 4411"})));
    let mut statuses: Vec<u16> = futures::future::join_all(tries)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409]);
    eventually("the tenant's host to refuse", || async {
        owner.get("/api/me").await.status == 403
    })
    .await;
    let r = owner.get("/api/me").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "tenant_suspended");
    let rows = platform_rows(&fleet, "tenant.suspend").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, format!("operator:{operator_email}"));
    assert_eq!(rows[0].1["reason"], "abuse report 4411");
    assert!(rows[0].1["ip"].is_string(), "{rows:?}");
    let rows = tenant_rows(&fleet, &slug, "tenant.suspend").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, format!("platform:{operator_email}"));
    assert_eq!(rows[0].1["reason"], "abuse report 4411");
    // Twice is a conflict, not a second row.
    let r = admin.post(&suspend, json!({"reason": "again"})).await;
    assert_eq!(r.status, 409, "{}", r.body);

    let r = admin
        .post(
            &format!("/api/admin/tenants/{slug}/reinstate"),
            json!({"reason": "resolved with the customer"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    eventually("the tenant's host to serve again", || async {
        owner.get("/api/me").await.status == 200
    })
    .await;
    assert_eq!(platform_rows(&fleet, "tenant.reinstate").await.len(), 1);
    let rows = tenant_rows(&fleet, &slug, "tenant.reinstate").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1["reason"], "resolved with the customer");

    // The platform audit log, filtered, newest first.
    let by = format!("tenant={slug}&actor=operator:{operator_email}");
    let r = admin.get(&format!("/api/admin/audit?{by}&limit=1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let page = r.json();
    assert_eq!(page["items"][0]["action"], "tenant.reinstate", "{page}");
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = admin
        .get(&format!("/api/admin/audit?{by}&limit=1&cursor={cursor}"))
        .await
        .json();
    assert_eq!(next["items"][0]["action"], "tenant.suspend", "{next}");
    let r = admin
        .get("/api/admin/audit?action=tenant.suspend")
        .await
        .json();
    assert_eq!(r["items"].as_array().unwrap().len(), 1, "{r}");
}

#[tokio::test]
async fn ending_a_tenants_sessions_logs_its_users_out() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("endsessions", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let (admin, operator_email) = operator_client(&fleet, &server, OperatorRole::Admin).await;
    let (owner, _, _) = owner(&fleet, &server, &slug).await;
    assert_eq!(owner.get("/api/me").await.status, 200);
    let path = format!("/api/admin/tenants/{slug}/end-sessions");

    let r = admin.post(&path, json!({})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(owner.get("/api/me").await.status, 200);

    let r = admin
        .post(&path, json!({"reason": "account takeover suspected"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ended"], 1);
    let r = owner.get("/api/me").await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(platform_rows(&fleet, "tenant.end_sessions").await.len(), 1);
    let rows = tenant_rows(&fleet, &slug, "tenant.end_sessions").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, format!("platform:{operator_email}"));
    assert_eq!(rows[0].1["reason"], "account takeover suspected");
}

#[tokio::test]
async fn servers_and_fleet_runs_are_shown_without_secrets() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("fleetview", Mode::Database).await;
    let server = serve(&fleet, |_| {}).await;
    let (support, _) = operator_client(&fleet, &server, OperatorRole::Support).await;
    // A request to the tenant, so this instance holds a connection there.
    let (owner, _, _) = owner(&fleet, &server, &slug).await;
    assert_eq!(owner.get("/api/projects").await.status, 200);

    let r = support.get("/api/admin/servers").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let local = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "local")
        .cloned()
        .unwrap_or_else(|| panic!("{}", r.body));
    assert_eq!(local["capacity"], 1000);
    assert_eq!(local["connection_budget"], 50);
    assert!(local["tenants"].as_i64().unwrap() >= 1, "{local}");
    assert!(
        local["connections_high_water"].as_u64().unwrap() >= 1,
        "{local}"
    );
    assert!(local.get("admin_url").is_none(), "{local}");
    assert!(
        !r.body.contains("postgres://") && !r.body.contains("password"),
        "{}",
        r.body
    );

    let control = fleet.p().control();
    let run = control
        .start_run(2, "admin-test", &json!({}))
        .await
        .unwrap();
    control.finish_run(run, "succeeded").await.unwrap();
    let r = support.get("/api/admin/runs?limit=1").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["items"][0]["id"], run);
    let r = support.get(&format!("/api/admin/runs/{run}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["run"]["state"], "succeeded");
    assert_eq!(r.json()["run"]["holder"], "admin-test");
    assert_eq!(r.json()["failures"], json!([]));
    assert_eq!(support.get("/api/admin/runs/999999").await.status, 404);
}

#[tokio::test]
async fn rotating_credentials_keeps_the_tenant_serving_and_is_audited_once() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("oprotate", Mode::Database).await;
    let server = serve(&fleet, |_| {}).await;
    let (admin, email) = operator_client(&fleet, &server, OperatorRole::Admin).await;
    let (owner, _, _) = owner(&fleet, &server, &slug).await;
    assert_eq!(owner.get("/api/projects").await.status, 200);
    let before = fleet.tenant_row(&slug).await.credential_generation;

    let rotate = format!("/api/admin/tenants/{slug}/rotate-credentials");
    let r = admin
        .post(&rotate, json!({"reason": "a laptop was lost"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["credential_generation"], before + 1);
    // New connections use the new password: the tenant keeps serving.
    eventually("the tenant to serve on its new credentials", || async {
        owner.get("/api/projects").await.status == 200
    })
    .await;
    let rows = platform_rows(&fleet, "tenant.rotate_credentials").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, format!("operator:{email}"));
    assert_eq!(rows[0].1["reason"], "a laptop was lost");
    let own = tenant_rows(&fleet, &slug, "tenant.rotate_credentials").await;
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].0, format!("platform:{email}"));
}

#[tokio::test]
async fn resending_an_invitation_mails_a_new_code_and_voids_the_old_one() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("opresend", Mode::Schema).await;
    let other = fleet.tenant("opresendother", Mode::Schema).await;
    let outbox = crate::common::scratch(&format!("outbox-{}", fleet.id));
    let dir = outbox.clone();
    let server = serve(&fleet, move |s| s.outbox = Some(dir)).await;
    let (admin, email) = operator_client(&fleet, &server, OperatorRole::Admin).await;
    let (owner, _, _) = owner(&fleet, &server, &slug).await;
    let invited = format!("invited-{}@example.com", fleet.id);
    let r = owner
        .post(
            "/api/invitations",
            json!({"email": invited, "role": "member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let first = crate::rbac::invitation_token(&outbox, &invited);

    let resend = format!("/api/admin/tenants/{slug}/invitations/{id}/resend");
    let elsewhere = format!("/api/admin/tenants/{other}/invitations/{id}/resend");
    let why = json!({"reason": "the customer lost the mail"});
    assert_eq!(admin.post(&elsewhere, why.clone()).await.status, 404);
    // (Mails are named by time: the resent one sorts last.)
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let r = admin.post(&resend, why.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let second = crate::rbac::invitation_token(&outbox, &invited);
    assert_ne!(first, second, "a new code");

    let accept = |token: String| {
        let client = HttpClient::tenant(&server, &slug);
        async move {
            client
                .post(
                    "/api/invitations/accept",
                    json!({"token": token, "password": crate::people::PASSWORD}),
                )
                .await
        }
    };
    let r = accept(first).await;
    assert!(
        r.status >= 400,
        "the old code is void: {} {}",
        r.status,
        r.body
    );
    let r = accept(second).await;
    assert!(r.status < 300, "{} {}", r.status, r.body);
    // Accepted: nothing left to resend.
    assert_eq!(admin.post(&resend, why).await.status, 404);

    let rows = platform_rows(&fleet, "invitation.resend").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, format!("operator:{email}"));
    assert_eq!(
        tenant_rows(&fleet, &slug, "invitation.resend").await.len(),
        1
    );
}

#[tokio::test]
async fn the_cli_ends_sessions_and_suspends_with_a_reason_in_both_logs() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("clisessions", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let (owner, _, _) = owner(&fleet, &server, &slug).await;
    assert_eq!(owner.get("/api/me").await.status, 200);
    let run = |args: Vec<String>| {
        let mut cmd = fleet.cli();
        cmd.arg("tenant").args(args);
        async move {
            tokio::task::spawn_blocking(move || cmd.output().expect("run bulkhead"))
                .await
                .unwrap()
        }
    };
    let out = run(vec!["end-sessions".into(), slug.clone()]).await;
    assert_eq!(out.status.code(), Some(2), "a reason is required");
    let out = run(vec![
        "end-sessions".into(),
        slug.clone(),
        "--reason".into(),
        "account takeover suspected".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ended 1 session(s)"), "{stdout}");
    eventually("the owner's session to end", || async {
        owner.get("/api/me").await.status == 401
    })
    .await;
    let out = run(vec![
        "suspend".into(),
        slug.clone(),
        "--reason".into(),
        "unpaid for 90 days".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let actor = format!("cli:{}", bulkhead::app::os_user());
    let label = format!("platform:{}", bulkhead::app::os_user());
    for (action, why) in [
        ("tenant.end_sessions", "account takeover suspected"),
        ("tenant.suspend", "unpaid for 90 days"),
    ] {
        let rows = platform_rows(&fleet, action).await;
        assert_eq!(rows.len(), 1, "{action}: {rows:?}");
        assert_eq!(
            (rows[0].0.as_str(), &rows[0].1["reason"]),
            (actor.as_str(), &json!(why))
        );
        let own = tenant_rows(&fleet, &slug, action).await;
        assert_eq!(own.len(), 1, "{action}: {own:?}");
        assert_eq!(
            (own[0].0.as_str(), &own[0].1["reason"]),
            (label.as_str(), &json!(why))
        );
    }
}
