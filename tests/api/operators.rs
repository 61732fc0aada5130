//! Platform operators on admin.localhost against a real control plane:
//! enrolment from a one-time link, log-in with a TOTP code (computed here
//! with totp-rs from the URI the enrolment answered), replay and recovery
//! codes, one 401 for every failure, the rate limit, tenant credentials and
//! operator cookies each worthless on the other's hosts, and the
//! `bulkhead operator` commands with their audit rows.

use crate::common::{HttpClient, Reply, TestFleet, serve};
use crate::people::{member, session};
use bulkhead::auth::sessions;
use bulkhead::control::{Email, OperatorRole};
use serde_json::{Value, json};
use totp_rs::Totp;

pub(crate) const ADMIN: &str = "admin.localhost";
pub(crate) const PASSWORD: &str = "operator passphrase 1";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of the step `offset` steps from now. A code of the current
/// step or a later one is accepted for its whole step and the next (one
/// step of skew), so a test is not at the mercy of a step ending.
pub(crate) fn code(uri: &str, offset: i64) -> String {
    let totp = Totp::from_url(uri).expect("an otpauth URI");
    let t = unix_now() as i64 + offset * 30;
    totp.generate(t as u64).to_string()
}

/// A code that is none of the three the server accepts now.
fn wrong_code(uri: &str) -> String {
    let taken: Vec<String> = (-1..=2).map(|o| code(uri, o)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919 + 13) % 1_000_000))
        .find(|c| !taken.contains(c))
        .unwrap()
}

/// The operator cookie a reply set, as `bh_operator=<value>`.
pub(crate) fn cookie(reply: &Reply) -> String {
    let set = reply
        .headers
        .get("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {} {}", reply.status, reply.body))
        .to_str()
        .unwrap();
    assert!(set.starts_with("bh_operator="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.to_lowercase().contains("domain="), "{set}");
    set.split(';').next().unwrap().to_string()
}

/// An operator, not enrolled: its enrolment token.
pub(crate) async fn operator(fleet: &TestFleet, email: &str, role: OperatorRole) -> String {
    let token = bulkhead::secret::random_hex(32);
    fleet
        .p()
        .control()
        .insert_operator(&Email::parse(email).unwrap(), role, &sessions::hash(&token))
        .await
        .unwrap()
        .expect("a new operator");
    token
}

