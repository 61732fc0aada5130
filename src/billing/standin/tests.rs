//! The stand-in driven through `billing::stripe`, as the platform drives it,
//! with a small receiver collecting the webhooks it sends.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::json;
use uuid::Uuid;

use super::{Delivery, StandIn, StandInSettings};
use crate::billing::stripe::{
    CheckoutRequest, EventKind, Stripe, StripeError, SubscriptionStatus, WebhookEvent,
    WebhookRejection, verify_webhook,
};

const KEY: &str = "sk_test_standin";
const WHSEC: &str = "whsec_standin";
const PRICE: &str = "price_pro";
const APEX: &str = "bulkhead.test";

/// One delivered webhook: its Host, its signature header and its body.
#[derive(Clone, Debug)]
struct Received {
    host: String,
    signature: String,
    body: String,
}

type Inbox = Arc<Mutex<Vec<Received>>>;

struct Harness {
    standin: StandIn,
    stripe: Stripe,
    inbox: Inbox,
    browser: reqwest::Client,
}

impl Harness {
    async fn start() -> Self {
        let inbox = Inbox::default();
        let receiver = receive_webhooks(inbox.clone()).await;
        let standin = StandIn::start(StandInSettings {
            listen: "127.0.0.1:0".parse().expect("an address"),
            secret_key: KEY.into(),
            webhook_url: format!("http://{receiver}/webhooks/stripe"),
            webhook_host: Some(APEX.into()),
            webhook_secret: WHSEC.into(),
            prices: vec![PRICE.into()],
        })
        .await
        .expect("the stand-in starts");
        let stripe = Stripe::new(KEY, Some(&standin.base_url()));
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        Self {
            standin,
            stripe,
            inbox,
            browser,
        }
    }

    /// The webhooks received so far, each verified and read.
    fn events(&self) -> Vec<WebhookEvent> {
        let inbox = self.inbox.lock().expect("inbox").clone();
        let read = |r: Received| {
            assert_eq!(r.host, APEX);
            verify_webhook(&r.body, &r.signature, WHSEC).expect("a valid webhook")
        };
        inbox.into_iter().map(read).collect()
    }

    async fn customer(&self, tenant: Uuid) -> String {
        let key = format!("customer-{tenant}");
        self.stripe
            .create_customer(tenant, "Acme", &key)
            .await
            .expect("a customer")
    }

    async fn checkout(
        &self,
        tenant: Uuid,
        customer: &str,
        price: &str,
    ) -> Result<String, StripeError> {
        let req = CheckoutRequest {
            customer,
            tenant,
            price,
            success_url: "http://app.test/billing/done?session={CHECKOUT_SESSION_ID}",
            cancel_url: "http://app.test/billing/cancel",
        };
        self.stripe.checkout(&req).await
    }

    /// A paid subscription for a new tenant: (tenant, customer, subscription).
    async fn subscribed(&self) -> (Uuid, String, String) {
        let tenant = Uuid::new_v4();
        let customer = self.customer(tenant).await;
        let url = self
            .checkout(tenant, &customer, PRICE)
            .await
            .expect("a session");
        let answer = self
            .browser
            .post(format!("{url}/pay"))
            .send()
            .await
            .expect("paid");
        assert_eq!(answer.status(), 303);
        let subs = self
            .stripe
            .subscriptions_of(&customer)
            .await
            .expect("listed");
        let sub = subs.first().expect("a subscription").id.clone();
        (tenant, customer, sub)
    }
}

async fn receive_webhooks(inbox: Inbox) -> SocketAddr {
    async fn take(State(inbox): State<Inbox>, headers: HeaderMap, body: String) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let received = Received {
            host: header("host"),
            signature: header("stripe-signature"),
            body,
        };
        inbox.lock().expect("inbox").push(received);
    }
    let app = Router::new()
        .route("/webhooks/stripe", post(take))
        .with_state(inbox);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn the_same_idempotency_key_makes_one_customer() {
    let h = Harness::start().await;
    let tenant = Uuid::new_v4();
    let first = h
        .stripe
        .create_customer(tenant, "Acme", "key-1")
        .await
        .expect("created");
    let again = h
        .stripe
        .create_customer(tenant, "Acme", "key-1")
        .await
        .expect("replayed");
    assert_eq!(first, again);
    assert!(first.starts_with("cus_"));
    assert_eq!(
        h.standin.customers(),
        vec![(first.clone(), Some(tenant.to_string()))]
    );

    let other = h
        .stripe
        .create_customer(tenant, "Acme", "key-2")
        .await
        .expect("created");
    assert_ne!(other, first);
    let reused = h
        .stripe
        .create_customer(tenant, "Other name", "key-1")
        .await;
    assert!(
        matches!(reused, Err(StripeError::Refused { status: 400, .. })),
        "{reused:?}"
    );
}

