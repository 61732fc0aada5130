//! The platform's own pages on admin.<base> (404 on any other host):
//! operator log-in with a second factor, tenant search and detail, the
//! actions with a reason each, break-glass access and the read-only view
//! of a tenant's data under it (a banner on every page of it), servers,
//! fleet runs and the platform audit log.
//!
//! Each page calls the admin API's own handler, with the operator the
//! request carries, so a page refuses exactly what the API refuses and
//! writes the same audit rows; the page only turns the answer into HTML.

use std::marker::PhantomData;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{PageError, assets, form_error, render, see_other, see_other_with_cookie};
use crate::auth::operator_perm::{AccessRequest, AdminRead, AdminWrite};
use crate::auth::{OperatorPerm, OperatorPermission};
use crate::control::AccessGrant;
use crate::http::api::{admin, admin_access, admin_actions, admin_fleet, admin_tenants};
use crate::http::extract::ClientIp;
use crate::http::input::{Json, Path, Query};
use crate::http::operator::{OperatorCaller, OperatorCan};
use crate::http::{Access, ApiError, AppState, Routes};

/// The read-only view's page: the tenant API's path after `view/`.
pub(crate) const VIEW: &str = "/admin/tenants/{slug}/view/{*path}";

pub(super) fn routes(routes: Routes) -> Routes {
    use axum::routing::{get, post};
    // Outside the tenants' roles: the operator's own permission is checked
    // by `PageOperator<P>` in each handler.
    let op = Access::Public;
    routes
        .page("/enrol", op, get(enrol_page).post(enrol))
        .page("/enrol/confirm", op, post(confirm))
        .page("/admin/login", op, get(login_page).post(login))
        .page("/admin/logout", op, post(logout))
        .page("/admin", op, get(search))
        .page("/admin/tenants/{slug}", op, get(tenant))
        .page("/admin/tenants/{slug}/act/{action}", op, post(act))
        .page("/admin/tenants/{slug}/access", op, post(ask_access))
        .page("/admin/tenants/{slug}/view", op, get(view_path))
        .page("/admin/access/{id}/revoke", op, post(end_access))
        .page("/admin/servers", op, get(servers))
        .page("/admin/runs", op, get(runs))
        .page("/admin/audit", op, get(audit))
}

/// What the admin layout shows around every page.
pub struct AdminChrome {
    pub assets: &'static assets::AssetUrls,
    /// The operator logged in (none on the log-in page).
    pub operator: Option<String>,
    pub role: String,
    /// The session's CSRF token, for the forms.
    pub csrf: String,
    /// Whether the operator's role may change things (the action forms).
    pub can_write: bool,
}

impl AdminChrome {
    fn of(op: &OperatorCaller) -> Self {
        Self {
            assets: assets::urls(),
            operator: Some(op.operator.email.clone()),
            role: op.operator.role.as_str().to_string(),
            csrf: op.csrf_token.clone(),
            can_write: OperatorPermission::ADMIN_WRITE.allows(op.operator.role),
        }
    }

    fn anonymous() -> Self {
        Self {
            assets: assets::urls(),
            operator: None,
            role: String::new(),
            csrf: String::new(),
            can_write: false,
        }
    }
}

/// The operator, holding permission `P`, for a page: without a session,
/// the log-in page; else as `OperatorCan<P>` (an error page for a role
/// that does not hold it, 404 on any host but admin.<base>).
pub struct PageOperator<P: OperatorPerm>(pub OperatorCaller, PhantomData<P>);

impl<P: OperatorPerm> FromRequestParts<AppState> for PageOperator<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match OperatorCan::<P>::from_request_parts(parts, state).await {
            Ok(OperatorCan(op, _)) => Ok(PageOperator(op, PhantomData)),
            Err(ApiError::Unauthorized) => Err(see_other("/admin/login")),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

impl<P: OperatorPerm> PageOperator<P> {
    /// The same operator, as the API handler `Q` takes it (the role was
    /// checked for `P`; the handler's own permission is checked again).
    fn as_can<Q: OperatorPerm>(&self) -> Result<OperatorCan<Q>, PageError> {
        if !Q::PERMISSION.allows(self.0.operator.role) {
            return Err(ApiError::Forbidden.into());
        }
        Ok(OperatorCan(self.0.clone(), PhantomData))
    }
}

/// A table of JSON items, for the list pages.
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<TableRow>,
}

