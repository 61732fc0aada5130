//! The control plane: the one database that knows every server, tenant and
//! domain. Migrated from `control-plane-migrations/` on every start.

mod access;
mod admin;
mod attempts;
mod audit;
mod billing;
mod domains;
mod email;
mod health;
mod invitations;
mod lock;
mod members;
mod model;
mod operator_sessions;
mod operators;
mod role;
mod runs;
mod servers;
mod sessions;
mod settings;
mod tenants;
mod tokens;
mod users;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

pub use access::{AccessGrant, AccessMode, GrantEnd, GrantRequest, SupportPolicy};
pub use admin::{AuditFilter, AuditRow};
pub use attempts::{Admission, Attempt, AttemptKind};
pub use audit::AuditEntry;
pub use billing::{
    Effect, EventStamp, PlanChange, Recorded, SubscriptionRecord, SubscriptionRow, SyncChange,
};
pub use domains::Domain;
pub use email::{Email, EmailError};
pub use health::{Health, Stamped, State as HealthState, keep_for};
pub use invitations::{Accepted, InvitationRow, PendingInvitation};
pub use lock::{FLEET_LOCK_GRACE, FleetLock, TenantLock};
pub use members::{MemberChange, MemberRow};
pub use model::{
    Mode, PgName, Plan, RESERVED_SLUGS, ServerState, Slug, SlugError, Status, Step, TenantId,
};
pub use operator_sessions::{
    NewOperatorSession, OPERATOR_SESSION_IDLE, OPERATOR_SESSION_LIFETIME, OperatorSessionRow,
};
pub use operators::{ENROLMENT_TTL, Operator, OperatorRole, OperatorSecrets};
pub use role::Role;
pub use runs::{Run, RunCounts, RunFailure, RunTenant, VersionCount, VersionDrift};
pub use servers::{NewServer, Server};
pub use sessions::{NewSession, SessionRow, touch_interval};
pub use tenants::{NewTenant, Reservation, Tenant};
pub use tokens::TokenRow;
pub use users::User;

use crate::pg::PgConfig;
use crate::secret::Secret;

/// PostgreSQL `interval` input for a duration, to the millisecond.
fn interval(d: std::time::Duration) -> String {
    format!("{} milliseconds", d.as_millis())
}

/// Connections a process holds to the control plane (plus one LISTEN).
pub const CONTROL_POOL_SIZE: usize = 8;

mod embedded {
    refinery::embed_migrations!("control-plane-migrations");
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("invalid control-plane URL: {0}")]
    BadUrl(#[source] crate::pg::UrlError),
    #[error("cannot make the control-plane pool")]
    Pool(#[source] deadpool_postgres::BuildError),
    #[error("control plane unreachable")]
    Unreachable(#[source] deadpool_postgres::PoolError),
    /// The routing listener has lost the control plane: nothing is asked of
    /// it until it is back (see [`Health`]).
    #[error("control plane unreachable for {}s", .0.as_secs())]
    Away(std::time::Duration),
    #[error("control-plane migration failed")]
    Migration(#[source] refinery::Error),
    #[error("control-plane query failed: {}", crate::pg::describe(.0))]
    Query(#[from] tokio_postgres::Error),
    #[error("corrupt control-plane row: {0}")]
    Corrupt(String),
}

impl ControlError {
    /// Whether the control plane could not be reached or answer (it is
    /// down, restarting, or the network is), as opposed to a query it
    /// refused or a row it could not read.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ControlError::Unreachable(_) | ControlError::Away(_) => true,
            ControlError::Query(e) => crate::pg::is_connection_error(e),
            _ => false,
        }
    }
}

impl From<deadpool_postgres::PoolError> for ControlError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ControlError::Unreachable(e)
    }
}

/// A pooled handle on the control-plane database.
#[derive(Clone)]
pub struct ControlPlane {
    pool: Pool,
    config: PgConfig,
    url: Secret<String>,
    health: Health,
}

/// How long a connection to the control plane may take to open when its URL
/// does not say (`connect_timeout`): a request never waits on a dead host
/// longer than this.
pub const CONTROL_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

impl ControlPlane {
    /// Connects, then applies pending control-plane migrations (serialised
    /// across processes by an advisory lock).
    pub async fn open(url: &Secret<String>) -> Result<Self, ControlError> {
        let mut config = PgConfig::parse(url.expose()).map_err(ControlError::BadUrl)?;
        if config.get_application_name().is_none() {
            config.application_name("bulkhead-control");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONTROL_CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            (*config).clone(),
            config.tls(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            // Requests reach the control plane only on cache misses: a few
            // connections serve them, and the rest of a shared server's
            // connections stay free for tenants.
            .max_size(CONTROL_POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(10)))
            .create_timeout(Some(CONTROL_CONNECT_TIMEOUT * 2))
            .build()
            .map_err(ControlError::Pool)?;
        let plane = Self {
            pool,
            config,
            url: url.clone(),
            health: Health::default(),
        };
        plane.migrate().await?;
        Ok(plane)
    }

    async fn migrate(&self) -> Result<(), ControlError> {
        let mut client = self.pool.get().await?;
        client
            .execute("SELECT pg_advisory_lock(7415001)", &[])
            .await?;
        let result = embedded::migrations::runner()
            .set_migration_table_name("bulkhead_control_history")
            .run_async(&mut **client)
            .await;
        client
            .execute("SELECT pg_advisory_unlock(7415001)", &[])
            .await?;
        result.map_err(ControlError::Migration)?;
        Ok(())
    }

    /// The control plane's URL (for connections of their own, such as LISTEN).
    pub fn url(&self) -> &Secret<String> {
        &self.url
    }

    /// The same control plane, whose queries are refused at once while
    /// `health` says it is away (a serving process's, watched by its routing
    /// listener).
    pub fn with_health(&self, health: Health) -> Self {
        Self {
            health,
            ..self.clone()
        }
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, ControlError> {
        self.health.check()?;
        Ok(self.pool.get().await?)
    }

    /// A connection of its own, outside the pool: for session-level advisory
    /// locks, which may be held for long and must never occupy (or return
    /// to) the pool that the lock holders' own work draws from.
    pub(crate) async fn dedicated(&self) -> Result<tokio_postgres::Client, ControlError> {
        let (client, connection) = self.config.connect().await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

impl ControlPlane {
    /// A round trip to the control plane.
    pub async fn ping(&self) -> Result<(), ControlError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }
}
