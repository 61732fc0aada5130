//! Tenant rows: reservation, the provisioning step, status changes, tombstones.

use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{ControlError, ControlPlane, Mode, PgName, Plan, Slug, Status, Step, TenantId};

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: Slug,
    pub display_name: String,
    pub plan: Plan,
    pub status: Status,
    pub mode: Mode,
    pub server: String,
    pub schema_version: i32,
    pub step: Option<Step>,
    pub credential_generation: i32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub deleted_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub slug_reusable_at: Option<OffsetDateTime>,
    /// What its roles, database or schema are called (see [`PgName`]).
    pub pg_name: PgName,
    /// The name a rename is moving its objects to, recorded before the
    /// first of them is renamed; `None` when no rename is under way.
    pub pg_name_next: Option<PgName>,
}

impl Tenant {
    /// The runtime LOGIN role every request of the tenant uses.
    pub fn runtime_role(&self) -> &str {
        self.pg_name.runtime_role()
    }

    /// The NOLOGIN role owning the tenant's objects.
    pub fn owner_role(&self) -> String {
        self.pg_name.owner_role()
    }

    /// The database holding the tenant's objects.
    pub fn database(&self, shared_db: &str) -> String {
        match self.mode {
            Mode::Database => self.pg_name.to_string(),
            Mode::Schema => shared_db.to_string(),
        }
    }

    /// The schema holding the tenant's objects.
    pub fn schema(&self) -> String {
        match self.mode {
            Mode::Database => "public".to_string(),
            Mode::Schema => self.pg_name.to_string(),
        }
    }

    /// Still named from its slug (made before names were opaque), or half-way
    /// through the rename away from it.
    pub fn needs_rename(&self) -> bool {
        self.pg_name_next.is_some() || self.pg_name == PgName::from_slug(&self.slug)
    }
}

pub struct NewTenant<'a> {
    pub slug: &'a Slug,
    pub pg_name: &'a PgName,
    pub display_name: &'a str,
    pub plan: Plan,
    pub mode: Mode,
    pub server: &'a str,
}

/// What reserving a slug found.
#[derive(Debug)]
pub enum Reservation {
    /// A new tenant row, `provisioning` at step `reserve`.
    Created(Tenant),
    /// A live tenant already has this slug.
    Exists(Tenant),
    /// A deleted tenant had this slug; it may be reused from `until` on.
    Quarantined { until: OffsetDateTime },
}

pub(super) const COLUMNS: &str =
    "id, slug, display_name, plan, status, isolation_mode, server, schema_version,
    step, credential_generation, last_error, created_at, updated_at, deleted_at, slug_reusable_at,
    pg_name, pg_name_next";

/// [`COLUMNS`] qualified with a table alias, for joins.
pub(super) fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn tenant(row: &Row) -> Result<Tenant, ControlError> {
    let text = |i: usize| -> String { row.get(i) };
    let slug = text(1);
    Ok(Tenant {
        id: TenantId(row.get(0)),
        slug: Slug::parse(&slug).map_err(|e| ControlError::Corrupt(e.to_string()))?,
        display_name: text(2),
        plan: text(3).parse().map_err(ControlError::Corrupt)?,
        status: text(4).parse().map_err(ControlError::Corrupt)?,
        mode: text(5).parse().map_err(ControlError::Corrupt)?,
        server: text(6),
        schema_version: row.get(7),
        step: row
            .get::<_, Option<String>>(8)
            .map(|s| s.parse())
            .transpose()
            .map_err(ControlError::Corrupt)?,
        credential_generation: row.get(9),
        last_error: row.get(10),
        created_at: row.get(11),
        updated_at: row.get(12),
        deleted_at: row.get(13),
        slug_reusable_at: row.get(14),
        pg_name: PgName::parse(&text(15)).map_err(ControlError::Corrupt)?,
        pg_name_next: row
            .get::<_, Option<String>>(16)
            .map(|n| PgName::parse(&n))
            .transpose()
            .map_err(ControlError::Corrupt)?,
    })
}

