//! `GET /api/tenant`: who am I talking to.

use crate::http::input::Json;
use serde_json::{Value, json};

use crate::auth::perm;
use crate::http::extract::Can;

pub async fn get_tenant(Can(caller, _): Can<perm::ProjectRead>) -> Json<Value> {
    let t = &caller.tenant;
    Json(json!({
        "slug": t.slug,
        "plan": t.plan,
        "mode": t.mode,
        "schema_version": t.schema_version,
        "role": caller.role(),
    }))
}
