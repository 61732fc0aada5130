//! What a person does in the browser.

use bulkhead::control::Mode;

use crate::browser::Browser;
use crate::common::{TestFleet, serve};

/// The password the tests' users have.
const PASSWORD: &str = "correct horse battery";

/// A user with [`PASSWORD`], member of `slug` with `role`.
async fn member(fleet: &TestFleet, slug: &str, email: &str, role: &str) {
    let control = fleet.p().control();
    let user = control
        .insert_user(
            email,
            "Test User",
            &bulkhead::auth::passwords::hash(PASSWORD),
        )
        .await
        .unwrap()
        .unwrap();
    let tenant = fleet.tenant_row(slug).await;
    control
        .add_membership(user.id, tenant.id, role.parse().unwrap())
        .await
        .unwrap();
}

/// Logs in on `host`'s log-in page with [`PASSWORD`]: on to the projects.
async fn log_in(b: &Browser, host: &str, email: &str) {
    b.open(host, "/login").await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    assert_eq!(b.path().await, "/projects");
}

/// A tenant with its owner logged in on its host, in a browser of its own.
struct Owner {
    fleet: TestFleet,
    server: bulkhead::serve::Running,
    slug: String,
    host: String,
    email: String,
    b: Browser,
}

/// A new tenant named after `base`, served (`configure` as for `serve`),
/// its owner logged in.
async fn logged_in_owner(
    base: &str,
    mode: Mode,
    configure: impl FnOnce(&mut bulkhead::serve::ServeSettings),
) -> Owner {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant(base, mode).await;
    let server = serve(&fleet, configure).await;
    let email = format!("owner-{slug}@example.com");
    member(&fleet, &slug, &email, "owner").await;
    let host = format!("{slug}.localhost");
    let b = Browser::new(server.addr.port()).await;
    log_in(&b, &host, &email).await;
    Owner {
        fleet,
        server,
        slug,
        host,
        email,
        b,
    }
}

