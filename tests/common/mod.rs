//! Test harness: one PostgreSQL cluster per test binary (booted on first use,
//! removed when the binary exits), and per test a fresh control-plane database,
//! template and shared database names of its own, and unique slugs, so tests
//! run in parallel and never depend on order.
#![allow(dead_code)]

pub mod dns;

/// The same allocator as the `bulkhead` binary (the library declares none).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub mod smtp;

use std::process::Command;
use std::str::FromStr;
use std::sync::OnceLock;

use bulkhead::app::Bulkhead;
use bulkhead::config::GlobalArgs;
use bulkhead::provision::{AddServer, CreateRequest, Provisioner};
use bulkhead::secret::{Secret, random_hex};
use tokio_postgres::{Client, NoTls};

/// The cluster every test of this binary shares: superuser URL without database.
pub struct TestPg {
    /// `postgres://user:pw@host:port` (no path)
    base_url: String,
    /// Scratch files of this test binary: inside the throwaway cluster's
    /// directory, so they go with it when the binary exits.
    scratch: std::path::PathBuf,
}

impl TestPg {
    pub fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.base_url)
    }
}

pub fn pg() -> &'static TestPg {
    static PG: OnceLock<TestPg> = OnceLock::new();
    PG.get_or_init(|| {
        if let Ok(url) = std::env::var("BULKHEAD_TEST_PG_URL") {
            let base = url.trim_end_matches('/');
            let base = match base.rfind('/') {
                Some(i) if base[..i].contains('@') || base[..i].ends_with(':') => &base[..i],
                _ => base,
            };
            return TestPg {
                base_url: base.to_string(),
                scratch: std::env::temp_dir().join(format!("bulkhead-test-{}", std::process::id())),
            };
        }
        let cluster = bulkhead::pg::Cluster::throwaway(400).expect("boot the test cluster");
        let url = cluster.admin_url("postgres");
        TestPg {
            base_url: url.expose().trim_end_matches("/postgres").to_string(),
            scratch: cluster.dir.join("scratch"),
        }
    })
}

/// A new scratch directory for one test's files, removed with the test cluster.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = pg().scratch.join(format!("{name}-{}", random_hex(3)));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let config = tokio_postgres::Config::from_str(url).expect("valid URL");
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// One test's own fleet: control plane, template and shared database names.
pub struct TestFleet {
    pub id: String,
    pub args: GlobalArgs,
    pub app: Bulkhead,
    product: bulkhead::app::Builder,
}

impl TestFleet {
    pub async fn new() -> Self {
        Self::for_product(bulkhead::reference::builder()).await
    }

    /// A fleet of a product built on bulkhead (see `examples/notes`).
    pub async fn for_product(product: bulkhead::app::Builder) -> Self {
        let control_db = format!("cp_{}", random_hex(3));
        create_private_database(&control_db).await;
        Self::open(pg().url(&control_db), product).await
    }

    /// A fleet whose control plane is at `url` (a cluster of the test's own,
    /// which it may stop), its tenants on the binary's shared cluster.
    pub async fn with_control_plane(control_url: String) -> Self {
        Self::open(control_url, bulkhead::reference::builder()).await
    }

    async fn open(control_url: String, product: bulkhead::app::Builder) -> Self {
        let pg = pg();
        let id = random_hex(3);
        let args = GlobalArgs {
            home: pg.scratch.join(format!("home-{id}")),
            control_url: Some(control_url),
            secret: Some(random_hex(32)),
            template_db: format!("tpl_{id}"),
            shared_db: format!("shared_{id}"),
            tenant_connection_limit: 20,
            slug_quarantine_days: 30,
            pg_max_connections: 200,
            pg_bindir: None,
            migrations_dir: None,
            pg_ca_file: None,
        };
        let app = product.open(&args).await.expect("open the test fleet");
        app.provisioner
            .add_server(&AddServer {
                name: "local".into(),
                admin_url: Secret::new(pg.url("postgres")),
                capacity: 1000,
                budget: 50,
            })
            .await
            .expect("add the test server");
        Self {
            id,
            args,
            app,
            product,
        }
    }

