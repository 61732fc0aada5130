//! `GET /api/tenant`: who am I talking to.

use crate::http::input::Json;
use serde_json::{Value, json};

use crate::auth::perm;
use crate::billing::Standing;
use crate::http::extract::Can;
use time::format_description::well_known::Rfc3339;

pub async fn get_tenant(Can(caller, _): Can<perm::ProjectRead>, billing: Standing) -> Json<Value> {
    let t = &caller.tenant;
    Json(json!({
        "slug": t.slug,
        "plan": billing.plan,
        "grace_ends_at": billing.grace_ends_at.and_then(|t| t.format(&Rfc3339).ok()),
        "mode": t.mode,
        "schema_version": t.schema_version,
        "role": caller.role(),
    }))
}
