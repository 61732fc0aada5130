//! The provisioner: creates, verifies, suspends, rotates and deletes tenants.
//! Every change is a state machine of idempotent steps recorded in the control
//! plane *before* they act, so a crash anywhere is finished by running the same
//! command again or `bulkhead reconcile`. Every runtime role carries its
//! plan's session limits (see [`SessionLimits`]).

mod admin;
mod create;
mod delete;
mod limits;
mod rename;
mod servers;
mod sql;
mod template;

use std::path::PathBuf;

pub use admin::admin_config;
pub(crate) use admin::{connect_to, connect_with_options};
pub use create::CreateOutcome;
pub use delete::{Reconciled, RolePrivileges};
pub use limits::SessionLimits;
pub use rename::RENAMED;
pub use servers::AddServer;
pub(crate) use template::wait_for_no_sessions;

use crate::control::{ControlError, ControlPlane, Mode, Plan, SlugError, Step, Tenant};
use crate::migrations::TenantSchema;
use crate::secret::MasterSecret;

/// Settings that shape every tenant the provisioner makes.
#[derive(Clone, Debug)]
pub struct ProvisionSettings {
    /// Template database every database-mode tenant is cloned from (one per server).
    pub template_db: String,
    /// Database holding the schema-mode tenants (one per server).
    pub shared_db: String,
    /// CONNECTION LIMIT of each runtime role.
    pub connection_limit: i32,
    /// Days a deleted tenant's slug stays unusable.
    pub slug_quarantine_days: i32,
    /// Who is acting, for the audit log.
    pub actor: String,
    /// Directory holding `pg_dump`, for exports.
    pub pg_bindir: Option<PathBuf>,
}

impl Default for ProvisionSettings {
    fn default() -> Self {
        Self {
            template_db: "bulkhead_template".into(),
            shared_db: "bulkhead_shared".into(),
            connection_limit: 20,
            slug_quarantine_days: 30,
            actor: "cli".into(),
            pg_bindir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Slug(#[from] SlugError),
    #[error("slug `{slug}` belonged to a deleted tenant and can be reused from {until}")]
    SlugQuarantined { slug: String, until: String },
    #[error("tenant `{slug}` already exists in {mode} mode; delete it first to change its mode")]
    ModeMismatch { slug: String, mode: Mode },
    #[error("no tenant `{0}`")]
    UnknownTenant(String),
    #[error("no server `{0}` (see `bulkhead server list`)")]
    UnknownServer(String),
    #[error("server `{0}` is draining: it takes no new tenants")]
    ServerDraining(String),
    #[error("no open server has free capacity (see `bulkhead server list`, `bulkhead server add`)")]
    NoCapacity,
    #[error("server `{0}` already exists")]
    ServerExists(String),
    #[error(
        "invalid server name `{0}`: use lower-case letters, digits, `_` and `-`, starting with a letter"
    )]
    BadServerName(String),
    #[error("invalid {what}: {detail}")]
    BadValue { what: &'static str, detail: String },
    #[error("server `{server}` has an invalid admin URL: {detail}")]
    BadAdminUrl { server: String, detail: String },
    #[error("server `{server}` is unreachable: {detail}")]
    ServerUnreachable { server: String, detail: String },
    /// TLS refused (a certificate not trusted or not for the host, or no
    /// TLS where the URL requires it): fixed in the URL or the CA file.
    #[error("cannot connect to server `{server}` securely: {detail}")]
    Tls { server: String, detail: String },
    #[error("the admin URL of server `{0}` does not log in as a superuser")]
    NotSuperuser(String),
    #[error("tenant `{slug}` is {status}; {action} needs it {expected}")]
    WrongStatus {
        slug: String,
        status: String,
        action: &'static str,
        expected: &'static str,
    },
    #[error("tenant `{slug}`, step {step}: {detail}")]
    Step {
        slug: String,
        step: Step,
        detail: String,
    },
    #[error("tenant `{slug}` failed its isolation check: {detail}")]
    Verify { slug: String, detail: String },
    #[error("export of tenant `{slug}` failed: {detail}")]
    Export { slug: String, detail: String },
    #[error("injected failure after step {0} (test hook)")]
    Injected(Step),
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl ProvisionError {
    /// Errors the user can fix by changing the command: exit code 2.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Slug(_)
                | Self::SlugQuarantined { .. }
                | Self::ModeMismatch { .. }
                | Self::UnknownTenant(_)
                | Self::UnknownServer(_)
                | Self::ServerDraining(_)
                | Self::ServerExists(_)
                | Self::BadServerName(_)
                | Self::BadValue { .. }
                | Self::BadAdminUrl { .. }
                | Self::Tls { .. }
                | Self::WrongStatus { .. }
        )
    }
}

/// What `tenant create` asks for.
#[derive(Clone, Debug)]
/// What `reserve` found or made.
pub enum Reserved {
    /// Recorded just now.
    New(Tenant),
    /// The slug was already taken by a tenant of the requested mode (possibly
    /// one whose creation was interrupted: still `provisioning`).
    Existing(Tenant),
}

pub struct CreateRequest {
    pub slug: String,
    pub display_name: Option<String>,
    pub mode: Mode,
    pub plan: Plan,
    pub server: Option<String>,
}

/// Creates, changes and deletes tenants on the fleet's servers.
pub struct Provisioner {
    control: ControlPlane,
    secret: MasterSecret,
    settings: ProvisionSettings,
    schema: TenantSchema,
    admin: admin::AdminPools,
    /// Test hook: fail right after this step completes.
    #[doc(hidden)]
    pub fail_after: Option<Step>,
}

impl Provisioner {
    pub fn new(
        control: ControlPlane,
        secret: MasterSecret,
        settings: ProvisionSettings,
        schema: TenantSchema,
    ) -> Self {
        Self {
            control,
            secret,
            settings,
            schema,
            admin: admin::AdminPools::default(),
            fail_after: None,
        }
    }

