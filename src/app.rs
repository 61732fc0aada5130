//! Opens what every command needs: the embedded cluster (unless a control
//! plane URL is given), the migrated control plane, and the provisioner.

use std::sync::Arc;

use crate::auth::Permission;
use crate::control::{ControlError, ControlPlane, NewServer};
use crate::http::Routes;
use crate::pg::{Cluster, ClusterOptions, PgError};
use crate::provision::{ProvisionSettings, Provisioner};
use crate::secret::{MasterSecret, Secret, SecretError};

/// Name of the control-plane database inside an embedded cluster.
pub const CONTROL_DB: &str = "bulkhead";
/// The embedded cluster registers itself as this server.
pub const LOCAL_SERVER: &str = "local";

/// Why a product could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The embedded cluster could not be found, made or started.
    #[error(transparent)]
    Pg(#[from] PgError),
    /// The control plane could not be reached or migrated.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The master secret is invalid or unreadable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// A control-plane URL without a master secret.
    #[error("BULKHEAD_SECRET is required when BULKHEAD_CONTROL_URL is set")]
    SecretRequired,
    /// The tenant migrations are invalid.
    #[error(transparent)]
    Migrations(#[from] crate::migrations::MigrateError),
    /// The embedded cluster's set-up task failed.
    #[error("cannot prepare the embedded cluster")]
    EmbeddedTask(#[source] tokio::task::JoinError),
    /// The embedded control-plane database could not be made.
    #[error("cannot prepare the embedded control plane")]
    Embedded(#[source] tokio_postgres::Error),
    /// A connection string (or `--pg-ca-file`) is invalid.
    #[error(transparent)]
    BadUrl(#[from] crate::pg::UrlError),
    /// The embedded cluster could not be locked down.
    #[error("cannot lock down the embedded cluster")]
    Lockdown(#[source] Box<crate::provision::ProvisionError>),
    /// The product's permissions or migrations are invalid.
    #[error("invalid product: {0}")]
    Product(String),
}

/// Everything a command works with.
pub struct Bulkhead {
    /// Creates, moves and deletes tenants; holds the control plane.
    pub provisioner: std::sync::Arc<Provisioner>,
    /// The embedded cluster, when no control-plane URL was given.
    pub cluster: Option<Cluster>,
    /// What the product built on the platform adds (routes, permissions).
    pub product: Arc<Product>,
}

type AddRoutes = Arc<dyn Fn(Routes) -> Routes + Send + Sync>;

/// A product on the platform, being put together: its tenant migrations,
/// its permissions and its routes. [`Builder::open`] opens it (the embedded
/// cluster or the control plane, migrated); [`crate::cli::run_with`] makes
/// it a command line with every `bulkhead` command.
///
/// ```no_run
/// use bulkhead::app::Bulkhead;
/// use bulkhead::auth::{Perm, Permission, Role};
/// use bulkhead::http::extract::{Can, Db};
/// use bulkhead::http::{Access, ApiResult};
///
/// struct NotesWrite;
/// impl Perm for NotesWrite {
///     const PERMISSION: Permission =
///         Permission::new("notes.write", &[Role::Owner, Role::Admin, Role::Member]);
/// }
///
/// async fn add(_: Can<NotesWrite>, Db(db): Db) -> ApiResult<&'static str> {
///     db.execute("INSERT INTO notes (body) VALUES ('hi')", &[]).await?;
///     Ok("added")
/// }
///
/// fn main() -> std::process::ExitCode {
///     let product = Bulkhead::builder()
///         .tenant_migration(
///             "V1001__notes",
///             "CREATE TABLE notes (id bigserial PRIMARY KEY, body text)",
///         )
///         .permission(NotesWrite::PERMISSION)
///         .routes(|r| r.post("/api/notes", Access::Requires(NotesWrite::PERMISSION), add));
///     bulkhead::cli::run_with(product)
/// }
/// ```
#[derive(Clone, Default)]
pub struct Builder {
    migrations: Vec<(String, String)>,
    permissions: Vec<Permission>,
    routes: Vec<AddRoutes>,
    demo: Demo,
}

/// What `bulkhead dev` shows of a product.
#[derive(Clone, Debug)]
pub struct Demo {
    /// Written into each demo tenant, as the tenant, at every `dev` (so it
    /// must do nothing the second time).
    pub sql: Option<String>,
    /// The path of the `curl` line `dev` prints for each tenant.
    pub path: String,
}

impl Default for Demo {
    fn default() -> Self {
        Self {
            sql: None,
            path: "/api/me".into(),
        }
    }
}

impl Builder {
    /// A tenant migration of the product's own, embedded in its binary:
    /// `name` as refinery names files (`V1001__notes`), `sql` its text
    /// (`include_str!`). Applied to every tenant, in version order with the
    /// platform's, whose versions stay below 1000: start yours there.
    pub fn tenant_migration(mut self, name: &str, sql: &str) -> Self {
        self.migrations.push((name.to_string(), sql.to_string()));
        self
    }

    /// A permission of the product's own (checked: see [`Permission::check`]).
    pub fn permission(mut self, permission: Permission) -> Self {
        self.permissions.push(permission);
        self
    }

    /// Adds the product's routes to the platform's.
    pub fn routes(mut self, add: impl Fn(Routes) -> Routes + Send + Sync + 'static) -> Self {
        self.routes.push(Arc::new(add));
        self
    }

    /// What `bulkhead dev` writes into its demo tenants (as the tenant, at
    /// every run: make it idempotent) and the path its example `curl` asks for.
    pub fn demo(mut self, path: &str, sql: &str) -> Self {
        self.demo = Demo {
            sql: Some(sql.to_string()),
            path: path.to_string(),
        };
        self
    }

    /// The product, checked: its permissions well formed and each named
    /// once (the platform's included), its migrations readable.
    pub fn product(&self) -> Result<Product, OpenError> {
        let mut seen: Vec<Permission> = Permission::PLATFORM.to_vec();
        for p in &self.permissions {
            p.check().map_err(OpenError::Product)?;
            if seen.iter().any(|q| q.as_str() == p.as_str()) {
                return Err(OpenError::Product(format!(
                    "permission `{p}` is defined twice"
                )));
            }
            seen.push(*p);
        }
        let migrations = self
            .migrations
            .iter()
            .map(|(name, sql)| {
                refinery::Migration::unapplied(name, sql)
                    .map_err(|e| OpenError::Product(format!("tenant migration `{name}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Product {
            migrations,
            permissions: seen,
            routes: self.routes.clone(),
            demo: self.demo.clone(),
        })
    }

    /// Opens the product with `args`: the embedded cluster (unless a
    /// control plane URL is given), the migrated control plane, the
    /// provisioner with every tenant migration.
    pub async fn open(&self, args: &crate::config::GlobalArgs) -> Result<Bulkhead, OpenError> {
        Bulkhead::open_product(args, self.product()?).await
    }
}

/// A product, checked (see [`Builder::product`]).
pub struct Product {
    migrations: Vec<refinery::Migration>,
    permissions: Vec<Permission>,
    routes: Vec<AddRoutes>,
    demo: Demo,
}

impl Product {
    /// What `bulkhead dev` shows of it.
    pub fn demo(&self) -> &Demo {
        &self.demo
    }

    /// Every permission: the platform's, then the product's.
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    pub(crate) fn add_routes(&self, mut routes: Routes) -> Routes {
        for add in &self.routes {
            routes = add(routes);
        }
        routes
    }

    /// Every route, the platform's and the product's, with what it requires.
    pub fn routes(&self) -> Vec<crate::http::RouteSpec> {
        crate::http::router_specs(self)
    }
}

impl Bulkhead {
    /// A product of your own on the platform (see [`Builder`]).
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The reference application ([`crate::reference`]) with `args`.
    pub async fn open(args: &crate::config::GlobalArgs) -> Result<Self, OpenError> {
        crate::reference::builder().open(args).await
    }

    async fn open_product(
        args: &crate::config::GlobalArgs,
        product: Product,
    ) -> Result<Self, OpenError> {
        crate::pg::set_default_root_cert(args.pg_ca_file.as_deref())?;
        // Bad migrations are bad input: refuse before touching anything.
        let schema = crate::migrations::TenantSchema::load_with(
            &product.migrations,
            args.migrations_dir.as_deref(),
        )?;
        let mut settings = ProvisionSettings {
            template_db: args.template_db.clone(),
            shared_db: args.shared_db.clone(),
            connection_limit: args.tenant_connection_limit,
            slug_quarantine_days: args.slug_quarantine_days,
            actor: actor(),
            pg_bindir: None,
        };
        let (control, secret, cluster) = match &args.control_url {
            Some(url) => {
                let secret = args.secret.as_deref().ok_or(OpenError::SecretRequired)?;
                let control = ControlPlane::open(&Secret::new(url.clone())).await?;
                (control, MasterSecret::parse(secret)?, None)
            }
            None => {
                let home = &args.home;
                let options = ClusterOptions {
                    max_connections: args.pg_max_connections,
                    bindir: args.pg_bindir.clone(),
                    ..ClusterOptions::default()
                };
                let dir = home.join("pg");
                let cluster = tokio::task::spawn_blocking(move || Cluster::ensure(&dir, &options))
                    .await
                    .map_err(OpenError::EmbeddedTask)??;
                settings.pg_bindir = Some(cluster.binaries.dir.clone());
                create_database_if_missing(&cluster, CONTROL_DB).await?;
                let control = ControlPlane::open(&cluster.admin_url(CONTROL_DB)).await?;
                control
                    .upsert_server_url(&NewServer {
                        name: LOCAL_SERVER,
                        admin_url: &cluster.admin_url("postgres"),
                        capacity: 10_000,
                        budget: (args.pg_max_connections as i32 * 4 / 5).max(10),
                    })
                    .await?;
                let secret = match &args.secret {
                    Some(s) => MasterSecret::parse(s)?,
                    None => MasterSecret::load_or_generate(&home.join("secret"))?,
                };
                (control, secret, Some(cluster))
            }
        };
        let provisioner = Provisioner::new(control, secret, settings, schema);
        if cluster.is_some() {
            provisioner
                .lockdown_server(LOCAL_SERVER)
                .await
                .map_err(|e| OpenError::Lockdown(Box::new(e)))?;
        }
        Ok(Self {
            provisioner: std::sync::Arc::new(provisioner),
            cluster,
            product: Arc::new(product),
        })
    }
}

/// Creates database `db` on the embedded cluster if it does not exist yet.
pub async fn create_database_if_missing(cluster: &Cluster, db: &str) -> Result<(), OpenError> {
    let url = cluster.admin_url("postgres");
    let config = crate::pg::PgConfig::parse(url.expose()).map_err(OpenError::BadUrl)?;
    let (client, connection) = config.connect().await.map_err(OpenError::Embedded)?;
    tokio::spawn(connection);
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&db],
        )
        .await
        .map_err(OpenError::Embedded)?
        .get(0);
    if !exists {
        let sql = format!("CREATE DATABASE {}", crate::sql::Ident::new(db));
        if let Err(e) = client.batch_execute(&sql).await {
            // Another command may have created it at the same moment.
            if e.code() != Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) {
                return Err(OpenError::Embedded(e));
            }
        }
    }
    Ok(())
}

/// Who runs this command, for the audit log: `cli:<OS user>`.
fn actor() -> String {
    format!("cli:{}", os_user())
}

/// The OS user running this process: `$USER`, else the name of our uid.
pub fn os_user() -> String {
    if let Ok(user) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        return user;
    }
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".into();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[2] == uid.to_string())
                .map(|f| f[0].to_string())
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}