#[tokio::test]
async fn paying_at_checkout_makes_an_active_subscription_and_three_webhooks() {
    let h = Harness::start().await;
    let tenant = Uuid::new_v4();
    let customer = h.customer(tenant).await;
    let url = h
        .checkout(tenant, &customer, PRICE)
        .await
        .expect("a session");
    let session = url.rsplit('/').next().expect("an id").to_owned();
    assert_eq!(url, format!("{}checkout/{session}", h.standin.base_url()));
    assert!(session.starts_with("cs_test_"));

    let page = h
        .browser
        .get(&url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("Stripe stand-in — test mode") && page.contains(PRICE),
        "{page}"
    );

    let paid = h
        .browser
        .post(format!("{url}/pay"))
        .send()
        .await
        .expect("paid");
    assert_eq!(paid.status(), 303);
    let location = paid.headers()["location"].to_str().expect("ascii");
    assert_eq!(
        location,
        format!("http://app.test/billing/done?session={session}")
    );

    let subs = h.stripe.subscriptions_of(&customer).await.expect("listed");
    assert_eq!(subs.len(), 1);
    let sub = &subs[0];
    assert_eq!(
        (sub.status, sub.price.as_deref()),
        (SubscriptionStatus::Active, Some(PRICE))
    );
    let month_ahead = super::store::now() + 30 * 86_400;
    assert!(
        sub.current_period_end
            .is_some_and(|end| (end - month_ahead).abs() < 60)
    );
    assert_eq!(&h.stripe.subscription(&sub.id).await.expect("found"), sub);
    let stored = h.standin.checkout_session_json(&session).expect("stored");
    assert_eq!(
        (stored["status"].as_str(), stored["subscription"].as_str()),
        (Some("complete"), Some(sub.id.as_str()))
    );

    let events = h.events();
    let types: Vec<&str> = events.iter().map(|e| e.type_.as_str()).collect();
    assert_eq!(
        types,
        [
            "customer.subscription.created",
            "checkout.session.completed",
            "invoice.paid"
        ]
    );
    assert!(
        matches!(&events[0].kind, EventKind::Subscription { deleted: false, state } if state == sub)
    );
    let EventKind::CheckoutCompleted {
        client_reference_id,
        customer: paid_by,
        subscription,
        ..
    } = &events[1].kind
    else {
        panic!("not a completed checkout: {:?}", events[1]);
    };
    assert_eq!(
        client_reference_id.as_deref(),
        Some(tenant.to_string().as_str())
    );
    assert_eq!(
        (paid_by.as_deref(), subscription.as_deref()),
        (Some(customer.as_str()), Some(sub.id.as_str()))
    );
    let EventKind::Invoice {
        paid, subscription, ..
    } = &events[2].kind
    else {
        panic!("not an invoice: {:?}", events[2]);
    };
    assert!(*paid);
    assert_eq!(subscription.as_deref(), Some(sub.id.as_str()));
    assert!(events.windows(2).all(|w| w[0].created < w[1].created));
    let metadata = &h.standin.subscriptions_of(&customer)[0]["metadata"];
    assert_eq!(metadata["tenant_id"], tenant.to_string());

    let again = h
        .browser
        .post(format!("{url}/pay"))
        .send()
        .await
        .expect("paid twice");
    assert_eq!(again.status(), 303);
    assert_eq!(
        h.stripe
            .subscriptions_of(&customer)
            .await
            .expect("listed")
            .len(),
        1
    );
    assert_eq!(h.events().len(), 3);
}