    pub fn control(&self) -> &ControlPlane {
        &self.control
    }

    pub fn secret(&self) -> &MasterSecret {
        &self.secret
    }

    pub fn schema(&self) -> &TenantSchema {
        &self.schema
    }

    pub fn settings(&self) -> &ProvisionSettings {
        &self.settings
    }

    /// A pooled admin connection to a server's maintenance database.
    pub(crate) async fn maintenance(
        &self,
        server: &crate::control::Server,
    ) -> Result<deadpool_postgres::Object, ProvisionError> {
        self.admin.get(server).await
    }

    fn check_injected(&self, step: Step) -> Result<(), ProvisionError> {
        if self.fail_after == Some(step) {
            return Err(ProvisionError::Injected(step));
        }
        Ok(())
    }

    /// Records a failed step's error on the tenant, then hands the error back.
    async fn record_failure<T>(
        &self,
        tenant: &Tenant,
        result: Result<T, ProvisionError>,
    ) -> Result<T, ProvisionError> {
        if let Err(e) = &result {
            self.control
                .set_last_error(tenant.id, &e.to_string())
                .await?;
        }
        result
    }

    async fn audit(
        &self,
        action: &str,
        tenant: &Tenant,
        detail: serde_json::Value,
    ) -> Result<(), ProvisionError> {
        self.control
            .audit(&self.settings.actor, action, Some(tenant.id), detail)
            .await?;
        Ok(())
    }

    async fn tenant(&self, slug: &str) -> Result<Tenant, ProvisionError> {
        let slug_parsed = crate::control::Slug::parse(slug)
            .map_err(|_| ProvisionError::UnknownTenant(slug.to_string()))?;
        self.control
            .tenant_by_slug(&slug_parsed)
            .await?
            .ok_or_else(|| ProvisionError::UnknownTenant(slug.to_string()))
    }

    async fn server_of(&self, tenant: &Tenant) -> Result<crate::control::Server, ProvisionError> {
        self.control
            .server(&tenant.server)
            .await?
            .ok_or_else(|| ProvisionError::UnknownServer(tenant.server.clone()))
    }
}