impl ControlPlane {
    /// Reserves `slug` for a new tenant, atomically with the checks that it is
    /// neither live nor in its post-deletion quarantine.
    pub async fn reserve(&self, new: &NewTenant<'_>) -> Result<Reservation, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('slug:' || $1))",
            &[&new.slug.as_str()],
        )
        .await?;
        let live = tx
            .query_opt(
                &format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1 AND status <> 'deleted'"),
                &[&new.slug.as_str()],
            )
            .await?;
        if let Some(row) = live {
            return Ok(Reservation::Exists(tenant(&row)?));
        }
        let quarantine: Option<OffsetDateTime> = tx
            .query_one(
                "SELECT max(slug_reusable_at) FROM tenants
                  WHERE slug = $1 AND status = 'deleted' AND slug_reusable_at > now()",
                &[&new.slug.as_str()],
            )
            .await?
            .get(0);
        if let Some(until) = quarantine {
            return Ok(Reservation::Quarantined { until });
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO tenants (id, slug, display_name, plan, status, isolation_mode, server,
                                          step, pg_name)
                     VALUES ($1, $2, $3, $4, 'provisioning', $5, $6, 'reserve', $7)
                     RETURNING {COLUMNS}"
                ),
                &[
                    &Uuid::new_v4(),
                    &new.slug.as_str(),
                    &new.display_name,
                    &new.plan.as_str(),
                    &new.mode.as_str(),
                    &new.server,
                    &new.pg_name.as_str(),
                ],
            )
            .await?;
        let created = tenant(&row)?;
        tx.commit().await?;
        Ok(Reservation::Created(created))
    }

    /// The live (not deleted) tenant with this slug.
    pub async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1 AND status <> 'deleted'"),
                &[&slug.as_str()],
            )
            .await?;
        row.as_ref().map(tenant).transpose()
    }

    /// The live tenant a verified custom domain routes to.
    pub async fn tenant_by_domain(&self, host: &str) -> Result<Option<Tenant>, ControlError> {
        let columns = columns_of("t");
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {columns} FROM domains d JOIN tenants t ON t.id = d.tenant_id
                      WHERE d.host = $1 AND d.verified_at IS NOT NULL AND t.status <> 'deleted'"
                ),
                &[&host],
            )
            .await?;
        row.as_ref().map(tenant).transpose()
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"),
                &[&id.0],
            )
            .await?;
        row.as_ref().map(tenant).transpose()
    }

    pub async fn tenants(&self, include_deleted: bool) -> Result<Vec<Tenant>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM tenants WHERE $1 OR status <> 'deleted'
                      ORDER BY slug, created_at"
                ),
                &[&include_deleted],
            )
            .await?;
        rows.iter().map(tenant).collect()
    }

    /// Tenants stuck half-way through creation or deletion.
    pub async fn unsettled_tenants(&self) -> Result<Vec<Tenant>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM tenants WHERE status IN ('provisioning', 'deleting')
                      ORDER BY created_at"
                ),
                &[],
            )
            .await?;
        rows.iter().map(tenant).collect()
    }

    /// Settled tenants whose objects still carry slug-derived names, or whose
    /// rename away from them was interrupted.
    pub async fn tenants_to_rename(&self) -> Result<Vec<Tenant>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM tenants
                      WHERE status IN ('active', 'suspended', 'migration_failed')
                        AND (pg_name_next IS NOT NULL OR pg_name = 't_' || slug)
                      ORDER BY created_at"
                ),
                &[],
            )
            .await?;
        rows.iter().map(tenant).collect()
    }

    /// Records `next` as the name the tenant's objects are being renamed to,
    /// unless a name was recorded already (an interrupted rename finishes
    /// with the name it started); returns the recorded one.
    pub async fn begin_rename(&self, id: TenantId, next: &PgName) -> Result<PgName, ControlError> {
        let recorded: String = self
            .client()
            .await?
            .query_one(
                "UPDATE tenants SET pg_name_next = COALESCE(pg_name_next, $2), updated_at = now()
                  WHERE id = $1 RETURNING pg_name_next",
                &[&id.0, &next.as_str()],
            )
            .await?
            .get(0);
        PgName::parse(&recorded).map_err(ControlError::Corrupt)
    }

    /// Marks the rename to `next` done: the objects carry it now.
    pub async fn finish_rename(&self, id: TenantId, next: &PgName) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE tenants SET pg_name = pg_name_next, pg_name_next = NULL, updated_at = now()
                  WHERE id = $1 AND pg_name_next = $2",
                &[&id.0, &next.as_str()],
            )
            .await?;
        Ok(())
    }

    /// Records the step about to run (before it is acted on).
    pub async fn set_step(&self, id: TenantId, step: Step) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE tenants SET step = $2, updated_at = now() WHERE id = $1",
                &[&id.0, &step.as_str()],
            )
            .await?;
        Ok(())
    }

    /// Sets the status (and clears the step and error when the tenant comes to rest).
    pub async fn set_status(
        &self,
        id: TenantId,
        status: Status,
        step: Option<Step>,
    ) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE tenants SET status = $2, step = $3, updated_at = now(),
                        last_error = CASE WHEN $3::text IS NULL THEN NULL ELSE last_error END
                  WHERE id = $1",
                &[&id.0, &status.as_str(), &step.map(Step::as_str)],
            )
            .await?;
        Ok(())
    }

    /// Moves a tenant to another plan (every instance's cache follows by NOTIFY).
    pub async fn set_plan(&self, id: TenantId, plan: Plan) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE tenants SET plan = $2, updated_at = now() WHERE id = $1",
                &[&id.0, &plan.as_str()],
            )
            .await?;
        Ok(())
    }

    pub async fn set_last_error(&self, id: TenantId, error: &str) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE tenants SET last_error = $2, updated_at = now() WHERE id = $1",
                &[&id.0, &error],
            )
            .await?;
        Ok(())
    }

    pub async fn set_schema_version(&self, id: TenantId, version: i32) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE tenants SET schema_version = $2, updated_at = now() WHERE id = $1",
                &[&id.0, &version],
            )
            .await?;
        Ok(())
    }

    /// Starts a new credential generation; returns it.
    pub async fn bump_credential_generation(&self, id: TenantId) -> Result<i32, ControlError> {
        Ok(self
            .client()
            .await?
            .query_one(
                "UPDATE tenants SET credential_generation = credential_generation + 1,
                        updated_at = now()
                  WHERE id = $1 RETURNING credential_generation",
                &[&id.0],
            )
            .await?
            .get(0))
    }

    /// Turns the tenant into a tombstone whose slug is reusable after `quarantine_days`.
    pub async fn tombstone(&self, id: TenantId, quarantine_days: i32) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE tenants SET status = 'deleted', step = NULL, deleted_at = now(),
                        updated_at = now(), last_error = NULL,
                        slug_reusable_at = now() + make_interval(days => $2)
                  WHERE id = $1",
                &[&id.0, &quarantine_days],
            )
            .await?;
        Ok(())
    }
}
