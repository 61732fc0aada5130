//! Every route, each with what it takes to call it: the platform's own here,
//! a product's added through [`Routes`] (see [`crate::app::Builder::routes`]).
//! The list ([`routes`]) is what the tests walk: every route as every role.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};

use super::api::{
    admin, admin_access, admin_actions, admin_fleet, admin_tenants, audit, billing, invitations,
    members, people, settings, support_access, tokens,
};
use super::break_glass;
use super::error::ApiError;
use super::ops;
use super::state::AppState;
use crate::auth::{OperatorPermission, Permission};

/// What a route requires of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone (sign-up, log-in, health, domain verification).
    Public,
    /// Any caller authenticated for the tenant (its own session or token).
    Authenticated,
    /// A caller whose role has this permission.
    Requires(Permission),
}

/// A route and what it requires of its caller.
#[derive(Clone, Debug)]
pub struct RouteSpec {
    /// Its method.
    pub method: Method,
    /// With `{name}` placeholders, as axum writes them.
    pub path: &'static str,
    /// What it requires of its caller.
    pub access: Access,
}

/// An admin route (admin.<base> only) and the operator permission it
/// needs: what the operator permission matrix test walks.
#[derive(Clone, Debug)]
pub struct OperatorRouteSpec {
    /// Its method.
    pub method: Method,
    /// With `{name}` placeholders, as axum writes them.
    pub path: &'static str,
    /// What the operator's role must hold.
    pub permission: OperatorPermission,
}

/// Routes being assembled, each with what it requires of its caller: a
/// product's handlers take the extractors of [`crate::http::extract`]
/// (`Db`, `Can<P>`, `Caller`) and answer [`crate::http::ApiResult`].
///
/// `Access` is what the route is listed with (and what the tests walk every
/// role through); the handler's own `Can<P>` is what enforces it, before any
/// tenant connection is opened.
pub struct Routes {
    router: Router<AppState>,
    /// The routes that require a permission, again: what an operator's
    /// break-glass view of a tenant serves (see `http::break_glass`).
    views: Router<AppState>,
    /// The pages (HTML), served with the security headers.
    pages: Router<AppState>,
    page_specs: Vec<RouteSpec>,
    specs: Vec<RouteSpec>,
    operator_specs: Vec<OperatorRouteSpec>,
}

impl Routes {
    /// `handler` (a method router: `axum::routing::get(h)`…) at `path`.
    pub fn at(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        if let Access::Requires(_) = access {
            self.views = self.views.route(path, handler.clone());
        }
        self.router = self.router.route(path, handler);
        self.specs.push(RouteSpec {
            method,
            path,
            access,
        });
        self
    }

    /// `handler` for `GET path`.
    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.at(Method::GET, path, access, get(h))
    }

    /// `handler` for `POST path`.
    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.at(Method::POST, path, access, post(h))
    }

    /// `handler` for `PATCH path`.
    pub fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.at(Method::PATCH, path, access, patch(h))
    }

    /// `handler` for `DELETE path`.
    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.at(Method::DELETE, path, access, delete(h))
    }
}

impl Routes {
    /// A page (HTML, see [`crate::web`]) at `path`, its handler taking
    /// `PageCan<P>` where `access` names a permission.
    /// Not an API route: listed apart ([`Self::page_specs`]).
    pub fn page(
        mut self,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.pages = self.pages.route(path, handler);
        self.page_specs.push(RouteSpec {
            method: Method::GET,
            path,
            access,
        });
        self
    }

    /// The pages, in the order they were added.
    pub fn page_specs(&self) -> &[RouteSpec] {
        &self.page_specs
    }
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            views: Router::new(),
            pages: Router::new(),
            page_specs: Vec::new(),
            specs: Vec::new(),
            operator_specs: Vec::new(),
        }
    }

    /// An admin route: outside the tenant roles (listed `Public` for them),
    /// needing `permission` of an operator, which the handler's
    /// `OperatorCan<P>` enforces.
    fn operator(
        mut self,
        method: Method,
        path: &'static str,
        permission: OperatorPermission,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.operator_specs.push(OperatorRouteSpec {
            method: method.clone(),
            path,
            permission,
        });
        self.at(method, path, Access::Public, handler)
    }

    /// What every route requires, in the order they were added.
    pub fn specs(&self) -> &[RouteSpec] {
        &self.specs
    }
}

