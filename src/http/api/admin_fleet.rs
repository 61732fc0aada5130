//! The admin API's view of the fleet (admin.<base>, `admin.read`): the
//! servers with their tenants against capacity and the connections this
//! instance holds against each budget; fleet migration runs and their
//! failures. Read-only: the CLI changes the fleet.

use axum::extract::State;
use serde_json::{Value, json};

use super::{Page, PageQuery};
use crate::auth::operator_perm::AdminRead;
use crate::control::Run;
use crate::http::error::{ApiError, ApiResult};
use crate::http::input::{Json, Path, Query, RowId};
use crate::http::operator::OperatorCan;
use crate::http::state::AppState;

/// `GET /api/admin/servers`: every server (never its admin URL).
pub async fn list_servers(
    State(state): State<AppState>,
    _: OperatorCan<AdminRead>,
) -> ApiResult<Json<Value>> {
    let servers = state.control.servers().await?;
    let items: Vec<Value> = servers
        .iter()
        .map(|s| {
            let budget = state.pools.budget(&s.name);
            json!({
                "name": s.name, "state": s.state, "capacity": s.capacity, "tenants": s.tenants,
                "free_capacity": s.free_capacity(), "template_version": s.template_version,
                "connection_budget": s.budget,
                // What this instance holds now (each instance has its own share).
                "connections_in_use": budget.as_ref().map(|b| b.in_use()),
                "connections_high_water": budget.as_ref().map(|b| b.high_water()),
            })
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

/// `GET /api/admin/runs?cursor=&limit=`: fleet migration runs, newest first.
pub async fn list_runs(
    State(state): State<AppState>,
    _: OperatorCan<AdminRead>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Run>>> {
    let (cursor, limit) = q.parse()?;
    let runs = state.control.runs_before(cursor, limit).await?;
    Ok(Json(Page::new(runs, limit, |r: &Run| r.id)))
}

/// `GET /api/admin/runs/{run}`: one run, its counts and every failed
/// tenant with its error.
pub async fn get_run(
    State(state): State<AppState>,
    _: OperatorCan<AdminRead>,
    Path(RowId(id)): Path<RowId>,
) -> ApiResult<Json<Value>> {
    let run = state
        .control
        .run_by_id(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let failures = state.control.run_failures(id).await?;
    Ok(Json(json!({"run": run, "failures": failures})))
}
