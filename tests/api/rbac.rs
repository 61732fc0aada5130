//! Access control over HTTP: every route, as every role, against the
//! permission table as docs/api.md documents it (written out here); members
//! and the last-owner rule; plan limits; the audit log.

use crate::common::{TestFleet, http, request, serve};
use bulkhead::auth::{Role, passwords};
use bulkhead::control::{Mode, Plan};
use bulkhead::http::{Access, routes};
use bulkhead::provision::CreateRequest;
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
    control
        .add_membership(user.id, t.id, role.parse().unwrap())
        .await
        .unwrap();
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
) -> crate::common::Reply {
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

/// `who` invites `email` as a viewer, which must succeed.
async fn invite_viewer(addr: std::net::SocketAddr, slug: &str, who: &Person, email: &str) {
    let r = call(
        addr,
        slug,
        who,
        "POST",
        "/api/invitations",
        Some(json!({"email": email, "role": "viewer"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// The roles, most powerful first: the columns of [`DOCUMENTED`].
const ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];
const Y: bool = true;
const N: bool = false;

/// Who may call each route, written out from docs/api.md's route table and
/// its roles-and-permissions table (not from `Role::allows`, so a change to
/// the code's table that contradicts the documentation fails here), with
/// what an allowed call answers: method, path, [owner, admin, member,
/// viewer], status.
const DOCUMENTED: &[(&str, &str, [bool; 4], u16)] = &[
    // any caller / session
    ("GET", "/api/me", [Y, Y, Y, Y], 200),
    ("POST", "/api/logout", [Y, Y, Y, Y], 204),
    ("POST", "/api/logout-everywhere", [Y, Y, Y, Y], 200),
    ("POST", "/api/members/leave", [Y, Y, Y, Y], 204),
    // project.read
    ("GET", "/api/tenant", [Y, Y, Y, Y], 200),
    ("GET", "/api/projects", [Y, Y, Y, Y], 200),
    ("GET", "/api/projects/{id}", [Y, Y, Y, Y], 200),
    ("GET", "/api/projects/{id}/tasks", [Y, Y, Y, Y], 200),
    ("GET", "/api/tasks/{id}", [Y, Y, Y, Y], 200),
    // project.write
    ("POST", "/api/projects", [Y, Y, Y, N], 201),
    ("PATCH", "/api/projects/{id}", [Y, Y, Y, N], 200),
    ("DELETE", "/api/projects/{id}", [Y, Y, Y, N], 204),
    ("POST", "/api/projects/{id}/tasks", [Y, Y, Y, N], 201),
    ("PATCH", "/api/tasks/{id}", [Y, Y, Y, N], 200),
    ("DELETE", "/api/tasks/{id}", [Y, Y, Y, N], 204),
    // member.read
    ("GET", "/api/members", [Y, Y, Y, Y], 200),
    // member.manage
    ("PATCH", "/api/members/{id}", [Y, Y, N, N], 200),
    ("DELETE", "/api/members/{id}", [Y, Y, N, N], 204),
    // member.invite
    ("GET", "/api/invitations", [Y, Y, N, N], 200),
    ("POST", "/api/invitations", [Y, Y, N, N], 201),
    ("DELETE", "/api/invitations/{id}", [Y, Y, N, N], 204),
    // settings.read / settings.write
    ("GET", "/api/settings", [Y, Y, Y, Y], 200),
    ("PATCH", "/api/settings", [Y, Y, N, N], 200),
    // token.manage
    ("GET", "/api/tokens", [Y, Y, N, N], 200),
    ("POST", "/api/tokens", [Y, Y, N, N], 201),
    ("DELETE", "/api/tokens/{id}", [Y, Y, N, N], 204),
    // audit.read
    ("GET", "/api/audit", [Y, Y, N, N], 200),
    // billing.read
    ("GET", "/api/billing", [Y, Y, N, N], 200),
    // billing.manage (served here without a Stripe key: past the
    // permission, 503 billing_disabled)
    ("POST", "/api/billing/checkout", [Y, N, N, N], 503),
    ("POST", "/api/billing/portal", [Y, N, N, N], 503),
    // audit.read / support_access.manage
    ("GET", "/api/support-access", [Y, Y, N, N], 200),
    ("PATCH", "/api/support-access", [Y, N, N, N], 200),
    (
        "POST",
        "/api/support-access/grants/{id}/approve",
        [Y, N, N, N],
        200,
    ),
    (
        "POST",
        "/api/support-access/grants/{id}/deny",
        [Y, N, N, N],
        200,
    ),
    (
        "POST",
        "/api/support-access/grants/{id}/revoke",
        [Y, N, N, N],
        200,
    ),
];

/// The routes docs/api.md documents as public.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/internal/tls-ask"),
    ("GET", "/.well-known/bulkhead-verify/{token}"),
    ("POST", "/api/signup"),
    ("POST", "/api/login"),
    ("POST", "/api/invitations/accept"),
    ("POST", "/webhooks/stripe"),
    // admin host only (404 elsewhere); an operator session, never a
    // tenant's, where they need one (tests/api/operators.rs)
    ("POST", "/api/admin/enrol"),
    ("POST", "/api/admin/enrol/confirm"),
    ("POST", "/api/admin/login"),
    ("POST", "/api/admin/logout"),
    ("GET", "/api/admin/me"),
    // the admin API: an operator permission each, walked by
    // tests/api/admin.rs from `bulkhead::http::operator_routes()`
    ("GET", "/api/admin/tenants"),
    ("GET", "/api/admin/tenants/{slug}"),
    ("POST", "/api/admin/tenants/{slug}/suspend"),
    ("POST", "/api/admin/tenants/{slug}/reinstate"),
    ("POST", "/api/admin/tenants/{slug}/comp"),
    ("DELETE", "/api/admin/tenants/{slug}/comp"),
    ("POST", "/api/admin/tenants/{slug}/cancel-subscription"),
    ("POST", "/api/admin/tenants/{slug}/rotate-credentials"),
    (
        "POST",
        "/api/admin/tenants/{slug}/invitations/{invitation}/resend",
    ),
    ("POST", "/api/admin/tenants/{slug}/end-sessions"),
    ("GET", "/api/admin/audit"),
    ("GET", "/api/admin/servers"),
    ("GET", "/api/admin/runs"),
    ("GET", "/api/admin/runs/{run}"),
    ("POST", "/api/admin/tenants/{slug}/access"),
    ("GET", "/api/admin/access"),
    ("POST", "/api/admin/access/{grant}/approve"),
    ("POST", "/api/admin/access/{grant}/revoke"),
    ("GET", "/api/admin/tenants/{slug}/view/{*path}"),
    ("POST", "/api/admin/tenants/{slug}/view/{*path}"),
    ("PATCH", "/api/admin/tenants/{slug}/view/{*path}"),
    ("DELETE", "/api/admin/tenants/{slug}/view/{*path}"),
];

/// The routes that end the caller's own session or membership: each call
/// is made by a person of the role logged in for it alone.
const ENDS_THE_CALLER: &[&str] = &[
    "/api/logout",
    "/api/logout-everywhere",
    "/api/members/leave",
];

#[derive(Clone, Copy, Debug)]
enum Kind {
    Project,
    Task,
    Member,
    Invitation,
    Token,
    /// A break-glass grant waiting for an owner's approval.
    Grant,
}

impl Kind {
    /// What the `{id}` of `path` names.
    fn of(path: &str) -> Option<Kind> {
        path.contains("{id}").then(|| {
            if path.starts_with("/api/tasks/") {
                Kind::Task
            } else if path.starts_with("/api/members/") {
                Kind::Member
            } else if path.starts_with("/api/invitations/") {
                Kind::Invitation
            } else if path.starts_with("/api/tokens/") {
                Kind::Token
            } else if path.starts_with("/api/support-access/grants/") {
                Kind::Grant
            } else {
                assert!(path.starts_with("/api/projects/"), "{path}");
                Kind::Project
            }
        })
    }
}

/// Things for the walk's requests to name, made by the owner; every
/// response checked, so no request names a fixture that does not exist.
struct Fixtures<'a> {
    fleet: &'a TestFleet,
    addr: std::net::SocketAddr,
    slug: &'a str,
    owner: &'a Person,
    project: String,
    made: usize,
}

impl Fixtures<'_> {
    async fn owner_creates(&mut self, path: &str, body: Value) -> Value {
        let r = call(self.addr, self.slug, self.owner, "POST", path, Some(body)).await;
        assert_eq!(r.status, 201, "fixture {path}: {}", r.body);
        r.json()
    }

    /// A new one of `kind`; its id, checked to be one.
    async fn make(&mut self, kind: Kind) -> String {
        self.made += 1;
        let n = self.made;
        let id = match kind {
            Kind::Project => {
                let made = self
                    .owner_creates("/api/projects", json!({"name": format!("fixture {n}")}))
                    .await;
                made["id"]
                    .as_i64()
                    .filter(|id| *id > 0)
                    .map(|id| id.to_string())
            }
            Kind::Task => {
                let path = format!("/api/projects/{}/tasks", self.project);
                let made = self
                    .owner_creates(&path, json!({"title": format!("fixture {n}")}))
                    .await;
                made["id"]
                    .as_i64()
                    .filter(|id| *id > 0)
                    .map(|id| id.to_string())
            }
            Kind::Member => {
                let name = format!("victim{n}");
                let who = person(self.fleet, self.addr, self.slug, &name, "viewer").await;
                Some(who.id.to_string())
            }
            Kind::Invitation => {
                let email = format!("fixture{n}-{}@example.com", self.fleet.id);
                let made = self
                    .owner_creates(
                        "/api/invitations",
                        json!({"email": email, "role": "viewer"}),
                    )
                    .await;
                made["id"].as_str().map(str::to_string)
            }
            Kind::Token => {
                let body = json!({"name": format!("fixture {n}"), "role": "viewer"});
                let made = self.owner_creates("/api/tokens", body).await;
                made["id"].as_str().map(str::to_string)
            }
            Kind::Grant => {
                use bulkhead::control::{AccessMode, Email, GrantRequest, OperatorRole};
                let control = self.fleet.p().control();
                let tenant = self.fleet.tenant_row(self.slug).await.id;
                let policy = bulkhead::control::SupportPolicy::AskFirst;
                control
                    .set_support_policy(tenant, policy, "test")
                    .await
                    .unwrap();
                let email = Email::parse(&format!("op{n}-{}@example.com", self.fleet.id)).unwrap();
                let token = bulkhead::auth::sessions::hash(&bulkhead::secret::random_hex(16));
                let operator = control
                    .insert_operator(&email, OperatorRole::Support, &token)
                    .await
                    .unwrap()
                    .unwrap();
                let asked = GrantRequest {
                    tenant,
                    operator: operator.id,
                    mode: AccessMode::ReadOnly,
                    reason: "the walk needs a grant to act on",
                    minutes: 15,
                };
                let grant = control.request_grant(&asked).await.unwrap().unwrap();
                assert_eq!(grant.state, "awaiting_owner");
                Some(grant.id.to_string())
            }
        };
        let id = id.unwrap_or_else(|| panic!("{kind:?} fixture without an id"));
        if matches!(
            kind,
            Kind::Member | Kind::Invitation | Kind::Token | Kind::Grant
        ) {
            assert!(id.parse::<uuid::Uuid>().is_ok(), "{kind:?} id {id}");
        }
        id
    }
}

/// What a walked call of `method path` sends: a valid body for the writes.
fn walk_body(method: &str, path: &str, n: usize, fleet_id: &str) -> Option<Value> {
    Some(match (method, path) {
        ("POST" | "PATCH", "/api/projects" | "/api/projects/{id}") => json!({"name": "walked"}),
        ("POST", "/api/projects/{id}/tasks") | ("PATCH", "/api/tasks/{id}") => {
            json!({"title": "walked"})
        }
        ("PATCH", "/api/members/{id}") => json!({"role": "member"}),
        ("POST", "/api/invitations") => {
            json!({"email": format!("walked{n}-{fleet_id}@example.com"), "role": "viewer"})
        }
        ("PATCH", "/api/settings") => json!({"week_start": "sunday"}),
        ("PATCH", "/api/support-access") => json!({"policy": "ask_first"}),
        ("POST", "/api/tokens") => json!({"name": format!("walked {n}"), "role": "viewer"}),
        _ => return None,
    })
}

#[test]
fn the_router_declares_every_route_as_the_readme_documents_it() {
    let mut documented: Vec<(String, String)> = DOCUMENTED
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .chain(PUBLIC.iter().map(|(m, p)| (m.to_string(), p.to_string())))
        .collect();
    documented.sort();
    let mut served: Vec<(String, String)> = routes()
        .iter()
        .map(|s| (s.method.as_str().to_string(), s.path.to_string()))
        .collect();
    served.sort();
    assert_eq!(served, documented, "routes served vs documented");
    for spec in routes() {
        let (method, path) = (spec.method.as_str(), spec.path);
        let route = format!("{method} {path}");
        if PUBLIC.contains(&(method, path)) {
            assert_eq!(spec.access, Access::Public, "{route}");
            continue;
        }
        let (_, _, allowed, _) = DOCUMENTED
            .iter()
            .find(|(m, p, _, _)| (*m, *p) == (method, path))
            .unwrap();
        for (role, allowed) in Role::ALL.iter().zip(ROLES.iter().zip(allowed)) {
            assert_eq!(role.as_str(), *allowed.0);
            let declared = match spec.access {
                Access::Public => panic!("{route} is documented as needing a caller"),
                Access::Authenticated => true,
                Access::Requires(p) => role.allows(p),
            };
            assert_eq!(declared, *allowed.1, "{route} as {}", allowed.0);
        }
    }
}

#[tokio::test]
async fn every_route_as_every_role_answers_as_the_readme_documents() {
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "matrix", Plan::Pro).await;
    let server = serve(&fleet, |_| {}).await;
    let mut people = Vec::new();
    for role in ROLES {
        people.push(person(&fleet, server.addr, &slug, role, role).await);
    }
    let owner = &people[0];
    let mut fixtures = Fixtures {
        fleet: &fleet,
        addr: server.addr,
        slug: &slug,
        owner,
        project: String::new(),
        made: 0,
    };
    fixtures.project = fixtures.make(Kind::Project).await;
    // Standing fixtures for the reads and updates; each delete gets its own.
    let mut standing = Vec::new();
    for kind in [
        Kind::Project,
        Kind::Task,
        Kind::Member,
        Kind::Invitation,
        Kind::Token,
    ] {
        let id = match kind {
            Kind::Project => fixtures.project.clone(),
            _ => fixtures.make(kind).await,
        };
        standing.push((format!("{kind:?}"), id));
    }
    let standing_id = |kind: Kind| {
        let name = format!("{kind:?}");
        standing.iter().find(|(k, _)| *k == name).unwrap().1.clone()
    };

    let mut walked = 0;
    for (method, route, allowed, status) in DOCUMENTED {
        let kind = Kind::of(route);
        // Each call that ends or decides a grant needs one still waiting.
        let deletes = *method == "DELETE" || matches!(kind, Some(Kind::Grant));
        let mut target = match kind {
            Some(kind) if deletes => Some(fixtures.make(kind).await),
            Some(kind) => Some(standing_id(kind)),
            None => None,
        };
        // Least powerful first: a delete meets every refused role before
        // the first allowed one deletes the very fixture they were refused.
        for (i, role) in ROLES.iter().enumerate().rev() {
            let path = match &target {
                Some(id) => route.replace("{id}", id),
                None => route.to_string(),
            };
            let body = walk_body(method, route, walked, &fleet.id);
            let throwaway;
            let who = if ENDS_THE_CALLER.contains(route) {
                let name = format!("{role}-leaving{walked}");
                throwaway = person(&fleet, server.addr, &slug, &name, role).await;
                &throwaway
            } else {
                &people[i]
            };
            let r = call(server.addr, &slug, who, method, &path, body).await;
            let what = format!("{role} {method} {route} ({path})");
            if allowed[i] {
                assert_eq!(r.status, *status, "{what}: {}", r.body);
                if deletes {
                    target = Some(fixtures.make(kind.unwrap()).await);
                }
            } else {
                assert_eq!(r.status, 403, "{what} must be refused: {}", r.body);
                assert_eq!(r.json()["error"]["code"], "forbidden", "{what}");
            }
            walked += 1;
        }
    }
    assert_eq!(walked, DOCUMENTED.len() * ROLES.len());

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
        "member.invite",
        "invitation.revoke",
        "settings.update",
        "token.create",
        "token.revoke",
        "support_access.policy",
        "support_access.approved",
        "support_access.denied",
        "support_access.revoked",
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

/// The token of the newest message to `email` in the outbox.
pub(crate) fn invitation_token(outbox: &std::path::Path, email: &str) -> String {
    let mut mails: Vec<_> = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    mails.sort();
    let text = mails
        .iter()
        .rev()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|t| t.starts_with(&format!("To: {email}\r\n")))
        .unwrap_or_else(|| panic!("no mail to {email} in {}", outbox.display()));
    code_in(&text)
}

/// The invitation code: the mail's line of 64 hex digits.
fn code_in(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no invitation code in {text}"))
        .to_string()
}

#[tokio::test]
async fn invitations_are_single_use_expiring_bound_to_their_tenant_and_capped_by_role_and_plan() {
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "inviting", Plan::Free).await;
    let other = tenant(&fleet, "elsewhere", Plan::Free).await;
    let outbox = crate::common::scratch(&format!("outbox-{}", fleet.id));
    let dir = outbox.clone();
    let server = serve(&fleet, move |s| s.outbox = Some(dir)).await;
    let admin = person(&fleet, server.addr, &slug, "admin", "admin").await;
    let invite = |email: String, role: &'static str| {
        let admin = &admin;
        let slug = slug.clone();
        async move {
            call(
                server.addr,
                &slug,
                admin,
                "POST",
                "/api/invitations",
                Some(json!({"email": email, "role": role})),
            )
            .await
        }
    };
    let accept = |on: String, body: Value| async move {
        request(
            server.addr,
            "POST",
            &format!("{on}.localhost"),
            "/api/invitations/accept",
            &[],
            Some(body),
        )
        .await
    };

    // Above one's own role: refused. A member may not invite at all.
    assert_eq!(invite("boss@example.com".into(), "owner").await.status, 403);
    let member = person(&fleet, server.addr, &slug, "member", "member").await;
    let r = call(
        server.addr,
        &slug,
        &member,
        "POST",
        "/api/invitations",
        Some(json!({"email": "x@example.com", "role": "viewer"})),
    )
    .await;
    assert_eq!(r.status, 403);

    let newcomer = format!("new-{}@example.com", fleet.id);
    let r = invite(newcomer.to_uppercase(), "member").await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        !r.body.contains("token"),
        "the token goes by mail only: {}",
        r.body
    );
    let token = invitation_token(&outbox, &newcomer);
    let listed = call(server.addr, &slug, &admin, "GET", "/api/invitations", None).await;
    assert_eq!(listed.json()["items"][0]["email"], newcomer.as_str());

    // Another tenant's host does not know it; without a password no account.
    let r = accept(other.clone(), json!({"token": token, "password": PASSWORD})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = accept(slug.clone(), json!({"token": token})).await;
    assert_eq!(r.status, 422);
    assert!(r.json()["error"]["fields"]["password"].is_string());
    let r = accept(slug.clone(), json!({"token": token, "password": "short"})).await;
    assert_eq!(r.status, 422);
    // Accepted once, with a new account; the second time it is spent.
    let r = accept(
        slug.clone(),
        json!({"token": token, "password": PASSWORD, "display_name": "Newcomer"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["role"], "member");
    let r = accept(slug.clone(), json!({"token": token, "password": PASSWORD})).await;
    assert_eq!(r.status, 422, "single use: {}", r.body);
    let login = request(
        server.addr,
        "POST",
        &format!("{slug}.localhost"),
        "/api/login",
        &[],
        Some(json!({"email": newcomer, "password": PASSWORD})),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.json()["role"], "member");
    assert_eq!(
        request(
            server.addr,
            "POST",
            &format!("{other}.localhost"),
            "/api/login",
            &[],
            Some(json!({"email": newcomer, "password": PASSWORD}))
        )
        .await
        .status,
        401,
        "a member of one tenant only"
    );

    // Expired and revoked invitations are refused.
    let late = format!("late-{}@example.com", fleet.id);
    assert_eq!(invite(late.clone(), "viewer").await.status, 201);
    let late_token = invitation_token(&outbox, &late);
    let (cp, conn) = tokio_postgres::connect(
        fleet.args.control_url.as_ref().unwrap(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    cp.execute(
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = $1",
        &[&late],
    )
    .await
    .unwrap();
    let r = accept(
        slug.clone(),
        json!({"token": late_token, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, 422);
    let gone = format!("gone-{}@example.com", fleet.id);
    let r = invite(gone.clone(), "viewer").await;
    let id = r.json()["id"].as_str().unwrap().to_string();
    let gone_token = invitation_token(&outbox, &gone);
    assert_eq!(
        call(
            server.addr,
            &slug,
            &admin,
            "DELETE",
            &format!("/api/invitations/{id}"),
            None
        )
        .await
        .status,
        204
    );
    let r = accept(
        slug.clone(),
        json!({"token": gone_token, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, 422);

    // The free plan seats 5 (members and pending invitations): admin, member,
    // newcomer, + 2 more invitations; the next is refused naming the limit.
    for i in 0..2 {
        assert_eq!(
            invite(format!("seat{i}-{}@example.com", fleet.id), "viewer")
                .await
                .status,
            201
        );
    }
    let r = invite(format!("seat9-{}@example.com", fleet.id), "viewer").await;
    assert_eq!(r.status, 402, "{}", r.body);
    assert_eq!(r.json()["error"]["limit"]["what"], "members");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn settings_accept_known_keys_only_and_tokens_never_outrank_their_creator() {
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "settings", Plan::Free).await;
    let server = serve(&fleet, |_| {}).await;
    let admin = person(&fleet, server.addr, &slug, "admin", "admin").await;
    let viewer = person(&fleet, server.addr, &slug, "viewer", "viewer").await;

    let r = call(server.addr, &slug, &viewer, "GET", "/api/settings", None).await;
    assert_eq!(
        r.json(),
        json!({"timezone": "UTC", "week_start": "monday",
                                "default_task_status": "todo", "email_notifications": true})
    );
    // One bad key or value: 422 naming it, and nothing applied.
    for bad in [
        json!({"colour": "red"}),
        json!({"week_start": "friday", "timezone": "Europe/Paris"}),
        json!({"timezone": "../../etc"}),
        json!({"email_notifications": "yes"}),
    ] {
        let r = call(
            server.addr,
            &slug,
            &admin,
            "PATCH",
            "/api/settings",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    let r = call(server.addr, &slug, &viewer, "GET", "/api/settings", None).await;
    assert_eq!(r.json()["timezone"], "UTC", "nothing applied");
    let r = call(
        server.addr,
        &slug,
        &admin,
        "PATCH",
        "/api/settings",
        Some(json!({"timezone": "Europe/Paris", "week_start": "sunday"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["timezone"], "Europe/Paris");
    let r = call(
        server.addr,
        &slug,
        &admin,
        "PATCH",
        "/api/settings",
        Some(json!({"timezone": null})),
    )
    .await;
    assert_eq!(r.json()["timezone"], "UTC", "null resets");
    assert_eq!(r.json()["week_start"], "sunday");

    // Tokens: minted by an admin, shown once, working with their role, revocable.
    let r = call(
        server.addr,
        &slug,
        &admin,
        "POST",
        "/api/tokens",
        Some(json!({"name": "ci", "role": "owner"})),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = call(
        server.addr,
        &slug,
        &admin,
        "POST",
        "/api/tokens",
        Some(json!({"name": "ci", "role": "viewer"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let (token, id) = (
        r.json()["token"].as_str().unwrap().to_string(),
        r.json()["id"].as_str().unwrap().to_string(),
    );
    let listed = call(server.addr, &slug, &admin, "GET", "/api/tokens", None).await;
    assert!(!listed.body.contains(&token), "listed without the secret");
    let h = format!("{slug}.localhost");
    // What a bearer token gets on GET /api/projects of this tenant.
    let reads = |token: String| {
        let h = h.clone();
        async move {
            http(server.addr, "GET", &h, "/api/projects", Some(&token), None)
                .await
                .status
        }
    };
    assert_eq!(reads(token.clone()).await, 200);
    let write = http(
        server.addr,
        "POST",
        &h,
        "/api/projects",
        Some(&token),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(write.status, 403, "a viewer token reads only");
    assert_eq!(
        call(
            server.addr,
            &slug,
            &admin,
            "DELETE",
            &format!("/api/tokens/{id}"),
            None
        )
        .await
        .status,
        204
    );
    crate::common::eventually("the revoked token to stop working", || async {
        reads(token.clone()).await == 401
    })
    .await;
    assert_eq!(
        listed.json()["items"][0]["created_by"],
        admin.id.to_string(),
        "owned by its minter"
    );

    // A member's tokens leave with them.
    let r = call(
        server.addr,
        &slug,
        &admin,
        "POST",
        "/api/tokens",
        Some(json!({"name": "ci2", "role": "member"})),
    )
    .await;
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert_eq!(reads(token.clone()).await, 200);
    let owner = person(&fleet, server.addr, &slug, "owner", "owner").await;
    assert_eq!(
        call(
            server.addr,
            &slug,
            &owner,
            "DELETE",
            &format!("/api/members/{}", admin.id),
            None
        )
        .await
        .status,
        204
    );
    crate::common::eventually("the departed admin's token to stop working", || async {
        reads(token.clone()).await == 401
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn invitations_go_through_the_smtp_relay_and_fall_back_to_the_outbox() {
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "mailing", Plan::Pro).await;
    let smtp = crate::common::smtp::SmtpServer::start().await;
    let outbox = crate::common::scratch(&format!("outbox-smtp-{}", fleet.id));
    let (dir, relay) = (outbox.clone(), smtp.addr.to_string());
    let server = serve(&fleet, move |s| {
        s.outbox = Some(dir);
        s.smtp_relay = Some(relay);
        s.mail_from = Some("Initech <no-reply@example.com>".into());
    })
    .await;
    let admin = person(&fleet, server.addr, &slug, "admin", "admin").await;
    let email = format!("relayed-{}@example.com", fleet.id);
    invite_viewer(server.addr, &slug, &admin, &email).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains(&format!("To: {email}")),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("From: Initech <no-reply@example.com>"),
        "{}",
        messages[0]
    );
    let token = code_in(&messages[0]);
    let r = request(
        server.addr,
        "POST",
        &format!("{slug}.localhost"),
        "/api/invitations/accept",
        &[],
        Some(json!({"token": token, "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !outbox.join("x").exists() && std::fs::read_dir(&outbox).map_or(0, |d| d.count()) == 0,
        "relayed, not written"
    );

    // The relay gone: the message is kept in the outbox instead, not lost.
    drop(smtp);
    let email = format!("kept-{}@example.com", fleet.id);
    invite_viewer(server.addr, &slug, &admin, &email).await;
    let token = invitation_token(&outbox, &email);
    assert_eq!(token.len(), 64);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn invitations_reach_a_providers_relay_over_tls_with_a_login_and_never_send_the_password_in_the_clear()
 {
    use crate::common::smtp::{Security, SmtpServer};
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "tlsmail", Plan::Pro).await;
    let (user, password) = ("bulkhead", "s3cr t@pass/word");
    let encoded = "s3cr%20t%40pass%2Fword";
    // STARTTLS required, logging in as `user`.
    let required = |smtp: &SmtpServer| {
        format!(
            "smtp://{user}:{encoded}@127.0.0.1:{}?tls=required",
            smtp.addr.port()
        )
    };
    let scratch = crate::common::scratch(&format!("smtp-tls-{}", fleet.id));

    // Invites someone through a bulkhead served with `relay` (and the CA of
    // `smtp`, when `trust`); what the relay took, and the outbox's count.
    let mut n = 0;
    let mut invite = async |smtp: &SmtpServer, relay: String, trust: bool| {
        n += 1;
        let ca = scratch.join(format!("ca-{n}.pem"));
        std::fs::write(&ca, smtp.ca_pem.clone().unwrap_or_default()).unwrap();
        let outbox = scratch.join(format!("outbox-{n}"));
        let dir = outbox.clone();
        let server = serve(&fleet, move |s| {
            s.outbox = Some(dir);
            s.smtp_relay = Some(relay);
            s.smtp_ca_file = trust.then_some(ca);
        })
        .await;
        let admin = person(&fleet, server.addr, &slug, &format!("admin{n}"), "admin").await;
        let email = format!("tls-{n}-{}@example.com", fleet.id);
        invite_viewer(server.addr, &slug, &admin, &email).await;
        server.stop().await.unwrap();
        let kept = std::fs::read_dir(&outbox).map_or(0, |d| d.count());
        (smtp.received(), kept)
    };

    // STARTTLS, then the log-in: relayed, encrypted, as that user.
    let smtp = SmtpServer::start_with(Security::StartTls, Some((user, password))).await;
    let (got, kept) = invite(&smtp, required(&smtp), true).await;
    assert_eq!((got.len(), kept), (1, 0), "{got:?}");
    assert!(
        got[0].tls && got[0].user.as_deref() == Some(user),
        "{got:?}"
    );
    assert!(got[0].text.contains("To: tls-1-"), "{}", got[0].text);

    // TLS from the first byte.
    let smtp = SmtpServer::start_with(Security::Implicit, Some((user, password))).await;
    let url = format!("smtps://{user}:{encoded}@127.0.0.1:{}", smtp.addr.port());
    let (got, kept) = invite(&smtp, url, true).await;
    assert_eq!((got.len(), kept), (1, 0), "{got:?}");
    assert!(
        got[0].tls && got[0].user.as_deref() == Some(user),
        "{got:?}"
    );

    // A wrong password: refused, and the message is kept, not lost.
    let smtp = SmtpServer::start_with(Security::StartTls, Some((user, "another"))).await;
    let (got, kept) = invite(&smtp, required(&smtp), true).await;
    assert_eq!((got.len(), kept), (0, 1));
    assert_eq!(smtp.auth_attempts(), vec![(user.to_string(), true)]);

    // A server that offers no TLS never sees the password, nor does one
    // whose certificate no trusted CA signed: the message is kept.
    for security in [Security::Plain, Security::StartTls] {
        let smtp = SmtpServer::start_with(security, Some((user, password))).await;
        let (got, kept) = invite(&smtp, required(&smtp), false).await;
        assert_eq!((got.len(), kept), (0, 1));
        assert!(
            smtp.auth_attempts().is_empty(),
            "{:?}",
            smtp.auth_attempts()
        );
    }
}

#[tokio::test]
async fn an_invitation_code_is_checked_before_any_hash_and_codes_are_limited_per_address() {
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "codes", Plan::Pro).await;
    let outbox = crate::common::scratch(&format!("outbox-{}", fleet.id));
    let dir = outbox.clone();
    let server = serve(&fleet, move |s| s.outbox = Some(dir)).await;
    let admin = person(&fleet, server.addr, &slug, "admin", "admin").await;
    // Someone with an account already, and someone without.
    let known = format!("known-{}@example.com", fleet.id);
    fleet
        .p()
        .control()
        .insert_user(&known, "Known", &passwords::hash(PASSWORD))
        .await
        .unwrap()
        .unwrap();
    let newbie = format!("newbie-{}@example.com", fleet.id);
    invite_viewer(server.addr, &slug, &admin, &known).await;
    invite_viewer(server.addr, &slug, &admin, &newbie).await;
    let (known_code, newbie_code) = (
        invitation_token(&outbox, &known),
        invitation_token(&outbox, &newbie),
    );
    // A second instance that can hash nothing, and allows three codes tried
    // per address: whatever it answers without a 503 was answered unhashed.
    let strict = serve(&fleet, |s| {
        s.hashing = bulkhead::auth::Hashing::closed();
        s.sessions.max_invitation_attempts_per_ip = 3;
    })
    .await;
    let on = format!("{slug}.localhost");
    let accept = |token: String| {
        request(
            strict.addr,
            "POST",
            &on,
            "/api/invitations/accept",
            &[],
            Some(json!({"token": token, "password": PASSWORD})),
        )
    };
    let made_up = || bulkhead::secret::random_hex(32);
    let r = accept(made_up()).await;
    assert_eq!(
        r.status, 422,
        "a made-up code is refused unhashed: {}",
        r.body
    );
    assert!(r.json()["error"]["fields"]["token"].is_string());
    // An existing account joins without its (ignored) password being hashed;
    // a working code does not count.
    let r = accept(known_code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A new account needs a hash: no slot, 503, and that does not count.
    let r = accept(newbie_code.clone()).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    // Two more made-up codes reach the limit of three; the next is refused
    // even with a real code.
    assert_eq!(accept(made_up()).await.status, 422);
    assert_eq!(accept(made_up()).await.status, 422);
    let r = accept(newbie_code).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    strict.stop().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_invitation_made_on_the_api_host_links_to_the_tenants_own_host() {
    let fleet = TestFleet::new().await;
    let slug = tenant(&fleet, "apihost", Plan::Pro).await;
    let outbox = crate::common::scratch(&format!("outbox-{}", fleet.id));
    let dir = outbox.clone();
    let server = serve(&fleet, move |s| s.outbox = Some(dir)).await;
    let token = fleet.token(&slug, "admin").await;
    let email = format!("via-api-{}@example.com", fleet.id);
    let bearer = format!("Bearer {token}");
    let r = request(
        server.addr,
        "POST",
        &format!("api.localhost:{}", server.addr.port()),
        "/api/invitations",
        &[
            ("authorization", bearer.as_str()),
            ("x-tenant-id", slug.as_str()),
        ],
        Some(json!({"email": email, "role": "viewer"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let mail = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|t| t.starts_with(&format!("To: {email}\r\n")))
        .expect("the invitation mail");
    let own = format!(
        "://{slug}.localhost:{}/api/invitations/accept",
        server.addr.port()
    );
    assert!(mail.contains(&own), "the link must name {own}:\n{mail}");
    assert!(!mail.contains("api.localhost"), "{mail}");
    // And the link works: accepting there joins the tenant.
    let r = request(
        server.addr,
        "POST",
        &format!("{slug}.localhost"),
        "/api/invitations/accept",
        &[],
        Some(json!({"token": code_in(&mail), "password": PASSWORD})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    server.stop().await.unwrap();
}