    /// Re-opens the fleet with extra tenant migrations from `dir` (as an operator
    /// would run the next release's binary).
    pub async fn with_migrations(&mut self, dir: &std::path::Path) {
        self.args.migrations_dir = Some(dir.to_path_buf());
        self.app = self
            .product
            .open(&self.args)
            .await
            .expect("reopen with migrations");
    }

    pub fn p(&self) -> &Provisioner {
        &self.app.provisioner
    }

    /// Makes the provisioner fail right after `step` (`None`: never).
    pub fn fail_after(&mut self, step: Option<bulkhead::control::Step>) {
        std::sync::Arc::get_mut(&mut self.app.provisioner)
            .expect("no server shares this fleet's provisioner")
            .fail_after = step;
    }

    /// A slug unique to this test: `<base>-<id>`.
    pub fn slug(&self, base: &str) -> String {
        format!("{base}-{}", self.id)
    }

    /// Creates an active tenant and returns its slug.
    pub async fn tenant(&self, base: &str, mode: bulkhead::control::Mode) -> String {
        let slug = self.slug(base);
        self.p()
            .create(&CreateRequest {
                slug: slug.clone(),
                display_name: None,
                mode,
                plan: bulkhead::control::Plan::Free,
                server: None,
            })
            .await
            .unwrap_or_else(|e| panic!("create {slug}: {e}"));
        slug
    }

    /// A connection logged in as the tenant's runtime role.
    pub async fn as_tenant(&self, slug: &str) -> Client {
        let url = self.p().connect_url(slug).await.expect("connect url");
        connect(url.expose()).await.expect("connect as tenant")
    }

    /// A superuser connection to `db`.
    pub async fn admin(&self, db: &str) -> Client {
        connect(&pg().url(db)).await.expect("connect as admin")
    }

