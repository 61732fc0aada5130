//! `bulkhead serve`: its options (shared with `dev`) and the server loop.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::migrate::{parse_duration, parse_duration_or_zero};
use super::{CliError, CliResult};
use crate::app::Bulkhead;
use crate::pools::PoolSettings;
use crate::routing::HostName;
use crate::serve::ServeSettings;

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Address to serve HTTP on [default: 0.0.0.0:8080; under `dev`
    /// 127.0.0.1:8080].
    #[arg(long, env = "BULKHEAD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address to serve Prometheus /metrics on (keep it private); `off` to
    /// disable [default: 127.0.0.1:9090; under `dev`, off when that is taken].
    #[arg(long, env = "BULKHEAD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Tenants are served at <slug>.<base domain>; the base domain itself is
    /// the apex [required; under `dev` localhost].
    #[arg(long, env = "BULKHEAD_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// A client must send a request's headers within this long of connecting
    /// or of its previous response; a kept-alive connection idle this long is
    /// closed. Stops clients that open connections and never finish a request.
    #[arg(long, env = "BULKHEAD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// HTTP connections served at once; past it, new connections wait to be
    /// accepted until one closes (metric bulkhead_http_connections).
    #[arg(long, env = "BULKHEAD_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Password hashes (log-in, sign-up, invitations) computed at once; each
    /// holds 19 MiB. Past it a log-in waits up to 2 s for its turn, then is
    /// answered 503 with Retry-After [default: one per core].
    #[arg(long, env = "BULKHEAD_MAX_CONCURRENT_HASHES",
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_concurrent_hashes: Option<u32>,
    /// While the control plane cannot be reached, keep serving every tenant,
    /// token and session this process already knew, for this long; then
    /// 503 until it is back. Sign-up, log-in and anything not already known
    /// answer 503 `control_plane_unavailable` meanwhile. `0`: no grace,
    /// 503 at once.
    #[arg(long, env = "BULKHEAD_STALE_FOR", default_value = "5m", value_parser = parse_duration_or_zero)]
    pub stale_for: Duration,
    #[command(flatten)]
    pub billing: super::billing::BillingArgs,
    /// Connections one tenant may hold at once.
    #[arg(long, env = "BULKHEAD_POOL_PER_TENANT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_per_tenant: u32,
    /// How long a request waits for a connection before a 503.
    #[arg(long, env = "BULKHEAD_POOL_WAIT", default_value = "2s", value_parser = parse_duration)]
    pub pool_wait: Duration,
    /// Idle connections are closed after this long.
    #[arg(long, env = "BULKHEAD_POOL_CONNECTION_IDLE", default_value = "60s", value_parser = parse_duration)]
    pub pool_connection_idle: Duration,
    /// Idle pools are dropped after this long.
    #[arg(long, env = "BULKHEAD_POOL_IDLE", default_value = "5m", value_parser = parse_duration)]
    pub pool_idle: Duration,
    /// A log-in session unused this long ends.
    #[arg(long, env = "BULKHEAD_SESSION_IDLE", default_value = "30m", value_parser = parse_duration)]
    pub session_idle: Duration,
    /// A log-in session ends this long after log-in, used or not.
    #[arg(long, env = "BULKHEAD_SESSION_LIFETIME", default_value = "12h", value_parser = parse_duration)]
    pub session_lifetime: Duration,
    /// Session cookies without `Secure`, for plain-HTTP serving (dev does this).
    /// Never in production: browsers would send the cookie unencrypted.
    #[arg(long, env = "BULKHEAD_INSECURE_COOKIES")]
    pub insecure_cookies: bool,
    /// SMTP relay for outgoing mail (invitations). `host:port`: plain SMTP,
    /// no log-in (the local MTA). A provider: `smtps://USER:PASSWORD@HOST`
    /// (TLS, port 465) or `smtp://USER:PASSWORD@HOST?tls=required`
    /// (STARTTLS, port 587); a password is never sent without TLS. Prefer the
    /// environment variable for a password (the command line is visible to
    /// every user of the machine). Without a relay, or when it fails, mail is
    /// written to $BULKHEAD_HOME/outbox/.
    #[arg(long, env = "BULKHEAD_SMTP_RELAY", hide_env_values = true)]
    pub smtp_relay: Option<String>,
    /// PEM file of CA certificates to trust for the relay's TLS, besides
    /// Mozilla's roots (a private relay with its own CA).
    #[arg(long, env = "BULKHEAD_SMTP_CA_FILE")]
    pub smtp_ca_file: Option<std::path::PathBuf>,
    /// Sender of outgoing mail (default: bulkhead <no-reply@<base domain>>).
    #[arg(long, env = "BULKHEAD_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// A proxy in front of bulkhead (Caddy, a load balancer) whose
    /// X-Forwarded-For names the client: an address or a network such as
    /// 10.0.0.0/8; repeat the flag or separate with commas. The client's
    /// address then counts for the per-address log-in limit and the audit
    /// log. From anyone else the header is ignored.
    #[arg(long = "trusted-proxy", env = "BULKHEAD_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = crate::http::parse_network)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Where `serve` and `dev` differ when an option is not given.
pub struct ServeDefaults {
    pub listen: SocketAddr,
    pub base_domain: Option<&'static str>,
}

impl ServeDefaults {
    pub const SERVE: Self = Self {
        listen: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080),
        base_domain: None,
    };
}

