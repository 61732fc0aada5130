//! Fleet migration runs and their per-tenant results, and the tenant status
//! changes a run makes (migrating -> active, or migration_failed).

use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{ControlError, ControlPlane, Slug, TenantId};

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub id: i64,
    pub state: String,
    pub target_version: i32,
    pub holder: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub counts: RunCounts,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RunCounts {
    pub pending: i64,
    pub running: i64,
    pub succeeded: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunFailure {
    pub slug: String,
    pub error: String,
}

/// A tenant a run still has to migrate.
#[derive(Debug, Clone)]
pub struct RunTenant {
    pub id: TenantId,
    pub slug: Slug,
    pub server: String,
}

const RUN_COLUMNS: &str = "r.id, r.state, r.target_version, r.holder, r.started_at, r.finished_at,
    (SELECT count(*) FILTER (WHERE state = 'pending') FROM migration_results WHERE run_id = r.id),
    (SELECT count(*) FILTER (WHERE state = 'running') FROM migration_results WHERE run_id = r.id),
    (SELECT count(*) FILTER (WHERE state = 'succeeded') FROM migration_results WHERE run_id = r.id),
    (SELECT count(*) FILTER (WHERE state = 'failed') FROM migration_results WHERE run_id = r.id)";

fn run(row: &Row) -> Run {
    Run {
        id: row.get(0),
        state: row.get(1),
        target_version: row.get(2),
        holder: row.get(3),
        started_at: row.get(4),
        finished_at: row.get(5),
        counts: RunCounts {
            pending: row.get(6),
            running: row.get(7),
            succeeded: row.get(8),
            failed: row.get(9),
        },
    }
}

impl ControlPlane {
    /// Records a new run with a pending result for every live tenant below
    /// `target` (by the control plane's recorded versions: nothing is opened).
    pub async fn start_run(
        &self,
        target: i32,
        holder: &str,
        params: &serde_json::Value,
    ) -> Result<i64, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO migration_runs (state, target_version, holder, params)
                 VALUES ('running', $1, $2, $3) RETURNING id",
                &[&target, &holder, params],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO migration_results (run_id, tenant_id, state, from_version)
             SELECT $1, id, 'pending', schema_version FROM tenants
              WHERE status IN ('active', 'suspended', 'migrating', 'migration_failed')
                AND schema_version < $2",
            &[&id, &target],
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Runs recorded as running whose process is gone (the caller holds the
    /// fleet lock, so nobody is running them) become interrupted.
    pub async fn interrupt_stale_runs(&self) -> Result<u64, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE migration_runs SET state = 'interrupted', finished_at = now() WHERE state = 'running'",
                &[],
            )
            .await?)
    }

    /// Takes over an unfinished run: running again, under a new holder.
    pub async fn reopen_run(&self, id: i64, holder: &str) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE migration_runs SET state = 'running', holder = $2, finished_at = NULL WHERE id = $1",
                &[&id, &holder],
            )
            .await?;
        Ok(())
    }

    pub async fn finish_run(&self, id: i64, state: &str) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE migration_runs SET state = $2, finished_at = now() WHERE id = $1",
                &[&id, &state],
            )
            .await?;
        Ok(())
    }

    pub async fn runs(&self, limit: i64) -> Result<Vec<Run>, ControlError> {
        self.runs_before(i64::MAX, limit).await
    }

    /// Runs, newest first, of ids below `before` (a cursor).
    pub async fn runs_before(&self, before: i64, limit: i64) -> Result<Vec<Run>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM migration_runs r WHERE r.id < $1
                      ORDER BY r.id DESC LIMIT $2"
                ),
                &[&before, &limit],
            )
            .await?;
        Ok(rows.iter().map(run).collect())
    }

    pub async fn run_by_id(&self, id: i64) -> Result<Option<Run>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM migration_runs r WHERE r.id = $1"),
                &[&id],
            )
            .await?;
        Ok(row.as_ref().map(run))
    }

    /// The holder of the run currently recorded as running, if any.
    pub async fn running_run(&self) -> Result<Option<Run>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM migration_runs r WHERE r.state = 'running' ORDER BY r.id DESC LIMIT 1"),
                &[],
            )
            .await?;
        Ok(row.as_ref().map(run))
    }

    /// The tenants of a run that have not succeeded yet, in slug order.
    pub async fn run_todo(&self, id: i64) -> Result<Vec<RunTenant>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT t.id, t.slug, t.server FROM migration_results m JOIN tenants t ON t.id = m.tenant_id
                  WHERE m.run_id = $1 AND m.state <> 'succeeded' AND t.status <> 'deleted'
                  ORDER BY t.slug",
                &[&id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RunTenant {
                    id: TenantId(r.get(0)),
                    slug: Slug::parse(r.get(1))
                        .map_err(|e| ControlError::Corrupt(e.to_string()))?,
                    server: r.get(2),
                })
            })
            .collect()
    }

    pub async fn run_failures(&self, id: i64) -> Result<Vec<RunFailure>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT t.slug, coalesce(m.error, '') FROM migration_results m JOIN tenants t ON t.id = m.tenant_id
                  WHERE m.run_id = $1 AND m.state = 'failed' ORDER BY t.slug",
                &[&id],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RunFailure {
                slug: r.get(0),
                error: r.get(1),
            })
            .collect())
    }

    /// Marks one tenant as under migration (a suspended tenant stays suspended)
    /// and returns it; `None` if it is no longer one a run should touch.
    pub async fn begin_tenant_migration(
        &self,
        run: i64,
        tenant: TenantId,
    ) -> Result<Option<super::Tenant>, ControlError> {
        let columns = super::tenants::columns_of("t");
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "WITH t AS (
                        UPDATE tenants SET status = CASE WHEN status = 'suspended' THEN 'suspended' ELSE 'migrating' END,
                               updated_at = now()
                         WHERE id = $2 AND status IN ('active', 'suspended', 'migrating', 'migration_failed')
                     RETURNING *),
                     r AS (
                        UPDATE migration_results SET state = 'running', started_at = now(), error = NULL
                         WHERE run_id = $1 AND tenant_id IN (SELECT id FROM t) RETURNING tenant_id)
                     SELECT {columns} FROM t JOIN r ON r.tenant_id = t.id"
                ),
                &[&run, &tenant.0],
            )
            .await?;
        row.as_ref().map(super::tenants::tenant).transpose()
    }

    /// Records the outcome of one tenant's migration.
    pub async fn end_tenant_migration(
        &self,
        run: i64,
        tenant: TenantId,
        version: i32,
        error: Option<&str>,
    ) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "WITH t AS (
                    UPDATE tenants SET
                        status = CASE WHEN status = 'suspended' THEN 'suspended'
                                      WHEN $4::text IS NULL THEN 'active' ELSE 'migration_failed' END,
                        schema_version = $3, last_error = $4, updated_at = now()
                     WHERE id = $2 RETURNING id)
                 UPDATE migration_results SET
                        state = CASE WHEN $4::text IS NULL THEN 'succeeded' ELSE 'failed' END,
                        to_version = $3, error = $4, finished_at = now()
                  WHERE run_id = $1 AND tenant_id IN (SELECT id FROM t)",
                &[&run, &tenant.0, &version, &error],
            )
            .await?;
        Ok(())
    }

    /// Versions of the fleet: every server's template and every active tenant
    /// not at `expected`.
    pub async fn version_drift(&self, expected: i32) -> Result<Vec<VersionDrift>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT 'template on ' || name, template_version FROM servers
                  WHERE template_version IS NOT NULL AND template_version <> $1
                 UNION ALL
                 SELECT 'tenant ' || slug, schema_version FROM tenants
                  WHERE status = 'active' AND schema_version <> $1
                 ORDER BY 1",
                &[&expected],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| VersionDrift {
                what: r.get(0),
                version: r.get(1),
            })
            .collect())
    }

    /// How many live tenants are at each version.
    pub async fn version_counts(&self) -> Result<Vec<VersionCount>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT schema_version, status, count(*) FROM tenants WHERE status <> 'deleted'
                  GROUP BY 1, 2 ORDER BY 1, 2",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.get(1);
                Ok(VersionCount {
                    version: r.get(0),
                    status: status.parse().map_err(ControlError::Corrupt)?,
                    tenants: r.get(2),
                })
            })
            .collect()
    }
}

/// A template or an active tenant not at the version expected.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionDrift {
    /// `template on <server>` or `tenant <slug>`.
    pub what: String,
    pub version: i32,
}

/// How many live tenants are at one version in one status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionCount {
    pub version: i32,
    pub status: super::Status,
    pub tenants: i64,
}
