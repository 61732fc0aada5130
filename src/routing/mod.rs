//! Host resolution: `Host` header -> what it names (a tenant, the apex, the
//! admin or API host), through a bounded cache that every routing change in
//! the control plane invalidates at once via LISTEN/NOTIFY.

pub mod domains;
mod host;
mod listen;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;

pub use host::{HostError, HostName};
pub use listen::{CHANNEL, Invalidate, listen};

use crate::control::{
    ControlError, ControlPlane, Mode, Plan, Slug, Stamped, Status, Tenant, TenantId, keep_for,
};

/// What the request path needs to know about a tenant, cached per host.
#[derive(Debug, Clone)]
pub struct TenantEntry {
    pub id: TenantId,
    pub slug: Slug,
    pub status: Status,
    pub mode: Mode,
    pub plan: Plan,
    pub server: String,
    /// The runtime role its connections log in as.
    pub role: String,
    pub database: String,
    pub schema: String,
    pub schema_version: i32,
    pub credential_generation: i32,
}

impl TenantEntry {
    pub fn from_tenant(t: &Tenant, shared_db: &str) -> Self {
        Self {
            id: t.id,
            slug: t.slug.clone(),
            status: t.status,
            mode: t.mode,
            plan: t.plan,
            server: t.server.clone(),
            role: t.runtime_role().to_string(),
            database: t.database(shared_db),
            schema: t.schema(),
            schema_version: t.schema_version,
            credential_generation: t.credential_generation,
        }
    }
}

/// What a host names.
#[derive(Debug, Clone)]
pub enum Route {
    /// `<base domain>`: public pages, sign-up, webhooks.
    Apex,
    /// `admin.<base domain>`: platform admin.
    Admin,
    /// `api.<base domain>`: machine clients choosing their tenant by header.
    Api,
    Tenant(Arc<TenantEntry>),
    /// Nothing we serve (never existed, deleted, unverified domain...).
    Unknown,
}

#[derive(Clone, Debug)]
pub struct ResolverSettings {
    pub base_domain: HostName,
    pub shared_db: String,
    pub capacity: u64,
    pub ttl: Duration,
    pub miss_ttl: Duration,
}

/// Two caches, so that a flood of unknown hosts never evicts a tenant. Each
/// entry is fresh for its time to live and then kept for the control
/// plane's stale window (see [`crate::control::Health`]).
pub struct Resolver {
    control: ControlPlane,
    settings: ResolverSettings,
    hits: Cache<HostName, Stamped<Arc<TenantEntry>>>,
    misses: Cache<HostName, Stamped<()>>,
    /// Moves on every invalidation, after the caches have been cleared.
    epoch: AtomicU64,
}

impl Resolver {
    pub fn new(control: ControlPlane, settings: ResolverSettings) -> Self {
        let health = control.health();
        let hits = Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_live(keep_for(settings.ttl, health))
            .support_invalidation_closures()
            .build();
        let misses = Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_live(keep_for(settings.miss_ttl, health))
            .build();
        Self {
            control,
            settings,
            hits,
            misses,
            epoch: AtomicU64::new(0),
        }
    }

    pub fn base_domain(&self) -> &HostName {
        &self.settings.base_domain
    }

    pub async fn resolve(&self, host: &HostName) -> Result<Route, ControlError> {
        let base = &self.settings.base_domain;
        if host == base {
            return Ok(Route::Apex);
        }
        let sub = host.subdomain_of(base);
        match sub {
            Some("admin") => return Ok(Route::Admin),
            Some("api") => return Ok(Route::Api),
            // Reserved or malformed slugs are never tenants: no lookup.
            Some(label) if Slug::parse(label).is_err() => return Ok(Route::Unknown),
            _ => {}
        }
        let held = match self.hits.get(host).await {
            Some(hit) => {
                let (entry, fresh) = hit.held(self.settings.ttl);
                Some((Route::Tenant(entry), fresh))
            }
            None => self
                .misses
                .get(host)
                .await
                .map(|miss| (Route::Unknown, miss.held(self.settings.miss_ttl).1)),
        };
        if matches!(held, Some((_, true))) {
            metrics::counter!("bulkhead_resolve_cache_hits_total").increment(1);
        } else {
            metrics::counter!("bulkhead_resolve_cache_misses_total").increment(1);
        }
        self.control
            .health()
            .answer("resolve", held, || self.fetch(host, sub))
            .await
    }

    /// Asks the control plane what `host` names, and caches the answer.
    async fn fetch(&self, host: &HostName, sub: Option<&str>) -> Result<Route, ControlError> {
        let tenant = match sub {
            Some(label) => {
                let slug = Slug::parse(label).expect("checked by resolve");
                self.control.tenant_by_slug(&slug).await?
            }
            None => self.control.tenant_by_domain(host.as_str()).await?,
        };
        match tenant {
            Some(t) => {
                let entry = Arc::new(TenantEntry::from_tenant(&t, &self.settings.shared_db));
                self.hits
                    .insert(host.clone(), Stamped::new(entry.clone()))
                    .await;
                self.misses.invalidate(host).await;
                Ok(Route::Tenant(entry))
            }
            None => {
                self.misses.insert(host.clone(), Stamped::new(())).await;
                self.hits.invalidate(host).await;
                Ok(Route::Unknown)
            }
        }
    }

    /// The tenant a slug names, as `<slug>.<base>` would resolve.
    pub async fn resolve_slug(&self, slug: &str) -> Result<Route, ControlError> {
        match HostName::parse(&format!("{slug}.{}", self.settings.base_domain)) {
            Ok(host) if host.subdomain_of(&self.settings.base_domain).is_some() => {
                self.resolve(&host).await
            }
            _ => Ok(Route::Unknown),
        }
    }
}

impl Invalidate for Resolver {
    async fn invalidate(&self, payload: Option<&str>) {
        Resolver::invalidate(self, payload).await
    }
}

impl Resolver {
    /// Applies one NOTIFY payload (`tenant:<id>:<slug>`, `host:<name>`), or
    /// drops everything (`None`: the listener reconnected and may have missed some).
    pub async fn invalidate(&self, payload: Option<&str>) {
        self.clear(payload).await;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts invalidations. Anything remembered from these caches (the
    /// per-connection memo of `http::peer`) holds only while this stays what
    /// it was before the caches were asked.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    async fn clear(&self, payload: Option<&str>) {
        let Some(payload) = payload else {
            self.hits.invalidate_all();
            self.misses.invalidate_all();
            return;
        };
        let mut parts = payload.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("tenant"), Some(id), slug) => {
                if let Ok(id) = id.parse::<uuid::Uuid>() {
                    let _ = self
                        .hits
                        .invalidate_entries_if(move |_, e| e.value.id.0 == id);
                }
                // A host looked up before the tenant existed is a cached miss.
                if let Some(Ok(host)) =
                    slug.map(|s| HostName::parse(&format!("{s}.{}", self.settings.base_domain)))
                {
                    self.misses.invalidate(&host).await;
                }
            }
            (Some("host"), Some(host), _) => {
                if let Ok(host) = HostName::parse(host) {
                    self.hits.invalidate(&host).await;
                    self.misses.invalidate(&host).await;
                }
            }
            _ => {}
        }
    }
}
