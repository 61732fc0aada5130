//! Every route, in one place.

use axum::Router;
use axum::routing::{get, post};

use super::api::{people, projects, tasks, tenant};
use super::ops;
use super::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/internal/tls-ask", get(ops::tls_ask))
        .route(
            "/.well-known/bulkhead-verify/{token}",
            get(ops::domain_verification),
        )
        .route("/api/signup", post(people::signup))
        .route("/api/login", post(people::login))
        .route("/api/logout", post(people::logout))
        .route("/api/logout-everywhere", post(people::logout_everywhere))
        .route("/api/me", get(people::me))
        .route("/api/tenant", get(tenant::get_tenant))
        .route(
            "/api/projects",
            get(projects::list_projects).post(projects::create_project),
        )
        .route(
            "/api/projects/{id}",
            get(projects::get_project)
                .patch(projects::update_project)
                .delete(projects::delete_project),
        )
        .route(
            "/api/projects/{id}/tasks",
            get(tasks::list_tasks).post(tasks::create_task),
        )
        .route(
            "/api/tasks/{id}",
            get(tasks::get_task)
                .patch(tasks::update_task)
                .delete(tasks::delete_task),
        )
        .with_state(state)
}
