//! TLS to tenant servers: a cluster with `ssl = on` and a certificate from a
//! CA made here; verified end to end, refused when the CA, the host name or
//! the server's TLS is wrong, and nothing recorded then.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use bulkhead::control::{Mode, Plan};
use bulkhead::fleet::{self, Progress, RunOptions, RunState};
use bulkhead::pg::{Cluster, ClusterOptions, ServerUser};
use bulkhead::provision::{AddServer, CreateRequest, ProvisionError};
use bulkhead::secret::Secret;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::common::{TestFleet, connect, eventually, http, pg, scratch, serve};

/// A CA of its own, written as `<dir>/<name>.pem`.
fn new_ca(dir: &Path, name: &str) -> (CertifiedIssuer<'static, KeyPair>, PathBuf) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let path = dir.join(format!("{name}.pem"));
    std::fs::write(&path, ca.pem()).unwrap();
    (ca, path)
}

/// This machine's address on its network (not loopback), if it has one.
fn network_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("198.51.100.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// A throwaway cluster serving TLS with a certificate for `names`, signed by
/// a CA of its own; listening on `extra` too (TLS only there).
struct TlsCluster {
    cluster: Cluster,
    ca: PathBuf,
    dir: PathBuf,
}

impl TlsCluster {
    async fn start(names: &[String], extra: Option<IpAddr>) -> Self {
        let dir = scratch("tls");
        let (ca, ca_path) = new_ca(&dir, "ca");
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names.to_vec())
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let (crt, key_path) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::write(&crt, format!("{}{}", cert.pem(), ca.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        // The server refuses a key others can read; it runs as `postgres`.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let owner = ServerUser::current().unwrap();
        owner.chown(&crt).unwrap();
        owner.chown(&key_path).unwrap();
        let mut conf = format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            crt.display(),
            key_path.display()
        );
        if let Some(ip) = extra {
            conf.push_str(&format!("listen_addresses = '127.0.0.1,{ip}'\n"));
        }
        let options = ClusterOptions {
            max_connections: 100,
            extra_conf: conf,
            ..ClusterOptions::default()
        };
        let cluster = tokio::task::spawn_blocking(move || Cluster::throwaway_with(&options))
            .await
            .unwrap()
            .expect("a TLS cluster");
        let this = Self {
            cluster,
            ca: ca_path,
            dir,
        };
        if let Some(ip) = extra {
            let hba = this.cluster.data_directory().join("pg_hba.conf");
            let mut lines = std::fs::read_to_string(&hba).unwrap();
            lines.push_str(&format!("hostssl all all {ip}/32 scram-sha-256\n"));
            std::fs::write(&hba, lines).unwrap();
            this.sql("SELECT pg_reload_conf()").await;
            let url = this.url(
                &ip.to_string(),
                &format!("sslrootcert={}", this.ca.display()),
            );
            eventually("the server to accept TLS on its network address", || {
                let url = url.clone();
                async move {
                    match bulkhead::pg::PgConfig::parse(&url) {
                        Ok(config) => config.connect().await.is_ok(),
                        Err(_) => false,
                    }
                }
            })
            .await;
        }
        this
    }

    /// The superuser URL of `postgres` through `host`, with `params`.
    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://bulkhead:{}@{host}:{}/postgres?{params}",
            self.cluster.password.expose(),
            self.cluster.port
        )
    }

    /// A superuser connection without TLS over loopback (allowed there).
    async fn admin(&self) -> tokio_postgres::Client {
        connect(&self.url("127.0.0.1", "sslmode=disable"))
            .await
            .expect("connect to the TLS cluster")
    }

    async fn sql(&self, sql: &str) {
        self.admin().await.batch_execute(sql).await.unwrap();
    }
}

async fn add(fleet: &TestFleet, name: &str, url: &str) -> Result<(), ProvisionError> {
    fleet
        .p()
        .add_server(&AddServer {
            name: name.into(),
            admin_url: Secret::new(url.to_string()),
            capacity: 10,
            budget: 10,
        })
        .await
}

async fn is_registered(fleet: &TestFleet, name: &str) -> bool {
    fleet.p().control().server(name).await.unwrap().is_some()
}

