//! Every route, in one place, each with what it takes to call it. The list
//! ([`routes`]) is what the tests walk: every route as every role.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};

use super::api::{audit, invitations, members, people, projects, settings, tasks, tenant, tokens};
use super::error::ApiError;
use super::ops;
use super::state::AppState;
use crate::auth::Permission;

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

#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub method: Method,
    /// With `{name}` placeholders, as axum writes them.
    pub path: &'static str,
    pub access: Access,
}

struct Routes {
    router: Router<AppState>,
    specs: Vec<RouteSpec>,
}

impl Routes {
    fn at(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(path, handler);
        self.specs.push(RouteSpec {
            method,
            path,
            access,
        });
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.at(Method::GET, path, access, get(h))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.at(Method::POST, path, access, post(h))
    }

    fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.at(Method::PATCH, path, access, patch(h))
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        h: H,
    ) -> Self {
        self.at(Method::DELETE, path, access, delete(h))
    }
}

fn build() -> Routes {
    use Access::{Authenticated, Public, Requires};
    use Permission::*;
    let routes = Routes {
        router: Router::new(),
        specs: Vec::new(),
    };
    routes
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
        .get("/api/tenant", Requires(ProjectRead), tenant::get_tenant)
        .get(
            "/api/projects",
            Requires(ProjectRead),
            projects::list_projects,
        )
        .post(
            "/api/projects",
            Requires(ProjectWrite),
            projects::create_project,
        )
        .get(
            "/api/projects/{id}",
            Requires(ProjectRead),
            projects::get_project,
        )
        .patch(
            "/api/projects/{id}",
            Requires(ProjectWrite),
            projects::update_project,
        )
        .delete(
            "/api/projects/{id}",
            Requires(ProjectWrite),
            projects::delete_project,
        )
        .get(
            "/api/projects/{id}/tasks",
            Requires(ProjectRead),
            tasks::list_tasks,
        )
        .post(
            "/api/projects/{id}/tasks",
            Requires(ProjectWrite),
            tasks::create_task,
        )
        .get("/api/tasks/{id}", Requires(ProjectRead), tasks::get_task)
        .patch(
            "/api/tasks/{id}",
            Requires(ProjectWrite),
            tasks::update_task,
        )
        .delete(
            "/api/tasks/{id}",
            Requires(ProjectWrite),
            tasks::delete_task,
        )
        .get("/api/members", Requires(MemberRead), members::list_members)
        .post("/api/members/leave", Authenticated, members::leave)
        .patch(
            "/api/members/{id}",
            Requires(MemberManage),
            members::change_role,
        )
        .delete(
            "/api/members/{id}",
            Requires(MemberManage),
            members::remove_member,
        )
        .get(
            "/api/invitations",
            Requires(MemberInvite),
            invitations::list_invitations,
        )
        .post(
            "/api/invitations",
            Requires(MemberInvite),
            invitations::invite,
        )
        .delete(
            "/api/invitations/{id}",
            Requires(MemberInvite),
            invitations::revoke_invitation,
        )
        .post("/api/invitations/accept", Public, invitations::accept)
        .get(
            "/api/settings",
            Requires(SettingsRead),
            settings::get_settings,
        )
        .patch(
            "/api/settings",
            Requires(SettingsWrite),
            settings::patch_settings,
        )
        .get("/api/tokens", Requires(TokenManage), tokens::list_tokens)
        .post("/api/tokens", Requires(TokenManage), tokens::create_token)
        .delete(
            "/api/tokens/{id}",
            Requires(TokenManage),
            tokens::revoke_token,
        )
        .get("/api/audit", Requires(AuditRead), audit::list_audit)
}

/// Every route, and for anything else the one error shape: 404 for a path
/// that is not a route, 405 (with `Allow`) for a method a path does not take.
pub fn router(state: AppState) -> Router {
    build()
        .router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Every route with what it requires.
pub fn routes() -> Vec<RouteSpec> {
    build().specs
}
