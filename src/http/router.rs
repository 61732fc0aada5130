//! Every route, in one place, each with what it takes to call it. The list
//! ([`routes`]) is what the tests walk: every route as every role.

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, patch, post};

use super::api::{invitations, members, people, projects, settings, tasks, tenant};
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
}

fn build() -> Routes {
    use Access::{Authenticated, Public, Requires};
    use Permission::*;
    let routes = Routes {
        router: Router::new(),
        specs: Vec::new(),
    };
    routes
        .at(Method::GET, "/healthz", Public, get(ops::healthz))
        .at(Method::GET, "/readyz", Public, get(ops::readyz))
        .at(Method::GET, "/internal/tls-ask", Public, get(ops::tls_ask))
        .at(
            Method::GET,
            "/.well-known/bulkhead-verify/{token}",
            Public,
            get(ops::domain_verification),
        )
        .at(Method::POST, "/api/signup", Public, post(people::signup))
        .at(Method::POST, "/api/login", Public, post(people::login))
        .at(
            Method::POST,
            "/api/logout",
            Authenticated,
            post(people::logout),
        )
        .at(
            Method::POST,
            "/api/logout-everywhere",
            Authenticated,
            post(people::logout_everywhere),
        )
        .at(Method::GET, "/api/me", Authenticated, get(people::me))
        .at(
            Method::GET,
            "/api/tenant",
            Requires(ProjectRead),
            get(tenant::get_tenant),
        )
        .at(
            Method::GET,
            "/api/projects",
            Requires(ProjectRead),
            get(projects::list_projects),
        )
        .at(
            Method::POST,
            "/api/projects",
            Requires(ProjectWrite),
            post(projects::create_project),
        )
        .at(
            Method::GET,
            "/api/projects/{id}",
            Requires(ProjectRead),
            get(projects::get_project),
        )
        .at(
            Method::PATCH,
            "/api/projects/{id}",
            Requires(ProjectWrite),
            patch(projects::update_project),
        )
        .at(
            Method::DELETE,
            "/api/projects/{id}",
            Requires(ProjectWrite),
            delete(projects::delete_project),
        )
        .at(
            Method::GET,
            "/api/projects/{id}/tasks",
            Requires(ProjectRead),
            get(tasks::list_tasks),
        )
        .at(
            Method::POST,
            "/api/projects/{id}/tasks",
            Requires(ProjectWrite),
            post(tasks::create_task),
        )
        .at(
            Method::GET,
            "/api/tasks/{id}",
            Requires(ProjectRead),
            get(tasks::get_task),
        )
        .at(
            Method::PATCH,
            "/api/tasks/{id}",
            Requires(ProjectWrite),
            patch(tasks::update_task),
        )
        .at(
            Method::DELETE,
            "/api/tasks/{id}",
            Requires(ProjectWrite),
            delete(tasks::delete_task),
        )
        .at(
            Method::GET,
            "/api/members",
            Requires(MemberRead),
            get(members::list_members),
        )
        .at(
            Method::POST,
            "/api/members/leave",
            Authenticated,
            post(members::leave),
        )
        .at(
            Method::PATCH,
            "/api/members/{id}",
            Requires(MemberManage),
            patch(members::change_role),
        )
        .at(
            Method::DELETE,
            "/api/members/{id}",
            Requires(MemberManage),
            delete(members::remove_member),
        )
        .at(
            Method::GET,
            "/api/invitations",
            Requires(MemberInvite),
            get(invitations::list_invitations),
        )
        .at(
            Method::POST,
            "/api/invitations",
            Requires(MemberInvite),
            post(invitations::invite),
        )
        .at(
            Method::DELETE,
            "/api/invitations/{id}",
            Requires(MemberInvite),
            delete(invitations::revoke_invitation),
        )
        .at(
            Method::POST,
            "/api/invitations/accept",
            Public,
            post(invitations::accept),
        )
        .at(
            Method::GET,
            "/api/settings",
            Requires(SettingsRead),
            get(settings::get_settings),
        )
        .at(
            Method::PATCH,
            "/api/settings",
            Requires(SettingsWrite),
            patch(settings::patch_settings),
        )
        .at(
            Method::GET,
            "/api/tokens",
            Requires(TokenManage),
            get(settings::list_tokens),
        )
        .at(
            Method::POST,
            "/api/tokens",
            Requires(TokenManage),
            post(settings::create_token),
        )
        .at(
            Method::DELETE,
            "/api/tokens/{id}",
            Requires(TokenManage),
            delete(settings::revoke_token),
        )
        .at(
            Method::GET,
            "/api/audit",
            Requires(AuditRead),
            get(members::list_audit),
        )
}

pub fn router(state: AppState) -> Router {
    build().router.with_state(state)
}

/// Every route with what it requires.
pub fn routes() -> Vec<RouteSpec> {
    build().specs
}
