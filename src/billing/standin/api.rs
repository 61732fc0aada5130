//! The `/v1` API the stand-in answers: the calls `billing::stripe` makes,
//! form-encoded as async-stripe sends them, in Stripe's error shape.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use super::StandIn;
use super::objects::{self, checked};
use super::store::{NewSession, Portal, new_id, now};

/// An answer in Stripe's error shape.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    type_: &'static str,
    code: Option<&'static str>,
    param: Option<&'static str>,
    message: String,
}

impl ApiError {
    /// No object with this id: 404 for a path id, 400 for a parameter.
    pub fn no_such(what: &str, id: &str, param: Option<&'static str>) -> Self {
        let status = if param.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::NOT_FOUND
        };
        Self {
            status,
            type_: "invalid_request_error",
            code: Some("resource_missing"),
            param,
            message: format!("No such {what}: '{id}'"),
        }
    }

    pub fn invalid(message: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            type_: "invalid_request_error",
            code: None,
            param: None,
            message,
        }
    }

    pub fn missing(param: &'static str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            type_: "invalid_request_error",
            code: Some("parameter_missing"),
            param: Some(param),
            message: format!("Missing required param: {param}."),
        }
    }

    pub fn idempotency(key: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            type_: "idempotency_error",
            code: None,
            param: None,
            message: format!(
                "Keys for idempotent requests can only be used with the same parameters they were \
                 first used with. Try using a key other than '{key}' if you meant to execute a \
                 different request."
            ),
        }
    }

    /// The stand-in made something async-stripe cannot read: a bug here.
    pub fn bug(message: String) -> Self {
        tracing::error!(%message, "Stripe stand-in bug");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            type_: "api_error",
            code: None,
            param: None,
            message,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "type": self.type_, "message": self.message });
        if let Some(code) = self.code {
            error["code"] = json!(code);
        }
        if let Some(param) = self.param {
            error["param"] = json!(param);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// Refuses a request without `Authorization: Bearer <the secret key>`.
pub(super) async fn authorize(
    State(standin): State<StandIn>,
    request: Request,
    next: Next,
) -> Response {
    let expected = format!("Bearer {}", standin.0.settings.secret_key);
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if bool::from(given.ct_eq(expected.as_bytes())) {
        return next.run(request).await;
    }
    let error = json!({ "error": {
        "type": "invalid_request_error",
        "message": "Invalid API Key provided. (Stripe stand-in: use the key it was started with.)",
    }});
    (StatusCode::UNAUTHORIZED, Json(error)).into_response()
}

pub(super) async fn unknown_url(request: Request) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        type_: "invalid_request_error",
        code: None,
        param: None,
        message: format!(
            "Unrecognized request URL ({} {}).",
            request.method(),
            request.uri().path()
        ),
    }
}

pub(super) async fn create_customer(
    State(standin): State<StandIn>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let body = String::from_utf8_lossy(&body).into_owned();
    let form = parse_form(&body);
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let name = form.get("name").map(String::as_str);
    let customer = standin
        .store()
        .create_customer(key, &body, name, nested(&form, "metadata"))?;
    Ok(Json(customer))
}

pub(super) async fn get_customer(
    State(standin): State<StandIn>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = standin.store();
    let customer = store
        .customer(&id)
        .ok_or_else(|| ApiError::no_such("customer", &id, None))?;
    Ok(Json(customer.clone()))
}

pub(super) async fn create_checkout_session(
    State(standin): State<StandIn>,
    body: Bytes,
) -> ApiResult {
    let form = parse_form(&String::from_utf8_lossy(&body));
    let field = |name: &'static str| {
        form.get(name)
            .cloned()
            .ok_or_else(|| ApiError::missing(name))
    };
    if field("mode")? != "subscription" {
        return Err(ApiError::invalid(
            "The Stripe stand-in only makes subscription sessions.".into(),
        ));
    }
    let new = NewSession {
        customer: field("customer")?,
        price: field("line_items[0][price]")?,
        client_reference_id: form.get("client_reference_id").cloned(),
        metadata: nested(&form, "metadata"),
        subscription_metadata: nested(&form, "subscription_data[metadata]"),
        success_url: field("success_url")?,
        cancel_url: form.get("cancel_url").cloned(),
    };
    Ok(Json(standin.store().create_session(new)?))
}

