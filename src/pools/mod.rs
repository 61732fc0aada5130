//! The pool router: tenant -> a pool of connections logged in as that
//! tenant's runtime role, to that tenant's database. Pools live in a bounded
//! moka cache and are closed when idle; every server's connections are held
//! under its budget (see [`ServerBudget`]).

mod budget;
mod conn;
mod dirt;
mod lanes;
mod request;
mod session;
mod socket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult, Timeouts};
use moka::future::Cache;

pub use budget::ServerBudget;
pub use conn::TenantConn;
pub(crate) use request::HandlerPoll;

use crate::control::{ControlError, ControlPlane, TenantId};
use crate::pg::PgConfig;
use crate::routing::TenantEntry;
use crate::secret::MasterSecret;

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The server's connection budget stayed spent for the whole wait.
    #[error("the database server `{0}` is at its connection budget")]
    Busy(String),
    /// The tenant's own pool stayed full for the whole wait.
    #[error("tenant pool exhausted")]
    TenantBusy,
    #[error("database server `{server}` unreachable: {detail}")]
    Unavailable { server: String, detail: String },
    /// A connection that is not who it should be: never handed out.
    #[error("connection identity mismatch for tenant {tenant}: {detail}")]
    Mismatch { tenant: String, detail: String },
    #[error("unknown server `{0}`")]
    UnknownServer(String),
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl PoolError {
    /// Temporary conditions a client should retry after a moment (503).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PoolError::Busy(_) | PoolError::TenantBusy | PoolError::Unavailable { .. }
        )
    }
}

/// Whether a query on a tenant connection failed because its server went
/// away or is going away (shut down, crashed, restarting, or the connection
/// broke) rather than because of the query: the tenant is unavailable for a
/// moment, as when [`PoolError::is_retryable`], and a retry can succeed once
/// the pool has opened a new connection. A request in flight when its
/// server stops gets this, not a query error. Only the server's word or a
/// closed connection counts: a value that failed to convert is a bug.
pub fn server_went_away(e: &tokio_postgres::Error) -> bool {
    e.is_closed() || (e.code().is_some() && crate::pg::is_connection_error(e))
}

#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Connections one tenant may hold at once.
    pub per_tenant: usize,
    /// How long a request waits for a connection before a 503.
    pub wait: Duration,
    /// Connections idle this long are closed.
    pub connection_idle: Duration,
    /// Pools unused this long are closed and dropped.
    pub pool_idle: Duration,
    /// Most pools held at once.
    pub max_pools: u64,
    pub connect_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            per_tenant: 10,
            wait: Duration::from_secs(2),
            connection_idle: Duration::from_secs(60),
            pool_idle: Duration::from_secs(300),
            max_pools: 10_000,
            connect_timeout: Duration::from_secs(3),
        }
    }
}

/// One tenant's pool (for one credential generation and catalog name).
pub struct TenantPool {
    /// The tenant and credential generation it logs in as.
    key: (TenantId, i32),
    /// The role and database it logs in as and to: a tenant whose objects
    /// were renamed needs a new pool.
    role: String,
    database: String,
    pool: managed::Pool<TenantManager>,
    last_used: AtomicU64,
    server: Arc<ServerBudget>,
    lanes: lanes::Lanes,
}

impl TenantPool {
    /// Whether this is the pool of this tenant at its current credentials
    /// and names.
    pub(crate) fn serves(&self, tenant: &TenantEntry) -> bool {
        self.key == (tenant.id, tenant.credential_generation)
            && self.role == tenant.role
            && self.database == tenant.database
    }

    /// Not yet closed (pools are closed when evicted).
    pub(crate) fn is_open(&self) -> bool {
        !self.pool.is_closed()
    }
}

tokio::task_local! {
    /// When the request asking for a connection gives up waiting for one:
    /// set by [`PoolRouter::connect_to`] around its checkout and read by
    /// [`TenantManager::create`] (deadpool runs it in the caller's task), so
    /// that the wait for a lane and the wait for a budget slot share one
    /// `PoolSettings::wait` instead of taking one each.
    static CHECKOUT_DEADLINE: tokio::time::Instant;
}

