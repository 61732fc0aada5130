//! The embedded PostgreSQL cluster: when no control-plane URL is configured,
//! every command runs against a private cluster under `$BULKHEAD_HOME/pg`,
//! created with `initdb` once, started with `pg_ctl` on a free loopback port,
//! and left running between commands.

mod binaries;
mod os_user;
mod tls;
mod url;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use binaries::Binaries;
pub use os_user::ServerUser;
pub use tls::{MakeTls, PgConfig, TlsStream, explain as tls_failure, set_default_root_cert};
pub use url::{
    RootCert, SslMode, TlsParams, UrlError, is_local, split as split_tls, with_ssl_mode,
};

use crate::secret::{self, Secret};

/// The superuser of an embedded cluster.
pub const ADMIN_USER: &str = "bulkhead";

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "no PostgreSQL server binaries found (looked in PATH, `pg_config --bindir` and \
         /usr/lib/postgresql/*/bin). Install them, e.g. `apt-get install postgresql`"
    )]
    NoServerBinaries,
    #[error(
        "running as root needs an OS user `postgres` to own the cluster \
         (`apt-get install postgresql` creates it)"
    )]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no embedded cluster under {0} (it is created by the first command that needs it)")]
    NotInitialised(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PgError {
    let context = context.into();
    move |source| PgError::Io { context, source }
}

/// How a new cluster is set up.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub max_connections: u32,
    /// `false` turns fsync off: for throwaway test and bench clusters only.
    pub durable: bool,
    /// Where the server binaries are; searched for when `None`.
    pub bindir: Option<PathBuf>,
    /// Lines appended to `postgresql.conf` at creation (after bulkhead's own,
    /// so they win): for test clusters with TLS or other addresses.
    pub extra_conf: String,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            max_connections: 200,
            durable: true,
            bindir: None,
            extra_conf: String::new(),
        }
    }
}

/// A running embedded cluster.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    pub password: Secret<String>,
    pub binaries: Binaries,
}

impl Cluster {
    fn data_dir(dir: &Path) -> PathBuf {
        dir.join("data")
    }

    fn password_file(dir: &Path) -> PathBuf {
        dir.join("superuser-password")
    }

    /// Initialises (once) and starts (if stopped) the cluster in `dir`. Safe to
    /// call from several processes at once: they serialise on a lock file.
    pub fn ensure(dir: &Path, options: &ClusterOptions) -> Result<Cluster, PgError> {
        // Look for binaries before creating anything, so a machine without
        // PostgreSQL is left exactly as it was.
        let binaries = Binaries::locate(options.bindir.as_deref())?;
        let owner = os_user::ServerUser::current()?;
        // The server resolves paths from its data directory: give it absolute ones.
        let dir = &std::path::absolute(dir).map_err(io(format!("resolving {}", dir.display())))?;
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let lock = File::create(dir.join(".lock")).map_err(io("creating the cluster lock"))?;
        lock.lock().map_err(io("locking the cluster"))?;
        owner.prepare_dir(dir)?;

        if !Self::data_dir(dir).join("PG_VERSION").is_file() {
            init(dir, &binaries, &owner, options)?;
        }
        let password = std::fs::read_to_string(Self::password_file(dir))
            .map_err(io("reading the superuser password file"))?;
        let port = match running_port(dir) {
            Some(port) => port,
            None => start(dir, &binaries, &owner)?,
        };
        Ok(Cluster {
            dir: dir.to_path_buf(),
            port,
            password: Secret::new(password.trim().to_string()),
            binaries,
        })
    }

    /// The cluster in `dir` if it is running, without starting it.
    pub fn running(dir: &Path) -> Result<Option<Cluster>, PgError> {
        if !Self::data_dir(dir).join("PG_VERSION").is_file() {
            return Err(PgError::NotInitialised(dir.display().to_string()));
        }
        let Some(port) = running_port(dir) else {
            return Ok(None);
        };
        let password = std::fs::read_to_string(Self::password_file(dir))
            .map_err(io("reading the superuser password file"))?;
        Ok(Some(Cluster {
            dir: dir.to_path_buf(),
            port,
            password: Secret::new(password.trim().to_string()),
            binaries: Binaries::find()?,
        }))
    }