/// Enrols with `token` and confirms with the current code: the otpauth URI
/// and the recovery codes.
pub(crate) async fn enrol(admin: &HttpClient, token: &str) -> (String, Vec<String>) {
    let r = admin
        .post(
            "/api/admin/enrol",
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let uri = body["otpauth_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let qr = body["qr_svg"].as_str().unwrap();
    assert!(qr.contains("<svg") && qr.contains("</svg>"), "{qr}");
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    let r = admin
        .post(
            "/api/admin/enrol/confirm",
            json!({"token": token, "code": code(&uri, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (uri, codes)
}

pub(crate) async fn login(admin: &HttpClient, email: &str, password: &str, factor: Value) -> Reply {
    let mut body = json!({"email": email, "password": password});
    body.as_object_mut()
        .unwrap()
        .extend(factor.as_object().unwrap().clone());
    admin.post("/api/admin/login", body).await
}

/// The platform audit log's actions, newest first.
async fn audited(fleet: &TestFleet) -> Vec<(String, String, Value)> {
    fleet
        .p()
        .control()
        .audit_entries(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.actor, e.action, e.detail))
        .collect()
}

#[tokio::test]
async fn an_operator_enrols_once_logs_in_with_a_totp_code_and_logs_out() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |_| {}).await;
    let admin = HttpClient::new(server.addr, ADMIN);
    let email = format!("ops-{}@example.com", fleet.id);
    let token = operator(&fleet, &email, OperatorRole::Admin).await;

    // A password the user rules refuse creates nothing.
    let r = admin
        .post(
            "/api/admin/enrol",
            json!({"token": token, "password": "short"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = admin
        .post(
            "/api/admin/enrol",
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let uri = r.json()["otpauth_uri"].as_str().unwrap().to_string();
    assert!(uri.contains("secret="), "{uri}");
    // The link works once.
    let again = admin
        .post(
            "/api/admin/enrol",
            json!({"token": token, "password": PASSWORD}),
        )
        .await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert!(again.json()["error"]["fields"]["token"].is_string());
    // Not enrolled until a code from the app confirms it.
    let early = login(&admin, &email, PASSWORD, json!({"totp": code(&uri, 1)})).await;
    assert_eq!(early.status, 401, "{}", early.body);
    let r = admin
        .post(
            "/api/admin/enrol/confirm",
            json!({"token": token, "code": wrong_code(&uri)}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = admin
        .post(
            "/api/admin/enrol/confirm",
            json!({"token": token, "code": code(&uri, 0)}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = admin
        .post(
            "/api/admin/enrol/confirm",
            json!({"token": token, "code": code(&uri, 1)}),
        )
        .await;
    assert_eq!(r.status, 422, "the link is spent: {}", r.body);

    let r = login(&admin, &email, PASSWORD, json!({"totp": code(&uri, 1)})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    assert_eq!(body["operator"]["email"], email.as_str());
    assert_eq!(body["operator"]["role"], "admin");
    assert_eq!(body["recovery_codes_left"], 10);
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    let me = HttpClient::new(server.addr, ADMIN).header("cookie", &cookie(&r));
    let r = me.get("/api/admin/me").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["operator"]["email"], email.as_str());
    assert_eq!(r.json()["csrf_token"], csrf.as_str());
    // Writes with the cookie need its CSRF token.
    let r = me.post("/api/admin/logout", json!({})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = me
        .clone()
        .header("x-csrf-token", &csrf)
        .post("/api/admin/logout", json!({}))
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(me.get("/api/admin/me").await.status, 401);

    let actions: Vec<String> = audited(&fleet).await.into_iter().map(|a| a.1).collect();
    for action in [
        "operator.enrol",
        "operator.enrolled",
        "operator.login",
        "operator.logout",
    ] {
        assert_eq!(
            actions.iter().filter(|a| *a == action).count(),
            1,
            "{action} in {actions:?}"
        );
    }
    let log = audited(&fleet).await;
    assert!(
        log.iter()
            .filter(|(_, action, _)| action.starts_with("operator."))
            .all(|(actor, _, _)| actor == &format!("operator:{email}")),
        "{log:?}"
    );
}

#[tokio::test]
async fn every_failed_log_in_gets_one_401_and_codes_work_once() {
    let fleet = TestFleet::new().await;
    // More failures than the limit per e-mail allows (see the next test).
    let server = serve(&fleet, |s| s.sessions.max_failures_per_email = 20).await;
    let admin = HttpClient::new(server.addr, ADMIN);
    let email = format!("ops-{}@example.com", fleet.id);
    let token = operator(&fleet, &email, OperatorRole::Support).await;
    let (uri, recovery) = enrol(&admin, &token).await;

    let next = code(&uri, 1);
    let wrong_password = login(&admin, &email, "not the passphrase", json!({"totp": next})).await;
    let wrong_code = login(&admin, &email, PASSWORD, json!({"totp": wrong_code(&uri)})).await;
    let no_code = login(&admin, &email, PASSWORD, json!({})).await;
    let unknown = login(
        &admin,
        &format!("nobody-{}@example.com", fleet.id),
        PASSWORD,
        json!({"totp": next}),
    )
    .await;
    for r in [&wrong_password, &wrong_code, &no_code, &unknown] {
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.body, wrong_password.body);
    }
    assert_eq!(
        wrong_password.json()["error"]["code"],
        "invalid_credentials"
    );

    // The code refused with a wrong password was not used up by it...
    let r = login(&admin, &email, PASSWORD, json!({"totp": next})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // ...but once accepted, it (and any earlier step's) is refused.
    let replay = login(&admin, &email, PASSWORD, json!({"totp": next})).await;
    assert_eq!(replay.status, 401);
    assert_eq!(replay.body, wrong_password.body);
    let earlier = login(&admin, &email, PASSWORD, json!({"totp": code(&uri, 0)})).await;
    assert_eq!(earlier.status, 401);

    // A recovery code, however typed, works once.
    let typed = recovery[3].to_uppercase().replace('-', " ");
    let r = login(&admin, &email, PASSWORD, json!({"recovery_code": typed})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["recovery_codes_left"], 9);
    assert_eq!(r.json()["operator"]["role"], "support");
    let r = login(
        &admin,
        &email,
        PASSWORD,
        json!({"recovery_code": recovery[3]}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, wrong_password.body);
}

#[tokio::test]
async fn operator_log_ins_are_rate_limited_per_email_before_any_hash() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |_| {}).await;
    let admin = HttpClient::new(server.addr, ADMIN);
    let email = format!("ops-{}@example.com", fleet.id);
    let token = operator(&fleet, &email, OperatorRole::Admin).await;
    let (uri, _) = enrol(&admin, &token).await;
    for _ in 0..5 {
        let r = login(
            &admin,
            &email,
            "wrong passphrase!",
            json!({"totp": "123456"}),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    // Past the limit even the right credentials are refused.
    let r = login(&admin, &email, PASSWORD, json!({"totp": code(&uri, 1)})).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "too_many_attempts");
    assert!(r.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn tenant_credentials_are_no_operator_and_an_operator_is_nothing_on_a_tenant_host() {
    let fleet = TestFleet::new().await;
    let slug = fleet
        .tenant("opsiso", bulkhead::control::Mode::Schema)
        .await;
    let server = serve(&fleet, |_| {}).await;
    let owner = format!("owner-{}@example.com", fleet.id);
    member(&fleet, &slug, &owner, "owner").await;
    let (tenant_cookie, tenant_csrf) = session(server.addr, &slug, &owner).await;
    let token = fleet.token(&slug, "admin").await;

    // A tenant owner's cookie or token on the admin host: no operator.
    let as_owner = HttpClient::new(server.addr, ADMIN).session(&tenant_cookie, &tenant_csrf);
    let as_token = HttpClient::new(server.addr, ADMIN).bearer(&token);
    for client in [&as_owner, &as_token] {
        let r = client.get("/api/admin/me").await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(
            !r.body.contains(&slug) && !r.body.contains(&owner),
            "{}",
            r.body
        );
        let r = client.post("/api/admin/logout", json!({})).await;
        assert_eq!(r.status, 401, "{}", r.body);
        // Nor is the tenant API served there.
        let r = client.get("/api/me").await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert!(!r.body.contains(&slug), "{}", r.body);
    }

    let email = format!("ops-{}@example.com", fleet.id);
    let invite = operator(&fleet, &email, OperatorRole::Admin).await;
    let admin = HttpClient::new(server.addr, ADMIN);
    let (uri, _) = enrol(&admin, &invite).await;
    let r = login(&admin, &email, PASSWORD, json!({"totp": code(&uri, 1)})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let operator_cookie = cookie(&r);
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();

    // The operator cookie on the tenant's host is no session...
    let on_tenant = HttpClient::tenant(&server, &slug).session(&operator_cookie, &csrf);
    let r = on_tenant.get("/api/me").await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = on_tenant.get("/api/projects").await;
    assert_eq!(r.status, 401, "{}", r.body);
    // ...and the admin routes do not exist there, nor on the apex.
    for host in [format!("{slug}.localhost"), "localhost".to_string()] {
        let c = HttpClient::new(server.addr, host).session(&operator_cookie, &csrf);
        assert_eq!(c.get("/api/admin/me").await.status, 404);
        let r = c
            .post(
                "/api/admin/login",
                json!({"email": email, "password": PASSWORD, "totp": code(&uri, 1)}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        let r = c
            .post(
                "/api/admin/enrol",
                json!({"token": invite, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
    }
    // The operator's session is still good where it belongs.
    let at_home = HttpClient::new(server.addr, ADMIN).header("cookie", &operator_cookie);
    assert_eq!(at_home.get("/api/admin/me").await.status, 200);
}

/// Runs `bulkhead operator ...` for this fleet; (stdout, stderr).
fn cli(fleet: &TestFleet, args: &[&str], code: i32) -> (String, String) {
    let out = fleet
        .cli()
        .arg("operator")
        .args(args)
        .env("BULKHEAD_BASE_DOMAIN", "localhost")
        .env("BULKHEAD_INSECURE_COOKIES", "true")
        .output()
        .expect("run bulkhead");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "operator {args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    (stdout, stderr)
}

/// The token of the enrolment link a command printed.
fn link_token(stdout: &str) -> String {
    let link = stdout.trim();
    let token = link
        .strip_prefix("http://admin.localhost/enrol#token=")
        .unwrap_or_else(|| panic!("not an enrolment link: {link}"));
    assert_eq!(token.len(), 64, "{link}");
    token.to_string()
}

#[tokio::test]
async fn the_operator_commands_create_list_reset_and_disable_and_are_audited() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |_| {}).await;
    let admin = HttpClient::new(server.addr, ADMIN);
    let email = format!("ops-{}@example.com", fleet.id);

    let (out, _) = cli(&fleet, &["create", &email, "--role", "support"], 0);
    let token = link_token(&out);
    let (_, err) = cli(&fleet, &["create", &email, "--role", "admin"], 2);
    assert!(err.contains("already exists"), "{err}");
    let (_, err) = cli(&fleet, &["create", "x@example.com", "--role", "root"], 2);
    assert!(err.contains("support or admin"), "{err}");
    let (out, _) = cli(&fleet, &["list", "--json"], 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["email"], email.as_str());
    assert_eq!(listed[0]["role"], "support");
    assert!(listed[0]["enrolled_at"].is_null());
    assert!(!out.contains("password") && !out.contains("seed"), "{out}");

    let (old_uri, _) = enrol(&admin, &token).await;
    let r = login(&admin, &email, PASSWORD, json!({"totp": code(&old_uri, 1)})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let session = HttpClient::new(server.addr, ADMIN).header("cookie", &cookie(&r));
    let (out, _) = cli(&fleet, &["list"], 0);
    assert!(out.contains(&email) && out.contains("support"), "{out}");

    // A lost phone: the old factor, its session and the old link are void.
    let (out, _) = cli(&fleet, &["reset-mfa", &email], 0);
    let fresh = link_token(&out);
    assert_eq!(session.get("/api/admin/me").await.status, 401);
    let r = login(&admin, &email, PASSWORD, json!({"totp": code(&old_uri, 2)})).await;
    assert_eq!(r.status, 401, "{}", r.body);
    let (new_uri, _) = enrol(&admin, &fresh).await;
    assert_ne!(new_uri, old_uri);
    let r = login(&admin, &email, PASSWORD, json!({"totp": code(&old_uri, 1)})).await;
    assert_eq!(r.status, 401, "the old secret's codes: {}", r.body);
    let r = login(&admin, &email, PASSWORD, json!({"totp": code(&new_uri, 1)})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let session = HttpClient::new(server.addr, ADMIN).header("cookie", &cookie(&r));

    cli(&fleet, &["disable", &email], 0);
    assert_eq!(session.get("/api/admin/me").await.status, 401);
    let r = login(&admin, &email, PASSWORD, json!({"recovery_code": "x"})).await;
    assert_eq!(r.status, 401);
    let (out, _) = cli(&fleet, &["list", "--json"], 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert!(listed[0]["disabled_at"].is_string(), "{out}");
    let (_, err) = cli(&fleet, &["disable", "nobody@example.com"], 2);
    assert!(err.contains("no operator"), "{err}");

    let log = audited(&fleet).await;
    for action in ["operator.create", "operator.reset_mfa", "operator.disable"] {
        let rows: Vec<_> = log.iter().filter(|(_, a, _)| a == action).collect();
        assert_eq!(rows.len(), 1, "{action}: {log:?}");
        assert!(rows[0].0.starts_with("cli:"), "{:?}", rows[0]);
        assert_eq!(rows[0].2["email"], email.as_str());
    }
}