async fn create_on(fleet: &TestFleet, base: &str, mode: Mode, server: &str) -> String {
    let slug = fleet.slug(base);
    fleet
        .p()
        .create(&CreateRequest {
            slug: slug.clone(),
            display_name: None,
            mode,
            plan: Plan::Free,
            server: Some(server.into()),
        })
        .await
        .unwrap_or_else(|e| panic!("create {slug}: {e}"));
    slug
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_carries_tenants_from_provisioning_to_requests() {
    let mut fleet = TestFleet::new().await;
    let tls = TlsCluster::start(&["localhost".into()], None).await;
    // channel_binding=require: every SCRAM log-in (admin and tenant) must be
    // bound to this TLS channel, or it fails.
    let url = tls.url(
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}&channel_binding=require",
            tls.ca.display()
        ),
    );
    add(&fleet, "tls", &url).await.expect("add the TLS server");
    let db = create_on(&fleet, "tlsdb", Mode::Database, "tls").await;
    let schema = create_on(&fleet, "tlssch", Mode::Schema, "tls").await;

    // A fleet migration reaches both through the admin pools.
    let dir = fleet.migrations_dir(&[(
        "V2__labels.sql",
        "CREATE TABLE labels (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text)",
    )]);
    fleet.with_migrations(&dir).await;
    let report = fleet::run(
        fleet.p(),
        &RunOptions::default(),
        &Progress::Silent,
        &AtomicBool::new(false),
    )
    .await
    .unwrap();
    assert_eq!(report.state, RunState::Succeeded, "{report:?}");
    assert_eq!(report.migrated, 2, "{report:?}");

    // Requests: the tenant pools inherit the server's TLS settings.
    let server = serve(&fleet, |_| {}).await;
    for slug in [&db, &schema] {
        let token = fleet.token(slug, "admin").await;
        let host = format!("{slug}.localhost");
        let r = http(
            server.addr,
            "GET",
            &host,
            "/api/projects",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{slug}: {}", r.body);
    }

    // Every backend bulkhead holds on that server is encrypted, the tenants'
    // runtime roles among them.
    let rows = tls
        .admin()
        .await
        .query(
            "SELECT a.usename::text, a.application_name, s.ssl
               FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let backends: Vec<(String, String, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    for slug in [&db, &schema] {
        let role = fleet.tenant_row(slug).await.runtime_role().to_string();
        assert!(
            backends
                .iter()
                .any(|(user, app, _)| *user == role && app == "bulkhead"),
            "no pooled connection of {slug} in {backends:?}"
        );
    }
    assert!(
        backends.iter().all(|(_, _, ssl)| *ssl),
        "unencrypted backends: {backends:?}"
    );

    // The statements are read above the TLS: a read leaves its connection
    // as it was, a write that took an advisory lock has it reset.
    let role = fleet.tenant_row(&db).await.runtime_role().to_string();
    let last = || async {
        let row = tls
            .admin()
            .await
            .query_one(
                "SELECT query FROM pg_stat_activity WHERE usename = $1",
                &[&role],
            )
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    assert!(last().await.contains("FROM projects"), "{}", last().await);
    let token = fleet.token(&db, "admin").await;
    let host = format!("{db}.localhost");
    let body = serde_json::json!({"name": "over tls"});
    let r = http(
        server.addr,
        "POST",
        &host,
        "/api/projects",
        Some(&token),
        Some(body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    eventually("the reset after the write", || async {
        last().await == "DISCARD ALL"
    })
    .await;
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_server_off_this_machine_defaults_to_verify_full_and_list_shows_it() {
    let Some(ip) = network_address() else {
        eprintln!("skipped: this machine has no network address besides loopback");
        return;
    };
    let fleet = TestFleet::new().await;
    let tls = TlsCluster::start(&[ip.to_string()], Some(ip)).await;
    // No sslmode: verify-full is written in, against the URL's CA.
    let url = tls.url(
        &ip.to_string(),
        &format!("sslrootcert={}", tls.ca.display()),
    );
    add(&fleet, "remote", &url)
        .await
        .expect("add the remote server");
    let stored = fleet.p().control().server("remote").await.unwrap().unwrap();
    assert!(
        stored.admin_url.expose().ends_with("&sslmode=verify-full"),
        "recorded without verify-full"
    );
    let slug = create_on(&fleet, "remote", Mode::Schema, "remote").await;
    assert_eq!(
        fleet.tenant_row(&slug).await.status,
        bulkhead::control::Status::Active
    );

    let out = fleet
        .cli()
        .args(["server", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tls_of = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["tls"].clone())
    };
    assert_eq!(tls_of("remote"), Some("verify-full".into()), "{list}");
    // The loopback test server is left as it was given: libpq's default.
    assert_eq!(tls_of("local"), Some("prefer".into()), "{list}");
    let table = fleet.cli().args(["server", "list"]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.lines().next().unwrap_or_default().contains("TLS"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("remote") && l.contains("verify-full")),
        "{table}"
    );
}

#[tokio::test]
async fn a_wrong_ca_or_host_name_is_refused_by_name_and_nothing_is_recorded() {
    let fleet = TestFleet::new().await;
    let tls = TlsCluster::start(&["localhost".into()], None).await;
    let (_, other_ca) = new_ca(&tls.dir, "other");
    let password = tls.cluster.password.expose().clone();

    let refusals = [
        (
            "wrongca",
            tls.url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={}", other_ca.display()),
            ),
            "not signed by a trusted CA",
        ),
        (
            "wronghost",
            tls.url(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={}", tls.ca.display()),
            ),
            "not valid for host `127.0.0.1`",
        ),
        // With a CA given, require checks the chain (libpq's rule).
        (
            "requireca",
            tls.url(
                "localhost",
                &format!("sslmode=require&sslrootcert={}", other_ca.display()),
            ),
            "not signed by a trusted CA",
        ),
        // Mozilla's roots when the URL names no CA: a private CA is not among them.
        (
            "noca",
            tls.url("localhost", "sslmode=verify-full"),
            "not signed by a trusted CA",
        ),
    ];
    for (name, url, says) in &refusals {
        let err = add(&fleet, name, url).await.expect_err("refused");
        assert!(matches!(err, ProvisionError::Tls { .. }), "{name}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(says), "{name}: {text}");
        assert!(!text.contains(&password), "{name}: the password leaked");
        assert!(!is_registered(&fleet, name).await, "{name} was recorded");
    }

    // verify-ca checks the chain, not the name; require alone checks nothing.
    let ca_only = tls.url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", tls.ca.display()),
    );
    add(&fleet, "caonly", &ca_only).await.expect("verify-ca");
    add(&fleet, "require", &tls.url("127.0.0.1", "sslmode=require"))
        .await
        .expect("require without a CA");

    // --pg-ca-file (here its variable) is the CA of URLs that name none.
    let verify_full = tls.url("localhost", "sslmode=verify-full");
    let cli_add = |name: &str, ca: Option<&Path>| {
        let mut cmd = fleet.cli();
        cmd.args(["server", "add", name, "--admin-url", &verify_full]);
        if let Some(ca) = ca {
            cmd.env("BULKHEAD_PG_CA_FILE", ca);
        }
        cmd.output().unwrap()
    };
    let refused = cli_add("cliwrong", Some(&other_ca));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");
    assert!(!stderr.contains(&password), "the password leaked: {stderr}");
    assert!(!is_registered(&fleet, "cliwrong").await);
    let added = cli_add("cliright", Some(&tls.ca));
    assert!(added.status.success(), "{added:?}");
    assert!(is_registered(&fleet, "cliright").await);
}

#[tokio::test]
async fn sslmode_require_against_a_server_without_tls_is_refused() {
    let fleet = TestFleet::new().await;
    for (name, mode) in [("plainreq", "require"), ("plainfull", "verify-full")] {
        let url = format!("{}?sslmode={mode}", pg().url("postgres"));
        let err = add(&fleet, name, &url).await.expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("does not accept TLS connections"),
            "{mode}: {text}"
        );
        assert!(!is_registered(&fleet, name).await, "{name} was recorded");
    }
    // prefer (libpq's default) falls back to no TLS there.
    let url = format!("{}?sslmode=prefer", pg().url("postgres"));
    add(&fleet, "plainpref", &url).await.expect("prefer");
}

#[tokio::test]
async fn the_control_plane_and_its_listener_go_over_tls_too() {
    let tls = TlsCluster::start(&["localhost".into()], None).await;
    tls.sql("CREATE DATABASE cp_tls").await;
    let verified = |db: &str| {
        format!(
            "postgres://bulkhead:{}@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
            tls.cluster.password.expose(),
            tls.cluster.port,
            tls.ca.display()
        )
    };
    let fleet = TestFleet::with_control_plane(verified("cp_tls")).await;
    fleet
        .p()
        .add_server(&AddServer {
            name: "tls".into(),
            admin_url: Secret::new(verified("postgres")),
            capacity: 10,
            budget: 10,
        })
        .await
        .expect("add the server");
    let slug = create_on(&fleet, "cptls", Mode::Schema, "tls").await;
    let server = serve(&fleet, |_| {}).await;
    let token = fleet.token(&slug, "admin").await;
    let r = http(
        server.addr,
        "GET",
        &format!("{slug}.localhost"),
        "/api/projects",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let admin = tls.admin().await;
    let backends = async || -> Vec<(String, String, bool)> {
        admin
            .query(
                "SELECT a.datname::text, a.application_name, s.ssl
                   FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
                  WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    };
    eventually("the routing listener to be connected", || async {
        backends()
            .await
            .iter()
            .any(|(db, name, _)| db == "cp_tls" && name == "bulkhead-listen")
    })
    .await;
    let all = backends().await;
    assert!(all.iter().all(|(_, _, ssl)| *ssl), "unencrypted: {all:?}");
    server.stop().await.unwrap();
}
