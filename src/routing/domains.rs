//! Custom domains: added with a verification token, routed only once the
//! token is served at `http://<host>/.well-known/bulkhead-verify/<token>`
//! (bulkhead serves it itself once the host points at it).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;

use super::HostName;
use crate::control::{ControlError, ControlPlane, Domain, TenantId};

pub const WELL_KNOWN: &str = "/.well-known/bulkhead-verify/";

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

/// Fetches the well-known URL from the host (or from `connect_to`, with the
/// host's name in `Host`), and marks the domain verified if it answers the token.
pub async fn verify(
    control: &ControlPlane,
    tenant: TenantId,
    slug: &str,
    raw: &str,
    connect_to: Option<SocketAddr>,
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
    let fail = |detail: String| DomainError::NotVerified {
        host: host.to_string(),
        detail,
    };
    let target = connect_to.map_or_else(|| host.to_string(), |a| a.to_string());
    let url = format!("http://{target}{WELL_KNOWN}{}", domain.verification_token);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let response = client
        .get(&url)
        .header("host", host.as_str())
        .send()
        .await
        .map_err(|e| fail(format!("GET http://{host}{WELL_KNOWN}…: {e}")))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() || body.trim() != domain.verification_token {
        return Err(fail(format!(
            "http://{host}{WELL_KNOWN}… answered {status}, not the token"
        )));
    }
    control.mark_domain_verified(host.as_str()).await?;
    control
        .audit(
            actor,
            "domain.verify",
            Some(tenant),
            json!({"host": host.as_str()}),
        )
        .await?;
    Ok(control.domain(host.as_str()).await?.unwrap_or(domain))
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
