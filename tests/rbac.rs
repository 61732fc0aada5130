//! Access control over HTTP: every route of the router's own list, as every
//! role, against the permission table; members and the last-owner rule; plan
//! limits; the audit log.

mod common;

use bulkhead::auth::{Role, passwords};
use bulkhead::control::{Mode, Plan};
use bulkhead::http::{Access, routes};
use bulkhead::provision::CreateRequest;
use common::{TestFleet, request, serve};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

struct Person {
    id: uuid::Uuid,
    cookie: String,
    csrf: String,
}

impl Person {
    fn headers(&self) -> Vec<(&str, &str)> {
        vec![("cookie", &self.cookie), ("x-csrf-token", &self.csrf)]
    }
}

async fn tenant(fleet: &TestFleet, base: &str, plan: Plan) -> String {
    let slug = fleet.slug(base);
    fleet
        .p()
        .create(&CreateRequest {
            slug: slug.clone(),
            display_name: None,
            mode: Mode::Schema,
            plan,
            server: None,
        })
        .await
        .unwrap();
    slug
}

/// A user of `slug` with `role`, logged in.
async fn person(
    fleet: &TestFleet,
    addr: std::net::SocketAddr,
    slug: &str,
    name: &str,
    role: &str,
) -> Person {
    let control = fleet.p().control();
    let email = format!("{name}-{}@example.com", fleet.id);
    let user = control
        .insert_user(&email, name, &passwords::hash(PASSWORD))
        .await
        .unwrap()
        .unwrap();
    let t = fleet.tenant_row(slug).await;
    control.add_membership(user.id, t.id, role).await.unwrap();
    let r = request(
        addr,
        "POST",
        &format!("{slug}.localhost"),
        "/api/login",
        &[],
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    Person {
        id: user.id,
        cookie: r.headers["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string(),
        csrf: r.json()["csrf_token"].as_str().unwrap().to_string(),
    }
}

async fn call(
    addr: std::net::SocketAddr,
    slug: &str,
    who: &Person,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> common::Reply {
    request(
        addr,
        method,
        &format!("{slug}.localhost"),
        path,
        &who.headers(),
        body,
    )
    .await
}

#[tokio::test]
async fn every_route_as_every_role_follows_the_permission_table() {
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "matrix", Plan::Pro).await;
    let server = serve(&fleet, |_| {}).await;
    let mut people = Vec::new();
    for role in Role::ALL {
        people.push((
            role,
            person(&fleet, server.addr, &slug, role.as_str(), role.as_str()).await,
        ));
    }
    let owner = &people[0].1;
    let project = call(
        server.addr,
        &slug,
        owner,
        "POST",
        "/api/projects",
        Some(json!({"name": "fixture"})),
    )
    .await;
    let project_id = project.json()["id"].to_string();
    let task = call(
        server.addr,
        &slug,
        owner,
        "POST",
        &format!("/api/projects/{project_id}/tasks"),
        Some(json!({"title": "fixture"})),
    )
    .await;
    let task_id = task.json()["id"].to_string();
    let victim = person(&fleet, server.addr, &slug, "victim", "viewer").await;

    let mut specs = routes();
    assert!(specs.len() >= 20, "the router lists its routes");
    // Deletes last, the project's last of all: each needs its fixture alive.
    specs.sort_by_key(|s| (s.method == "DELETE", s.path.starts_with("/api/projects")));
    let mut walked = 0;
    for spec in &specs {
        let path = if spec.path.starts_with("/api/tasks/") {
            spec.path.replace("{id}", &task_id)
        } else if spec.path.starts_with("/api/members/") {
            spec.path.replace("{id}", &victim.id.to_string())
        } else {
            spec.path.replace("{id}", &project_id)
        };
        let body = if path.contains("/tasks") {
            json!({"title": "walked"})
        } else if path.contains("/members") {
            json!({"role": "viewer"})
        } else {
            json!({"name": "walked"})
        };
        let permission = match spec.access {
            Access::Public => continue,
            // Ending one's own session or membership is everyone's right;
            // the people tests cover those. Reads must work for all.
            Access::Authenticated if spec.method != "GET" => continue,
            Access::Authenticated => None,
            Access::Requires(p) => Some(p),
        };
        // Least powerful first, so a route that destroys its fixture (a
        // delete) meets every denied role before the first allowed one.
        for (role, who) in people.iter().rev() {
            let r = call(
                server.addr,
                &slug,
                who,
                spec.method.as_str(),
                &path,
                Some(body.clone()),
            )
            .await;
            let allowed = permission.is_none_or(|p| role.allows(p));
            if allowed {
                assert!(
                    ![401, 403].contains(&r.status),
                    "{role:?} {} {}: {} {}",
                    spec.method,
                    spec.path,
                    r.status,
                    r.body
                );
            } else {
                assert_eq!(
                    r.status, 403,
                    "{role:?} {} {} must be refused: {}",
                    spec.method, spec.path, r.body
                );
                assert_eq!(r.json()["error"]["code"], "forbidden");
            }
            walked += 1;
        }
    }
    assert!(walked >= 60, "{walked}");

    // Every write left its row in the tenant's own audit log, with who and from where.
    let audit = call(
        server.addr,
        &slug,
        owner,
        "GET",
        "/api/audit?limit=100",
        None,
    )
    .await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let entries = audit.json()["items"].as_array().unwrap().clone();
    for action in [
        "project.create",
        "project.update",
        "project.delete",
        "task.create",
        "task.update",
        "task.delete",
        "member.role",
        "member.remove",
    ] {
        let e = entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no audit row for {action}: {entries:?}"));
        assert!(
            e["actor_label"].as_str().unwrap().starts_with("user:"),
            "{e}"
        );
        assert_eq!(e["client_ip"], "127.0.0.1", "{e}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_last_owner_stays_and_nobody_grants_above_their_own_role() {
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "owners", Plan::Free).await;
    let server = serve(&fleet, |_| {}).await;
    let owner = person(&fleet, server.addr, &slug, "owner", "owner").await;
    let admin = person(&fleet, server.addr, &slug, "admin", "admin").await;
    let member = person(&fleet, server.addr, &slug, "member", "member").await;
    let me = |p: &Person| format!("/api/members/{}", p.id);

    // The only owner can neither be demoted, removed, nor leave.
    for (method, path, body) in [
        ("PATCH", me(&owner), Some(json!({"role": "admin"}))),
        ("DELETE", me(&owner), None),
        ("POST", "/api/members/leave".to_string(), None),
    ] {
        let r = call(server.addr, &slug, &owner, method, &path, body).await;
        assert_eq!(r.status, 422, "{method} {path}: {}", r.body);
        assert!(r.body.contains("last owner"), "{}", r.body);
    }
    // An admin may not make owners, nor touch one.
    let r = call(
        server.addr,
        &slug,
        &admin,
        "PATCH",
        &me(&member),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = call(server.addr, &slug, &admin, "DELETE", &me(&owner), None).await;
    assert_eq!(r.status, 403);
    // But manages members: member -> viewer.
    let r = call(
        server.addr,
        &slug,
        &admin,
        "PATCH",
        &me(&member),
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["role"], "viewer");
    // With a second owner, the first may step down; the list shows it.
    let r = call(
        server.addr,
        &slug,
        &owner,
        "PATCH",
        &me(&admin),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        server.addr,
        &slug,
        &owner,
        "PATCH",
        &me(&owner),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = call(server.addr, &slug, &admin, "GET", "/api/members", None).await;
    let roles: Vec<(String, String)> = list.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["display_name"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        roles.contains(&("owner".into(), "member".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&("admin".into(), "owner".into())),
        "{roles:?}"
    );
    // A removed member's session ends at once.
    let r = call(server.addr, &slug, &admin, "DELETE", &me(&member), None).await;
    assert_eq!(r.status, 204);
    let r = call(server.addr, &slug, &member, "GET", "/api/me", None).await;
    assert_eq!(r.status, 401);
    // Unknown and malformed member ids: 404.
    for path in [
        "/api/members/not-a-uuid",
        &format!("/api/members/{}", uuid::Uuid::new_v4()),
    ] {
        let r = call(server.addr, &slug, &admin, "DELETE", path, None).await;
        assert_eq!(r.status, 404, "{path}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_free_plan_stops_at_three_projects_and_pro_does_not() {
    let fleet = TestFleet::new().await;
    let free = tenant(&fleet, "free", Plan::Free).await;
    let pro = tenant(&fleet, "pro", Plan::Pro).await;
    let server = serve(&fleet, |_| {}).await;
    for (slug, limited) in [(&free, true), (&pro, false)] {
        let who = person(&fleet, server.addr, slug, &format!("m-{slug}"), "member").await;
        for i in 0..3 {
            let r = call(
                server.addr,
                slug,
                &who,
                "POST",
                "/api/projects",
                Some(json!({"name": format!("p{i}")})),
            )
            .await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
        let fourth = call(
            server.addr,
            slug,
            &who,
            "POST",
            "/api/projects",
            Some(json!({"name": "p4"})),
        )
        .await;
        if limited {
            assert_eq!(fourth.status, 402, "{}", fourth.body);
            let e = &fourth.json()["error"];
            assert_eq!(e["code"], "plan_limit");
            assert_eq!(e["limit"]["what"], "projects");
            assert_eq!(e["limit"]["allowed"], 3);
            assert!(e["message"].as_str().unwrap().contains("upgrade"), "{e}");
        } else {
            assert_eq!(fourth.status, 201, "{}", fourth.body);
        }
    }
    server.stop().await.unwrap();
}