pub(super) async fn get_checkout_session(
    State(standin): State<StandIn>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = standin.store();
    let session = store
        .sessions
        .get(&id)
        .ok_or_else(|| ApiError::no_such("checkout.session", &id, None))?;
    Ok(Json(session.json.clone()))
}

pub(super) async fn create_portal_session(
    State(standin): State<StandIn>,
    body: Bytes,
) -> ApiResult {
    let form = parse_form(&String::from_utf8_lossy(&body));
    let customer = form
        .get("customer")
        .cloned()
        .ok_or_else(|| ApiError::missing("customer"))?;
    let return_url = form.get("return_url").cloned();
    let mut store = standin.store();
    if store.customer(&customer).is_none() {
        return Err(ApiError::no_such("customer", &customer, Some("customer")));
    }
    let id = new_id("bps");
    let url = format!("{}portal/{id}", store.base_url);
    let session = objects::portal_session(&id, now(), &customer, return_url.as_deref(), &url);
    let session =
        checked::<stripe_billing::BillingPortalSession>(session, "billing portal session")?;
    store.portals.insert(
        id,
        Portal {
            customer,
            return_url,
        },
    );
    Ok(Json(session))
}

pub(super) async fn get_subscription(
    State(standin): State<StandIn>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = standin.store();
    let found = store
        .subscription(&id)
        .ok_or_else(|| ApiError::no_such("subscription", &id, None))?;
    Ok(Json(found.clone()))
}

/// `GET /v1/subscriptions`: newest first, by customer and status (`all`,
/// `ended`, one status, or by default every one not canceled), paged.
pub(super) async fn list_subscriptions(
    State(standin): State<StandIn>,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    let status = query.get("status").map_or("", String::as_str);
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(10)
        .clamp(1, 100);
    let store = standin.store();
    let mut matching: Vec<&Value> = store
        .subscriptions
        .iter()
        .rev()
        .filter(|s| {
            query
                .get("customer")
                .is_none_or(|c| s["customer"] == c.as_str())
        })
        .filter(|s| status_matches(s["status"].as_str().unwrap_or_default(), status))
        .collect();
    if let Some(after) = query.get("starting_after") {
        let position = matching.iter().position(|s| s["id"] == after.as_str());
        matching = matching.split_off(position.map_or(matching.len(), |p| p + 1));
    }
    let has_more = matching.len() > limit;
    let page = matching.into_iter().take(limit).cloned().collect();
    Ok(Json(objects::list("/v1/subscriptions", page, has_more)))
}

fn status_matches(actual: &str, wanted: &str) -> bool {
    match wanted {
        "all" => true,
        "" => actual != "canceled" && actual != "incomplete_expired",
        "ended" => actual == "canceled" || actual == "incomplete_expired",
        other => actual == other,
    }
}

pub(super) async fn cancel_subscription(
    State(standin): State<StandIn>,
    Path(id): Path<String>,
) -> ApiResult {
    let (canceled, events) = standin.store().cancel(&id)?;
    standin.dispatch(events).await;
    Ok(Json(canceled))
}

/// A form body as a flat map: `metadata[tenant_id]` stays one key.
pub(super) fn parse_form(body: &str) -> HashMap<String, String> {
    form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// The `prefix[key]=value` pairs of a form, as a JSON object of key → value.
fn nested(form: &HashMap<String, String>, prefix: &str) -> Map<String, Value> {
    form.iter()
        .filter_map(|(key, value)| {
            let inner = key
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?;
            (!inner.contains('[')).then(|| (inner.to_owned(), json!(value)))
        })
        .collect()
}