#[tokio::test]
async fn an_owner_logs_in_creates_a_project_and_another_tenant_shows_nothing_of_it() {
    let fleet = TestFleet::new().await;
    let acme = fleet.tenant("uiacme", Mode::Database).await;
    let globex = fleet.tenant("uiglobex", Mode::Schema).await;
    let server = serve(&fleet, |_| {}).await;
    let email = format!("owner-{acme}@example.com");
    member(&fleet, &acme, &email, "owner").await;
    let acme_host = format!("{acme}.localhost");
    let b = Browser::new(server.addr.port()).await;

    // Not logged in: the log-in page.
    b.open(&acme_host, "/projects").await;
    assert_eq!(b.path().await, "/login");
    b.check("login").await;
    // A wrong password: the form again, saying so.
    b.fill("#email", &email).await;
    b.fill("#password", "not the password").await;
    b.click("button[type=submit]").await;
    assert!(b.source().await.contains("Wrong e-mail or password."));
    b.check("login-failed").await;

    b.fill("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    assert_eq!(b.path().await, "/projects");
    assert!(b.source().await.contains("No projects yet."));
    b.check("projects-empty").await;

    b.fill("#name", "Moon base plans").await;
    b.click("form[aria-label='New project'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/projects");
    let page = b.source().await;
    assert!(page.contains("Moon base plans"), "{page}");
    assert!(page.contains("this organisation has 1."), "{page}");
    b.check("projects").await;

    // Its board: three tasks, one moved to done (htmx swaps the board in
    // place; the plain form would do the same with a page load).
    b.click("ul.cards a").await;
    let board = b.path().await;
    assert!(board.starts_with("/projects/"), "{board}");
    for title in [
        "Pour the foundation",
        "Order the airlock",
        "Hire astronauts",
    ] {
        b.fill("#title", title).await;
        b.click("form[aria-label='New task'] button[type=submit]")
            .await;
        assert_eq!(b.path().await, board);
    }
    assert_eq!(b.count("#board section:nth-of-type(1) li").await, 3);
    b.check("board").await;
    // A page load would forget this; htmx's swap keeps it.
    b.client
        .execute("window.bulkheadKept = true; return true;", vec![])
        .await
        .unwrap();
    b.click_button_named("Move to Done: Order the airlock")
        .await;
    b.wait_for("#board section:nth-of-type(3) li").await;
    assert_eq!(b.path().await, board);
    let kept = b
        .client
        .execute("return window.bulkheadKept === true;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, serde_json::json!(true), "htmx moved it in place");
    assert_eq!(b.count("#board section:nth-of-type(1) li").await, 2);
    let done = b.text("#board section:nth-of-type(3)").await;
    assert!(done.contains("Order the airlock"), "{done}");
    b.check("board-moved").await;

    // Another tenant's host in the same browser: its log-in page, nothing
    // of acme's.
    b.open(&format!("{globex}.localhost"), "/projects").await;
    assert_eq!(b.path().await, "/login");
    let page = b.source().await;
    assert!(page.contains(&format!("Log in to {globex}")), "{page}");
    assert!(
        !page.contains("Moon base") && !page.contains(&email),
        "{page}"
    );
    b.check("other-tenant-login").await;

    // An unknown page: the error page.
    b.open(&acme_host, "/no/such/page").await;
    assert!(b.source().await.contains("Not found"));
    b.check("error-404").await;

    // Log out: back to the log-in page, the projects closed.
    b.open(&acme_host, "/projects").await;
    b.click(".who button[type=submit]").await;
    assert_eq!(b.path().await, "/login");
    b.open(&acme_host, "/projects").await;
    assert_eq!(b.path().await, "/login");
    b.close().await;
}

#[tokio::test]
async fn a_visitor_signs_up_invites_a_colleague_who_joins_and_is_made_a_viewer() {
    let fleet = TestFleet::new().await;
    // Plain HTTP, as `dev`: the links handed out say http://.
    let outbox = crate::common::scratch(&format!("outbox-{}", fleet.id));
    let dir = outbox.clone();
    let server = serve(&fleet, move |s| {
        s.sessions.secure_cookies = false;
        s.outbox = Some(dir);
    })
    .await;
    let b = Browser::new(server.addr.port()).await;
    let slug = format!("uisign{}", fleet.id);
    let email = format!("founder-{slug}@example.com");

    b.open("localhost", "/").await;
    b.check("signup").await;
    // Bad input: the form again, each field saying what is wrong.
    b.fill("#organisation", "Initech").await;
    b.fill("#slug", "-bad-").await;
    b.fill("#email", &email).await;
    // (The browser itself holds back what the form's own rules refuse:
    // this address passes them, the server's not.)
    b.fill("#password", PASSWORD).await;
    b.click("form[aria-label='Sign up'] button[type=submit]")
        .await;
    let page = b.source().await;
    assert!(page.contains("id=\"slug-error\""), "{page}");
    assert!(page.contains("value=\"Initech\""), "what was typed is kept");
    b.check("signup-errors").await;

    b.fill("#slug", &slug).await;
    // The address is checked as it is typed (htmx).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b
        .text("#slug-check")
        .await
        .contains(&format!("{slug} is available"))
    {
        assert!(std::time::Instant::now() < deadline, "no live check");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.fill("#password", PASSWORD).await;
    b.click("form[aria-label='Sign up'] button[type=submit]")
        .await;
    // The waiting page moves on by itself to the new tenant's log-in page.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let url = b.client.current_url().await.unwrap();
        // (A 503 page for the moment every instance takes to learn the
        // tenant is active reloads itself into the log-in page.)
        if url.host_str() == Some(&format!("{slug}.localhost"))
            && url.path() == "/login"
            && b.count("#email").await == 1
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still at {url}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let host = format!("{slug}.localhost");
    log_in(&b, &host, &email).await;
    assert!(b.source().await.contains("The free plan allows 3 projects"));

    // A project, three tasks, one of them done.
    b.fill("#name", "Launch plan").await;
    b.click("form[aria-label='New project'] button[type=submit]")
        .await;
    b.click("ul.cards a").await;
    let board = b.path().await;
    for title in ["Write the brief", "Book the venue", "Print the flyers"] {
        b.fill("#title", title).await;
        b.click("form[aria-label='New task'] button[type=submit]")
            .await;
    }
    b.click_button_named("Move to Done: Book the venue").await;
    b.wait_for("#board section:nth-of-type(3) li").await;

    // Invite a colleague: the seats shown, the invitation pending.
    let colleague = format!("colleague-{slug}@example.com");
    b.open(&host, "/members").await;
    assert!(b.source().await.contains("The free plan allows"));
    b.fill("#invite-email", &colleague).await;
    b.click("form[aria-label=Invite] button[type=submit]").await;
    assert_eq!(b.path().await, "/members");
    let page = b.source().await;
    assert!(page.contains(&colleague), "{page}");
    b.check("members").await;

    // The colleague opens the mailed link in a browser of their own.
    let link = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|t| t.starts_with(&format!("To: {colleague}\r\n")))
        .flat_map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| l.contains("/join?code="))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .next()
        .expect("the invitation's link");
    assert!(
        link.starts_with(&format!("http://{host}:{}/join?code=", server.addr.port())),
        "{link}"
    );
    let c = Browser::new(server.addr.port()).await;
    c.client.goto(&link).await.unwrap();
    c.check("join").await;
    c.fill("#display_name", "Colleague").await;
    c.fill("#password", PASSWORD).await;
    c.click("button[type=submit]").await;
    assert_eq!(c.path().await, "/login");
    assert!(c.source().await.contains("You have joined"));
    log_in(&c, &host, &colleague).await;
    let page = c.source().await;
    assert!(page.contains("Launch plan"), "{page}");
    assert_eq!(c.count("form[aria-label='New project']").await, 1);

    // The owner makes them a viewer.
    b.open(&host, "/members").await;
    b.tick("select[id^=role-] option[value=viewer]").await;
    b.click("form[action$='/role'] button[type=submit]").await;
    assert_eq!(b.path().await, "/members");
    let role = b
        .client
        .execute(
            "return document.querySelector('select[id^=role-]').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(role, serde_json::json!("viewer"));

    // The viewer sees no create buttons, and a forged post is refused.
    c.open(&host, "/projects").await;
    assert_eq!(c.count("form[aria-label='New project']").await, 0);
    assert!(c.source().await.contains("(viewer)"));
    c.click("ul.cards a").await;
    assert_eq!(c.path().await, board);
    assert_eq!(c.count("form[aria-label='New task']").await, 0);
    assert_eq!(c.count("#board button").await, 0);
    c.check("board-viewer").await;
    let forged = c
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const csrf = document.querySelector('input[name=csrf]').value;
             fetch('/projects', {method: 'POST', redirect: 'manual',
                 headers: {'content-type': 'application/x-www-form-urlencoded'},
                 body: 'csrf=' + encodeURIComponent(csrf) + '&name=Forged'})
               .then(r => done(r.status)).catch(e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(forged, serde_json::json!(403));
    c.open(&host, "/projects").await;
    assert!(!c.source().await.contains("Forged"));
    c.close().await;
    b.close().await;
}

#[tokio::test]
async fn an_owner_asks_to_be_asked_first_then_approves_the_vendors_access() {
    use bulkhead::control::{AccessMode, Email, GrantRequest, OperatorRole};
    let Owner {
        fleet,
        server: _server,
        slug,
        host,
        email: _,
        b,
    } = logged_in_owner("uiaccess", Mode::Schema, |_| {}).await;

    b.open(&host, "/support-access").await;
    assert!(b.source().await.contains("Nobody at the vendor has asked"));
    b.check("support-access").await;
    b.tick("input[value=ask_first]").await;
    b.click("form[aria-label=Rule] button[type=submit]").await;
    let control = fleet.p().control();
    let tenant = fleet.tenant_row(&slug).await.id;
    assert_eq!(
        control.support_policy(tenant).await.unwrap(),
        bulkhead::control::SupportPolicy::AskFirst
    );

    // An operator asks (as the admin API would): it waits for the owner.
    let operator = control
        .insert_operator(
            &Email::parse(&format!("ops-{slug}@example.com")).unwrap(),
            OperatorRole::Support,
            &bulkhead::auth::sessions::hash(&bulkhead::secret::random_hex(16)),
        )
        .await
        .unwrap()
        .unwrap();
    let grant = control
        .request_grant(&GrantRequest {
            tenant,
            operator: operator.id,
            mode: AccessMode::ReadOnly,
            reason: "ticket 4711: a project vanished",
            minutes: 15,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.state, "awaiting_owner");
    b.open(&host, "/support-access").await;
    let page = b.source().await;
    assert!(page.contains("ticket 4711: a project vanished") && page.contains("awaiting_owner"));
    b.check("support-access-waiting").await;
    b.click_button_named(&format!("Approve: grant asked by ops-{slug}@example.com"))
        .await;
    b.wait_for("tr.vendor").await;
    assert!(b.source().await.contains(">live<"));
    assert!(
        control
            .access_grant(grant.id)
            .await
            .unwrap()
            .unwrap()
            .is_live()
    );

    // The audit log shows it, marked as the vendor's.
    b.open(&host, "/audit?action=support_access").await;
    assert!(b.count("tr.vendor").await >= 1);
    assert!(b.source().await.contains("support_access.approved"));
    b.check("audit-vendor").await;
    b.close().await;
}

#[tokio::test]
async fn an_owner_upgrades_through_checkout_and_the_limit_banner_goes() {
    use bulkhead::billing::standin::{StandIn, StandInSettings};
    let fleet = TestFleet::new().await;
    // The stand-in must know where to send its webhooks before either starts.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let stripe = StandIn::start(StandInSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        secret_key: "sk_test_ui".into(),
        webhook_url: format!("http://{listen}/webhooks/stripe"),
        webhook_host: Some("localhost".into()),
        webhook_secret: "whsec_ui".into(),
        prices: vec!["price_pro_ui".into()],
    })
    .await
    .expect("start the Stripe stand-in");
    let base = stripe.base_url();
    let server = serve(&fleet, |s| {
        s.listen = listen;
        s.sessions.secure_cookies = false;
        s.billing.stripe = Some(bulkhead::billing::StripeSettings {
            secret_key: bulkhead::secret::Secret::new("sk_test_ui".into()),
            webhook_secret: Some(bulkhead::secret::Secret::new("whsec_ui".into())),
            price_pro: "price_pro_ui".into(),
            api_base: Some(base),
            test_mode: true,
        });
    })
    .await;
    let slug = fleet.tenant("uibilling", Mode::Schema).await;
    fleet
        .p()
        .control()
        .set_plan(
            fleet.tenant_row(&slug).await.id,
            bulkhead::control::Plan::Free,
        )
        .await
        .unwrap();
    let email = format!("owner-{slug}@example.com");
    member(&fleet, &slug, &email, "owner").await;
    let host = format!("{slug}.localhost");
    let b = Browser::new(server.addr.port()).await;
    log_in(&b, &host, &email).await;
    assert!(b.source().await.contains("The free plan allows 3 projects"));

    b.open(&host, "/billing").await;
    assert!(b.source().await.contains("<strong>free</strong>"));
    b.check("billing-free").await;
    b.click("form[aria-label=Upgrade] button[type=submit]")
        .await;
    // Stripe's (the stand-in's) checkout page, on its own origin: pay.
    let at = b.client.current_url().await.unwrap();
    assert!(at.path().starts_with("/checkout/"), "{at}");
    b.click("form[action$='/pay'] button").await;
    // Back on the billing page; pro once the webhook has landed.
    assert_eq!(b.path().await, "/billing");
    assert!(b.source().await.contains("your payment went through"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        b.open(&host, "/billing").await;
        if b.source().await.contains("<strong>pro</strong>") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never became pro");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(b.source().await.contains("Manage billing"));
    b.check("billing-pro").await;
    b.open(&host, "/projects").await;
    assert!(!b.source().await.contains("The free plan allows"));
    b.close().await;
}

#[tokio::test]
async fn an_operator_enrols_logs_in_with_totp_and_opens_read_only_access_the_owner_sees() {
    use bulkhead::control::{Email, OperatorRole};
    let Owner {
        fleet,
        server,
        slug,
        host,
        email: _,
        b: o,
    } = logged_in_owner("uiglass", Mode::Database, |s| {
        s.sessions.secure_cookies = false
    })
    .await;
    o.fill("#name", "Quarterly numbers").await;
    o.click("form[aria-label='New project'] button[type=submit]")
        .await;

    // `bulkhead operator create` makes the operator and its link.
    let email = format!("support-{}@example.com", fleet.id);
    let token = bulkhead::secret::random_hex(32);
    fleet
        .p()
        .control()
        .insert_operator(
            &Email::parse(&email).unwrap(),
            OperatorRole::Support,
            &bulkhead::auth::sessions::hash(&token),
        )
        .await
        .unwrap()
        .unwrap();
    let b = Browser::new(server.addr.port()).await;
    b.client
        .goto(&format!(
            "{}#token={token}",
            b.url("admin.localhost", "/enrol")
        ))
        .await
        .unwrap();
    // The fragment is in the form, and gone from the address bar.
    b.wait_for("#token").await;
    let filled = b
        .client
        .execute("return document.getElementById('token').value;", vec![])
        .await
        .unwrap();
    assert_eq!(filled, serde_json::json!(token));
    assert_eq!(b.client.current_url().await.unwrap().fragment(), None);
    b.check("admin-enrol").await;
    b.fill("#password", PASSWORD).await;
    b.click("form[aria-label=Enrol] button[type=submit]").await;
    let uri = b.text("#otpauth").await;
    let uri = if uri.is_empty() {
        // (Visually hidden text has no rendered text: read it from the DOM.)
        b.client
            .execute(
                "return document.getElementById('otpauth').textContent;",
                vec![],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    } else {
        uri
    };
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert_eq!(b.count("ul.codes li").await, 10);
    b.check("admin-enrol-factor").await;
    let totp = totp_rs::Totp::from_url(&uri).unwrap();
    let code = |offset: i64| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        totp.generate((now + offset * 30) as u64).to_string()
    };
    b.fill("#code", &code(0)).await;
    b.click("form[aria-label=Confirm] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/admin/login");

    // Log in: a wrong code is refused, the next step's code works.
    b.check("admin-login").await;
    b.fill("#email", &email).await;
    b.fill("#password", PASSWORD).await;
    b.fill("#code", "000000").await;
    b.click("button[type=submit]").await;
    assert!(b.source().await.contains("Wrong e-mail, password or code."));
    b.check("admin-login-failed").await;
    b.fill("#password", PASSWORD).await;
    b.fill("#code", &code(1)).await;
    b.click("button[type=submit]").await;
    assert_eq!(b.path().await, "/admin");

    // Find the tenant, ask for read-only access with a reason.
    b.fill("#q", &slug).await;
    b.click("form[role=search] button[type=submit]").await;
    b.check("admin-tenants").await;
    b.click(&format!("a[href='/admin/tenants/{slug}']")).await;
    assert!(b.source().await.contains("plan_source"));
    // Support reads; the actions are for admins.
    assert_eq!(b.count("form[action$='/act/suspend']").await, 0);
    b.check("admin-tenant").await;
    b.tick("details summary").await;
    let reason = "Ticket 4711: the owner says a project vanished";
    b.fill("#access-reason", reason).await;
    b.click("form[aria-label='Ask for access'] button[type=submit]")
        .await;
    assert_eq!(
        b.path().await,
        format!("/admin/tenants/{slug}/view/projects")
    );
    let banner = b.text(".glass").await;
    assert!(
        banner.contains(&format!("You are viewing {slug}'s data")) && banner.contains(reason),
        "{banner}"
    );
    assert!(b.source().await.contains("Quarterly numbers"));
    b.check("admin-view").await;
    // A project's own page under the view, the banner still there.
    b.click("table.log a").await;
    assert!(b.text(".glass").await.contains(reason));
    // Servers, runs, the platform audit log with the grant.
    for (path, name) in [
        ("/admin/servers", "admin-servers"),
        ("/admin/runs", "admin-runs"),
    ] {
        b.open("admin.localhost", path).await;
        b.check(name).await;
    }
    b.open("admin.localhost", "/admin/audit?action=access.used")
        .await;
    assert!(b.source().await.contains(reason));
    b.check("admin-audit").await;

    // The owner's audit log shows the vendor's access, with the reason.
    o.open(&host, "/audit").await;
    let page = o.source().await;
    assert!(page.contains(&format!("platform:{email}")), "{page}");
    assert!(page.contains(reason), "{page}");
    assert!(o.count("tr.vendor").await >= 2, "highlighted");
    o.check("audit-vendor").await;

    // Ended by the operator: the view is refused at once.
    b.open(
        "admin.localhost",
        &format!("/admin/tenants/{slug}/view/projects"),
    )
    .await;
    b.click(".glass button[type=submit]").await;
    assert_eq!(b.path().await, format!("/admin/tenants/{slug}"));
    b.open(
        "admin.localhost",
        &format!("/admin/tenants/{slug}/view/projects"),
    )
    .await;
    assert!(!b.source().await.contains("Quarterly numbers"));
    b.close().await;
    o.close().await;
}

#[tokio::test]
async fn an_owner_edits_a_task_changes_settings_and_makes_and_revokes_a_token() {
    let Owner {
        fleet: _fleet,
        server,
        slug: _,
        host,
        email,
        b,
    } = logged_in_owner("uisettings", Mode::Schema, |_| {}).await;

    // A project renamed, a task edited: assigned, due, moved, noted.
    b.fill("#name", "Draft name").await;
    b.click("form[aria-label='New project'] button[type=submit]")
        .await;
    b.click("ul.cards a").await;
    let board = b.path().await;
    b.tick("details summary").await;
    b.fill("#project-name", "Final name").await;
    b.click("form[aria-label='Edit project'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, board);
    assert_eq!(b.text("h1").await, "Final name");
    b.fill("#title", "Write the report").await;
    b.click("form[aria-label='New task'] button[type=submit]")
        .await;
    b.click("#board h3 a").await;
    assert!(b.path().await.starts_with("/tasks/"));
    b.check("task").await;
    b.fill("#task-body", "Two pages, no more.").await;
    b.tick("#task-status option[value=doing]").await;
    b.tick("#task-assignee option:nth-of-type(2)").await;
    b.client
        .execute(
            "document.getElementById('task-due').value = '2027-03-01'; return true;",
            vec![],
        )
        .await
        .unwrap();
    b.click("form[aria-label=Task] button[type=submit]").await;
    assert_eq!(b.path().await, board);
    let doing = b.text("#board section:nth-of-type(2)").await;
    assert!(
        doing.contains("Write the report") && doing.contains("Due 2027-03-01"),
        "{doing}"
    );
    b.click("#board h3 a").await;
    let page = b.source().await;
    assert!(page.contains("Two pages, no more."), "{page}");
    assert!(page.contains(&format!("({email})</option>")), "{page}");

    // Settings: saved, and said so.
    b.open(&host, "/settings").await;
    b.check("settings").await;
    b.tick("#week_start option[value=sunday]").await;
    b.click("form[aria-label=Settings] button[type=submit]")
        .await;
    assert!(b.source().await.contains("Saved."));
    let week = b
        .client
        .execute(
            "return document.getElementById('week_start').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(week, serde_json::json!("sunday"));

    // A token: shown once, works on the API, revoked, works no more.
    b.open(&host, "/tokens").await;
    b.check("tokens").await;
    b.fill("#token-name", "CI deploys").await;
    b.click("form[aria-label='New token'] button[type=submit]")
        .await;
    let token = b.text("#new-token").await;
    assert!(token.len() > 20, "{token}");
    b.check("token-made").await;
    let api = |token: String| {
        let url = format!("http://{}/api/projects", server.addr);
        let host = host.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .header("host", host)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(api(token.clone()).await, 200);
    b.open(&host, "/tokens").await;
    assert!(!b.source().await.contains(&token), "shown once only");
    b.click("form[action$='/revoke'] button[type=submit]").await;
    assert!(b.source().await.contains("No tokens."));
    assert_eq!(api(token).await, 401);

    // Deleting the project takes its tasks.
    b.open(&host, &board).await;
    b.tick("details summary").await;
    b.click("form[aria-label='Delete project'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/projects");
    assert!(b.source().await.contains("No projects yet."));

    // Log out everywhere: this browser's session ends too.
    b.open(&host, "/settings").await;
    b.click("form[aria-label='Log out everywhere'] button[type=submit]")
        .await;
    assert_eq!(b.path().await, "/login");
    b.open(&host, "/projects").await;
    assert_eq!(b.path().await, "/login");
    b.close().await;
}
