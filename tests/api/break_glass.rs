//! Break-glass against a real server: an operator sees a tenant's data only
//! under a live grant, only through the tenant's own read API, over a
//! connection PostgreSQL keeps read-only; every grant and every request
//! under it is in the tenant's own audit log with the reason; the tenant's
//! rule (`ask_first`, `never`) holds; read-write access waits for a second
//! admin; an expired or revoked grant refuses the next request at once.

use axum::http::StatusCode;
use bulkhead::auth::Permission;
use bulkhead::control::{Mode, OperatorRole};
use bulkhead::http::Access;
use bulkhead::http::extract::Db;
use serde_json::{Value, json};

use crate::admin::{operator_client, owner};
use crate::common::{HttpClient, TestFleet, serve};

const REASON: &str = "ticket 4711: the customer says a project vanished";

fn view(slug: &str, path: &str) -> String {
    format!("/api/admin/tenants/{slug}/view/{path}")
}

/// Asks for access: the reply.
async fn ask(op: &HttpClient, slug: &str, body: Value) -> crate::common::Reply {
    op.post(&format!("/api/admin/tenants/{slug}/access"), body)
        .await
}

/// A live read-only grant for `op` on `slug`: its id.
async fn grant(op: &HttpClient, slug: &str) -> String {
    let r = ask(op, slug, json!({"reason": REASON})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["state"], "live", "{}", r.body);
    r.json()["id"].as_str().unwrap().to_string()
}

/// The tenant's own audit rows as its owner reads them (`GET /api/audit`).
async fn tenant_audit(owner: &HttpClient) -> Vec<Value> {
    let r = owner.get("/api/audit?limit=100").await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"].as_array().unwrap().clone()
}

fn of<'a>(rows: &'a [Value], action: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["action"] == action).collect()
}

fn refused(r: &crate::common::Reply, code: &str) {
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], code, "{}", r.body);
}

