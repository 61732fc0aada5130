//! Privileged connections to database servers: used only by the provisioner
//! and the fleet migrator, never on a request path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::Client;

use super::ProvisionError;
use crate::control::Server;
use crate::pg::PgConfig;
use crate::secret::Secret;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection settings of a server's admin URL (TLS included), with
/// `dbname` overridden.
pub fn admin_config(
    url: &Secret<String>,
    server: &str,
    db: Option<&str>,
) -> Result<PgConfig, ProvisionError> {
    let mut config = PgConfig::parse(url.expose()).map_err(|e| ProvisionError::BadAdminUrl {
        server: server.to_string(),
        detail: e.to_string(),
    })?;
    if let Some(db) = db {
        config.dbname(db);
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("bulkhead-provisioner");
    Ok(config)
}

/// Opens one connection and drives it on a background task.
pub async fn connect(config: &PgConfig, server: &str) -> Result<Client, ProvisionError> {
    let (client, connection) = config
        .connect()
        .await
        .map_err(|e| unreachable(server, &e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "admin connection closed");
        }
    });
    Ok(client)
}

/// A failed connection: refused over TLS, or unreachable.
pub(crate) fn unreachable(server: &str, e: &tokio_postgres::Error) -> ProvisionError {
    match crate::pg::tls_failure(e) {
        Some(detail) => ProvisionError::Tls {
            server: server.to_string(),
            detail,
        },
        None => ProvisionError::ServerUnreachable {
            server: server.to_string(),
            detail: crate::pg::describe(e),
        },
    }
}

/// One admin connection to database `db` of `server`.
pub async fn connect_to(server: &Server, db: &str) -> Result<Client, ProvisionError> {
    connect(
        &admin_config(&server.admin_url, &server.name, Some(db))?,
        &server.name,
    )
    .await
}

/// One admin connection to `db` of `server` with server options set at
/// connection start (`-c name=value ...`).
pub async fn connect_with_options(
    server: &Server,
    db: &str,
    options: &str,
) -> Result<Client, ProvisionError> {
    let mut config = admin_config(&server.admin_url, &server.name, Some(db))?;
    config.options(options);
    connect(&config, &server.name).await
}

/// Pools of admin connections to each server's maintenance database.
#[derive(Default)]
pub struct AdminPools {
    pools: Mutex<HashMap<String, (String, Pool)>>,
}

impl AdminPools {
    /// A connection to the server's maintenance database (its admin URL's).
    pub async fn get(&self, server: &Server) -> Result<deadpool_postgres::Object, ProvisionError> {
        self.get_db(server, None).await
    }

    /// A connection to database `db` of the server (maintenance db: `None`).
    /// Callers leave no session state behind (`SET ROLE` is always reset).
    pub async fn get_db(
        &self,
        server: &Server,
        db: Option<&str>,
    ) -> Result<deadpool_postgres::Object, ProvisionError> {
        let key = format!("{}\0{}", server.name, db.unwrap_or(""));
        let pool = {
            let mut pools = self.pools.lock().expect("admin pool map poisoned");
            // Keyed by URL too: a server whose URL changed gets a fresh pool.
            match pools.get(&key) {
                Some((url, pool)) if url == server.admin_url.expose() => pool.clone(),
                _ => {
                    let config = admin_config(&server.admin_url, &server.name, db)?;
                    let manager = Manager::from_config(
                        (*config).clone(),
                        config.tls(),
                        ManagerConfig {
                            recycling_method: RecyclingMethod::Fast,
                        },
                    );
                    let pool = Pool::builder(manager).max_size(8).build().map_err(|e| {
                        ProvisionError::BadAdminUrl {
                            server: server.name.clone(),
                            detail: e.to_string(),
                        }
                    })?;
                    pools.insert(key, (server.admin_url.expose().clone(), pool.clone()));
                    close_when_idle(&pool);
                    pool
                }
            }
        };
        pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => unreachable(&server.name, &e),
            other => ProvisionError::ServerUnreachable {
                server: server.name.clone(),
                detail: other.to_string(),
            },
        })
    }
}

/// How long an admin connection may sit idle before it is closed.
pub const ADMIN_IDLE: Duration = Duration::from_secs(10);

/// Closes the pool's connections once idle for [`ADMIN_IDLE`], until the pool
/// is gone. Admin connections are outside every tenant budget: left open
/// after a burst of provisioning (up to 8 per database touched) they would
/// take the slots the budget leaves free for the control plane and
/// superusers, and tenants would meet PostgreSQL's own "too many clients".
fn close_when_idle(pool: &Pool) {
    let weak = pool.weak();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ADMIN_IDLE / 2);
        loop {
            tick.tick().await;
            let Some(pool) = weak.upgrade() else { return };
            pool.retain(|_, metrics| metrics.last_used() < ADMIN_IDLE);
        }
    });
}

pub async fn role_exists(client: &Client, role: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&role],
        )
        .await?
        .get(0))
}

pub async fn database_exists(client: &Client, db: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&db],
        )
        .await?
        .get(0))
}