/// The metrics address when none is given.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9090";

impl ServeArgs {
    pub fn settings(&self, defaults: &ServeDefaults) -> Result<ServeSettings, CliError> {
        let base = self
            .base_domain
            .as_deref()
            .or(defaults.base_domain)
            .ok_or_else(|| {
                CliError::Usage("BULKHEAD_BASE_DOMAIN (--base-domain) is required".into())
            })?;
        let base = HostName::parse(base)
            .map_err(|e| CliError::Usage(format!("invalid base domain `{base}`: {e}")))?;
        let mut settings = ServeSettings::new(self.listen.unwrap_or(defaults.listen), base);
        settings.http = crate::http::HttpLimits {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections as usize,
        };
        if let Some(n) = self.max_concurrent_hashes {
            settings.hashing = crate::auth::Hashing::new(n as usize, Duration::from_secs(2));
        }
        if self.header_read_timeout.is_zero() {
            return Err(CliError::Usage(
                "--header-read-timeout must be positive".into(),
            ));
        }
        let metrics = self
            .metrics_listen
            .as_deref()
            .unwrap_or(DEFAULT_METRICS_LISTEN);
        settings.metrics_listen = match metrics {
            "off" | "" => None,
            other => Some(other.parse().map_err(|_| {
                CliError::Usage(format!(
                    "invalid --metrics-listen `{other}` (an address such as 127.0.0.1:9090, or off)"
                ))
            })?),
        };
        settings.pools = PoolSettings {
            per_tenant: self.pool_per_tenant as usize,
            wait: self.pool_wait,
            connection_idle: self.pool_connection_idle,
            pool_idle: self.pool_idle,
            ..PoolSettings::default()
        };
        if self.session_idle.is_zero() || self.session_lifetime < self.session_idle {
            return Err(CliError::Usage(
                "--session-idle must be positive and at most --session-lifetime".into(),
            ));
        }
        settings.stale_for = self.stale_for;
        settings.billing = self.billing.settings()?;
        settings.smtp_relay = self.smtp_relay.clone();
        settings.smtp_ca_file = self.smtp_ca_file.clone();
        settings.mail_from = self.mail_from.clone();
        settings.trusted_proxies = self.trusted_proxies.clone();
        settings.sessions = crate::auth::SessionSettings {
            idle: self.session_idle,
            absolute: self.session_lifetime,
            secure_cookies: !self.insecure_cookies,
            ..crate::auth::SessionSettings::default()
        };
        Ok(settings)
    }
}

pub async fn serve(app: &Bulkhead, settings: &ServeSettings) -> CliResult {
    let mut running =
        crate::serve::start(app, settings)
            .await
            .map_err(|source| CliError::Serve {
                what: format!("cannot listen on {}", settings.listen),
                source,
            })?;
    tracing::info!(addr = %running.addr, base = %settings.base_domain, "serving");
    if let Some(m) = running.metrics_addr {
        tracing::info!(addr = %m, "metrics at /metrics");
    }
    tokio::select! {
        _ = crate::serve::shutdown_signal() => {
            tracing::info!("shutting down: finishing in-flight requests");
            running.stop().await.map_err(|source| CliError::Serve {
                what: "the server did not stop cleanly".into(),
                source,
            })
        }
        result = running.wait() => result.map_err(|source| CliError::Serve {
            what: "the server stopped".into(),
            source,
        }),
    }
}