    /// The `bulkhead` binary, configured for this fleet.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulkhead"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BULKHEAD_HOME", &self.args.home)
            .env(
                "BULKHEAD_CONTROL_URL",
                self.args.control_url.as_ref().unwrap(),
            )
            .env("BULKHEAD_SECRET", self.args.secret.as_ref().unwrap())
            .env("BULKHEAD_TEMPLATE_DB", &self.args.template_db)
            .env("BULKHEAD_SHARED_DB", &self.args.shared_db);
        if let Some(dir) = &self.args.migrations_dir {
            cmd.env("BULKHEAD_MIGRATIONS_DIR", dir);
        }
        cmd
    }

    /// Does the server have a role / database / schema of this name?
    pub async fn role_exists(&self, role: &str) -> bool {
        self.admin("postgres")
            .await
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    }

    pub async fn database_exists(&self, db: &str) -> bool {
        self.admin("postgres")
            .await
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&db],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    }

    pub async fn schema_exists(&self, schema: &str) -> bool {
        let shared = &self.args.shared_db;
        if !self.database_exists(shared).await {
            return false;
        }
        self.admin(shared)
            .await
            .query_one(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                &[&schema],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 1
    }

    /// Every name the objects of a tenant with this slug may have had: the
    /// ones recorded for it (live or deleted, renamed or being renamed) and
    /// the slug-derived one tenants were once given.
    pub async fn names_of(&self, slug: &str) -> Vec<String> {
        let cp = connect(self.args.control_url.as_ref().unwrap())
            .await
            .unwrap();
        let mut names: Vec<String> = cp
            .query(
                "SELECT n FROM tenants, LATERAL (VALUES (pg_name), (pg_name_next)) v (n)
                  WHERE slug = $1 AND n IS NOT NULL",
                &[&slug],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        names.push(format!("t_{slug}"));
        names.sort();
        names.dedup();
        names
    }

    /// Whether anything of the tenant exists on the server (roles, database,
    /// schema), under any name it may have had.
    pub async fn traces_of(&self, slug: &str) -> Vec<String> {
        let mut traces = Vec::new();
        for runtime in self.names_of(slug).await {
            let owner = format!("{runtime}_owner");
            for role in [&runtime, &owner] {
                if self.role_exists(role).await {
                    traces.push(format!("role {role}"));
                }
            }
            if self.database_exists(&runtime).await {
                traces.push(format!("database {runtime}"));
            }
            if self.schema_exists(&runtime).await {
                traces.push(format!("schema {runtime}"));
            }
        }
        traces
    }

    /// The live tenant's runtime role, which also names its database
    /// (database mode) or schema (schema mode); `<it>_owner` is its owner.
    pub async fn pg_name(&self, slug: &str) -> String {
        self.tenant_row(slug).await.pg_name.to_string()
    }

    /// A superuser connection to the database holding the tenant's objects,
    /// with its schema first on the search path.
    pub async fn admin_of(&self, slug: &str) -> Client {
        let tenant = self
            .p()
            .control()
            .tenant_by_slug(&bulkhead::control::Slug::parse(slug).unwrap())
            .await
            .unwrap()
            .unwrap();
        let client = self.admin(&tenant.database(&self.args.shared_db)).await;
        client
            .batch_execute(&format!("SET search_path = \"{}\"", tenant.schema()))
            .await
            .unwrap();
        client
    }

    pub async fn tenant_row(&self, slug: &str) -> bulkhead::control::Tenant {
        self.p()
            .control()
            .tenant_by_slug(&bulkhead::control::Slug::parse(slug).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    /// A directory of extra tenant migrations, written now.
    pub fn migrations_dir(&self, files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = scratch(&format!("migrations-{}", self.id));
        for (name, sql) in files {
            std::fs::write(dir.join(name), sql).unwrap();
        }
        dir
    }

    /// How many tenant rows (any status) the control plane has for a slug.
    pub async fn tenant_rows(&self, slug: &str) -> i64 {
        let cp = connect(self.args.control_url.as_ref().unwrap())
            .await
            .unwrap();
        cp.query_one("SELECT count(*) FROM tenants WHERE slug = $1", &[&slug])
            .await
            .unwrap()
            .get(0)
    }
}

/// Creates a database nobody but superusers may connect to (as a managed
/// server's databases must be: see provisioning/server_lockdown.sql). Created
/// closed, as the provisioner creates its own: a new database grants PUBLIC
/// CONNECT until the REVOKE, and no role may connect in between.
pub async fn create_private_database(name: &str) {
    let admin = connect(&pg().url("postgres"))
        .await
        .expect("connect as admin");
    // One statement per call: CREATE DATABASE refuses to run in the implicit
    // transaction of a multi-statement query.
    for sql in [
        format!("CREATE DATABASE {name} ALLOW_CONNECTIONS false"),
        format!("REVOKE CONNECT, TEMPORARY ON DATABASE {name} FROM PUBLIC"),
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"),
    ] {
        admin
            .batch_execute(&sql)
            .await
            .expect("create a private database");
    }
}

/// A server for this fleet on a free loopback port, base domain `localhost`.
pub async fn serve(
    fleet: &TestFleet,
    tweak: impl FnOnce(&mut bulkhead::serve::ServeSettings),
) -> bulkhead::serve::Running {
    let mut settings = bulkhead::serve::ServeSettings::new(
        "127.0.0.1:0".parse().unwrap(),
        bulkhead::routing::HostName::parse("localhost").unwrap(),
    );
    tweak(&mut settings);
    bulkhead::serve::start(&fleet.app, &settings)
        .await
        .expect("start the server")
}

/// A response: status, headers, body text.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One HTTP request to `addr` with an explicit `Host` header.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| ("authorization", b))
        .into_iter()
        .collect();
    request(addr, method, host, path, &headers, body).await
}

/// `http` with any headers (cookies, CSRF tokens, origins).
pub async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> Reply {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(reqwest::Client::new);
    let mut req = client
        .request(method.parse().unwrap(), format!("http://{addr}{path}"))
        .header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("send");
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

impl TestFleet {
    /// An API token for a tenant, with a role.
    pub async fn token(&self, slug: &str, role: &str) -> String {
        let t = self.tenant_row(slug).await;
        let (_, secret) = bulkhead::auth::Tokens::create(self.p().control(), t.id, role, "test")
            .await
            .unwrap();
        secret.expose().clone()
    }

    /// A second throwaway cluster, registered with this fleet as server `name`
    /// (capacity 10, budget 10). It is removed when the test binary exits.
    pub async fn second_server(&self, name: &str) -> bulkhead::pg::Cluster {
        let cluster = bulkhead::pg::Cluster::throwaway(100).expect("a second cluster");
        self.p()
            .add_server(&bulkhead::provision::AddServer {
                name: name.into(),
                admin_url: cluster.admin_url("postgres"),
                capacity: 10,
                budget: 10,
            })
            .await
            .expect("register the second cluster");
        cluster
    }

    /// Runs SQL on the control plane.
    pub async fn control_sql(&self, sql: &str, slug: &str) {
        let cp = connect(self.args.control_url.as_ref().unwrap())
            .await
            .unwrap();
        cp.execute(sql, &[&slug]).await.unwrap();
    }
}

/// Waits for `cond` with a deadline instead of sleeping a fixed time.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if cond().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

impl TestFleet {
    /// The name of this fleet's control-plane database.
    pub fn control_db(&self) -> String {
        let url = self.args.control_url.as_ref().expect("a control-plane URL");
        let path = url.rsplit('/').next().unwrap_or_default();
        path.split('?').next().unwrap_or_default().to_string()
    }
}

/// A client of one host of a running server, carrying its credentials: a
/// bearer token, or a session cookie with its CSRF token. `.get(path)`,
/// `.post(path, json)`… send with every header it carries.
#[derive(Clone)]
pub struct HttpClient {
    pub addr: std::net::SocketAddr,
    pub host: String,
    headers: Vec<(String, String)>,
}

impl HttpClient {
    pub fn new(addr: std::net::SocketAddr, host: impl Into<String>) -> Self {
        Self {
            addr,
            host: host.into(),
            headers: Vec::new(),
        }
    }

    /// `<slug>.localhost` on `server`.
    pub fn tenant(server: &bulkhead::serve::Running, slug: &str) -> Self {
        Self::new(server.addr, format!("{slug}.localhost"))
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.headers
            .push(("authorization".into(), format!("Bearer {token}")));
        self
    }

    /// A logged-in person: the session cookie (`bh_session=…`) and its CSRF token.
    pub fn session(mut self, cookie: &str, csrf: &str) -> Self {
        self.headers.push(("cookie".into(), cookie.into()));
        self.headers.push(("x-csrf-token".into(), csrf.into()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub async fn send(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Reply {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        request(self.addr, method, &self.host, path, &headers, body).await
    }

    /// `body` as it is, with `content_type` (or none): for what a JSON
    /// client would never send.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
        let client = CLIENT.get_or_init(reqwest::Client::new);
        let mut req = client
            .request(
                method.parse().unwrap(),
                format!("http://{}{path}", self.addr),
            )
            .header("host", &self.host)
            .body(body);
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.expect("send");
        Reply {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send("POST", path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: serde_json::Value) -> Reply {
        self.send("PATCH", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None).await
    }
}

/// A fleet with one tenant, a server for it, and an admin client of its host.
pub async fn one_tenant(
    base: &str,
    mode: bulkhead::control::Mode,
) -> (TestFleet, bulkhead::serve::Running, HttpClient) {
    let fleet = TestFleet::new().await;
    let slug = fleet.tenant(base, mode).await;
    let server = serve(&fleet, |_| {}).await;
    let token = fleet.token(&slug, "admin").await;
    let client = HttpClient::tenant(&server, &slug).bearer(&token);
    (fleet, server, client)
}