    /// Stops the cluster in `dir`; `Ok(false)` if it was not running.
    pub fn stop(dir: &Path) -> Result<bool, PgError> {
        if running_port(dir).is_none() {
            return Ok(false);
        }
        let binaries = Binaries::find()?;
        let owner = os_user::ServerUser::current()?;
        let mut cmd = Command::new(binaries.tool("pg_ctl"));
        cmd.arg("-D")
            .arg(Self::data_dir(dir))
            .args(["-m", "fast", "-w", "stop"]);
        run(owner.command(&mut cmd), "pg_ctl stop")?;
        Ok(true)
    }

    pub fn data_directory(&self) -> PathBuf {
        Self::data_dir(&self.dir)
    }

    /// The superuser URL of database `db`. Contains the password: a `Secret`.
    pub fn admin_url(&self, db: &str) -> Secret<String> {
        Secret::new(format!(
            "postgres://{ADMIN_USER}:{}@127.0.0.1:{}/{db}",
            self.password.expose(),
            self.port
        ))
    }

    /// The admin URL with its password masked, for printing.
    pub fn admin_url_masked(&self, db: &str) -> String {
        format!("postgres://{ADMIN_USER}:***@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops the cluster and deletes `dir` once process `pid` has exited, even if
    /// it was killed: how test and bench binaries clean up their throwaway
    /// clusters. Runs a small detached shell loop.
    pub fn remove_when_process_exits(&self, pid: u32) -> Result<(), PgError> {
        let postmaster = std::fs::read_to_string(self.data_directory().join("postmaster.pid"))
            .map_err(io("reading postmaster.pid"))?;
        let postmaster: u32 = postmaster
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| PgError::Command {
                what: "reading postmaster.pid".into(),
                detail: "no pid on its first line".into(),
            })?;
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; kill -INT {postmaster} 2>/dev/null; \
             while [ -d /proc/{postmaster} ]; do sleep 0.2; done; rm -rf '{}'",
            self.dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("spawning the cluster watchdog"))?;
        Ok(())
    }
}

fn init(
    dir: &Path,
    binaries: &Binaries,
    owner: &os_user::ServerUser,
    options: &ClusterOptions,
) -> Result<(), PgError> {
    let data = Cluster::data_dir(dir);
    let staging = dir.join("data.initdb");
    let _ = std::fs::remove_dir_all(&staging);
    let password = secret::random_hex(32);
    // initdb stores a pre-computed verifier as it is: a 256-bit random password
    // needs no key stretching, and every admin connection is faster for it.
    let pwfile = dir.join("initdb-pwfile");
    std::fs::write(
        &pwfile,
        secret::scram_verifier(&password, secret::TENANT_SCRAM_ITERATIONS),
    )
    .map_err(io("writing the initdb password file"))?;
    owner.chown(&pwfile)?;

    let mut cmd = Command::new(binaries.tool("initdb"));
    cmd.arg("-D")
        .arg(&staging)
        .args(["-U", ADMIN_USER, "--auth=scram-sha-256", "-E", "UTF8"])
        .args(["--locale=C", "--pwfile"])
        .arg(&pwfile);
    if !options.durable {
        cmd.arg("--no-sync");
    }
    let result = run(owner.command(&mut cmd), "initdb");
    let _ = std::fs::remove_file(&pwfile);
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }

    let socket_dir = dir.join("run");
    std::fs::create_dir_all(&socket_dir).map_err(io("creating the socket directory"))?;
    owner.chown(&socket_dir)?;
    let log_dir = dir.join("log");
    std::fs::create_dir_all(&log_dir).map_err(io("creating the log directory"))?;
    owner.chown(&log_dir)?;

    let mut conf = format!(
        "\n# bulkhead embedded cluster\n\
         listen_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{}'\n\
         max_connections = {}\n\
         password_encryption = 'scram-sha-256'\n\
         recovery_init_sync_method = syncfs\n",
        socket_dir.display(),
        options.max_connections
    );
    if !options.durable {
        conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
    }
    conf.push_str(&options.extra_conf);
    conf.push('\n');
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(staging.join("postgresql.conf"))
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .map_err(io("writing postgresql.conf"))?;
    secret::write_private_file(&Cluster::password_file(dir), &password)
        .map_err(io("writing the superuser password file"))?;
    std::fs::rename(&staging, &data).map_err(io("moving the new cluster into place"))?;
    Ok(())
}