/// The platform's routes: operations, people, invitations, tokens, audit.
fn platform() -> Routes {
    use Access::{Authenticated, Public, Requires};
    crate::web::routes(Routes::new())
        .get("/healthz", Public, ops::healthz)
        .get("/readyz", Public, ops::readyz)
        .get("/internal/tls-ask", Public, ops::tls_ask)
        .get(
            "/.well-known/bulkhead-verify/{token}",
            Public,
            ops::domain_verification,
        )
        .post("/api/signup", Public, people::signup)
        .post("/api/login", Public, people::login)
        .post("/api/logout", Authenticated, people::logout)
        .post(
            "/api/logout-everywhere",
            Authenticated,
            people::logout_everywhere,
        )
        .get("/api/me", Authenticated, people::me)
        .get(
            "/api/members",
            Requires(Permission::MEMBER_READ),
            members::list_members,
        )
        .post("/api/members/leave", Authenticated, members::leave)
        .patch(
            "/api/members/{id}",
            Requires(Permission::MEMBER_MANAGE),
            members::change_role,
        )
        .delete(
            "/api/members/{id}",
            Requires(Permission::MEMBER_MANAGE),
            members::remove_member,
        )
        .get(
            "/api/settings",
            Requires(Permission::SETTINGS_READ),
            settings::get_settings,
        )
        .patch(
            "/api/settings",
            Requires(Permission::SETTINGS_WRITE),
            settings::patch_settings,
        )
        .get(
            "/api/invitations",
            Requires(Permission::MEMBER_INVITE),
            invitations::list_invitations,
        )
        .post(
            "/api/invitations",
            Requires(Permission::MEMBER_INVITE),
            invitations::invite,
        )
        .delete(
            "/api/invitations/{id}",
            Requires(Permission::MEMBER_INVITE),
            invitations::revoke_invitation,
        )
        .post("/api/invitations/accept", Public, invitations::accept)
        .get(
            "/api/tokens",
            Requires(Permission::TOKEN_MANAGE),
            tokens::list_tokens,
        )
        .post(
            "/api/tokens",
            Requires(Permission::TOKEN_MANAGE),
            tokens::create_token,
        )
        .delete(
            "/api/tokens/{id}",
            Requires(Permission::TOKEN_MANAGE),
            tokens::revoke_token,
        )
        .get(
            "/api/audit",
            Requires(Permission::AUDIT_READ),
            audit::list_audit,
        )
        .get(
            "/api/billing",
            Requires(Permission::BILLING_READ),
            billing::get_billing,
        )
        .post(
            "/api/billing/checkout",
            Requires(Permission::BILLING_MANAGE),
            billing::checkout,
        )
        .post(
            "/api/billing/portal",
            Requires(Permission::BILLING_MANAGE),
            billing::portal,
        )
        .post("/webhooks/stripe", Public, billing::stripe_webhook)
        .get(
            "/api/support-access",
            Requires(Permission::AUDIT_READ),
            support_access::get_support_access,
        )
        .patch(
            "/api/support-access",
            Requires(Permission::SUPPORT_ACCESS_MANAGE),
            support_access::set_policy,
        )
        .post(
            "/api/support-access/grants/{id}/approve",
            Requires(Permission::SUPPORT_ACCESS_MANAGE),
            support_access::approve,
        )
        .post(
            "/api/support-access/grants/{id}/deny",
            Requires(Permission::SUPPORT_ACCESS_MANAGE),
            support_access::deny,
        )
        .post(
            "/api/support-access/grants/{id}/revoke",
            Requires(Permission::SUPPORT_ACCESS_MANAGE),
            support_access::revoke,
        )
        // The admin host's: public as far as tenant roles go; the
        // handlers answer 404 on any other host and take an operator
        // session (OperatorCaller), never a tenant's, where they need one.
        .post("/api/admin/enrol", Public, admin::enrol)
        .post("/api/admin/enrol/confirm", Public, admin::confirm_enrolment)
        .post("/api/admin/login", Public, admin::login)
        .post("/api/admin/logout", Public, admin::logout)
        .get("/api/admin/me", Public, admin::me)
        .operator_routes()
}