pub struct TableRow {
    pub cells: Vec<String>,
    /// Where the row's first cell links to.
    pub link: Option<String>,
}

/// A JSON value as a table cell's text.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Object(o) if o.is_empty() => "—".into(),
        other => other.to_string(),
    }
}

impl Table {
    /// `items` with `columns` (every key of the first item when empty),
    /// each row linked to `link(item)`.
    fn of(items: &[Value], columns: &[&str], link: impl Fn(&Value) -> Option<String>) -> Self {
        let columns: Vec<String> = if columns.is_empty() {
            items
                .first()
                .and_then(Value::as_object)
                .map(|o| {
                    // The id first: the row's link is on it.
                    let mut keys: Vec<String> = o.keys().cloned().collect();
                    keys.sort_by_key(|k| k != "id");
                    keys
                })
                .unwrap_or_default()
        } else {
            columns.iter().map(|c| c.to_string()).collect()
        };
        let rows = items
            .iter()
            .map(|item| TableRow {
                cells: columns
                    .iter()
                    .map(|c| cell(item.get(c).unwrap_or(&Value::Null)))
                    .collect(),
                link: link(item),
            })
            .collect();
        Table { columns, rows }
    }

    /// One object as rows of (field, value).
    fn fields(object: &Value) -> Self {
        let rows = object
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| TableRow {
                        cells: vec![k.clone(), cell(v)],
                        link: None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Table {
            columns: vec!["Field".into(), "Value".into()],
            rows,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_enrol.html")]
struct EnrolPage {
    chrome: AdminChrome,
    token: String,
    error: Option<String>,
    /// After the password: what the app needs, shown once.
    factor: Option<Factor>,
}

/// A new second factor, shown once.
struct Factor {
    /// The QR code of `uri`, as a `data:` URL of its SVG.
    qr: String,
    uri: String,
    secret: String,
    recovery_codes: Vec<String>,
}

/// `GET /enrol`: the form the one-time enrolment link opens (the token is
/// in the link's fragment, which no server sees: `enrol.js` puts it in the
/// form; without JavaScript it is pasted).
async fn enrol_page(State(state): State<AppState>, parts: Parts) -> Result<Response, PageError> {
    crate::http::operator::admin_host(&parts, &state).await?;
    render(&EnrolPage {
        chrome: AdminChrome::anonymous(),
        token: String::new(),
        error: None,
        factor: None,
    })
}

#[derive(Debug, Deserialize)]
struct EnrolForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /enrol`: sets the password and a new second factor; shows the
/// QR code, the secret and the recovery codes once, and asks for a code.
async fn enrol(
    state: State<AppState>,
    peer: ClientIp,
    parts: Parts,
    axum::Form(form): axum::Form<EnrolForm>,
) -> Result<Response, PageError> {
    use base64::Engine as _;
    let req = admin::EnrolRequest {
        token: form.token.clone(),
        password: form.password,
    };
    let (factor, error, status) = match admin::enrol(state, peer, parts, Json(req)).await {
        Ok(Json(done)) => {
            let text = |k: &str| done[k].as_str().unwrap_or_default().to_string();
            let svg = text("qr_svg");
            let factor = Factor {
                qr: format!(
                    "data:image/svg+xml;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(svg)
                ),
                uri: text("otpauth_uri"),
                secret: text("secret"),
                recovery_codes: done["recovery_codes"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            (Some(factor), None, StatusCode::OK)
        }
        Err(e @ (ApiError::Validation(_) | ApiError::TooManyAttempts(_))) => {
            let text = form_error(&e);
            (None, Some(text), e.into_response().status())
        }
        Err(e) => return Err(e.into()),
    };
    let page = render(&EnrolPage {
        chrome: AdminChrome::anonymous(),
        token: form.token,
        error,
        factor,
    })?;
    Ok((status, page).into_response())
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    code: String,
}

/// `POST /enrol/confirm`: a code from the app completes the enrolment;
/// on to the log-in page.
async fn confirm(
    state: State<AppState>,
    peer: ClientIp,
    parts: Parts,
    axum::Form(form): axum::Form<ConfirmForm>,
) -> Result<Response, PageError> {
    let req = admin::ConfirmRequest {
        token: form.token.clone(),
        code: form.code,
    };
    match admin::confirm_enrolment(state, peer, parts, Json(req)).await {
        Ok(_) => Ok(see_other("/admin/login?enrolled=1")),
        Err(e @ (ApiError::Validation(_) | ApiError::TooManyAttempts(_))) => {
            let page = render(&EnrolPage {
                chrome: AdminChrome::anonymous(),
                token: form.token,
                error: Some(format!(
                    "{} Enrol again from your link if the secret was lost.",
                    form_error(&e)
                )),
                factor: None,
            })?;
            Ok((e.into_response().status(), page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage {
    chrome: AdminChrome,
    email: String,
    error: Option<String>,
    /// Just enrolled: says so.
    enrolled: bool,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    enrolled: Option<String>,
}

/// `GET /admin/login`.
async fn login_page(
    State(state): State<AppState>,
    parts: Parts,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    crate::http::operator::admin_host(&parts, &state).await?;
    render(&LoginPage {
        chrome: AdminChrome::anonymous(),
        email: String::new(),
        error: None,
        enrolled: q.enrolled.is_some(),
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// The authenticator app's six digits, or a recovery code.
    #[serde(default)]
    code: String,
}

/// `POST /admin/login`: the admin API's log-in from a form (a six-digit
/// code is the app's, anything else a recovery code).
async fn login(
    state: State<AppState>,
    peer: ClientIp,
    parts: Parts,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, PageError> {
    let code = form.code.trim().to_string();
    let app = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let req = admin::AdminLoginRequest {
        email: form.email.clone(),
        password: form.password,
        totp: app.then(|| code.clone()),
        recovery_code: (!app).then_some(code),
    };
    match admin::login(state, peer, parts, Json(req)).await {
        Ok(done) => Ok(see_other_with_cookie("/admin", &done)),
        Err(
            e @ (ApiError::InvalidCredentials
            | ApiError::Validation(_)
            | ApiError::TooManyAttempts(_)),
        ) => {
            let status = e.into_response().status();
            let error = match status {
                StatusCode::TOO_MANY_REQUESTS => {
                    "Too many attempts. Wait a few minutes and try again."
                }
                _ => "Wrong e-mail, password or code.",
            };
            let page = render(&LoginPage {
                chrome: AdminChrome::anonymous(),
                email: form.email,
                error: Some(error.into()),
                enrolled: false,
            })?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /admin/logout`.
async fn logout(
    state: State<AppState>,
    op: PageOperator<AdminRead>,
) -> Result<Response, PageError> {
    let done = admin::logout(state, op.0).await?;
    Ok(see_other_with_cookie("/admin/login", &done))
}

#[derive(Template)]
#[template(path = "admin_tenants.html")]
struct SearchPage {
    chrome: AdminChrome,
    q: String,
    found: Table,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SearchForm {
    #[serde(default)]
    q: String,
    cursor: Option<String>,
}

/// `GET /admin?q=`: tenants by slug, name, custom domain or member e-mail.
async fn search(
    state: State<AppState>,
    op: PageOperator<AdminRead>,
    Query(form): Query<SearchForm>,
) -> Result<Response, PageError> {
    let q = admin_tenants::SearchQuery {
        q: Some(form.q.clone()),
        cursor: form.cursor,
        limit: Some(50),
    };
    let Json(found) = admin_tenants::search_tenants(state, op.as_can()?, Query(q)).await?;
    let items = items(&found);
    let next = found["next_cursor"].as_str().map(|c| {
        format!(
            "/admin?{}",
            serde_urlencoded::to_string([("q", form.q.as_str()), ("cursor", c)])
                .unwrap_or_default()
        )
    });
    render(&SearchPage {
        chrome: AdminChrome::of(&op.0),
        q: form.q,
        found: Table::of(
            &items,
            &["slug", "display_name", "status", "plan", "mode", "server"],
            |t| t["slug"].as_str().map(|s| format!("/admin/tenants/{s}")),
        ),
        next,
    })
}

/// A list answer's `items`.
fn items(answer: &Value) -> Vec<Value> {
    answer["items"].as_array().cloned().unwrap_or_default()
}

#[derive(Template)]
#[template(path = "admin_tenant.html")]
struct TenantPage {
    chrome: AdminChrome,
    slug: String,
    status: String,
    detail: Table,
    grants: Vec<AccessGrant>,
    done: Option<String>,
    error: Option<String>,
    /// The operator may ask for read-write access (admins).
    read_write: bool,
}

#[derive(Debug, Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

/// `GET /admin/tenants/{slug}`: the detail, the actions, access grants.
async fn tenant(
    state: State<AppState>,
    op: PageOperator<AdminRead>,
    Path(slug): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PageError> {
    render(&tenant_page(&state, &op, &slug, q.done, None).await?)
}

async fn tenant_page(
    state: &State<AppState>,
    op: &PageOperator<AdminRead>,
    slug: &str,
    done: Option<String>,
    error: Option<String>,
) -> Result<TenantPage, PageError> {
    let Json(detail) = admin_tenants::get_tenant(
        state.clone(),
        op.as_can()?,
        axum::extract::Path(slug.into()),
    )
    .await?;
    let grants = state
        .control
        .access_grants(
            Some(crate::control::TenantId(
                detail["id"]
                    .as_str()
                    .and_then(|id| id.parse().ok())
                    .ok_or(ApiError::NotFound)?,
            )),
            None,
            20,
        )
        .await?;
    Ok(TenantPage {
        chrome: AdminChrome::of(&op.0),
        slug: slug.to_string(),
        status: cell(&detail["status"]),
        detail: Table::fields(&detail),
        grants,
        done,
        error,
        read_write: OperatorPermission::ACCESS_APPROVE.allows(op.0.operator.role),
    })
}

impl TenantPage {
    fn until(g: &AccessGrant) -> String {
        g.ends_at
            .map(|t| format!("{:02}:{:02} UTC", t.hour(), t.minute()))
            .unwrap_or_else(|| "—".into())
    }
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    until: String,
}

/// `POST /admin/tenants/{slug}/act/{action}`: suspend, reinstate, comp,
/// end-comp, end-sessions, rotate-credentials, cancel-subscription; each
/// with its reason. Back to the tenant, saying it was done, or the page
/// with what was refused.
async fn act(
    state: State<AppState>,
    op: PageOperator<AdminRead>,
    Path((slug, action)): Path<(String, String)>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    let can = op.as_can::<AdminWrite>()?;
    let path = axum::extract::Path(slug.clone());
    let reason = admin_actions::ReasonRequest {
        reason: Some(form.reason.clone()),
    };
    let done = match action.as_str() {
        "suspend" => admin_actions::suspend_tenant(state.clone(), can, path, Json(reason)).await,
        "reinstate" => {
            admin_actions::reinstate_tenant(state.clone(), can, path, Json(reason)).await
        }
        "comp" => {
            let comp = admin_actions::CompRequest {
                until: Some(form.until.clone()),
                reason: Some(form.reason.clone()),
            };
            admin_actions::comp_tenant(state.clone(), can, path, Json(comp)).await
        }
        "end-comp" => admin_actions::end_comp(state.clone(), can, path, Json(reason)).await,
        "end-sessions" => admin_actions::end_sessions(state.clone(), can, path, Json(reason)).await,
        "rotate-credentials" => {
            admin_actions::rotate_credentials(state.clone(), can, path, Json(reason)).await
        }
        "cancel-subscription" => {
            admin_actions::cancel_subscription(state.clone(), can, path, Json(reason)).await
        }
        _ => return Err(ApiError::NotFound.into()),
    };
    match done {
        Ok(_) => Ok(see_other(&format!("/admin/tenants/{slug}?done={action}"))),
        Err(e) => refused(&state, &op, &slug, e).await,
    }
}

/// The tenant's page again with what was refused and its status (422,
/// 409, 403); other errors as error pages.
async fn refused(
    state: &State<AppState>,
    op: &PageOperator<AdminRead>,
    slug: &str,
    e: ApiError,
) -> Result<Response, PageError> {
    if !matches!(
        e,
        ApiError::Validation(_)
            | ApiError::Conflict(_)
            | ApiError::Forbidden
            | ApiError::AccessRefused { .. }
    ) {
        return Err(e.into());
    }
    let text = form_error(&e);
    let status = e.into_response().status();
    let page = render(&tenant_page(state, op, slug, None, Some(text)).await?)?;
    Ok((status, page).into_response())
}

#[derive(Debug, Deserialize)]
struct AccessForm {
    #[serde(default)]
    reason: String,
    minutes: Option<i32>,
    mode: Option<String>,
}

/// `POST /admin/tenants/{slug}/access`: asks for access; a live grant
/// goes straight to the view, one that waits back to the tenant's page.
async fn ask_access(
    state: State<AppState>,
    op: PageOperator<AdminRead>,
    Path(slug): Path<String>,
    axum::Form(form): axum::Form<AccessForm>,
) -> Result<Response, PageError> {
    let asked = admin_access::AccessAsked {
        reason: Some(form.reason),
        minutes: form.minutes,
        mode: form.mode.filter(|m| !m.is_empty()),
    };
    let can = op.as_can::<AccessRequest>()?;
    match admin_access::request_access(state.clone(), can, Path(slug.clone()), Json(asked)).await {
        Ok((_, Json(grant))) if grant.state == "live" => {
            Ok(see_other(&format!("/admin/tenants/{slug}/view/projects")))
        }
        Ok(_) => Ok(see_other(&format!("/admin/tenants/{slug}?done=access"))),
        Err(e) => refused(&state, &op, &slug, e).await,
    }
}

/// `POST /admin/access/{id}/revoke`: ends a grant now; back to its tenant.
async fn end_access(
    state: State<AppState>,
    op: PageOperator<AccessRequest>,
    Path(id): Path<uuid::Uuid>,
) -> Result<Response, PageError> {
    let Json(grant) = admin_access::revoke_grant(state, op.as_can()?, Path(id)).await?;
    Ok(see_other(&format!(
        "/admin/tenants/{}?done=revoke",
        grant.tenant
    )))
}

#[derive(Debug, Deserialize)]
struct ViewForm {
    #[serde(default)]
    path: String,
}

/// `GET /admin/tenants/{slug}/view?path=`: the view of that path.
async fn view_path(
    _: PageOperator<AccessRequest>,
    Path(slug): Path<String>,
    Query(form): Query<ViewForm>,
) -> Response {
    let path = form
        .path
        .trim()
        .trim_start_matches('/')
        .trim_start_matches("api/");
    let path: String = path
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "/-_.?=&".contains(*c))
        .collect();
    see_other(&format!("/admin/tenants/{slug}/view/{path}"))
}

#[derive(Template)]
#[template(path = "admin_view.html")]
struct ViewPage {
    chrome: AdminChrome,
    slug: String,
    grant: AccessGrant,
    path: String,
    status: u16,
    table: Table,
    message: Option<String>,
}

impl ViewPage {
    fn until(&self) -> String {
        TenantPage::until(&self.grant)
    }
}

/// `GET /admin/tenants/{slug}/view/{path}`: the tenant API's `GET
/// /api/{path}` under the operator's live grant (break-glass: both audit
/// logs get the request), shown as a table under a banner that says whose
/// data this is, why, and until when.
pub(crate) async fn view(
    views: Router,
    state: State<AppState>,
    op: PageOperator<AccessRequest>,
    Path((slug, _)): Path<(String, String)>,
    uri: axum::http::Uri,
) -> Result<Response, PageError> {
    let marker = format!("/admin/tenants/{slug}/view/");
    let rest = uri
        .path()
        .strip_prefix(&marker)
        .ok_or(ApiError::NotFound)?
        .to_string();
    let target = match uri.query() {
        Some(query) => format!("/api/{rest}?{query}"),
        None => format!("/api/{rest}"),
    };
    let (grant, answer) = crate::http::break_glass::serve(
        views,
        &state,
        &op.0,
        &slug,
        &Method::GET,
        &target,
        &Default::default(),
        axum::body::Body::empty(),
    )
    .await?;
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), 4 << 20)
        .await
        .map_err(|e| ApiError::Internal(format!("the view's answer: {e}")))?;
    let json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let base = format!("/admin/tenants/{slug}/view/{}", rest.trim_end_matches('/'));
    let (table, message) = if !status.is_success() {
        let message = json["error"]["message"]
            .as_str()
            .or(json["error"].as_str())
            .unwrap_or("the tenant's API refused this")
            .to_string();
        (Table::of(&[], &[], |_| None), Some(message))
    } else if json.get("items").is_some() {
        let items = items(&json);
        let table = Table::of(&items, &[], |item| match &item["id"] {
            Value::Number(n) => Some(format!("{base}/{n}")),
            Value::String(s) => Some(format!("{base}/{s}")),
            _ => None,
        });
        let none = items.is_empty().then(|| "Nothing here.".to_string());
        (table, none)
    } else {
        (Table::fields(&json), None)
    };
    let page = render(&ViewPage {
        chrome: AdminChrome::of(&op.0),
        slug,
        grant,
        path: rest,
        status: status.as_u16(),
        table,
        message,
    })?;
    Ok((status, page).into_response())
}

#[derive(Template)]
#[template(path = "admin_table.html")]
struct TablePage {
    chrome: AdminChrome,
    title: &'static str,
    intro: &'static str,
    table: Table,
    /// The platform audit log's filters (its page only).
    filters: Option<AuditForm>,
    next: Option<String>,
}

/// `GET /admin/servers`: tenants against capacity, connections in use.
async fn servers(
    state: State<AppState>,
    op: PageOperator<AdminRead>,
) -> Result<Response, PageError> {
    let Json(found) = admin_fleet::list_servers(state, op.as_can()?).await?;
    render(&TablePage {
        chrome: AdminChrome::of(&op.0),
        title: "Servers",
        intro: "Connections are this instance's own, against its share of each budget.",
        table: Table::of(
            &items(&found),
            &[
                "name",
                "state",
                "tenants",
                "capacity",
                "connections_in_use",
                "connection_budget",
                "template_version",
            ],
            |_| None,
        ),
        filters: None,
        next: None,
    })
}

#[derive(Debug, Deserialize)]
struct CursorForm {
    cursor: Option<String>,
}

/// `GET /admin/runs`: fleet migration runs, newest first.
async fn runs(
    state: State<AppState>,
    op: PageOperator<AdminRead>,
    Query(form): Query<CursorForm>,
) -> Result<Response, PageError> {
    let q = crate::http::api::PageQuery {
        cursor: form.cursor,
        limit: Some(50),
    };
    let Json(page) = admin_fleet::list_runs(state, op.as_can()?, Query(q)).await?;
    let next = page
        .next_cursor
        .as_ref()
        .map(|c| format!("/admin/runs?cursor={c}"));
    let rows = serde_json::to_value(&page.items).unwrap_or_default();
    render(&TablePage {
        chrome: AdminChrome::of(&op.0),
        title: "Fleet runs",
        intro: "Migrations of every tenant database, in lockstep; the CLI starts them.",
        table: Table::of(
            rows.as_array().map(Vec::as_slice).unwrap_or_default(),
            &[
                "id",
                "state",
                "target_version",
                "started_at",
                "finished_at",
                "counts",
            ],
            |_| None,
        ),
        filters: None,
        next,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub action: String,
    pub cursor: Option<String>,
}

/// `GET /admin/audit?tenant=&actor=&action=`: the platform audit log,
/// newest first.
async fn audit(
    state: State<AppState>,
    op: PageOperator<AdminRead>,
    Query(form): Query<AuditForm>,
) -> Result<Response, PageError> {
    let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let q = admin_tenants::AuditQuery {
        cursor: form.cursor.clone(),
        limit: Some(50),
        tenant: some(&form.tenant),
        actor: some(&form.actor),
        action: some(&form.action),
    };
    let Json(page) = admin_tenants::list_platform_audit(state, op.as_can()?, Query(q)).await?;
    let next = page.next_cursor.as_ref().map(|c| {
        let query = serde_urlencoded::to_string([
            ("tenant", form.tenant.as_str()),
            ("actor", form.actor.as_str()),
            ("action", form.action.as_str()),
            ("cursor", c.as_str()),
        ])
        .unwrap_or_default();
        format!("/admin/audit?{query}")
    });
    let rows = serde_json::to_value(&page.items).unwrap_or_default();
    render(&TablePage {
        chrome: AdminChrome::of(&op.0),
        title: "Platform audit log",
        intro: "Every operator log-in and action, with its reason; nobody can edit it.",
        table: Table::of(
            rows.as_array().map(Vec::as_slice).unwrap_or_default(),
            &["at", "actor", "action", "detail"],
            |_| None,
        ),
        filters: Some(form),
        next,
    })
}