#[tokio::test]
async fn checkout_refuses_an_unknown_price_and_declining_goes_back() {
    let h = Harness::start().await;
    let tenant = Uuid::new_v4();
    let customer = h.customer(tenant).await;
    let refused = h.checkout(tenant, &customer, "price_nope").await;
    assert!(
        matches!(&refused, Err(StripeError::Refused { status: 400, message }) if message.contains("price_nope"))
    );

    let url = h
        .checkout(tenant, &customer, PRICE)
        .await
        .expect("a session");
    let declined = h
        .browser
        .post(format!("{url}/decline"))
        .send()
        .await
        .expect("declined");
    assert_eq!(declined.status(), 303);
    assert_eq!(
        declined.headers()["location"],
        "http://app.test/billing/cancel"
    );
    assert!(h.standin.subscriptions_of(&customer).is_empty());
    assert!(h.events().is_empty());
}

#[tokio::test]
async fn the_portal_cancels_a_subscription_at_once() {
    let h = Harness::start().await;
    let (_, customer, sub) = h.subscribed().await;
    let url = h
        .stripe
        .portal(&customer, "http://app.test/billing")
        .await
        .expect("a portal");
    assert!(url.starts_with(&format!("{}portal/bps_", h.standin.base_url())));
    let page = h
        .browser
        .get(&url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("Cancel subscription") && page.contains(&sub),
        "{page}"
    );

    let form = format!("subscription={sub}");
    let canceled = h
        .browser
        .post(format!("{url}/cancel"))
        .body(form)
        .send()
        .await
        .expect("canceled");
    assert_eq!(canceled.status(), 303);
    assert_eq!(canceled.headers()["location"], "http://app.test/billing");
    let state = h.stripe.subscription(&sub).await.expect("found");
    assert_eq!(state.status, SubscriptionStatus::Canceled);
    let last = h.events().pop().expect("an event");
    assert!(
        matches!(last.kind, EventKind::Subscription { deleted: true, ref state } if state.id == sub)
    );
}

#[tokio::test]
async fn cancel_subscription_ends_it_and_a_second_cancel_is_refused() {
    let h = Harness::start().await;
    let (_, customer, sub) = h.subscribed().await;
    let canceled = h.stripe.cancel_subscription(&sub).await.expect("canceled");
    assert_eq!(canceled.status, SubscriptionStatus::Canceled);
    assert!(h.standin.subscription_json(&sub).expect("kept")["ended_at"].is_i64());
    assert_eq!(
        h.events().last().map(|e| e.type_.clone()).as_deref(),
        Some("customer.subscription.deleted")
    );
    let listed = h.stripe.subscriptions_of(&customer).await.expect("listed");
    assert_eq!(listed, vec![canceled]);

    let again = h.stripe.cancel_subscription(&sub).await;
    assert!(
        matches!(again, Err(StripeError::Refused { status: 400, .. })),
        "{again:?}"
    );
    let missing = h.stripe.subscription("sub_missing").await;
    assert!(
        matches!(&missing, Err(StripeError::Refused { status: 404, message }) if message.contains("sub_missing"))
    );
}