impl Routes {
    /// The admin API, each route with its operator permission.
    fn operator_routes(self) -> Self {
        const READ: OperatorPermission = OperatorPermission::ADMIN_READ;
        const WRITE: OperatorPermission = OperatorPermission::ADMIN_WRITE;
        const TENANT: &str = "/api/admin/tenants/{slug}";
        self.operator(
            Method::GET,
            "/api/admin/tenants",
            READ,
            get(admin_tenants::search_tenants),
        )
        .operator(Method::GET, TENANT, READ, get(admin_tenants::get_tenant))
        .operator(
            Method::POST,
            "/api/admin/tenants/{slug}/suspend",
            WRITE,
            post(admin_actions::suspend_tenant),
        )
        .operator(
            Method::POST,
            "/api/admin/tenants/{slug}/reinstate",
            WRITE,
            post(admin_actions::reinstate_tenant),
        )
        .operator(
            Method::POST,
            "/api/admin/tenants/{slug}/comp",
            WRITE,
            post(admin_actions::comp_tenant).delete(admin_actions::end_comp),
        )
        .operator_spec_only(Method::DELETE, "/api/admin/tenants/{slug}/comp", WRITE)
        .operator(
            Method::POST,
            "/api/admin/tenants/{slug}/cancel-subscription",
            WRITE,
            post(admin_actions::cancel_subscription),
        )
        .operator(
            Method::POST,
            "/api/admin/tenants/{slug}/rotate-credentials",
            WRITE,
            post(admin_actions::rotate_credentials),
        )
        .operator(
            Method::POST,
            "/api/admin/tenants/{slug}/invitations/{invitation}/resend",
            WRITE,
            post(admin_actions::resend_invitation),
        )
        .operator(
            Method::POST,
            "/api/admin/tenants/{slug}/end-sessions",
            WRITE,
            post(admin_actions::end_sessions),
        )
        .operator(
            Method::GET,
            "/api/admin/audit",
            READ,
            get(admin_tenants::list_platform_audit),
        )
        .operator(
            Method::GET,
            "/api/admin/servers",
            READ,
            get(admin_fleet::list_servers),
        )
        .operator(
            Method::GET,
            "/api/admin/runs",
            READ,
            get(admin_fleet::list_runs),
        )
        .operator(
            Method::GET,
            "/api/admin/runs/{run}",
            READ,
            get(admin_fleet::get_run),
        )
        .break_glass_routes()
    }

    /// Break-glass: access grants, and the view of a tenant under one
    /// (its handler is added by [`router`], which has the views to serve).
    fn break_glass_routes(self) -> Self {
        const ASK: OperatorPermission = OperatorPermission::ACCESS_REQUEST;
        self.operator(
            Method::POST,
            "/api/admin/tenants/{slug}/access",
            ASK,
            post(admin_access::request_access),
        )
        .operator(
            Method::GET,
            "/api/admin/access",
            OperatorPermission::ADMIN_READ,
            get(admin_access::list_grants),
        )
        .operator(
            Method::POST,
            "/api/admin/access/{grant}/approve",
            OperatorPermission::ACCESS_APPROVE,
            post(admin_access::approve_grant),
        )
        .operator(
            Method::POST,
            "/api/admin/access/{grant}/revoke",
            ASK,
            post(admin_access::revoke_grant),
        )
        .operator_spec_only(Method::GET, break_glass::VIEW, ASK)
        .operator_spec_only(Method::POST, break_glass::VIEW, ASK)
        .operator_spec_only(Method::PATCH, break_glass::VIEW, ASK)
        .operator_spec_only(Method::DELETE, break_glass::VIEW, ASK)
    }

    /// A second method on a path `operator` already routed (axum takes
    /// one method router per path).
    fn operator_spec_only(
        mut self,
        method: Method,
        path: &'static str,
        permission: OperatorPermission,
    ) -> Self {
        self.operator_specs.push(OperatorRouteSpec {
            method: method.clone(),
            path,
            permission,
        });
        self.specs.push(RouteSpec {
            method,
            path,
            access: Access::Public,
        });
        self
    }
}

/// `routes`, and for anything else the one error shape: 404 for a path
/// that is not a route, 405 (with `Allow`) for a method a path does not take.
pub(crate) fn router(routes: Routes, state: AppState) -> Router {
    let views = routes
        .views
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let admin_views = views.clone();
    let pages = routes
        .pages
        .route(
            crate::web::admin::VIEW,
            get(move |s, op, path, uri| {
                crate::web::admin::view(admin_views.clone(), s, op, path, uri)
            }),
        )
        .layer(axum::middleware::from_fn(crate::web::form_csrf))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            crate::web::secure,
        ));
    routes
        .router
        .merge(pages)
        .route(crate::web::assets::PATH, get(crate::web::assets::asset))
        .route(
            break_glass::VIEW,
            axum::routing::any(move |s, op, path, request| {
                break_glass::view(views.clone(), s, op, path, request)
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    crate::web::not_found_page(&state, &headers, uri.path())
        .unwrap_or_else(|| ApiError::NotFound.into_response())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The platform's routes and then what `product` adds.
pub(crate) fn all(product: &crate::app::Product) -> Routes {
    product.add_routes(platform())
}

/// Every route of `product` (the platform's included) with what it requires.
pub(crate) fn specs(product: &crate::app::Product) -> Vec<RouteSpec> {
    all(product).specs
}

/// Every admin route with the operator permission it needs.
pub fn operator_routes() -> Vec<OperatorRouteSpec> {
    platform().operator_specs
}

/// Every route of the reference application with what it requires.
pub fn routes() -> Vec<RouteSpec> {
    let reference = crate::reference::builder().product();
    specs(&reference.expect("the reference application is a valid product"))
}
