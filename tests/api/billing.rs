//! Billing end to end: real HTTP to bulkhead, real HTTP to the Stripe
//! stand-in (`bulkhead::billing::standin`), webhooks signed and delivered by
//! it: upgrade and cancel, signatures, duplicates, events out of order, a
//! forged checkout, a failed payment and its grace period, Stripe away, and
//! `billing sync` repairing a dropped webhook.

use std::time::Duration;

use bulkhead::billing::standin::{Delivery, SentEvent, StandIn, StandInSettings};
use bulkhead::control::Mode;
use serde_json::{Value, json};

use crate::common::{HttpClient, TestFleet, eventually, serve};

const KEY: &str = "sk_test_bulkhead_tests";
const WEBHOOK_SECRET: &str = "whsec_bulkhead_tests";
const PRICE: &str = "price_pro_test";

/// A served fleet with billing pointed at a stand-in, which delivers its
/// webhooks to the server's apex host.
struct Billed {
    fleet: TestFleet,
    server: bulkhead::serve::Running,
    stripe: StandIn,
}

impl Billed {
    async fn start(tweak: impl FnOnce(&mut bulkhead::billing::BillingSettings)) -> Self {
        let fleet = TestFleet::new().await;
        // The server's address must be known to the stand-in before either
        // starts: take a free port and give it back.
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let stripe = StandIn::start(StandInSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            secret_key: KEY.into(),
            webhook_url: format!("http://{listen}/webhooks/stripe"),
            webhook_host: Some("localhost".into()),
            webhook_secret: WEBHOOK_SECRET.into(),
            prices: vec![PRICE.into()],
        })
        .await
        .expect("start the stand-in");
        let base = stripe.base_url();
        let server = serve(&fleet, |s| {
            s.listen = listen;
            s.billing.stripe = Some(bulkhead::billing::StripeSettings {
                secret_key: bulkhead::secret::Secret::new(KEY.into()),
                webhook_secret: Some(bulkhead::secret::Secret::new(WEBHOOK_SECRET.into())),
                price_pro: PRICE.into(),
                api_base: Some(base),
                test_mode: true,
            });
            s.billing.sweep_every = Duration::from_millis(200);
            tweak(&mut s.billing);
        })
        .await;
        Self {
            fleet,
            server,
            stripe,
        }
    }

    /// A free tenant and a client of its host as its owner (logged in:
    /// tokens are never owners).
    async fn tenant(&self, base: &str) -> (String, HttpClient) {
        let slug = self.fleet.tenant(base, Mode::Schema).await;
        let email = format!("owner-{slug}@example.com");
        crate::people::member(&self.fleet, &slug, &email, "owner").await;
        (slug.clone(), self.owner(&slug, &email).await)
    }

    async fn owner(&self, slug: &str, email: &str) -> HttpClient {
        let (cookie, csrf) = crate::people::session(self.server.addr, slug, email).await;
        HttpClient::tenant(&self.server, slug).session(&cookie, &csrf)
    }

    async fn plan(&self, client: &HttpClient) -> String {
        let r = client.get("/api/tenant").await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["plan"].as_str().unwrap().to_string()
    }

    async fn wait_for_plan(&self, client: &HttpClient, plan: &str) {
        eventually(&format!("the plan to become {plan}"), || async {
            self.plan(client).await == plan
        })
        .await;
    }

    /// Starts a checkout and pays on the stand-in's page; the subscription's id.
    async fn subscribe(&self, client: &HttpClient) -> String {
        let r = client.post("/api/billing/checkout", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let url = r.json()["url"].as_str().unwrap().to_string();
        pay(&url).await;
        let tenant = self.tenant_id(client).await;
        let customer = self
            .fleet
            .p()
            .control()
            .billing_customer(tenant)
            .await
            .unwrap()
            .expect("a customer");
        let subs = self.stripe.subscriptions_of(&customer);
        subs.last().unwrap()["id"].as_str().unwrap().to_string()
    }

    async fn tenant_id(&self, client: &HttpClient) -> bulkhead::control::TenantId {
        let slug = client.host.split('.').next().unwrap().to_string();
        self.fleet.tenant_row(&slug).await.id
    }

    /// Rows of the tenant's own audit log about plan changes.
    async fn plan_audit(&self, slug: &str) -> Vec<Value> {
        let db = self.fleet.as_tenant(slug).await;
        db.query(
            "SELECT jsonb_build_object('actor', actor_label, 'to', object_id, 'detail', detail)
               FROM audit_log WHERE action = 'billing.plan_changed' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    }

    async fn control_count(&self, sql: &str, tenant: bulkhead::control::TenantId) -> i64 {
        let db = crate::common::connect(&crate::common::pg().url(&self.fleet.control_db()))
            .await
            .unwrap();
        db.query_one(sql, &[&tenant.0]).await.unwrap().get(0)
    }
}

/// What a person does on the stand-in's checkout page: open it, press Pay.
async fn pay(checkout_url: &str) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(checkout_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Pay"), "{html}");
    let paid = client
        .post(format!("{checkout_url}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303, "{:?}", paid.text().await);
}

/// Presses "Cancel subscription" in the portal.
async fn cancel_in_portal(portal_url: &str) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(portal_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let r = client
        .post(format!("{portal_url}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

/// Back on free with four projects: nothing lost, nothing more allowed.
async fn free_again_with_four_projects(owner: &HttpClient) {
    assert_eq!(add_project(owner, "p5").await, 402);
    let listed = owner.get("/api/projects").await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 4, "{listed}");
}

async fn add_project(client: &HttpClient, name: &str) -> u16 {
    client
        .post("/api/projects", json!({ "name": name }))
        .await
        .status
}

fn of_type<'a>(events: &'a [SentEvent], type_: &str) -> &'a SentEvent {
    events.iter().find(|e| e.type_ == type_).unwrap_or_else(|| {
        panic!(
            "no {type_} among {:?}",
            events.iter().map(|e| &e.type_).collect::<Vec<_>>()
        )
    })
}

#[tokio::test]
async fn a_tenant_upgrades_through_checkout_and_cancels_in_the_portal_keeping_its_data() {
    let b = Billed::start(|_| {}).await;
    // Signed up, as a customer would.
    let slug = b.fleet.slug("flow");
    let email = format!("owner-{}@example.com", b.fleet.id);
    let r = crate::common::http(
        b.server.addr,
        "POST",
        "localhost",
        "/api/signup",
        None,
        Some(json!({"email": email, "password": crate::people::PASSWORD,
                    "organisation": "Flow Inc", "slug": slug})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.body);
    eventually("the new tenant to be active", || async {
        b.fleet.tenant_row(&slug).await.status.as_str() == "active"
    })
    .await;
    let owner = b.owner(&slug, &email).await;

    // Free: three projects, the fourth refused.
    for n in 1..=3 {
        assert_eq!(add_project(&owner, &format!("p{n}")).await, 201);
    }
    let refused = owner.post("/api/projects", json!({"name": "p4"})).await;
    assert_eq!(refused.status, 402, "{}", refused.body);
    let billing = owner.get("/api/billing").await;
    assert_eq!(billing.status, 200, "{}", billing.body);
    let billing = billing.json();
    assert_eq!(billing["plan"], "free");
    assert_eq!(billing["billing"], "test");
    assert_eq!(
        billing["usage"]["projects"],
        json!({"used": 3, "limit": 3, "free_limit": 3})
    );

    // Checkout → pay → webhooks → pro.
    let r = owner.post("/api/billing/checkout", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let url = r.json()["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&b.stripe.base_url()), "{url}");
    pay(&url).await;
    b.wait_for_plan(&owner, "pro").await;
    assert_eq!(
        add_project(&owner, "p4").await,
        201,
        "pro has no project limit"
    );
    let billing = owner.get("/api/billing").await.json();
    assert_eq!(billing["subscription"]["status"], "active");
    assert!(billing["renews_at"].is_string(), "{billing}");

    // The portal → cancel → subscription deleted → free, nothing lost.
    let r = owner.post("/api/billing/portal", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    cancel_in_portal(r.json()["url"].as_str().unwrap()).await;
    b.wait_for_plan(&owner, "free").await;
    let listed = owner.get("/api/projects").await.json();
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        4,
        "data all still there"
    );
    assert_eq!(
        add_project(&owner, "p5").await,
        402,
        "over the limit: keeps what it has, adds nothing"
    );

    // Both moves are in the tenant's own audit log, by Stripe, with the event.
    eventually("both plan changes in the tenant's audit log", || async {
        b.plan_audit(&slug).await.len() == 2
    })
    .await;
    let audit = b.plan_audit(&slug).await;
    assert_eq!(audit[0]["actor"], "stripe");
    assert_eq!(audit[0]["to"], "pro");
    assert!(
        audit[0]["detail"]["event"]
            .as_str()
            .unwrap()
            .starts_with("evt_")
    );
    assert_eq!(audit[1]["to"], "free");
    // And the runtime role has the free plan's session limits again.
    let limits = b
        .fleet
        .as_tenant(&slug)
        .await
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(limits, "5s");
    b.server.stop().await.unwrap();
}

#[tokio::test]
async fn webhooks_with_a_bad_signature_or_a_stale_timestamp_are_refused_and_not_recorded() {
    let b = Billed::start(|_| {}).await;
    let (_, owner) = b.tenant("sig").await;
    b.stripe.set_delivery(Delivery::Hold);
    b.subscribe(&owner).await;
    let held = b.stripe.take_held();
    let event = of_type(&held, "customer.subscription.created");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let control = b.fleet.p().control();

    let wrong_secret = {
        let body = event.payload.as_str();
        let mac = stripe_signature("whsec_someone_else", now, body);
        b.stripe.deliver_signed(body, &mac).await
    };
    let changed = event.payload.replacen("active", "activf", 1);
    let one_byte = b
        .stripe
        .deliver_signed(&changed, &b.stripe.sign(&event.payload, now))
        .await;
    let stale = b
        .stripe
        .deliver_signed(&event.payload, &b.stripe.sign(&event.payload, now - 301))
        .await;
    let missing = crate::common::request(
        b.server.addr,
        "POST",
        "localhost",
        "/webhooks/stripe",
        &[("content-type", "application/json")],
        Some(serde_json::from_str(&event.payload).unwrap()),
    )
    .await;
    assert_eq!(
        (wrong_secret, one_byte, stale, missing.status),
        (400, 400, 400, 400)
    );
    assert_eq!(
        control.billing_event_outcome(&event.id).await.unwrap(),
        None
    );

    // A tenant host is not where webhooks go.
    let tenant_host = owner
        .send("POST", "/webhooks/stripe", Some(json!({})))
        .await;
    assert_eq!(tenant_host.status, 404);

    // Signed right but of a type billing does not act on, or of a shape
    // that does not parse: 200 (or Stripe retries it for days), no change.
    let other = b.stripe.make_event(
        "customer.discount.created",
        json!({"id": "di_x", "object": "discount"}),
        now,
    );
    let r = b.stripe.deliver(&other.payload, 1).await;
    assert_eq!(r, vec![200]);
    let garbled = b.stripe.make_event(
        "customer.subscription.updated",
        json!({"id": "sub_x", "object": "subscription", "status": 42}),
        now,
    );
    assert_eq!(b.stripe.deliver(&garbled.payload, 1).await, vec![200]);
    assert_eq!(b.plan(&owner).await, "free");

    // Signed right: accepted.
    assert_eq!(b.stripe.deliver(&event.payload, 1).await, vec![200]);
    assert_eq!(
        control
            .billing_event_outcome(&event.id)
            .await
            .unwrap()
            .as_deref(),
        Some("applied")
    );
    b.server.stop().await.unwrap();
}

/// `t=…,v1=…` with another secret (what a forger could make).
fn stripe_signature(secret: &str, t: i64, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn the_same_event_five_times_at_once_changes_the_plan_once() {
    let b = Billed::start(|_| {}).await;
    let (slug, owner) = b.tenant("dup").await;
    b.stripe.set_delivery(Delivery::Hold);
    b.subscribe(&owner).await;
    let held = b.stripe.take_held();
    let created = of_type(&held, "customer.subscription.created");
    let statuses = b.stripe.deliver(&created.payload, 5).await;
    assert_eq!(statuses, vec![200; 5]);
    b.wait_for_plan(&owner, "pro").await;
    let tenant = b.tenant_id(&owner).await;
    assert_eq!(
        b.control_count(
            "SELECT count(*) FROM billing_plan_changes WHERE tenant_id = $1",
            tenant
        )
        .await,
        1
    );
    eventually("the change in the tenant's audit log", || async {
        b.plan_audit(&slug).await.len() == 1
    })
    .await;
    // Later duplicates too change nothing.
    assert_eq!(b.stripe.deliver(&created.payload, 2).await, vec![200; 2]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.plan_audit(&slug).await.len(), 1);
    b.server.stop().await.unwrap();
}

#[tokio::test]
async fn many_events_of_one_tenant_at_once_each_land_and_the_newest_wins() {
    let b = Billed::start(|_| {}).await;
    let (_, owner) = b.tenant("burst").await;
    let sub = b.subscribe(&owner).await;
    b.wait_for_plan(&owner, "pro").await;
    b.stripe.set_delivery(Delivery::Hold);
    for status in [
        "past_due", "active", "unpaid", "active", "past_due", "unpaid",
    ] {
        b.stripe.set_status(&sub, status).await;
    }
    let updates: Vec<SentEvent> = b
        .stripe
        .take_held()
        .into_iter()
        .filter(|e| e.type_ == "customer.subscription.updated")
        .collect();
    assert_eq!(updates.len(), 6);
    // All at once, each three times: every transaction locks the same
    // tenant, and each must see what the one before it wrote.
    let statuses =
        futures::future::join_all(updates.iter().map(|e| b.stripe.deliver(&e.payload, 3))).await;
    assert!(statuses.iter().flatten().all(|s| *s == 200), "{statuses:?}");
    let control = b.fleet.p().control();
    let tenant = b.tenant_id(&owner).await;
    assert_eq!(
        control.billing_subscriptions(tenant).await.unwrap()[0].status,
        "unpaid"
    );
    b.wait_for_plan(&owner, "free").await;
    b.server.stop().await.unwrap();
}

#[tokio::test]
async fn events_out_of_order_never_move_a_subscription_back() {
    let b = Billed::start(|_| {}).await;
    let control = b.fleet.p().control();

    // updated(past_due) arriving after a newer updated(active): stays active.
    let (_, owner) = b.tenant("order").await;
    let sub = b.subscribe(&owner).await;
    b.wait_for_plan(&owner, "pro").await;
    b.stripe.set_delivery(Delivery::Hold);
    b.stripe.set_status(&sub, "past_due").await;
    b.stripe.set_status(&sub, "active").await;
    let held = b.stripe.take_held();
    let updates: Vec<&SentEvent> = held
        .iter()
        .filter(|e| e.type_ == "customer.subscription.updated")
        .collect();
    assert_eq!(updates.len(), 2);
    let (past_due, active) = (updates[0], updates[1]);
    assert!(active.created > past_due.created);
    assert_eq!(b.stripe.deliver(&active.payload, 1).await, vec![200]);
    assert_eq!(b.stripe.deliver(&past_due.payload, 1).await, vec![200]);
    assert_eq!(
        control
            .billing_event_outcome(&past_due.id)
            .await
            .unwrap()
            .as_deref(),
        Some("stale")
    );
    let tenant = b.tenant_id(&owner).await;
    let mirror = control.billing_subscriptions(tenant).await.unwrap();
    assert_eq!(mirror[0].status, "active");
    assert_eq!(b.plan(&owner).await, "pro");

    // deleted delivered before created: free, and stays free.
    let (_, late) = b.tenant("late").await;
    b.subscribe(&late).await;
    let made = b.stripe.take_held();
    let portal = late.post("/api/billing/portal", json!({})).await;
    cancel_in_portal(portal.json()["url"].as_str().unwrap()).await;
    let ended = b.stripe.take_held();
    let deleted = of_type(&ended, "customer.subscription.deleted");
    let created = of_type(&made, "customer.subscription.created");
    assert_eq!(b.stripe.deliver(&deleted.payload, 1).await, vec![200]);
    assert_eq!(b.stripe.deliver(&created.payload, 1).await, vec![200]);
    assert_eq!(
        control
            .billing_event_outcome(&created.id)
            .await
            .unwrap()
            .as_deref(),
        Some("stale")
    );
    assert_eq!(b.plan(&late).await, "free");
    b.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_checkout_naming_another_tenant_is_never_applied_to_it() {
    let b = Billed::start(|_| {}).await;
    let (_, a) = b.tenant("payer").await;
    let (_, victim) = b.tenant("named").await;
    // B has a customer of its own (it opened a checkout, never paid).
    assert_eq!(
        victim.post("/api/billing/checkout", json!({})).await.status,
        200
    );
    b.stripe.set_delivery(Delivery::Hold);
    b.subscribe(&a).await;
    let held = b.stripe.take_held();
    let completed = of_type(&held, "checkout.session.completed");
    let mut session: Value = serde_json::from_str(&completed.payload).unwrap();
    let victim_id = b.tenant_id(&victim).await;
    session["data"]["object"]["client_reference_id"] = json!(victim_id.to_string());
    session["data"]["object"]["metadata"]["tenant_id"] = json!(victim_id.to_string());
    let forged = b.stripe.make_event(
        "checkout.session.completed",
        session["data"]["object"].clone(),
        completed.created + 1,
    );
    assert_eq!(b.stripe.deliver(&forged.payload, 1).await, vec![200]);
    let control = b.fleet.p().control();
    assert_eq!(
        control
            .billing_event_outcome(&forged.id)
            .await
            .unwrap()
            .as_deref(),
        Some("ignored")
    );
    assert_eq!(b.plan(&victim).await, "free");
    assert!(
        control
            .billing_subscriptions(victim_id)
            .await
            .unwrap()
            .is_empty()
    );
    b.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_payment_keeps_pro_through_the_grace_period_then_free() {
    let b = Billed::start(|_| {}).await;
    let (_, owner) = b.tenant("grace").await;
    let sub = b.subscribe(&owner).await;
    b.wait_for_plan(&owner, "pro").await;
    for n in 1..=4 {
        assert_eq!(add_project(&owner, &format!("p{n}")).await, 201);
    }
    b.stripe.set_status(&sub, "past_due").await;
    eventually("the subscription to be past due", || async {
        owner.get("/api/billing").await.json()["subscription"]["status"] == "past_due"
    })
    .await;
    let billing = owner.get("/api/billing").await.json();
    assert_eq!(billing["plan"], "pro", "within the grace period");
    let grace_end = time::OffsetDateTime::parse(
        billing["grace_ends_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let in_days = (grace_end - time::OffsetDateTime::now_utc()).whole_hours();
    assert!((167..=168).contains(&in_days), "seven days: {in_days}h");
    let tenant = owner.get("/api/tenant").await.json();
    assert_eq!(tenant["plan"], "pro");
    assert!(tenant["grace_ends_at"].is_string(), "{tenant}");

    // Eight days on (the control plane's clock, moved): free, limits back.
    let tenant = b.tenant_id(&owner).await;
    let db = crate::common::connect(&crate::common::pg().url(&b.fleet.control_db()))
        .await
        .unwrap();
    db.execute(
        "UPDATE billing_subscriptions SET past_due_since = now() - interval '8 days'
          WHERE tenant_id = $1",
        &[&tenant.0],
    )
    .await
    .unwrap();
    b.wait_for_plan(&owner, "free").await;
    free_again_with_four_projects(&owner).await;
    b.server.stop().await.unwrap();
}

#[tokio::test]
async fn stripe_away_is_503_with_nothing_half_made_and_a_retry_makes_one_customer() {
    let b = Billed::start(|_| {}).await;
    let (_, owner) = b.tenant("away").await;
    let tenant = b.tenant_id(&owner).await;
    b.stripe.stop().await;
    let r = owner.post("/api/billing/checkout", json!({})).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "billing_unavailable");
    let control = b.fleet.p().control();
    assert_eq!(control.billing_customer(tenant).await.unwrap(), None);
    b.stripe.restart().await.unwrap();
    for _ in 0..2 {
        let r = owner.post("/api/billing/checkout", json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let mine: Vec<_> = b
        .stripe
        .customers()
        .into_iter()
        .filter(|(_, t)| t.as_deref() == Some(tenant.to_string().as_str()))
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(
        control.billing_customer(tenant).await.unwrap().as_deref(),
        Some(mine[0].0.as_str())
    );
    b.server.stop().await.unwrap();
}

/// `bulkhead billing sync --tenant <slug>`, run off this runtime's thread
/// (the stand-in answers on it).
async fn sync_cli(b: &Billed, slug: &str) -> std::process::Output {
    let mut cmd = b.fleet.cli();
    cmd.args(["billing", "sync", "--tenant", slug])
        .env("BULKHEAD_STRIPE_SECRET_KEY", KEY)
        .env("BULKHEAD_STRIPE_PRICE_PRO", PRICE)
        .env("BULKHEAD_STRIPE_API_BASE", b.stripe.base_url());
    tokio::task::spawn_blocking(move || cmd.output().expect("run bulkhead"))
        .await
        .unwrap()
}

#[tokio::test]
async fn billing_sync_repairs_a_change_whose_webhook_was_dropped() {
    let b = Billed::start(|_| {}).await;
    let (slug, owner) = b.tenant("sync").await;
    let sub = b.subscribe(&owner).await;
    b.wait_for_plan(&owner, "pro").await;
    b.stripe.set_delivery(Delivery::Hold);
    b.stripe.set_status(&sub, "unpaid").await;
    assert!(!b.stripe.take_held().is_empty(), "the webhooks, dropped");
    assert_eq!(b.plan(&owner).await, "pro", "nothing told bulkhead");

    let out = sync_cli(&b, &slug).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{slug}: subscription {sub} active → unpaid")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{slug}: plan pro → free")),
        "{stdout}"
    );
    assert!(!stdout.contains(KEY) && !String::from_utf8_lossy(&out.stderr).contains(KEY));
    b.wait_for_plan(&owner, "free").await;
    eventually("the repair in the tenant's audit log", || async {
        b.plan_audit(&slug)
            .await
            .last()
            .is_some_and(|e| e["actor"] == "billing sync" && e["to"] == "free")
    })
    .await;

    // Run again: nothing to repair.
    let again = sync_cli(&b, &slug).await;
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 repaired"));
    b.server.stop().await.unwrap();
}

#[tokio::test]
async fn without_a_stripe_key_billing_says_disabled_and_the_rest_works() {
    let fleet = TestFleet::new().await;
    let server = serve(&fleet, |_| {}).await;
    let slug = fleet.tenant("off", Mode::Schema).await;
    let email = format!("owner-{slug}@example.com");
    crate::people::member(&fleet, &slug, &email, "owner").await;
    let (cookie, csrf) = crate::people::session(server.addr, &slug, &email).await;
    let owner = HttpClient::tenant(&server, &slug).session(&cookie, &csrf);
    for path in ["/api/billing/checkout", "/api/billing/portal"] {
        let r = owner.post(path, json!({})).await;
        assert_eq!(r.status, 503, "{path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "billing_disabled");
    }
    let r = owner.get("/api/billing").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["billing"], "disabled");
    assert_eq!(r.json()["plan"], "free");
    assert_eq!(add_project(&owner, "works").await, 201);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn event_ids_are_forgotten_after_thirty_days_not_before() {
    let b = Billed::start(|_| {}).await;
    let (_, owner) = b.tenant("prune").await;
    b.subscribe(&owner).await;
    let events = b.stripe.events();
    let (old, young) = (&events[0], &events[1]);
    let db = crate::common::connect(&crate::common::pg().url(&b.fleet.control_db()))
        .await
        .unwrap();
    db.execute(
        "UPDATE billing_events SET received_at = now() - interval '31 days' WHERE id = $1",
        &[&old.id],
    )
    .await
    .unwrap();
    let control = b.fleet.p().control();
    let pruned = control
        .prune_billing_events(bulkhead::billing::EVENTS_KEPT)
        .await
        .unwrap();
    assert_eq!(pruned, 1, "only the old one");
    assert_eq!(control.billing_event_outcome(&old.id).await.unwrap(), None);
    assert!(
        control
            .billing_event_outcome(&young.id)
            .await
            .unwrap()
            .is_some()
    );
    b.server.stop().await.unwrap();
}

/// `bulkhead tenant <args…>`, run off this runtime's thread.
async fn tenant_cli(b: &Billed, args: &[&str]) -> std::process::Output {
    let mut cmd = b.fleet.cli();
    cmd.arg("tenant").args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("run bulkhead"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_comp_lifts_the_limits_until_its_date_then_billing_decides_again() {
    let b = Billed::start(|_| {}).await;
    let (slug, owner) = b.tenant("comp").await;
    for n in 1..=3 {
        assert_eq!(add_project(&owner, &format!("p{n}")).await, 201);
    }
    assert_eq!(add_project(&owner, "p4").await, 402);
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1)).date();
    let out = tenant_cli(
        &b,
        &[
            "comp",
            &slug,
            "--until",
            &tomorrow.to_string(),
            "--reason",
            "launch partner",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("is on pro until") && stdout.contains("(was free)"),
        "{stdout}"
    );
    b.wait_for_plan(&owner, "pro").await;
    assert_eq!(add_project(&owner, "p4").await, 201, "limits lifted");
    let billing = owner.get("/api/billing").await.json();
    assert_eq!(billing["plan_source"], "comp");
    assert!(
        billing["comp_until"]
            .as_str()
            .unwrap()
            .starts_with(&(tomorrow.next_day().unwrap()).to_string()),
        "{billing}"
    );

    // One row in each audit log: the platform's, by the OS user, and the
    // tenant's own (delivered by the CLI itself).
    let tenant = b.tenant_id(&owner).await;
    let platform = b
        .fleet
        .p()
        .control()
        .audit_entries(Some(tenant), 50)
        .await
        .unwrap();
    let comps: Vec<_> = platform
        .iter()
        .filter(|e| e.action == "tenant.comp")
        .collect();
    assert_eq!(comps.len(), 1);
    assert!(comps[0].actor.starts_with("cli:"), "{:?}", comps[0]);
    assert_eq!(comps[0].detail["reason"], "launch partner");
    let db = b.fleet.as_tenant(&slug).await;
    let rows = db
        .query(
            "SELECT actor_label, detail->>'reason' FROM audit_log WHERE action = 'billing.comp_granted'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].get::<_, String>(0).starts_with("platform:"));
    assert_eq!(rows[0].get::<_, String>(1), "launch partner");

    // Past the date (the control plane's clock, moved): free again, data kept.
    let control_db = crate::common::connect(&crate::common::pg().url(&b.fleet.control_db()))
        .await
        .unwrap();
    control_db
        .execute(
            "UPDATE billing_comps SET until = now() - interval '1 second' WHERE tenant_id = $1",
            &[&tenant.0],
        )
        .await
        .unwrap();
    b.wait_for_plan(&owner, "free").await;
    free_again_with_four_projects(&owner).await;
    eventually("the comp's end in the tenant's audit log", || async {
        db.query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'billing.comp_ended'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
            == 1
    })
    .await;

    // A comp over a paid subscription: when it ends, billing says pro.
    b.subscribe(&owner).await;
    b.wait_for_plan(&owner, "pro").await;
    let out = tenant_cli(
        &b,
        &[
            "comp",
            &slug,
            "--until",
            &tomorrow.to_string(),
            "--reason",
            "goodwill",
        ],
    )
    .await;
    assert!(out.status.success());
    let out = tenant_cli(&b, &["uncomp", &slug, "--reason", "goodwill over"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(b.plan(&owner).await, "pro", "the subscription still pays");
    let again = tenant_cli(&b, &["uncomp", &slug, "--reason", "twice"]).await;
    assert_eq!(again.status.code(), Some(1));
    let past = tenant_cli(
        &b,
        &["comp", &slug, "--until", "2001-01-01", "--reason", "x"],
    )
    .await;
    assert_eq!(past.status.code(), Some(2), "a date in the past is refused");
    b.server.stop().await.unwrap();
}

#[tokio::test]
async fn an_operator_cancels_a_subscription_and_the_plan_follows_at_once() {
    let b = Billed::start(|_| {}).await;
    let (slug, owner) = b.tenant("opcancel").await;
    let (admin, email) =
        crate::admin::operator_client(&b.fleet, &b.server, bulkhead::control::OperatorRole::Admin)
            .await;
    let cancel = format!("/api/admin/tenants/{slug}/cancel-subscription");
    let r = admin
        .post(&cancel, json!({"reason": "fraud check 17"}))
        .await;
    assert_eq!(r.status, 409, "nothing to cancel yet: {}", r.body);

    let subscription = b.subscribe(&owner).await;
    b.wait_for_plan(&owner, "pro").await;
    let r = admin.post(&cancel, json!({})).await;
    assert_eq!(r.status, 422, "a reason is required: {}", r.body);
    let r = admin
        .post(&cancel, json!({"reason": "fraud check 17"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["canceled"], subscription.as_str());
    assert_eq!(
        r.json()["plan"],
        "free",
        "the plan follows now, not at the webhook"
    );
    assert_eq!(b.plan(&owner).await, "free");
    let r = admin
        .post(&cancel, json!({"reason": "fraud check 17"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);

    let tenant = b.tenant_id(&owner).await;
    let rows: Vec<_> = b
        .fleet
        .p()
        .control()
        .audit_entries(Some(tenant), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "tenant.cancel_subscription")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].actor, format!("operator:{email}"));
    assert_eq!(rows[0].detail["reason"], "fraud check 17");
    let db = b.fleet.as_tenant(&slug).await;
    let own: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'tenant.cancel_subscription'
                AND actor_label = $1",
            &[&format!("platform:{email}")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(own, 1);
}

#[tokio::test]
async fn the_cli_cancels_a_subscription_as_the_admin_api_does() {
    let b = Billed::start(|_| {}).await;
    let (slug, owner) = b.tenant("clicancel").await;
    b.subscribe(&owner).await;
    b.wait_for_plan(&owner, "pro").await;
    let cancel = |reason: &'static str| {
        let mut cmd = b.fleet.cli();
        cmd.args(["tenant", "cancel-subscription", &slug, "--reason", reason])
            .env("BULKHEAD_STRIPE_SECRET_KEY", KEY)
            .env("BULKHEAD_STRIPE_PRICE_PRO", PRICE)
            .env("BULKHEAD_STRIPE_API_BASE", b.stripe.base_url());
        async move {
            tokio::task::spawn_blocking(move || cmd.output().expect("run bulkhead"))
                .await
                .unwrap()
        }
    };
    let out = cancel("chargeback 88").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("canceled; its plan is free"), "{stdout}");
    b.wait_for_plan(&owner, "free").await;
    let out = cancel("chargeback 88").await;
    assert_eq!(out.status.code(), Some(1), "nothing left to cancel");

    let tenant = b.tenant_id(&owner).await;
    let actor = format!("cli:{}", bulkhead::app::os_user());
    let rows: Vec<_> = b
        .fleet
        .p()
        .control()
        .audit_entries(Some(tenant), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "tenant.cancel_subscription")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].actor.as_str(), &rows[0].detail["reason"]),
        (actor.as_str(), &json!("chargeback 88"))
    );
    let db = b.fleet.as_tenant(&slug).await;
    let own: i64 = db
        .query_one(
            "SELECT count(*) FROM audit_log WHERE action = 'tenant.cancel_subscription'
                AND actor_label LIKE 'platform:%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(own, 1);
}
