//! The pages over real HTTP (a browser's requests, without the browser):
//! log-in, the projects page and its form, CSRF as a form field, the
//! security headers, hostile names rendered inert, roles hiding and
//! refusing, another tenant's cookie, error pages, the assets.

use std::sync::OnceLock;

use bulkhead::control::Mode;

use crate::common::{TestFleet, serve};
use crate::people::{PASSWORD, member};

/// What a browser gets back (no redirect followed).
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The value of the form's hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_string()
    }
}

/// `method path` on `host`, with `cookie` and a url-encoded `form`.
async fn browse(
    addr: std::net::SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> Page {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    });
    let mut req = client
        .request(method.parse().unwrap(), format!("http://{addr}{path}"))
        .header("host", host)
        .header("accept", "text/html");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    if let Some(form) = form {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
    }
    let res = req.send().await.expect("send");
    Page {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

/// Logs in through the form: the cookie (`bh_session=…`).
async fn log_in(addr: std::net::SocketAddr, host: &str, email: &str) -> String {
    let r = browse(
        addr,
        "POST",
        host,
        "/login",
        None,
        Some(&[("email", email), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), "/projects");
    r.header("set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

fn secured(p: &Page) {
    let csp = p.header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(p.header("x-content-type-options"), "nosniff");
    assert_eq!(p.header("referrer-policy"), "same-origin");
    assert!(
        p.header("content-type").starts_with("text/html"),
        "{:?}",
        p.headers
    );
    // No inline script anywhere: every <script> has a src of this origin.
    for tag in p.body.split("<script").skip(1) {
        let tag = tag.split('>').next().unwrap();
        assert!(tag.contains("src=\"/assets/"), "<script{tag}>");
    }
}

#[tokio::test]
async fn a_person_logs_in_and_creates_projects_through_the_pages() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("pageacme", Mode::Database).await;
    let other = fleet.tenant("pageglobex", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let addr = server.addr;
    let host = format!("{slug}.localhost");
    let email = format!("owner-{slug}@example.com");
    member(&fleet, &slug, &email, "owner").await;

    // Not logged in: the log-in page.
    let r = browse(addr, "GET", &host, "/projects", None, None).await;
    assert_eq!((r.status, r.header("location")), (303, "/login"));
    let r = browse(addr, "GET", &host, "/login", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secured(&r);
    assert!(r.body.contains("Log in to pageacme"), "{}", r.body);
    let r = browse(
        addr,
        "POST",
        &host,
        "/login",
        None,
        Some(&[("email", email.as_str()), ("password", "wrong password!!")]),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Wrong e-mail or password."), "{}", r.body);
    assert!(
        r.body.contains(&format!("value=\"{email}\"")),
        "the e-mail is kept"
    );

    let cookie = log_in(addr, &host, &email).await;
    let r = browse(addr, "GET", &host, "/projects", Some(&cookie), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secured(&r);
    assert!(r.body.contains("No projects yet."), "{}", r.body);
    assert!(
        r.body
            .contains("The free plan allows 3 projects; this organisation has 0.")
    );
    let csrf = r.csrf();

    // A form post without its token, or with another's: refused, as a page.
    for token in ["", "forged"] {
        let r = browse(
            addr,
            "POST",
            &host,
            "/projects",
            Some(&cookie),
            Some(&[("csrf", token), ("name", "no token")]),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.header("content-type").starts_with("text/html"));
        secured(&r);
    }
    // Hostile names come back inert.
    for name in [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
    ] {
        let r = browse(
            addr,
            "POST",
            &host,
            "/projects",
            Some(&cookie),
            Some(&[("csrf", csrf.as_str()), ("name", name)]),
        )
        .await;
        assert_eq!(
            (r.status, r.header("location")),
            (303, "/projects"),
            "{}",
            r.body
        );
    }
    let r = browse(addr, "GET", &host, "/projects", Some(&cookie), None).await;
    // As text (askama escapes to numeric references).
    assert!(
        r.body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;</a></h2>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("&#34;&#62;&#60;img src=x onerror=alert(1)&#62;</a></h2>"),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains("<img") && !r.body.contains("<script>alert"),
        "{}",
        r.body
    );
    secured(&r);

    // The plan's limit: shown, the form disabled, a forced post refused.
    let r = browse(
        addr,
        "POST",
        &host,
        "/projects",
        Some(&cookie),
        Some(&[("csrf", csrf.as_str()), ("name", "third")]),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = browse(addr, "GET", &host, "/projects", Some(&cookie), None).await;
    assert!(r.body.contains("this organisation has 3."), "{}", r.body);
    assert!(
        r.body.contains("<button type=\"submit\" disabled>"),
        "{}",
        r.body
    );
    let r = browse(
        addr,
        "POST",
        &host,
        "/projects",
        Some(&cookie),
        Some(&[("csrf", csrf.as_str()), ("name", "fourth")]),
    )
    .await;
    assert_eq!(r.status, 402, "{}", r.body);
    assert!(r.body.contains("upgrade to pro"), "{}", r.body);

    // A viewer sees no form, and a forged post is refused.
    let viewer = format!("viewer-{slug}@example.com");
    member(&fleet, &slug, &viewer, "viewer").await;
    let vcookie = log_in(addr, &host, &viewer).await;
    let r = browse(addr, "GET", &host, "/projects", Some(&vcookie), None).await;
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("Create project"), "{}", r.body);
    let r = browse(addr, "GET", &host, "/login", Some(&vcookie), None).await;
    assert_eq!(r.status, 200);
    let vcsrf = {
        // The log-out form carries the viewer's token.
        let r = browse(addr, "GET", &host, "/projects", Some(&vcookie), None).await;
        r.csrf()
    };
    let r = browse(
        addr,
        "POST",
        &host,
        "/projects",
        Some(&vcookie),
        Some(&[("csrf", vcsrf.as_str()), ("name", "by a viewer")]),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Not allowed"), "{}", r.body);

    // Another tenant's host: acme's cookie is no session there.
    let ghost = format!("{other}.localhost");
    let r = browse(addr, "GET", &ghost, "/projects", Some(&cookie), None).await;
    assert_eq!((r.status, r.header("location")), (303, "/login"));
    let r = browse(addr, "GET", &ghost, "/login", Some(&cookie), None).await;
    assert!(
        !r.body.contains(&slug) && !r.body.contains("alert(1)"),
        "{}",
        r.body
    );
    // A host nobody has: the same 404 page as any unknown thing.
    let r = browse(addr, "GET", "nobody.localhost", "/login", None, None).await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(r.body.contains("Not found"), "{}", r.body);
    secured(&r);

    // Log-out ends the session.
    let r = browse(
        addr,
        "POST",
        &host,
        "/logout",
        Some(&cookie),
        Some(&[("csrf", csrf.as_str())]),
    )
    .await;
    assert_eq!((r.status, r.header("location")), (303, "/login"));
    let r = browse(addr, "GET", &host, "/projects", Some(&cookie), None).await;
    assert_eq!((r.status, r.header("location")), (303, "/login"));
}

#[tokio::test]
async fn assets_are_served_by_content_hash_and_a_page_weighs_under_60_kb() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("pageassets", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let host = format!("{slug}.localhost");
    // The heaviest page a writer sees often: a board of 30 tasks.
    let email = format!("owner-{slug}@example.com");
    member(&fleet, &slug, &email, "owner").await;
    fleet
        .admin_of(&slug)
        .await
        .batch_execute(
            "INSERT INTO projects (name) VALUES ('Weighed');
             INSERT INTO tasks (project_id, title, status)
             SELECT 1, 'A task of a typical length, number ' || i, (ARRAY['todo', 'doing', 'done'])[1 + i % 3]
               FROM generate_series(1, 30) i",
        )
        .await
        .unwrap();
    let cookie = log_in(server.addr, &host, &email).await;
    let page = browse(
        server.addr,
        "GET",
        &host,
        "/projects/1",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(page.body.matches("</a></h3>").count(), 30);
    let urls = bulkhead::web::assets::urls();
    assert!(page.body.contains(&urls.style) && page.body.contains(&urls.htmx));
    let mut weight = page.body.len();
    for url in [&urls.style, &urls.htmx] {
        let r = reqwest::Client::new()
            .get(format!("http://{}{url}", server.addr))
            .header("host", &host)
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
        if url.ends_with(".js") {
            assert_eq!(h["content-encoding"], "gzip");
            assert!(
                h["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/javascript")
            );
        } else {
            assert!(h["content-type"].to_str().unwrap().starts_with("text/css"));
        }
        weight += r.bytes().await.unwrap().len();
    }
    assert!(weight < 60 * 1024, "the board weighs {weight} bytes");
    // Another build's name is nothing.
    let r = browse(
        server.addr,
        "GET",
        &host,
        "/assets/htmx.0000000000.js",
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn sign_up_by_form_waits_for_the_workspace_then_points_at_its_log_in_page() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |_| {}).await;
    let addr = server.addr;
    let slug = format!("pagesign{}", fleet.id);
    let email = format!("founder-{slug}@example.com");

    let r = browse(addr, "GET", "localhost", "/", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secured(&r);
    assert!(r.body.contains("action=\"/signup\""), "{}", r.body);
    let form = |slug: &str, password: &str| {
        vec![
            ("organisation".to_string(), "Initech".to_string()),
            ("slug".to_string(), slug.to_string()),
            ("email".to_string(), email.clone()),
            ("password".to_string(), password.to_string()),
        ]
    };
    let send = |fields: Vec<(String, String)>| async move {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        browse(addr, "POST", "localhost", "/signup", None, Some(&pairs)).await
    };
    // Each bad field says so; nothing is made.
    let r = send(form("-bad-", "short")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"slug-error\"") && r.body.contains("id=\"password-error\""));
    assert!(r.body.contains("value=\"Initech\""));
    assert!(
        fleet
            .p()
            .control()
            .user_by_email(&email)
            .await
            .unwrap()
            .is_none()
    );
    // Not on a tenant's host.
    let other = fleet.tenant("pagesignother", Mode::Schema).await;
    let pairs = [("slug", "x")];
    let r = browse(
        addr,
        "POST",
        &format!("{other}.localhost"),
        "/signup",
        None,
        Some(&pairs),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    let r = send(form(&slug, PASSWORD)).await;
    assert_eq!(
        (r.status, r.header("location")),
        (303, format!("/signup/{slug}").as_str())
    );
    // The waiting page, then the tenant's log-in page (htmx: HX-Redirect).
    let login = format!("https://{slug}.localhost/login");
    crate::common::eventually("the workspace to be active", || async {
        let r = browse(
            addr,
            "GET",
            "localhost",
            &format!("/signup/{slug}"),
            None,
            None,
        )
        .await;
        if r.status == 200 {
            assert!(r.body.contains("hx-trigger=\"every 2s\""), "{}", r.body);
            return false;
        }
        assert_eq!((r.status, r.header("location")), (303, login.as_str()));
        true
    })
    .await;
    let htmx = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://{addr}/signup/{slug}"))
        .header("host", "localhost")
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(htmx.status(), 204);
    assert_eq!(htmx.headers()["hx-redirect"], login.as_str());
    let r = browse(addr, "GET", "localhost", "/signup/nosuchslug", None, None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_members_page_shows_each_role_only_what_it_may_and_refuses_the_rest() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("pagemembers", Mode::Schema).await;
    let other = fleet.tenant("pagemembersx", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let addr = server.addr;
    let host = format!("{slug}.localhost");
    let owner = format!("owner-{slug}@example.com");
    let admin = format!("admin-{slug}@example.com");
    let viewer = format!("viewer-{slug}@example.com");
    let stranger = format!("stranger-{other}@example.com");
    let owner_id = member(&fleet, &slug, &owner, "owner").await;
    member(&fleet, &slug, &admin, "admin").await;
    let viewer_id = member(&fleet, &slug, &viewer, "viewer").await;
    let stranger_id = member(&fleet, &other, &stranger, "member").await;

    // A viewer sees the members, no control, and is refused every post.
    let cookie = log_in(addr, &host, &viewer).await;
    let r = browse(addr, "GET", &host, "/members", Some(&cookie), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secured(&r);
    assert!(r.body.contains(&owner) && r.body.contains(&admin));
    assert!(!r.body.contains("Invite someone") && !r.body.contains("/role\""));
    let csrf = r.csrf();
    let owner_role = format!("/members/{owner_id}/role");
    for (path, form) in [
        (
            "/members/invite",
            vec![("email", "new@example.com"), ("role", "member")],
        ),
        (owner_role.as_str(), vec![("role", "viewer")]),
    ] {
        let mut form = form.clone();
        form.push(("csrf", csrf.as_str()));
        let r = browse(addr, "POST", &host, path, Some(&cookie), Some(&form)).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(r.body.contains("Not allowed"), "{}", r.body);
    }

    // An admin: invites (not above admin), changes the viewer, not the owner.
    let cookie = log_in(addr, &host, &admin).await;
    let r = browse(addr, "GET", &host, "/members", Some(&cookie), None).await;
    let csrf = r.csrf();
    assert!(r.body.contains("Invite someone"));
    assert!(r.body.contains(&format!("/members/{viewer_id}/role")));
    assert!(!r.body.contains(&owner_role), "no control over the owner");
    assert!(!r.body.contains("<option value=\"owner\""), "{}", r.body);
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        let host = host.clone();
        async move {
            let mut form: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("csrf", &csrf));
            browse(addr, "POST", &host, &path, Some(&cookie), Some(&form)).await
        }
    };
    let r = post(
        "/members/invite".into(),
        vec![
            ("email", "boss@example.com".into()),
            ("role", "owner".into()),
        ],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Your role does not allow that."));
    assert!(r.body.contains("value=\"boss@example.com\""), "kept");
    let r = post(
        "/members/invite".into(),
        vec![
            ("email", "not an address".into()),
            ("role", "member".into()),
        ],
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = post(
        "/members/invite".into(),
        vec![
            ("email", "new@example.com".into()),
            ("role", "member".into()),
        ],
    )
    .await;
    assert_eq!((r.status, r.header("location")), (303, "/members"));
    let r = post(owner_role.clone(), vec![("role", "viewer".into())]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(
        format!("/members/{viewer_id}/role"),
        vec![("role", "member".into())],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Another tenant's member, by id: nothing here.
    for path in [
        format!("/members/{stranger_id}/role"),
        format!("/members/{stranger_id}/remove"),
    ] {
        let r = post(path.clone(), vec![("role", "viewer".into())]).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert!(!r.body.contains(&stranger));
    }
    let r = browse(addr, "GET", &host, "/members", Some(&cookie), None).await;
    assert!(r.body.contains("new@example.com"), "pending");
    let t = fleet.tenant_row(&slug).await;
    let roles: Vec<String> = fleet
        .p()
        .control()
        .members(t.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| format!("{}={}", m.email, m.role))
        .collect();
    assert!(roles.contains(&format!("{viewer}=member")), "{roles:?}");
    assert!(roles.contains(&format!("{owner}=owner")), "{roles:?}");

    // The join page: a bad code is the form again, saying so.
    let r = browse(addr, "GET", &host, "/join?code=abc", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secured(&r);
    assert!(r.body.contains("value=\"abc\""));
    let r = browse(
        addr,
        "POST",
        &host,
        "/join",
        None,
        Some(&[("code", &"0".repeat(64)), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("is not a valid invitation"), "{}", r.body);
}

#[tokio::test]
async fn admin_pages_are_for_operators_on_the_admin_host_only() {
    use crate::common::HttpClient;
    use crate::operators::{ADMIN, PASSWORD as OP_PASSWORD, code, cookie, enrol, login, operator};
    use bulkhead::control::OperatorRole;
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("pageadmin", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let addr = server.addr;
    let host = format!("{slug}.localhost");
    let owner = format!("owner-{slug}@example.com");
    member(&fleet, &slug, &owner, "owner").await;
    let tenant_cookie = log_in(addr, &host, &owner).await;

    // Nobody logged in, or a tenant's cookie: the operator log-in page.
    for cookie in [None, Some(tenant_cookie.as_str())] {
        let r = browse(addr, "GET", ADMIN, "/admin", cookie, None).await;
        assert_eq!((r.status, r.header("location")), (303, "/admin/login"));
    }
    let r = browse(addr, "GET", ADMIN, "/admin/login", None, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secured(&r);
    // On a tenant's host the admin pages are not there.
    for path in ["/admin/login", "/admin", "/enrol"] {
        let r = browse(addr, "GET", &host, path, Some(&tenant_cookie), None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }

    // A support operator: reads, asks for access, but no action.
    let email = format!("support-{}@example.com", fleet.id);
    let token = operator(&fleet, &email, OperatorRole::Support).await;
    let api = HttpClient::new(addr, ADMIN);
    let (uri, _) = enrol(&api, &token).await;
    let r = login(
        &api,
        &email,
        OP_PASSWORD,
        serde_json::json!({"totp": code(&uri, 1)}),
    )
    .await;
    let op = cookie(&r);
    // An operator's cookie is nothing on a tenant's host.
    let r = browse(addr, "GET", &host, "/projects", Some(&op), None).await;
    assert_eq!((r.status, r.header("location")), (303, "/login"));
    let r = browse(
        addr,
        "GET",
        ADMIN,
        &format!("/admin/tenants/{slug}"),
        Some(&op),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    secured(&r);
    assert!(!r.body.contains("/act/suspend"), "no action for support");
    let csrf = r.csrf();
    let suspend = format!("/admin/tenants/{slug}/act/suspend");
    let reason = [("csrf", csrf.as_str()), ("reason", "abuse report 12")];
    let r = browse(addr, "POST", ADMIN, &suspend, Some(&op), Some(&reason)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // Without the token: refused before the role is looked at.
    let r = browse(
        addr,
        "POST",
        ADMIN,
        &format!("/admin/tenants/{slug}/access"),
        Some(&op),
        Some(&[("reason", "a reason long enough to pass")]),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // No grant: the view refuses, saying so.
    let view = format!("/admin/tenants/{slug}/view/projects");
    let r = browse(addr, "GET", ADMIN, &view, Some(&op), None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A short reason: the form again, saying what is wrong.
    let r = browse(
        addr,
        "POST",
        ADMIN,
        &format!("/admin/tenants/{slug}/access"),
        Some(&op),
        Some(&[("csrf", csrf.as_str()), ("reason", "too short")]),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("must be 20-500 characters"), "{}", r.body);
    let t = fleet.tenant_row(&slug).await;
    assert_eq!(t.status, bulkhead::control::Status::Active);
}

#[tokio::test]
async fn a_viewer_reads_tasks_and_settings_but_every_form_of_theirs_is_refused() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("pageviewer", Mode::Schema).await;
    let other = fleet.tenant("pageviewerx", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let addr = server.addr;
    let host = format!("{slug}.localhost");
    let owner = format!("owner-{slug}@example.com");
    let viewer = format!("viewer-{slug}@example.com");
    member(&fleet, &slug, &owner, "owner").await;
    member(&fleet, &slug, &viewer, "viewer").await;
    let stranger = member(&fleet, &other, &format!("x-{other}@example.com"), "owner").await;

    // The owner makes a project and a task through the pages.
    let cookie = log_in(addr, &host, &owner).await;
    let r = browse(addr, "GET", &host, "/projects", Some(&cookie), None).await;
    let csrf = r.csrf();
    let post = |path: &str, fields: &[(&str, &str)], cookie: &str, csrf: &str| {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        form.push(("csrf".into(), csrf.to_string()));
        let (path, cookie, host) = (path.to_string(), cookie.to_string(), host.clone());
        async move {
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            browse(addr, "POST", &host, &path, Some(&cookie), Some(&form)).await
        }
    };
    let r = post("/projects", &[("name", "Plans")], &cookie, &csrf).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = post("/projects/1", &[("title", "First")], &cookie, &csrf).await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Assigning to someone of another tenant: refused, nothing changed.
    let r = post(
        "/tasks/1",
        &[
            ("title", "First"),
            ("status", "todo"),
            ("assignee", &stranger.to_string()),
        ],
        &cookie,
        &csrf,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // A bad date: the form again, with what was typed.
    let r = post(
        "/tasks/1",
        &[
            ("title", "Renamed"),
            ("status", "todo"),
            ("due_date", "soon"),
        ],
        &cookie,
        &csrf,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("due_date must be a date"), "{}", r.body);
    assert!(r.body.contains("value=\"Renamed\""), "{}", r.body);

    // The viewer: reads the task and the settings, no form is theirs.
    let cookie = log_in(addr, &host, &viewer).await;
    let r = browse(addr, "GET", &host, "/tasks/1", Some(&cookie), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    secured(&r);
    assert!(r.body.contains("<fieldset disabled>"), "{}", r.body);
    assert!(!r.body.contains("Delete this task"));
    let r = browse(addr, "GET", &host, "/settings", Some(&cookie), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("<fieldset disabled>"), "{}", r.body);
    let csrf = r.csrf();
    let r = browse(addr, "GET", &host, "/tokens", Some(&cookie), None).await;
    assert_eq!(r.status, 403, "{}", r.body);
    for (path, fields) in [
        ("/tasks/1", vec![("title", "Mine now"), ("status", "done")]),
        ("/tasks/1/delete", vec![]),
        ("/projects/1/edit", vec![("name", "Mine now")]),
        ("/projects/1/delete", vec![]),
        ("/settings", vec![("week_start", "sunday")]),
        ("/tokens", vec![("name", "sneaky"), ("role", "viewer")]),
    ] {
        let r = post(path, &fields, &cookie, &csrf).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
    }
    let r = browse(addr, "GET", &host, "/projects/1", Some(&cookie), None).await;
    assert!(
        r.body.contains("First") && r.body.contains("Plans"),
        "unchanged"
    );

    // The slug check on the apex: free, taken, invalid; escaped.
    for (slug_asked, says) in [
        ("fresh-name", "fresh-name is available"),
        (slug.as_str(), "is taken"),
        ("<b>x", "Address "),
    ] {
        let path = format!(
            "/signup/check?{}",
            serde_urlencoded::to_string([("slug", slug_asked)]).unwrap()
        );
        let r = browse(addr, "GET", "localhost", &path, None, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains(says), "{slug_asked}: {}", r.body);
        assert!(!r.body.contains("<b>"), "{}", r.body);
    }
    let r = browse(addr, "GET", &host, "/signup/check?slug=x", None, None).await;
    assert_eq!(r.status, 404, "apex only");
}

#[tokio::test]
async fn a_server_error_is_a_page_with_the_request_id_and_nothing_of_the_cause() {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant("page500", Mode::Database).await;
    let server = serve(&fleet, |_| {}).await;
    let host = format!("{slug}.localhost");
    let email = format!("owner-{slug}@example.com");
    member(&fleet, &slug, &email, "owner").await;
    let cookie = log_in(server.addr, &host, &email).await;
    // A table gone from under the application: its query fails.
    fleet
        .admin_of(&slug)
        .await
        .batch_execute("ALTER TABLE projects RENAME TO projects_gone")
        .await
        .unwrap();
    let r = browse(server.addr, "GET", &host, "/projects", Some(&cookie), None).await;
    assert_eq!(r.status, 500, "{}", r.body);
    secured(&r);
    let id = r.header("x-request-id").to_string();
    assert!(!id.is_empty());
    assert!(
        r.body
            .contains(&format!("<code id=\"request-id\">{id}</code>")),
        "{}",
        r.body
    );
    assert!(!r.body.contains("projects"), "no cause: {}", r.body);
    // Not on other errors.
    let r = browse(
        server.addr,
        "GET",
        &host,
        "/no/such/page",
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("request-id"));
}
