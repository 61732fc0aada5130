//! `webhooks` benchmark (issue 17): Stripe webhook handling under load. 64
//! clients deliver `customer.subscription.updated` events for N billed
//! tenants to `POST /webhooks/stripe`, each event twice (half the
//! deliveries are duplicates, shuffled, so some arrive at once), freshly
//! signed, as Stripe would. A quarter of the events move a tenant between
//! plans (`unpaid` ↔ `active`); the rest change only the subscription
//! (`past_due` ↔ `active`, within the grace period).
//!
//! Baseline (the floor): the least a receiver can do and still be
//! idempotent, in the same run against the same cluster: an axum handler
//! that verifies the signature the same way and inserts the event id with
//! `ON CONFLICT DO NOTHING`. bulkhead does that and also locks the tenant,
//! orders the event against the state applied, settles the plan, and gives
//! plan changes to the tenant (its role's limits, its audit log).
//!
//! Checked after the run: every event recorded once, no plan change and no
//! audit row made twice for one event (`double_applications` must be 0).
//! Goal: p99 < 50 ms and ≥ 500 deliveries/s on this machine.
//!
//! `cargo bench --bench webhooks [-- --quick] [--tenants N] [--events N]`

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use bulkhead::billing::standin::{Delivery, StandIn, StandInSettings};
use bulkhead::control::{Mode, Plan};
use bulkhead::provision::CreateRequest;
use common::percentile_ms;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

const CLIENTS: usize = 64;
const KEY: &str = "sk_test_bench";
const SECRET: &str = "whsec_bench";
const PRICE: &str = "price_bench_pro";
const PASSWORD: &str = "correct horse battery";
/// Each tenant's subscription goes through these, one per event, in turn.
const CYCLE: [&str; 8] = [
    "past_due", "active", "past_due", "active", "past_due", "active", "unpaid", "active",
];

struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
    errors: usize,
}

impl Run {
    fn json(&mut self, deliveries: usize) -> Value {
        self.latencies.sort();
        json!({
            "deliveries": deliveries,
            "deliveries_per_s": (deliveries as f64 / self.elapsed.as_secs_f64()).round(),
            "p50_ms": percentile_ms(&self.latencies, 0.50),
            "p99_ms": percentile_ms(&self.latencies, 0.99),
            "errors": self.errors,
            "seconds": (self.elapsed.as_secs_f64() * 100.0).round() / 100.0,
        })
    }
}