pub struct TenantManager {
    /// The server's admin URL settings (its TLS included) as the tenant.
    config: PgConfig,
    role: String,
    database: String,
    /// The `search_path` pinned at connection start, as `current_setting` reads it.
    search_path: String,
    slug: String,
    server: Arc<ServerBudget>,
    /// The wait for a budget slot of a checkout with no deadline set.
    wait: Duration,
    connect_timeout: Duration,
}

/// A live connection. Its budget slot belongs to the task driving the
/// connection, so it is freed only when the server has closed the socket: the
/// backend has left PostgreSQL's connection count by then, and a connection
/// opened in its place is never refused for "too many clients".
pub struct TenantClient {
    client: tokio_postgres::Client,
    /// Whether a statement since the last reset may have left session state.
    dirt: Arc<dirt::Dirt>,
}

impl managed::Manager for TenantManager {
    type Type = TenantClient;
    type Error = PoolError;

    async fn create(&self) -> Result<TenantClient, PoolError> {
        // What is left of the request's wait after its wait for a lane.
        let wait = CHECKOUT_DEADLINE
            .try_with(|deadline| deadline.saturating_duration_since(tokio::time::Instant::now()))
            .unwrap_or(self.wait);
        let slot = self
            .server
            .acquire(wait)
            .await
            .ok_or_else(|| PoolError::Busy(self.server.name.clone()))?;
        let started = Instant::now();
        let unavailable = |detail: String| PoolError::Unavailable {
            server: self.server.name.clone(),
            detail,
        };
        let dirt = Arc::new(dirt::Dirt::default());
        let connecting = async {
            let (stream, host) =
                socket::DrainingStream::connect(&self.config, self.connect_timeout)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
            let stream = stream.scanned_by(dirt::Scan::new(dirt.clone(), true));
            self.config
                .connect_raw_wrapped(stream, &host, |tls| dirt::Tapped::new(tls, dirt.clone()))
                .await
                .map_err(|e| unavailable(crate::pg::describe(&e)))
        };
        let (client, connection) = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| unavailable("connection timed out".into()))??;
        let slug = self.slug.clone();
        tokio::spawn(async move {
            session::drive(connection, &slug).await;
            drop(slot);
        });
        metrics::counter!("bulkhead_connections_opened_total", "server" => self.server.name.clone())
            .increment(1);
        tokio::time::timeout(self.connect_timeout, self.verify(&client))
            .await
            .map_err(|_| unavailable("identity check timed out".into()))??;
        let cost = started.elapsed();
        self.server.record_connect(cost);
        metrics::histogram!("bulkhead_connect_seconds", "server" => self.server.name.clone())
            .record(cost.as_secs_f64());
        // The identity check is not a request's: nothing to reset.
        dirt.take();
        Ok(TenantClient { client, dirt })
    }

    async fn recycle(&self, obj: &mut TenantClient, _: &Metrics) -> RecycleResult<PoolError> {
        if obj.client.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

impl TenantManager {
    /// The isolation contract, point 3: a connection is handed out only if it
    /// is logged in as this tenant's role, to this tenant's database, with
    /// unqualified names resolving to this tenant's schema alone (pinned at
    /// start-up: a role can change its own defaults, never this).
    async fn verify(&self, client: &tokio_postgres::Client) -> Result<(), PoolError> {
        let row = client
            .query_one(
                "SELECT current_user::text, current_database()::text, current_setting('search_path')",
                &[],
            )
            .await
            .map_err(|e| PoolError::Unavailable {
                server: self.server.name.clone(),
                detail: crate::pg::describe(&e),
            })?;
        let (user, db, path): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        if user != self.role || db != self.database || path != self.search_path {
            tracing::error!(tenant = %self.slug, %user, %db, search_path = %path, "tenant connection has the wrong identity");
            return Err(PoolError::Mismatch {
                tenant: self.slug.clone(),
                detail: format!("connected as {user} to {db} with search_path {path}"),
            });
        }
        Ok(())
    }
}

pub struct PoolRouter {
    control: ControlPlane,
    secret: MasterSecret,
    settings: PoolSettings,
    servers: RwLock<HashMap<String, (PgConfig, Arc<ServerBudget>)>>,
    pools: Cache<(TenantId, i32), Arc<TenantPool>>,
    epoch: Instant,
}

impl PoolRouter {
    pub fn new(control: ControlPlane, secret: MasterSecret, settings: PoolSettings) -> Arc<Self> {
        let pools = Cache::builder()
            .max_capacity(settings.max_pools)
            .time_to_idle(settings.pool_idle)
            .eviction_listener(|_, pool: Arc<TenantPool>, _| {
                pool.pool.close();
                metrics::counter!("bulkhead_pools_evicted_total").increment(1);
            })
            .build();
        let router = Arc::new(Self {
            control,
            secret,
            settings,
            servers: RwLock::new(HashMap::new()),
            pools,
            epoch: Instant::now(),
        });
        let weak = Arc::downgrade(&router);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let Some(router) = weak.upgrade() else { return };
                router.housekeeping().await;
            }
        });
        router
    }

    /// Closes idle connections and pools; publishes gauges.
    pub async fn housekeeping(&self) {
        self.pools.run_pending_tasks().await;
        let servers: Vec<Arc<ServerBudget>> = self
            .servers
            .read()
            .expect("server map poisoned")
            .values()
            .map(|(_, b)| b.clone())
            .collect();
        for budget in servers {
            budget.close_idle(self.settings.connection_idle);
            metrics::gauge!("bulkhead_server_connections", "server" => budget.name.clone())
                .set(budget.in_use() as f64);
            metrics::gauge!("bulkhead_server_budget", "server" => budget.name.clone())
                .set(budget.limit as f64);
        }
        metrics::gauge!("bulkhead_pools_live").set(self.pools.entry_count() as f64);
    }

    /// The budget of a server, if it has been used yet.
    pub fn budget(&self, server: &str) -> Option<Arc<ServerBudget>> {
        self.servers
            .read()
            .expect("server map poisoned")
            .get(server)
            .map(|(_, b)| b.clone())
    }

    pub fn live_pools(&self) -> u64 {
        self.pools.entry_count()
    }

    async fn server(&self, name: &str) -> Result<(PgConfig, Arc<ServerBudget>), PoolError> {
        if let Some(found) = self.servers.read().expect("server map poisoned").get(name) {
            return Ok(found.clone());
        }
        let server = self
            .control
            .server(name)
            .await?
            .ok_or_else(|| PoolError::UnknownServer(name.to_string()))?;
        let config =
            PgConfig::parse(server.admin_url.expose()).map_err(|e| PoolError::Unavailable {
                server: name.to_string(),
                detail: e.to_string(),
            })?;
        let mut servers = self.servers.write().expect("server map poisoned");
        let entry = servers.entry(name.to_string()).or_insert_with(|| {
            (
                config,
                Arc::new(ServerBudget::new(name, server.budget.max(1) as usize)),
            )
        });
        Ok(entry.clone())
    }

    /// The tenant's pool, made on first use; [`Self::connect_to`] gives its
    /// connections. Crate-private on purpose, like that: handlers get a
    /// connection only through the `Db` extractor, which resolved the tenant
    /// from the request's host. Single flight: concurrent first
    /// requests of a tenant build one pool.
    pub(crate) async fn pool(&self, tenant: &TenantEntry) -> Result<Arc<TenantPool>, PoolError> {
        let key = (tenant.id, tenant.credential_generation);
        let pool = self.cached_pool(key, tenant).await?;
        if pool.serves(tenant) {
            return Ok(pool);
        }
        // Made for the names the tenant's objects had before a rename: closed
        // on eviction, and made again for the names they have now.
        self.pools.invalidate(&key).await;
        let pool = self.cached_pool(key, tenant).await?;
        if pool.serves(tenant) {
            Ok(pool)
        } else {
            // Another request, holding the names of before, made it again.
            Err(PoolError::Unavailable {
                server: tenant.server.clone(),
                detail: "the tenant's catalog names are changing".into(),
            })
        }
    }

    async fn cached_pool(
        &self,
        key: (TenantId, i32),
        tenant: &TenantEntry,
    ) -> Result<Arc<TenantPool>, PoolError> {
        self.pools
            .try_get_with(key, self.new_pool(tenant))
            .await
            .map_err(|e| match &*e {
                PoolError::UnknownServer(s) => PoolError::UnknownServer(s.clone()),
                other => PoolError::Unavailable {
                    server: tenant.server.clone(),
                    detail: other.to_string(),
                },
            })
    }

    /// A connection to the tenant's database as the tenant's runtime role,
    /// from `pool`, which must be this tenant's (as [`Self::pool`] gave it,
    /// perhaps a moment ago): any other is refused outright.
    pub(crate) async fn connect_to(
        &self,
        tenant: &TenantEntry,
        pool: &Arc<TenantPool>,
    ) -> Result<TenantConn, PoolError> {
        if !pool.serves(tenant) {
            tracing::error!(tenant = %tenant.slug, "asked for a connection from another tenant's pool");
            return Err(PoolError::Mismatch {
                tenant: tenant.slug.to_string(),
                detail: "another tenant's pool".into(),
            });
        }
        pool.last_used
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + self.settings.wait;
        let lane = pool
            .lanes
            .enter(
                pool.server.has_room(),
                pool.server.connect_cost(),
                self.settings.wait,
            )
            .await
            .ok_or(PoolError::TenantBusy)?;
        let checkout = CHECKOUT_DEADLINE.scope(deadline, pool.pool.get());
        let object = checkout.await.map_err(|e| match e {
            managed::PoolError::Backend(e) => e,
            managed::PoolError::Timeout(_) => PoolError::TenantBusy,
            other => PoolError::Unavailable {
                server: tenant.server.clone(),
                detail: other.to_string(),
            },
        })?;
        Ok(TenantConn::new(object, lane, pool))
    }

    async fn new_pool(&self, tenant: &TenantEntry) -> Result<Arc<TenantPool>, PoolError> {
        let (admin, budget) = self.server(&tenant.server).await?;
        let mut config = admin.clone();
        let password = self
            .secret
            .tenant_password(tenant.id.0, tenant.credential_generation);
        config
            .user(&tenant.role)
            .password(password.expose().as_bytes())
            .dbname(&tenant.database)
            .application_name("bulkhead");
        crate::sql::pin_search_path(&mut config, &tenant.schema);
        let manager = TenantManager {
            config,
            role: tenant.role.clone(),
            database: tenant.database.clone(),
            search_path: crate::sql::search_path_of(&tenant.schema),
            slug: tenant.slug.to_string(),
            server: budget.clone(),
            wait: self.settings.wait,
            connect_timeout: self.settings.connect_timeout,
        };
        let pool = managed::Pool::builder(manager)
            .max_size(self.settings.per_tenant)
            .runtime(deadpool::Runtime::Tokio1)
            // No timeouts of deadpool's own (each costs a timer per checkout):
            // a request holding a lane always finds room in the pool (lanes
            // never outnumber its size), `create` bounds its waits itself,
            // and `recycle` does not wait at all.
            .timeouts(Timeouts::default())
            .build()
            .map_err(|e| PoolError::Unavailable {
                server: tenant.server.clone(),
                detail: e.to_string(),
            })?;
        let pool = Arc::new(TenantPool {
            key: (tenant.id, tenant.credential_generation),
            role: tenant.role.clone(),
            database: tenant.database.clone(),
            pool,
            last_used: AtomicU64::new(0),
            server: budget.clone(),
            lanes: lanes::Lanes::new(self.settings.per_tenant),
        });
        budget.register(&pool);
        metrics::counter!("bulkhead_pools_created_total").increment(1);
        Ok(pool)
    }

    /// Closes every pool (graceful shutdown).
    pub async fn close_all(&self) {
        for (_, pool) in self.pools.iter() {
            pool.pool.close();
        }
        self.pools.invalidate_all();
        self.pools.run_pending_tasks().await;
    }
}
