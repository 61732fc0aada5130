//! The composition root of the server: resolver, pool router, tokens, the
//! routing listener and the two HTTP listeners, wired from a [`Bulkhead`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::app::Bulkhead;
use crate::auth::{SessionCache, SessionSettings, Tokens};
use crate::pools::{PoolRouter, PoolSettings};
use crate::routing::{HostName, Resolver, ResolverSettings};

/// How to serve (what `bulkhead serve`'s options set; see its `--help`).
#[derive(Clone)]
pub struct ServeSettings {
    /// Where to serve HTTP.
    pub listen: SocketAddr,
    /// `None`: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// Tenants are served at `<slug>.<base_domain>`.
    pub base_domain: HostName,
    /// The tenant pools: sizes, waits, idle times.
    #[doc(hidden)]
    pub pools: PoolSettings,
    /// How long a host's resolution is trusted (NOTIFY drops it sooner).
    pub resolve_ttl: Duration,
    /// How long a host that names nothing is remembered as such.
    pub resolve_miss_ttl: Duration,
    /// Session timeouts, cookie flags and attempt limits.
    #[doc(hidden)]
    pub sessions: SessionSettings,
    /// Where outgoing mail (invitations) is written; `None`: dropped.
    pub outbox: Option<std::path::PathBuf>,
    /// The SMTP relay for outgoing mail (else the outbox only): see
    /// [`crate::outbox::RelaySpec`].
    pub smtp_relay: Option<String>,
    /// More CA certificates (PEM) to trust for the relay's TLS.
    pub smtp_ca_file: Option<std::path::PathBuf>,
    /// The sender of outgoing mail (default `bulkhead <no-reply@<base domain>>`).
    pub mail_from: Option<String>,
    /// Proxies (Caddy, a load balancer) whose `X-Forwarded-For` names the
    /// client; from anyone else the header is ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Header-read (and idle) timeout and the cap on open connections.
    pub http: crate::http::HttpLimits,
    /// Password hashes at once, and how long one waits for its turn.
    pub hashing: crate::auth::Hashing,
    /// How long the caches stand in for the control plane while it cannot
    /// be reached (`0`: not at all); see [`crate::control::Health`].
    pub stale_for: Duration,
    /// Stripe billing: keys, grace period, how often to re-read Stripe.
    pub billing: crate::billing::BillingSettings,
}

impl ServeSettings {
    /// The defaults, serving at `listen` for `base_domain`.
    pub fn new(listen: SocketAddr, base_domain: HostName) -> Self {
        Self {
            listen,
            metrics_listen: None,
            base_domain,
            pools: PoolSettings::default(),
            resolve_ttl: Duration::from_secs(60),
            resolve_miss_ttl: Duration::from_secs(5),
            sessions: SessionSettings::default(),
            outbox: None,
            smtp_relay: None,
            smtp_ca_file: None,
            mail_from: None,
            trusted_proxies: Vec::new(),
            http: crate::http::HttpLimits::default(),
            hashing: crate::auth::Hashing::default(),
            stale_for: Duration::from_secs(300),
            billing: crate::billing::BillingSettings::default(),
        }
    }
}

/// A server running in the background of this process.
pub struct Running {
    /// The address it serves HTTP on.
    pub addr: SocketAddr,
    /// The address of its metrics listener, if any.
    pub metrics_addr: Option<SocketAddr>,
    #[doc(hidden)]
    pub pools: Arc<PoolRouter>,
    #[doc(hidden)]
    pub resolver: Arc<Resolver>,
    #[doc(hidden)]
    pub state: crate::http::AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The NOTIFY listener, the metrics listener, the fleet gauges and the
    /// pruning of expired rows: ended by `stop` (or when this is dropped).
    background: JoinSet<()>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, closes every pool.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let result = (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.background.shutdown().await;
        self.pools.close_all().await;
        result
    }

