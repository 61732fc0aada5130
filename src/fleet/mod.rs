//! The tenant schema: the migrations in `tenant-migrations/` that every tenant
//! database (or schema) runs, applied as the tenant's owner role so that the
//! runtime role can use but never alter what they create.

use refinery::Migration;
use tokio_postgres::Client;

use crate::sql::Ident;

mod embedded {
    refinery::embed_migrations!("tenant-migrations");
}

/// Each tenant's own refinery history table, inside its database or schema.
pub const HISTORY_TABLE: &str = "bulkhead_schema_history";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("{0}")]
    Refinery(String),
    #[error("{0}")]
    Query(#[from] tokio_postgres::Error),
}

/// A set of tenant migrations: the embedded ones, or a directory's.
#[derive(Clone)]
pub struct TenantSchema {
    migrations: Vec<Migration>,
}

impl TenantSchema {
    pub fn embedded() -> Self {
        Self {
            migrations: embedded::migrations::runner().get_migrations().clone(),
        }
    }

    /// The highest version this set migrates to (0 when empty).
    pub fn latest(&self) -> i32 {
        self.migrations
            .iter()
            .map(|m| m.version())
            .max()
            .unwrap_or(0)
    }

    /// Applies pending migrations on `client` as `owner`, with `schema` first on
    /// the search path; returns the version reached. Leaves the session as it
    /// found it (role and search path reset).
    pub async fn apply(
        &self,
        client: &mut Client,
        owner: &str,
        schema: &str,
    ) -> Result<i32, MigrateError> {
        client
            .batch_execute(&format!(
                "SET ROLE {}; SET search_path TO {}",
                Ident::new(owner),
                Ident::new(schema)
            ))
            .await?;
        // refinery aborts on divergent (changed) or missing migrations by default.
        let mut runner = refinery::Runner::new(&self.migrations);
        runner.set_migration_table_name(HISTORY_TABLE);
        let result = runner.run_async(client).await;
        client
            .batch_execute("RESET ROLE; RESET search_path")
            .await?;
        result.map_err(|e| MigrateError::Refinery(e.to_string()))?;
        current_version(client, schema).await
    }
}

/// The version recorded in a tenant's history table (0 if it has none).
pub async fn current_version(client: &Client, schema: &str) -> Result<i32, MigrateError> {
    let table = format!("{}.{HISTORY_TABLE}", Ident::new(schema));
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one(
            &format!("SELECT coalesce(max(version), 0)::int FROM {table}"),
            &[],
        )
        .await?
        .get(0))
}