/// Delivers every payload, in order, from `CLIENTS` clients at once; each
/// signed as it is sent.
async fn deliver(addr: SocketAddr, host: &str, payloads: Arc<Vec<String>>) -> Run {
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("an HTTP client");
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (next, payloads, client, host) = (
            next.clone(),
            payloads.clone(),
            client.clone(),
            host.to_string(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(payload) = payloads.get(i) else {
                    break;
                };
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let signature = sign(payload, now);
                let t = Instant::now();
                let r = client
                    .post(format!("http://{addr}/webhooks/stripe"))
                    .header("host", &host)
                    .header("content-type", "application/json")
                    .header("stripe-signature", signature)
                    .body(payload.clone())
                    .send()
                    .await;
                latencies.push(t.elapsed());
                match r {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                    }
                    Ok(r) => {
                        errors += 1;
                        eprintln!("webhook answered {}: {:?}", r.status(), r.text().await);
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("webhook failed: {e}");
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut run = Run {
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
        errors: 0,
    };
    for w in workers {
        let (latencies, errors) = w.await.expect("a delivery worker");
        run.latencies.extend(latencies);
        run.errors += errors;
    }
    run.elapsed = start.elapsed();
    run
}

fn sign(payload: &str, t: i64) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("a key");
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The floor: verify, then insert the id once.
async fn floor_handler(
    axum::extract::State(pool): axum::extract::State<Pool>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = std::str::from_utf8(&body).unwrap_or_default();
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Ok(event) = bulkhead::billing::stripe::verify_webhook(body, signature, SECRET) else {
        return StatusCode::BAD_REQUEST;
    };
    let Ok(client) = pool.get().await else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    match client
        .execute(
            "INSERT INTO floor_events (id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&event.id],
        )
        .await
    {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn main() {
    let args = common::Args::parse();
    let runtime = common::runtime(&args);
    runtime.block_on(run(args));
}

async fn run(args: common::Args) {
    let quick = args.quick;
    let tenants = args.number("tenants").unwrap_or(if quick { 8 } else { 40 });
    let events = args
        .number("events")
        .unwrap_or(if quick { 400 } else { 4000 });
    let cluster = common::boot_cluster(300).await;
    let app = common::open_fleet(&cluster, "hooks", 200).await;
    eprintln!(
        "webhooks: {tenants} tenants, {events} events, each delivered twice, {CLIENTS} clients"
    );

    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let stripe = StandIn::start(StandInSettings {
        listen: "127.0.0.1:0".parse().expect("an address"),
        secret_key: KEY.into(),
        webhook_url: format!("http://{listen}/webhooks/stripe"),
        webhook_host: Some("localhost".into()),
        webhook_secret: SECRET.into(),
        prices: vec![PRICE.into()],
    })
    .await
    .expect("start the stand-in");
    let mut settings = bulkhead::serve::ServeSettings::new(
        listen,
        bulkhead::routing::HostName::parse("localhost").expect("base domain"),
    );
    settings.billing.stripe = Some(bulkhead::billing::StripeSettings {
        secret_key: bulkhead::secret::Secret::new(KEY.into()),
        webhook_secret: Some(bulkhead::secret::Secret::new(SECRET.into())),
        price_pro: PRICE.into(),
        api_base: Some(stripe.base_url()),
        test_mode: true,
    });
    let server = bulkhead::serve::start(&app, &settings)
        .await
        .expect("start bulkhead");

    // Every tenant subscribes through checkout, as a customer would.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let control = app.provisioner.control();
    let mut subscriptions = Vec::new();
    for i in 0..tenants {
        let slug = format!("hooks-{i}");
        let tenant = app
            .provisioner
            .create(&CreateRequest {
                slug: slug.clone(),
                display_name: None,
                mode: Mode::Schema,
                plan: Plan::Free,
                server: None,
            })
            .await
            .expect("create a tenant");
        let tenant = match tenant {
            bulkhead::provision::CreateOutcome::Created(t)
            | bulkhead::provision::CreateOutcome::AlreadyExists(t) => t,
        };
        // Billing is the owners' (and tokens are never owners): log one in.
        let email = format!("owner@{slug}.example.com");
        let user = control
            .insert_user(&email, "Owner", &bulkhead::auth::passwords::hash(PASSWORD))
            .await
            .expect("the control plane")
            .expect("a new user");
        control
            .add_membership(user.id, tenant.id, bulkhead::auth::Role::Owner)
            .await
            .expect("a membership");
        let login = http
            .post(format!("http://{}/api/login", server.addr))
            .header("host", format!("{slug}.localhost"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("log in");
        let cookie = login
            .headers()
            .get("set-cookie")
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_string();
        let csrf = login.json::<Value>().await.expect("log-in's answer")["csrf_token"]
            .as_str()
            .expect("a CSRF token")
            .to_string();
        let r: Value = http
            .post(format!("http://{}/api/billing/checkout", server.addr))
            .header("host", format!("{slug}.localhost"))
            .header("cookie", cookie)
            .header("x-csrf-token", csrf)
            .send()
            .await
            .expect("checkout")
            .json()
            .await
            .expect("checkout's answer");
        let url = r["url"]
            .as_str()
            .unwrap_or_else(|| panic!("no checkout URL: {r}"));
        let paid = http.post(format!("{url}/pay")).send().await.expect("pay");
        assert_eq!(paid.status(), 303, "pay");
        let customer = control
            .billing_customer(tenant.id)
            .await
            .expect("the control plane")
            .expect("a customer");
        let sub = stripe.subscriptions_of(&customer)[0]["id"]
            .as_str()
            .expect("a subscription id")
            .to_string();
        subscriptions.push(sub);
    }
    stripe.set_delivery(Delivery::Hold);

    // The events: for each tenant in turn, the next status of its cycle,
    // Stripe's `created` strictly increasing.
    let base = time::OffsetDateTime::now_utc().unix_timestamp() + 10;
    let mut unique = Vec::new();
    for k in 0..events {
        let sub = &subscriptions[k % tenants];
        let status = CYCLE[(k / tenants) % CYCLE.len()];
        let mut object = stripe.subscription_json(sub).expect("the subscription");
        object["status"] = json!(status);
        let event = stripe.make_event("customer.subscription.updated", object, base + k as i64);
        unique.push(event.payload);
    }
    let mut payloads: Vec<String> = unique.iter().chain(unique.iter()).cloned().collect();
    payloads.shuffle(&mut rand::rngs::StdRng::seed_from_u64(17));
    let payloads = Arc::new(payloads);

    let mut ours = deliver(server.addr, "localhost", payloads.clone()).await;
    // Plan changes are given to tenants as they are made; let any retry land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let db = common::connect(&common::config(&cluster, &common::control_db("hooks"))).await;
    let count = |sql: &'static str| {
        let db = &db;
        async move {
            db.query_one(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get::<_, i64>(0)
        }
    };
    let recorded =
        count("SELECT count(*) FROM billing_events WHERE type = 'customer.subscription.updated'")
            .await;
    let stale = count("SELECT count(*) FROM billing_events WHERE outcome = 'stale'").await;
    let changes = count("SELECT count(*) FROM billing_plan_changes").await;
    let doubled_changes = count(
        "SELECT count(*) FROM (SELECT detail->>'event' FROM billing_plan_changes
                                 WHERE detail ? 'event' GROUP BY 1 HAVING count(*) > 1) d",
    )
    .await;
    let mut doubled_audit = 0i64;
    for i in 0..tenants {
        let url = app
            .provisioner
            .connect_url(&format!("hooks-{i}"))
            .await
            .expect("a tenant URL");
        let tenant = common::connect(&url.expose().parse().expect("a URL")).await;
        doubled_audit += tenant
            .query_one(
                "SELECT count(*) FROM (SELECT detail->>'change' FROM audit_log
                   WHERE action = 'billing.plan_changed' GROUP BY 1 HAVING count(*) > 1) d",
                &[],
            )
            .await
            .expect("the tenant's audit log")
            .get::<_, i64>(0);
    }
    server.stop().await.expect("stop bulkhead");

    // The floor, on the same cluster.
    let floor_db = "hooks_floor";
    common::create_private_database(&cluster, floor_db).await;
    let floor_config = common::config(&cluster, floor_db);
    common::connect(&floor_config)
        .await
        .batch_execute("CREATE TABLE floor_events (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
        .await
        .expect("the floor's table");
    let pool = Pool::builder(Manager::from_config(
        floor_config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    ))
    .max_size(16)
    .build()
    .expect("the floor's pool");
    let floor_addr = common::serve_baseline(
        axum::Router::new()
            .route("/webhooks/stripe", axum::routing::post(floor_handler))
            .with_state(pool),
    )
    .await;
    let mut floor = deliver(floor_addr, "localhost", payloads.clone()).await;

    let deliveries = payloads.len();
    let ours_json = ours.json(deliveries);
    let floor_json = floor.json(deliveries);
    let ratio = ours_json["deliveries_per_s"].as_f64().unwrap_or(0.0)
        / floor_json["deliveries_per_s"]
            .as_f64()
            .unwrap_or(1.0)
            .max(1.0);
    let double_applications = doubled_changes + doubled_audit;
    let report = json!({
        "bench": "webhooks",
        "commit": common::git_sha(),
        "machine": common::machine(),
        "quick": quick,
        "tenants": tenants,
        "events": events,
        "clients": CLIENTS,
        "bulkhead": ours_json,
        "floor": floor_json,
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "recorded": recorded,
        "stale": stale,
        "plan_changes": changes,
        "double_applications": double_applications,
        "goal": {"p99_ms": 50, "deliveries_per_s": 500},
    });
    let path = common::write_report("webhooks", &report);
    println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    eprintln!("wrote {}", path.display());
    assert_eq!(recorded as usize, events, "every event recorded once");
    assert_eq!(double_applications, 0, "no event applied twice");
    assert_eq!(ours.errors, 0, "every delivery answered 200");
}