#[tokio::test]
async fn a_stopped_stand_in_is_unreachable_and_restarts_with_its_state() {
    let h = Harness::start().await;
    let tenant = Uuid::new_v4();
    let customer = h
        .stripe
        .create_customer(tenant, "Acme", "key")
        .await
        .expect("created");
    h.standin.stop().await;

    let started = Instant::now();
    let down = h.stripe.create_customer(tenant, "Acme", "key").await;
    assert!(matches!(down, Err(StripeError::Unreachable(_))), "{down:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    h.standin.restart().await.expect("listening again");
    let again = h
        .stripe
        .create_customer(tenant, "Acme", "key")
        .await
        .expect("replayed");
    assert_eq!(again, customer);
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_401() {
    let h = Harness::start().await;
    let wrong = Stripe::new("sk_test_wrong", Some(&h.standin.base_url()));
    let refused = wrong.create_customer(Uuid::new_v4(), "Acme", "key").await;
    assert!(
        matches!(refused, Err(StripeError::Refused { status: 401, .. })),
        "{refused:?}"
    );
    assert!(h.standin.customers().is_empty());
}

#[tokio::test]
async fn a_failed_payment_and_its_recovery_make_stripes_events() {
    let h = Harness::start().await;
    let (_, _, sub) = h.subscribed().await;
    let before = h.events().len();

    let failed = h.standin.set_status(&sub, "past_due").await;
    let types: Vec<&str> = failed.iter().map(|e| e.type_.as_str()).collect();
    assert_eq!(
        types,
        ["customer.subscription.updated", "invoice.payment_failed"]
    );
    let events = h.events().split_off(before);
    assert!(
        matches!(&events[0].kind, EventKind::Subscription { deleted: false, state } if state.status == SubscriptionStatus::PastDue)
    );
    assert!(
        matches!(&events[1].kind, EventKind::Invoice { paid: false, subscription: Some(s), .. } if *s == sub)
    );

    h.standin.set_delivery(Delivery::Hold);
    let recovered = h.standin.set_status(&sub, "active").await;
    let types: Vec<&str> = recovered.iter().map(|e| e.type_.as_str()).collect();
    assert_eq!(types, ["customer.subscription.updated", "invoice.paid"]);
    assert_eq!(h.events().len(), before + 2, "held events are not sent");
    assert_eq!(h.standin.held().len(), 2);
    let held = h.standin.take_held();
    assert!(h.standin.held().is_empty());
    assert_eq!(
        h.standin.deliver(&held[1].payload, 3).await,
        vec![200, 200, 200]
    );
    let delivered = h.events().split_off(before + 2);
    assert!(
        delivered
            .iter()
            .all(|e| matches!(e.kind, EventKind::Invoice { paid: true, .. }))
    );
    assert_eq!(
        h.stripe.subscription(&sub).await.expect("found").status,
        SubscriptionStatus::Active
    );
    assert!(
        h.standin
            .events()
            .windows(2)
            .all(|w| w[0].created < w[1].created)
    );
}

#[tokio::test]
async fn verify_webhook_rejects_bad_signatures_and_tolerates_unknown_events() {
    let h = Harness::start().await;
    let (_, _, sub) = h.subscribed().await;
    let event = h.standin.events().pop().expect("an event");
    let payload = event.payload.as_str();
    let now = super::store::now();
    let good = h.standin.sign(payload, now);
    assert!(verify_webhook(payload, &good, WHSEC).is_ok());

    let signature = |result: Result<WebhookEvent, WebhookRejection>| {
        matches!(result, Err(WebhookRejection::Signature(_)))
    };
    assert!(signature(verify_webhook(payload, &good, "whsec_other")));
    // One byte changed (to another byte: a random id may end in `x`).
    let last = if sub.ends_with('x') { "y" } else { "x" };
    let changed = payload.replacen(&sub, &format!("{}{last}", &sub[..sub.len() - 1]), 1);
    assert_ne!(changed, payload);
    assert!(signature(verify_webhook(&changed, &good, WHSEC)));
    assert!(signature(verify_webhook(
        payload,
        &h.standin.sign(payload, now - 301),
        WHSEC
    )));
    assert!(signature(verify_webhook(payload, "v1=abc", WHSEC)));
    assert!(signature(verify_webhook(payload, "", WHSEC)));
    assert_eq!(
        h.standin.deliver_signed(payload, "t=1,v1=00").await,
        200,
        "the receiver takes anything"
    );

    let unknown = h
        .standin
        .make_event("thing.happened", json!({ "object": "thing" }), now);
    let read = verify_webhook(
        &unknown.payload,
        &h.standin.sign(&unknown.payload, now),
        WHSEC,
    );
    assert!(
        matches!(
            read,
            Ok(WebhookEvent {
                kind: EventKind::Other,
                ..
            })
        ),
        "{read:?}"
    );

    let bad = h
        .standin
        .make_event("invoice.paid", json!({ "object": "invoice", "id": 7 }), now);
    let read = verify_webhook(&bad.payload, &h.standin.sign(&bad.payload, now), WHSEC);
    let Err(WebhookRejection::Unreadable { event_id, .. }) = read else {
        panic!("not unreadable: {read:?}");
    };
    assert_eq!(event_id, Some(bad.id));
}

#[test]
fn an_object_async_stripe_cannot_read_is_a_500_naming_the_shape() {
    let wrong = json!({ "id": "sub_x", "object": "subscription" });
    let err = super::objects::checked::<stripe_shared::Subscription>(wrong, "subscription")
        .expect_err("not a subscription");
    assert_eq!(err.status(), 500);
    assert!(err.message().contains("subscription") && err.message().contains("sub_x"));
}