#[tokio::test]
async fn a_read_only_grant_reads_the_tenant_api_and_the_tenant_sees_every_request() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("glass", Mode::Database).await;
    let other = fleet.tenant("glassother", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let (support, email) = operator_client(&fleet, &server, OperatorRole::Support).await;
    let (owner, _, _) = owner(&fleet, &server, &slug).await;
    let r = owner
        .post("/api/projects", json!({"name": "Secret plans"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let project = r.json()["id"].as_i64().unwrap();

    // No grant: nothing, and nothing written to the tenant.
    refused(
        &support.get(&view(&slug, "projects")).await,
        "no_access_grant",
    );
    assert!(of(&tenant_audit(&owner).await, "support_access.used").is_empty());

    // What a request must say.
    for (body, field) in [
        (json!({"reason": "too short"}), "reason"),
        (json!({"reason": REASON, "minutes": 61}), "minutes"),
        (json!({"reason": REASON, "minutes": 0}), "minutes"),
        (json!({"reason": REASON, "mode": "root"}), "mode"),
    ] {
        let r = ask(&support, &slug, body).await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(r.json()["error"]["fields"][field].is_string(), "{}", r.body);
    }
    // Support asks for read-only access only.
    let r = ask(
        &support,
        &slug,
        json!({"reason": REASON, "mode": "read_write"}),
    )
    .await;
    refused(&r, "forbidden");

    let r = ask(&support, &slug, json!({"reason": REASON})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let g = r.json();
    assert_eq!(g["state"], "live");
    assert_eq!(g["mode"], "read_only");
    assert_eq!(g["minutes"], 15, "15 minutes unless asked otherwise");
    let id = g["id"].as_str().unwrap().to_string();

    // The tenant's read API, as the tenant's own handlers serve it.
    let r = support.get(&view(&slug, "projects")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["items"][0]["name"], "Secret plans");
    let header = r.headers["bulkhead-access-grant"].to_str().unwrap();
    assert!(
        header.starts_with(&id) && header.contains("mode=read_only"),
        "{header}"
    );
    let r = support
        .get(&view(&slug, &format!("projects/{project}/tasks?limit=5")))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = support.get(&view(&slug, "members")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // What a viewer may not read, the grant may not either.
    for path in ["audit", "tokens", "invitations", "billing"] {
        refused(&support.get(&view(&slug, path)).await, "forbidden");
    }
    // Nothing outside the routes that require a permission.
    for path in ["me", "logout", "nothing/here"] {
        let r = support.get(&view(&slug, path)).await;
        assert!(
            [404, 405].contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    // No write.
    let r = support
        .post(&view(&slug, "projects"), json!({"name": "planted"}))
        .await;
    refused(&r, "read_only_grant");
    let r = support
        .send("DELETE", &view(&slug, &format!("projects/{project}")), None)
        .await;
    refused(&r, "read_only_grant");
    // A grant is for its tenant only.
    refused(
        &support.get(&view(&other, "projects")).await,
        "no_access_grant",
    );

    // The tenant's owners see the grant and every request, with the reason.
    let rows = tenant_audit(&owner).await;
    let asked = of(&rows, "support_access.requested");
    assert_eq!(asked.len(), 1, "{rows:?}");
    assert_eq!(asked[0]["actor_label"], format!("platform:{email}"));
    assert_eq!(asked[0]["detail"]["reason"], REASON);
    // Asked for by area: the vendor's rows only.
    let r = owner
        .get("/api/audit?action=support_access&limit=100")
        .await;
    let area = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(area.len(), 11, "{area:?}");
    assert!(
        area.iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("support_access."))
    );
    let used = of(&rows, "support_access.used");
    // projects, tasks, members, the four refused by role and the three
    // that are no route of the view: each is a request made under it.
    assert_eq!(used.len(), 10, "{used:?}");
    for row in &used {
        assert_eq!(row["actor_label"], format!("platform:{email}"));
        assert_eq!(row["detail"]["reason"], REASON);
        assert_eq!(row["detail"]["grant"], id.as_str());
    }
    assert!(used.iter().any(|r| r["detail"]["path"] == "/api/projects"));
    assert!(
        !rows.iter().any(|r| r["action"] == "project.create"
            && r["actor_label"].as_str().unwrap().starts_with("platform:")),
        "nothing was written"
    );
    let r = owner.get("/api/projects").await;
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    // And the platform log has the same, by the operator.
    let platform = fleet.p().control().audit_entries(None, 200).await.unwrap();
    let operator = format!("operator:{email}");
    let n = |action: &str| {
        platform
            .iter()
            .filter(|e| e.action == action && e.actor == operator)
            .count()
    };
    assert_eq!((n("access.requested"), n("access.used")), (1, 10));

    // Expired: refused at once, by the control plane's clock.
    fleet
        .control_sql(
            "UPDATE access_grants SET ends_at = now() + interval '1 second' WHERE id::text = $1",
            &id,
        )
        .await;
    assert_eq!(support.get(&view(&slug, "projects")).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    refused(
        &support.get(&view(&slug, "projects")).await,
        "no_access_grant",
    );

    // Revoked by the owner: refused at once.
    let id = grant(&support, &slug).await;
    assert_eq!(support.get(&view(&slug, "projects")).await.status, 200);
    let r = owner
        .post(
            &format!("/api/support-access/grants/{id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "revoked");
    refused(
        &support.get(&view(&slug, "projects")).await,
        "no_access_grant",
    );
    // The owner's list says so.
    let r = owner.get("/api/support-access").await;
    assert_eq!(r.json()["policy"], "allowed");
    let states: Vec<String> = r.json()["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(r.json()["grants"].as_array().unwrap().len(), 2);
    assert!(
        states.contains(&"revoked".to_string()) && states.contains(&"expired".to_string()),
        "{states:?}"
    );

    // The operator ends their own grant too.
    let id = grant(&support, &slug).await;
    let r = support
        .post(&format!("/api/admin/access/{id}/revoke"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    refused(
        &support.get(&view(&slug, "projects")).await,
        "no_access_grant",
    );
    let r = support
        .post(&format!("/api/admin/access/{id}/revoke"), json!({}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
}

/// A team's handler that writes on a read permission (a bug a team could
/// ship): inserts a project, after a transaction of its own has committed.
async fn sneaky(Db(mut db): Db) -> Result<&'static str, (StatusCode, axum::Json<Value>)> {
    let fail = |e: tokio_postgres::Error| {
        let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"sqlstate": code})),
        )
    };
    let tx = db.transaction().await.map_err(fail)?;
    tx.execute("SELECT 1", &[]).await.map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    db.execute("INSERT INTO projects (name) VALUES ('sneaked')", &[])
        .await
        .map_err(fail)?;
    Ok("written")
}

#[tokio::test]
async fn postgresql_refuses_any_write_under_a_read_only_grant() {
    let product = bulkhead::reference::builder().routes(|routes| {
        routes.get(
            "/api/sneaky",
            Access::Requires(Permission::PROJECT_READ),
            sneaky,
        )
    });
    let fleet = TestFleet::for_product(product).await;
    let slug = fleet.tenant("sneak", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let (support, _) = operator_client(&fleet, &server, OperatorRole::Support).await;
    let (owner, _, _) = owner(&fleet, &server, &slug).await;
    // The route writes for the tenant's own callers…
    let r = owner.get("/api/sneaky").await;
    assert_eq!((r.status, r.body.as_str()), (200, "written"));
    // …but under a read-only grant PostgreSQL refuses the write
    // (25006: read_only_sql_transaction), after the handler's own COMMIT.
    grant(&support, &slug).await;
    let r = support.get(&view(&slug, "sneaky")).await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.json()["sqlstate"], "25006", "{}", r.body);
    let r = owner.get("/api/projects").await;
    let names: Vec<String> = r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["sneaked"], "the owner's own write only");
    // The connection went back clean: the owner writes on it again.
    let r = owner.get("/api/sneaky").await;
    assert_eq!((r.status, r.body.as_str()), (200, "written"));
}

#[tokio::test]
async fn ask_first_waits_for_an_owner_and_never_refuses_every_grant() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("askfirst", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let (support, email) = operator_client(&fleet, &server, OperatorRole::Support).await;
    let (owner, _, _) = owner(&fleet, &server, &slug).await;

    let r = owner
        .patch("/api/support-access", json!({"policy": "sometimes"}))
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = owner
        .patch("/api/support-access", json!({"policy": "ask_first"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let r = ask(&support, &slug, json!({"reason": REASON, "minutes": 5})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["state"], "awaiting_owner");
    let id = r.json()["id"].as_str().unwrap().to_string();
    refused(
        &support.get(&view(&slug, "projects")).await,
        "no_access_grant",
    );
    // The owner sees it waiting, approves it: it begins now, for 5 minutes.
    let r = owner.get("/api/support-access").await;
    assert_eq!(r.json()["policy"], "ask_first");
    assert_eq!(r.json()["grants"][0]["state"], "awaiting_owner");
    assert_eq!(r.json()["grants"][0]["operator"], email.as_str());
    let r = owner
        .post(
            &format!("/api/support-access/grants/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "live");
    assert!(
        r.json()["owner_approved_by"]
            .as_str()
            .unwrap()
            .starts_with("user:owner-")
    );
    assert_eq!(support.get(&view(&slug, "projects")).await.status, 200);
    // Approved once only.
    let r = owner
        .post(
            &format!("/api/support-access/grants/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);

    // Denied: never begins.
    let r = ask(&support, &slug, json!({"reason": REASON})).await;
    let denied = r.json()["id"].as_str().unwrap().to_string();
    let r = owner
        .post(
            &format!("/api/support-access/grants/{denied}/deny"),
            json!({}),
        )
        .await;
    assert_eq!(r.json()["state"], "denied");
    let r = owner
        .post(
            &format!("/api/support-access/grants/{denied}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    // Another tenant's grant id is nothing here.
    let unknown = uuid::Uuid::new_v4();
    let r = owner
        .post(
            &format!("/api/support-access/grants/{unknown}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // never: refused, and the tenant is told someone asked.
    let r = owner
        .patch("/api/support-access", json!({"policy": "never"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = ask(&support, &slug, json!({"reason": REASON})).await;
    refused(&r, "support_access_never");
    let rows = tenant_audit(&owner).await;
    let refusals = of(&rows, "support_access.refused");
    assert_eq!(refusals.len(), 1, "{rows:?}");
    assert_eq!(refusals[0]["detail"]["reason"], REASON);
    assert_eq!(of(&rows, "support_access.policy").len(), 2);
    assert_eq!(of(&rows, "support_access.approved").len(), 1);
    assert_eq!(of(&rows, "support_access.denied").len(), 1);
    // Three asked for, two granted rows: the refusal made none.
    let r = owner.get("/api/support-access").await;
    assert_eq!(r.json()["grants"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn read_write_access_waits_for_a_second_admin_and_writes_as_the_operator() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("rwglass", Mode::Database).await;
    let server = serve(&fleet, |_| {}).await;
    let (first, email) = operator_client(&fleet, &server, OperatorRole::Admin).await;
    let (support, _) = operator_client(&fleet, &server, OperatorRole::Support).await;
    let second = {
        // A second admin: operator_client names operators by role.
        let admin = HttpClient::new(server.addr, crate::operators::ADMIN);
        let email = format!("second-{}@example.com", fleet.id);
        let token = crate::operators::operator(&fleet, &email, OperatorRole::Admin).await;
        let (uri, _) = crate::operators::enrol(&admin, &token).await;
        let r = crate::operators::login(
            &admin,
            &email,
            crate::operators::PASSWORD,
            json!({"totp": crate::operators::code(&uri, 1)}),
        )
        .await;
        let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
        admin
            .header("cookie", &crate::operators::cookie(&r))
            .header("x-csrf-token", &csrf)
    };
    let (owner, _, _) = owner(&fleet, &server, &slug).await;

    let r = ask(
        &first,
        &slug,
        json!({"reason": REASON, "mode": "read_write"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["state"], "awaiting_operator");
    let id = r.json()["id"].as_str().unwrap().to_string();
    refused(
        &first.get(&view(&slug, "projects")).await,
        "no_access_grant",
    );
    // Not one's own approval, not support's.
    let approve = format!("/api/admin/access/{id}/approve");
    assert_eq!(first.post(&approve, json!({})).await.status, 409);
    refused(&support.post(&approve, json!({})).await, "forbidden");
    let r = second.post(&approve, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "live");
    assert_eq!(
        r.json()["operator_approved_by"],
        format!("second-{}@example.com", fleet.id)
    );

    // Writes, as the operator, in the tenant's audit log.
    let r = first
        .post(
            &view(&slug, "projects"),
            json!({"name": "fixed by support"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rows = tenant_audit(&owner).await;
    let created = of(&rows, "project.create");
    assert_eq!(created.len(), 1, "{rows:?}");
    assert_eq!(created[0]["actor_label"], format!("platform:{email}"));
    assert_eq!(of(&rows, "support_access.approved").len(), 1);
    let used = of(&rows, "support_access.used");
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["detail"]["method"], "POST");
    // Still only what a member may do.
    refused(
        &first
            .post(
                &view(&slug, "tokens"),
                json!({"name": "backdoor", "role": "viewer"}),
            )
            .await,
        "forbidden",
    );
    // The admin list shows it, with both operators.
    let r = second
        .get(&format!("/api/admin/access?tenant={slug}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["items"][0]["id"], id.as_str());
    assert_eq!(r.json()["items"][0]["operator"], email.as_str());
}
