//! Custom domains: added with a verification token, routed only once control
//! of the host is proven, by either
//! - HTTP: `http://<host>/.well-known/bulkhead-verify/<token>` answers the
//!   token (bulkhead serves it itself once the host points at it), or
//! - DNS: a TXT record `_bulkhead.<host>` holds `bulkhead-verify=<token>`
//!   (possible before the host points anywhere).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use super::HostName;
use crate::control::{ControlError, ControlPlane, Domain, TenantId};

pub const WELL_KNOWN: &str = "/.well-known/bulkhead-verify/";
/// The label in front of the host that carries the TXT record.
pub const TXT_LABEL: &str = "_bulkhead";
/// What the TXT record holds, followed by the token.
pub const TXT_PREFIX: &str = "bulkhead-verify=";

/// How control of a host may be proven.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// The DNS TXT record, else the HTTP token.
    #[default]
    Any,
    Http,
    Dns,
}

#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    pub method: Method,
    /// Fetch the HTTP token from this address instead of the host's own.
    pub connect_to: Option<SocketAddr>,
    /// Ask this DNS server instead of the system's resolvers.
    pub dns_server: Option<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("invalid host name `{0}`")]
    BadHost(String),
    #[error("`{0}` is already registered")]
    Taken(String),
    #[error("`{host}` is not a domain of tenant `{slug}`")]
    Unknown { host: String, slug: String },
    #[error("verification of `{host}` failed: {detail}")]
    NotVerified { host: String, detail: String },
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl DomainError {
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::BadHost(_) | Self::Taken(_) | Self::Unknown { .. }
        )
    }
}

pub async fn add(
    control: &ControlPlane,
    tenant: TenantId,
    raw: &str,
    actor: &str,
) -> Result<Domain, DomainError> {
    let host = HostName::parse(raw).map_err(|_| DomainError::BadHost(raw.to_string()))?;
    let token = crate::secret::random_hex(16);
    let domain = control
        .insert_domain(tenant, host.as_str(), &token)
        .await?
        .ok_or_else(|| DomainError::Taken(host.to_string()))?;
    control
        .audit(
            actor,
            "domain.add",
            Some(tenant),
            json!({"host": host.as_str()}),
        )
        .await?;
    Ok(domain)
}

/// Proves control of the host (see the module docs) and marks the domain
/// verified; it routes from then on.
pub async fn verify(
    control: &ControlPlane,
    tenant: TenantId,
    slug: &str,
    raw: &str,
    options: &VerifyOptions,
    actor: &str,
) -> Result<Domain, DomainError> {
    let host = HostName::parse(raw).map_err(|_| DomainError::BadHost(raw.to_string()))?;
    let domain = control
        .domain(host.as_str())
        .await?
        .filter(|d| d.tenant_id == tenant.0)
        .ok_or_else(|| DomainError::Unknown {
            host: host.to_string(),
            slug: slug.to_string(),
        })?;
    let token = &domain.verification_token;
    let mut failures = Vec::new();
    let mut proven_by = None;
    if matches!(options.method, Method::Any | Method::Dns) {
        match check_txt(&host, token, options.dns_server).await {
            Ok(()) => proven_by = Some("dns"),
            Err(e) => failures.push(e),
        }
    }
    if proven_by.is_none() && matches!(options.method, Method::Any | Method::Http) {
        match check_http(&host, token, options.connect_to).await {
            Ok(()) => proven_by = Some("http"),
            Err(e) => failures.push(e),
        }
    }
    let Some(method) = proven_by else {
        return Err(DomainError::NotVerified {
            host: host.to_string(),
            detail: failures.join("; "),
        });
    };
    control.mark_domain_verified(host.as_str()).await?;
    control
        .audit(
            actor,
            "domain.verify",
            Some(tenant),
            json!({"host": host.as_str(), "method": method}),
        )
        .await?;
    Ok(control.domain(host.as_str()).await?.unwrap_or(domain))
}

/// `http://<host>/.well-known/bulkhead-verify/<token>` (fetched from
/// `connect_to` when given, with the host's name in `Host`) answers the token.
async fn check_http(
    host: &HostName,
    token: &str,
    connect_to: Option<SocketAddr>,
) -> Result<(), String> {
    let target = connect_to.map_or_else(|| host.to_string(), |a| a.to_string());
    let url = format!("http://{target}{WELL_KNOWN}{token}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(&url)
        .header("host", host.as_str())
        .send()
        .await
        .map_err(|e| format!("GET http://{host}{WELL_KNOWN}…: {e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() || body.trim() != token {
        return Err(format!(
            "http://{host}{WELL_KNOWN}… answered {status}, not the token"
        ));
    }
    Ok(())
}

/// A TXT record `_bulkhead.<host>` holds `bulkhead-verify=<token>`.
async fn check_txt(
    host: &HostName,
    token: &str,
    dns_server: Option<SocketAddr>,
) -> Result<(), String> {
    use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
    use hickory_resolver::name_server::TokioConnectionProvider;

    let name = format!("{TXT_LABEL}.{host}.");
    let provider = TokioConnectionProvider::default();
    let mut builder = match dns_server {
        Some(server) => hickory_resolver::Resolver::builder_with_config(
            ResolverConfig::from_parts(
                None,
                vec![],
                NameServerConfigGroup::from_ips_clear(&[server.ip()], server.port(), true),
            ),
            provider,
        ),
        None => hickory_resolver::Resolver::builder(provider)
            .map_err(|e| format!("no DNS resolver configured: {e}"))?,
    };
    builder.options_mut().timeout = Duration::from_secs(5);
    builder.options_mut().attempts = 2;
    let resolver = builder.build();
    let expected = format!("{TXT_PREFIX}{token}");
    let lookup = resolver
        .txt_lookup(name.as_str())
        .await
        .map_err(|e| format!("TXT {name}: {e}"))?;
    // A long record arrives as several strings: they form one value.
    let found = lookup.iter().any(|txt| {
        let value: Vec<u8> = txt
            .txt_data()
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        String::from_utf8_lossy(&value).trim() == expected
    });
    if found {
        Ok(())
    } else {
        Err(format!("TXT {name} does not hold {TXT_PREFIX}<token>"))
    }
}

pub async fn remove(
    control: &ControlPlane,
    tenant: TenantId,
    slug: &str,
    raw: &str,
    actor: &str,
) -> Result<(), DomainError> {
    let host = HostName::parse(raw).map_err(|_| DomainError::BadHost(raw.to_string()))?;
    if !control.remove_domain(tenant, host.as_str()).await? {
        return Err(DomainError::Unknown {
            host: host.to_string(),
            slug: slug.to_string(),
        });
    }
    control
        .audit(
            actor,
            "domain.remove",
            Some(tenant),
            json!({"host": host.as_str()}),
        )
        .await?;
    Ok(())
}