fn start(dir: &Path, binaries: &Binaries, owner: &os_user::ServerUser) -> Result<u16, PgError> {
    let mut last_error = None;
    // The port of the last start first: servers registered with the control
    // plane keep working across restarts of the cluster.
    let remembered = std::fs::read_to_string(dir.join("port"))
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok());
    for attempt in 0..3 {
        let port = match (attempt, remembered) {
            (0, Some(port)) => port,
            _ => free_port()?,
        };
        let mut cmd = Command::new(binaries.tool("pg_ctl"));
        cmd.arg("-D")
            .arg(Cluster::data_dir(dir))
            .arg("-l")
            .arg(dir.join("log").join("postgres.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!("-p {port}"))
            .arg("start");
        match run(owner.command(&mut cmd), "pg_ctl start") {
            Ok(()) => {
                let _ = std::fs::write(dir.join("port"), port.to_string());
                return Ok(port);
            }
            // Most likely another process took the port between our probe and the
            // server's bind: try another one.
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.expect("at least one attempt"))
}

/// The port of the running postmaster, from `postmaster.pid`, if it is alive.
fn running_port(dir: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(Cluster::data_dir(dir).join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    let pid: u32 = lines.next()?.trim().parse().ok()?;
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return None;
    }
    let port = lines.nth(2)?.trim().parse().ok()?;
    // The pid file is written before the server accepts connections.
    std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    Some(port)
}

fn free_port() -> Result<u16, PgError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port())
}

fn run(cmd: &mut Command, what: &str) -> Result<(), PgError> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {what}")))?;
    if out.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if detail.is_empty() {
        detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
    }
    Err(PgError::Command {
        what: what.to_string(),
        detail,
    })
}

/// A database error in one line: the server's own message when there is one
/// (`tokio_postgres::Error`'s `Display` says only "db error"), else the cause.
pub fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(tls) = tls::explain(e) {
        return tls;
    }
    if let Some(db) = e.as_db_error() {
        return match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        };
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether a query failed because the server could not be reached or is
/// going away (connection refused, closed or timed out; shutting down,
/// starting up, out of connection slots), not because of the query.
pub fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        // Class 08: connection exception; 57P01-57P03: shutting down or not
        // yet accepting; 53300: too many connections.
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
        }
        None => e.as_db_error().is_none(),
    }
}

impl Cluster {
    /// A fresh, non-durable cluster in a new temporary directory, stopped and
    /// deleted when this process exits (however it exits): for tests and benches.
    pub fn throwaway(max_connections: u32) -> Result<Cluster, PgError> {
        Self::throwaway_with(&ClusterOptions {
            max_connections,
            durable: false,
            ..ClusterOptions::default()
        })
    }

    /// [`Self::throwaway`] with options of its own (`durable` is ignored).
    pub fn throwaway_with(options: &ClusterOptions) -> Result<Cluster, PgError> {
        let dir = std::env::temp_dir().join(format!(
            "bulkhead-{}-{}",
            std::process::id(),
            &secret::random_hex(4)
        ));
        let cluster = Cluster::ensure(
            &dir,
            &ClusterOptions {
                durable: false,
                ..options.clone()
            },
        )?;
        cluster.remove_when_process_exits(std::process::id())?;
        Ok(cluster)
    }
}
