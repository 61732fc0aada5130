//! The pages a customer is sent to: Checkout (pay or decline) and the
//! Billing Portal (cancel). Plain HTML forms, no script.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::StandIn;
use super::api::{ApiError, parse_form};
use super::objects::UNIT_AMOUNT;

const TITLE: &str = "Stripe stand-in — test mode";

pub(super) async fn checkout_page(
    State(standin): State<StandIn>,
    Path(id): Path<String>,
) -> Response {
    let store = standin.store();
    let Some(session) = store.sessions.get(&id) else {
        return not_found("checkout session", &id);
    };
    let id = escape(&id);
    let body = if session.json["status"] == "open" {
        format!(
            "<p>Subscribe to <strong>{price}</strong> for {amount} USD a month \
             (customer {customer}).</p>\
             <form method=\"post\" action=\"/checkout/{id}/pay\"><button type=\"submit\">Pay</button></form>\
             <form method=\"post\" action=\"/checkout/{id}/decline\"><button type=\"submit\">Decline</button></form>",
            price = escape(&session.price),
            amount = UNIT_AMOUNT / 100,
            customer = escape(session.json["customer"].as_str().unwrap_or_default()),
        )
    } else {
        format!(
            "<p>This session is {}.</p>",
            escape(session.json["status"].as_str().unwrap_or_default())
        )
    };
    page("Checkout", &body).into_response()
}

pub(super) async fn pay(State(standin): State<StandIn>, Path(id): Path<String>) -> Response {
    let made = standin.store().pay(&id);
    match made {
        Ok(events) => standin.dispatch(events).await,
        Err(err) => return failed(err),
    }
    let store = standin.store();
    let success_url = store
        .sessions
        .get(&id)
        .and_then(|s| s.json["success_url"].as_str());
    let target = success_url
        .unwrap_or_default()
        .replace("{CHECKOUT_SESSION_ID}", &id);
    Redirect::to(&target).into_response()
}

pub(super) async fn decline(State(standin): State<StandIn>, Path(id): Path<String>) -> Response {
    let store = standin.store();
    let Some(session) = store.sessions.get(&id) else {
        return not_found("checkout session", &id);
    };
    match session.json["cancel_url"].as_str() {
        Some(url) => Redirect::to(url).into_response(),
        None => page(
            "Checkout",
            "<p>Declined; this session has no cancel URL.</p>",
        )
        .into_response(),
    }
}

pub(super) async fn portal_page(
    State(standin): State<StandIn>,
    Path(id): Path<String>,
) -> Response {
    let store = standin.store();
    let Some(portal) = store.portals.get(&id) else {
        return not_found("billing portal session", &id);
    };
    let mut body = format!("<p>Customer {}</p><ul>", escape(&portal.customer));
    for sub in store
        .subscriptions
        .iter()
        .filter(|s| s["customer"] == portal.customer.as_str())
    {
        let sub_id = escape(sub["id"].as_str().unwrap_or_default());
        let status = sub["status"].as_str().unwrap_or_default();
        let price = escape(
            sub["items"]["data"][0]["price"]["id"]
                .as_str()
                .unwrap_or_default(),
        );
        body.push_str(&format!("<li>{sub_id}: {price}, {}", escape(status)));
        if status != "canceled" {
            body.push_str(&format!(
                "<form method=\"post\" action=\"/portal/{pid}/cancel\">\
                 <input type=\"hidden\" name=\"subscription\" value=\"{sub_id}\">\
                 <button type=\"submit\">Cancel subscription</button></form>",
                pid = escape(&id),
            ));
        }
        body.push_str("</li>");
    }
    body.push_str("</ul>");
    if let Some(url) = &portal.return_url {
        body.push_str(&format!("<p><a href=\"{}\">Return</a></p>", escape(url)));
    }
    page("Billing portal", &body).into_response()
}

/// Cancels the subscription the form names (or every live one of the
/// customer's when it names none) at once, then returns.
pub(super) async fn portal_cancel(
    State(standin): State<StandIn>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = parse_form(&String::from_utf8_lossy(&body));
    let made = {
        let mut store = standin.store();
        let Some(portal) = store.portals.get(&id) else {
            return not_found("billing portal session", &id);
        };
        let (customer, return_url) = (portal.customer.clone(), portal.return_url.clone());
        let targets: Vec<String> = store
            .subscriptions
            .iter()
            .filter(|s| s["customer"] == customer.as_str() && s["status"] != "canceled")
            .filter_map(|s| s["id"].as_str().map(str::to_owned))
            .filter(|sub| form.get("subscription").is_none_or(|wanted| wanted == sub))
            .collect();
        let mut events = Vec::new();
        for sub in targets {
            match store.cancel(&sub) {
                Ok((_, made)) => events.extend(made),
                Err(err) => return failed(err),
            }
        }
        (events, return_url)
    };
    let (events, return_url) = made;
    standin.dispatch(events).await;
    match return_url {
        Some(url) => Redirect::to(&url).into_response(),
        None => page("Billing portal", "<p>Canceled.</p>").into_response(),
    }
}

fn page(heading: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{TITLE}</title><link rel=\"icon\" href=\"data:,\"></head>\
         <body><h1>{TITLE}</h1><h2>{heading}</h2>{body}</body></html>"
    ))
}

fn not_found(what: &str, id: &str) -> Response {
    let body = format!("<p>No such {what}: {}</p>", escape(id));
    (StatusCode::NOT_FOUND, page("Not found", &body)).into_response()
}

fn failed(err: ApiError) -> Response {
    let body = format!("<p>{}</p>", escape(err.message()));
    (err.status(), page("Error", &body)).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