    /// Resolves when the server has stopped by itself (it should not).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// Binds the listeners and starts serving.
pub async fn start(app: &Bulkhead, settings: &ServeSettings) -> std::io::Result<Running> {
    let p = &app.provisioner;
    // This process's view of the control plane: its routing listener marks
    // it away and back, and while it is away its caches stand in for it.
    let control = p
        .control()
        .with_health(crate::control::Health::new(settings.stale_for));
    let resolver = Arc::new(Resolver::new(
        control.clone(),
        ResolverSettings {
            base_domain: settings.base_domain.clone(),
            shared_db: p.settings().shared_db.clone(),
            capacity: 100_000,
            ttl: settings.resolve_ttl,
            miss_ttl: settings.resolve_miss_ttl,
        },
    ));
    let tokens = Arc::new(Tokens::new(control.clone()));
    let session_cache = Arc::new(SessionCache::new(control.clone(), settings.sessions.idle));
    let pools = PoolRouter::new(control.clone(), p.secret().clone(), settings.pools.clone());
    // Owned by the `Running` returned; dropped (and so ended) if starting
    // fails part-way.
    let mut background = JoinSet::new();
    background.spawn(crate::routing::listen(
        control.url().clone(),
        control.health().clone(),
        Arc::new(Fanout(
            resolver.clone(),
            tokens.clone(),
            session_cache.clone(),
        )),
    ));
    let billing = Arc::new(
        crate::billing::Billing::new(
            settings.billing.clone(),
            control.clone(),
            app.provisioner.clone(),
            pools.clone(),
        )
        .map_err(std::io::Error::other)?,
    );
    background.spawn(billing.clone().run());
    let state = crate::http::AppState(Arc::new(crate::http::App {
        control,
        provisioner: app.provisioner.clone(),
        secret: p.secret().clone(),
        sessions: settings.sessions.clone(),
        base_domain: settings.base_domain.clone(),
        outbox: crate::outbox::Outbox::new(
            settings.outbox.clone(),
            settings.smtp_relay.as_deref(),
            settings.smtp_ca_file.as_deref(),
            &settings
                .mail_from
                .clone()
                .unwrap_or_else(|| format!("bulkhead <no-reply@{}>", settings.base_domain)),
        )
        .map_err(std::io::Error::other)?,
        resolver: resolver.clone(),
        pools: pools.clone(),
        tokens,
        session_cache,
        versions: 1..=p.schema().latest(),
        trusted_proxies: settings.trusted_proxies.clone(),
        hashing: settings.hashing.clone(),
        billing,
    }));
    let tcp = tokio::net::TcpListener::bind(settings.listen).await?;
    let addr = tcp.local_addr()?;
    let metrics_addr = match settings.metrics_listen {
        Some(at) => {
            let metrics = tokio::net::TcpListener::bind(at).await?;
            let bound = metrics.local_addr()?;
            background.spawn(async move {
                if let Err(e) = axum::serve(metrics, crate::http::metrics_app()).await {
                    tracing::error!(error = %crate::report::chain(&e), "the metrics listener stopped");
                }
            });
            Some(bound)
        }
        None => None,
    };
    // Through this process's health-aware handle: while the control plane
    // is away they fail at once instead of each waiting out a connect.
    background.spawn(publish_fleet_gauges(state.control.clone()));
    background.spawn(prune_expired(
        state.control.clone(),
        settings.sessions.clone(),
    ));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(crate::http::serve(
        tcp,
        crate::http::app(state.clone(), &app.product),
        settings.http,
        async move {
            let _ = rx.await;
        },
    ));
    Ok(Running {
        addr,
        metrics_addr,
        pools,
        resolver,
        state,
        shutdown: Some(tx),
        task,
        background,
    })
}

/// Tenants per status (migrating, migration_failed…) for /metrics, every 15 s.
async fn publish_fleet_gauges(control: crate::control::ControlPlane) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tick.tick().await;
        let Ok(counts) = control.version_counts().await else {
            continue;
        };
        for status in crate::control::Status::ALL {
            let n: i64 = counts
                .iter()
                .filter(|c| c.status == *status)
                .map(|c| c.tenants)
                .sum();
            metrics::gauge!("bulkhead_tenants", "status" => status.as_str()).set(n as f64);
        }
    }
}

/// Every 10 minutes, drops dead sessions and failed log-ins too old to count,
/// so neither table grows without end. Several instances may run it at once:
/// each DELETE is idempotent.
async fn prune_expired(control: crate::control::ControlPlane, sessions: SessionSettings) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match control
            .prune_expired(sessions.idle, sessions.attempts_window())
            .await
        {
            Ok((0, 0)) => {}
            Ok((sessions, failures)) => {
                tracing::info!(
                    sessions,
                    failures,
                    "pruned expired sessions and log-in failures"
                )
            }
            Err(e) => {
                tracing::warn!(error = %crate::report::chain(&e), "pruning expired sessions failed")
            }
        }
        if let Err(e) = control.prune_operator_sessions().await {
            tracing::warn!(error = %crate::report::chain(&e), "pruning operator sessions failed");
        }
    }
}

/// One NOTIFY, every cache. The resolver goes last: its epoch moves once the
/// token and session caches are clear too, which is what per-connection
/// memos watch.
struct Fanout(Arc<Resolver>, Arc<Tokens>, Arc<SessionCache>);

impl crate::routing::Invalidate for Fanout {
    async fn invalidate(&self, payload: Option<&str>) {
        crate::routing::Invalidate::invalidate(&*self.1, payload).await;
        crate::routing::Invalidate::invalidate(&*self.2, payload).await;
        crate::routing::Invalidate::invalidate(&*self.0, payload).await;
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
