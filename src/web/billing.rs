//! The billing page: the plan and what gives it, usage against the free
//! plan's limits, a past-due banner; owners upgrade (Stripe Checkout) or
//! manage their subscription (the Billing Portal) from it. Stripe sends
//! the payer back here.

use askama::Template;
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::Response;
use serde_json::Value;

use super::{Chrome, PageCan, PageError, render, see_other};
use crate::auth::{Permission, perm};
use crate::http::api::billing::{open_portal, start_checkout, summary};
use crate::http::extract::{Db, authority};
use crate::http::{Access, AppState, Routes};

pub(super) fn routes(routes: Routes) -> Routes {
    use axum::routing::{get, post};
    routes
        .page(
            "/billing",
            Access::Requires(Permission::BILLING_READ),
            get(billing),
        )
        .page(
            "/billing/checkout",
            Access::Requires(Permission::BILLING_MANAGE),
            post(checkout),
        )
        .page(
            "/billing/portal",
            Access::Requires(Permission::BILLING_MANAGE),
            post(portal),
        )
}

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    chrome: Chrome,
    summary: Value,
    can_manage: bool,
    /// `?checkout=success|canceled`, as Stripe sends the payer back.
    back_from: Option<String>,
}

impl BillingPage {
    fn text(&self, key: &str) -> Option<&str> {
        self.summary.get(key).and_then(Value::as_str)
    }

    fn status(&self) -> Option<&str> {
        self.summary["subscription"]["status"].as_str()
    }

    /// (used, limit) of `what` (`projects`, `members`); no limit on pro.
    fn usage(&self, what: &str) -> (i64, Option<i64>) {
        let u = &self.summary["usage"][what];
        (u["used"].as_i64().unwrap_or(0), u["limit"].as_i64())
    }

    /// What gives the plan, in words (none on free).
    fn source(&self) -> Option<String> {
        Some(match self.text("plan_source")? {
            "comp" => match self.text("comp_until") {
                Some(until) => format!("given by the vendor until {until}"),
                None => "given by the vendor".into(),
            },
            "stripe" => "your subscription".into(),
            _ => "set by the vendor".into(),
        })
    }

    /// What to say to a payer Stripe sent back.
    fn back_message(&self) -> Option<&'static str> {
        match self.back_from.as_deref()? {
            "success" => Some(
                "Thank you: your payment went through. The plan changes as soon as Stripe confirms it.",
            ),
            _ => Some("Checkout was canceled; nothing changed."),
        }
    }

    fn enabled(&self) -> bool {
        self.text("billing") != Some("disabled")
    }

    /// A live subscription: manage it, no second checkout.
    fn live(&self) -> bool {
        matches!(self.status(), Some("active" | "trialing" | "past_due"))
    }
}

#[derive(Debug, serde::Deserialize)]
struct Back {
    checkout: Option<String>,
}

/// `GET /billing`.
async fn billing(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::BillingRead>,
    Db(db): Db,
    crate::http::input::Query(back): crate::http::input::Query<Back>,
) -> Result<Response, PageError> {
    let summary = summary(&state, &caller, &db).await?;
    render(&BillingPage {
        chrome: Chrome::of(&caller),
        summary,
        can_manage: caller.role().allows(Permission::BILLING_MANAGE),
        back_from: back.checkout.filter(|c| c == "success" || c == "canceled"),
    })
}

/// `POST /billing/checkout`: on to Stripe Checkout.
async fn checkout(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::BillingManage>,
    Db(mut db): Db,
    parts: Parts,
) -> Result<Response, PageError> {
    let url = start_checkout(&state, &caller, &mut db, authority(&parts).ok()).await?;
    Ok(see_other(&url))
}

/// `POST /billing/portal`: on to the Stripe Billing Portal.
async fn portal(
    State(state): State<AppState>,
    PageCan(caller, _): PageCan<perm::BillingManage>,
    parts: Parts,
) -> Result<Response, PageError> {
    let url = open_portal(&state, &caller, authority(&parts).ok()).await?;
    Ok(see_other(&url))
}
