//! The tenant schema: the migrations in `tenant-migrations/` (embedded at build
//! time), plus any in a directory given at run time, applied as the tenant's
//! owner role so that the runtime role can use but never alter what they create.

use std::path::Path;

use refinery::error::Kind;
use refinery::{Migration, Target};
use tokio_postgres::Client;

use crate::sql::Ident;

mod embedded {
    refinery::embed_migrations!("tenant-migrations");
}

/// Each tenant's own refinery history table, inside its database or schema.
pub const HISTORY_TABLE: &str = "bulkhead_schema_history";

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "refusing to migrate: {file} was changed after it was applied (its checksum differs \
         from the one recorded); restore the original file and add a new migration instead"
    )]
    Changed { file: String },
    #[error("migration {0} was applied here but is missing from the migrations")]
    Missing(String),
    #[error("invalid migrations: {0}")]
    Invalid(String),
    #[error("{0}")]
    Refinery(String),
    #[error("{}", crate::pg::describe(.0))]
    Query(#[from] tokio_postgres::Error),
}

impl From<refinery::Error> for MigrateError {
    fn from(e: refinery::Error) -> Self {
        match e.kind() {
            Kind::DivergentVersion(_, fs) => MigrateError::Changed {
                file: format!("V{}__{}.sql", fs.version(), fs.name()),
            },
            Kind::MissingVersion(m) => {
                MigrateError::Missing(format!("V{}__{}", m.version(), m.name()))
            }
            // The database's own message, not refinery's wrapper around it.
            Kind::Connection(_, source) => MigrateError::Refinery(
                source
                    .downcast_ref::<tokio_postgres::Error>()
                    .map(crate::pg::describe)
                    .unwrap_or_else(|| source.to_string()),
            ),
            _ => MigrateError::Refinery(e.to_string()),
        }
    }
}

/// A set of tenant migrations.
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

    /// The embedded migrations plus those of `dir`. A version present in both
    /// must be the same migration.
    pub fn load(dir: Option<&Path>) -> Result<Self, MigrateError> {
        Self::load_with(&[], dir)
    }

    /// The embedded migrations, a product's own (`extra`, embedded in its
    /// binary) and those of `dir`. A version present twice must be the same
    /// migration.
    pub fn load_with(extra: &[Migration], dir: Option<&Path>) -> Result<Self, MigrateError> {
        let mut schema = Self::embedded();
        schema.add(extra.iter().cloned(), "the product")?;
        let Some(dir) = dir else {
            return Ok(schema);
        };
        if !dir.is_dir() {
            return Err(MigrateError::Invalid(format!(
                "{} is not a directory",
                dir.display()
            )));
        }
        let found =
            refinery::load_sql_migrations(dir).map_err(|e| MigrateError::Invalid(e.to_string()))?;
        schema.add(found, &dir.display().to_string())?;
        Ok(schema)
    }

    fn add(
        &mut self,
        extra: impl IntoIterator<Item = Migration>,
        source: &str,
    ) -> Result<(), MigrateError> {
        for extra in extra {
            match self
                .migrations
                .iter()
                .find(|m| m.version() == extra.version())
            {
                Some(m) if m.name() == extra.name() && m.checksum() == extra.checksum() => {}
                Some(m) => {
                    return Err(MigrateError::Invalid(format!(
                        "{source}: version {} is already V{}__{}",
                        extra.version(),
                        m.version(),
                        m.name()
                    )));
                }
                None => self.migrations.push(extra),
            }
        }
        self.migrations.sort_by_key(|m| m.version());
        Ok(())
    }

    /// The highest version this set migrates to (0 when empty).
    pub fn latest(&self) -> i32 {
        self.migrations
            .iter()
            .map(|m| m.version())
            .max()
            .unwrap_or(0)
    }

    /// `(version, name)` of every migration, in order.
    pub fn versions(&self) -> Vec<MigrationName> {
        self.migrations
            .iter()
            .map(|m| MigrationName {
                version: m.version(),
                name: m.name().to_string(),
            })
            .collect()
    }

    /// Applies pending migrations up to `target` on `client` as `owner`, with
    /// `schema` first on the search path; returns the version reached. Leaves
    /// the session as it found it (role and search path reset).
    pub async fn apply(
        &self,
        client: &mut Client,
        owner: &str,
        schema: &str,
        target: Option<i32>,
    ) -> Result<i32, MigrateError> {
        client
            .batch_execute(&format!(
                "SET ROLE {}; SET search_path TO {}",
                Ident::new(owner),
                Ident::new(schema)
            ))
            .await?;
        // refinery aborts on divergent (changed) or missing migrations by default.
        let mut runner = refinery::Runner::new(&self.migrations)
            .set_target(target.map_or(Target::Latest, Target::Version));
        runner.set_migration_table_name(HISTORY_TABLE);
        let result = runner.run_async(client).await;
        client
            .batch_execute("RESET ROLE; RESET search_path")
            .await?;
        result?;
        // refinery applied every migration up to the target (or refused): the
        // version reached is known without asking the database again.
        Ok(self.reached(target))
    }

    /// The highest version of this set at or below `target` (all of them: `None`).
    pub fn reached(&self, target: Option<i32>) -> i32 {
        self.migrations
            .iter()
            .map(|m| m.version())
            .filter(|v| target.is_none_or(|t| *v <= t))
            .max()
            .unwrap_or(0)
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

/// One migration of the set: `V<version>__<name>`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationName {
    pub version: i32,
    pub name: String,
}
