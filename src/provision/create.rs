//! Tenant creation: reserve -> roles -> storage -> grants -> migrate -> verify -> active.

use serde_json::json;
use tokio_postgres::Client;

use super::admin::{self, connect, database_exists, role_exists};
use super::sql::{self, in_transaction};
use super::{CreateRequest, ProvisionError, Provisioner, Reserved};
use crate::control::{Mode, NewTenant, PgName, Reservation, Server, Slug, Status, Step, Tenant};
use crate::secret::{self, TENANT_SCRAM_ITERATIONS};
use crate::sql::{Arg, Ident, Literal, render};

/// What `tenant create` did.
#[derive(Debug)]
pub enum CreateOutcome {
    /// The tenant was created (or its interrupted creation finished) and is active.
    Created(Tenant),
    /// A tenant with this slug already existed and was left as it was.
    AlreadyExists(Tenant),
}

/// Connections one creation reuses across its steps.
#[derive(Default)]
struct Session {
    /// Admin connection to the tenant's database (database mode) or the shared one.
    inside: Option<Inside>,
}

/// A new database needs a connection of its own; the shared database of
/// schema-mode tenants is reached through a pool, which spares every tenant a
/// backend start in a database whose catalog grows with the fleet.
enum Inside {
    Own(Client),
    Pooled(deadpool_postgres::Object),
}

impl Inside {
    fn client(&mut self) -> &mut Client {
        match self {
            Inside::Own(client) => client,
            Inside::Pooled(object) => object,
        }
    }
}

impl Provisioner {
    /// Creates a tenant, or finishes the interrupted creation of the same one.
    pub async fn create(&self, request: &CreateRequest) -> Result<CreateOutcome, ProvisionError> {
        match self.reserve(request).await? {
            Reserved::Existing(tenant) if tenant.status != Status::Provisioning => {
                Ok(CreateOutcome::AlreadyExists(tenant))
            }
            Reserved::New(tenant) | Reserved::Existing(tenant) => self.complete(tenant).await,
        }
    }

    /// The first step alone: checks the request, picks a server and records
    /// the tenant (`provisioning`); nothing exists on any server yet. `complete`
    /// (or `reconcile`) does the rest.
    pub async fn reserve(&self, request: &CreateRequest) -> Result<Reserved, ProvisionError> {
        let slug = Slug::parse(&request.slug)?;
        let display_name = request
            .display_name
            .clone()
            .unwrap_or_else(|| request.slug.clone());
        if display_name.trim().is_empty() || display_name.len() > 200 {
            return Err(ProvisionError::BadValue {
                what: "display name",
                detail: "must be 1-200 characters".into(),
            });
        }
        let server = self.choose_server(request.server.as_deref()).await?;
        // Reachable before anything is reserved: an unreachable server leaves no trace.
        drop(self.admin.get(&server).await?);
        let reservation = self
            .control
            .reserve(&NewTenant {
                slug: &slug,
                // Minted even if the slug turns out taken: then it is unused.
                pg_name: &PgName::mint(),
                display_name: &display_name,
                plan: request.plan,
                mode: request.mode,
                server: &server.name,
            })
            .await?;
        match reservation {
            Reservation::Created(tenant) => {
                self.audit(
                    "tenant.create",
                    &tenant,
                    json!({"mode": tenant.mode, "server": tenant.server, "plan": tenant.plan}),
                )
                .await?;
                Ok(Reserved::New(tenant))
            }
            Reservation::Quarantined { until } => Err(ProvisionError::SlugQuarantined {
                slug: slug.to_string(),
                until: until.date().to_string(),
            }),
            Reservation::Exists(tenant) if tenant.mode != request.mode => {
                Err(ProvisionError::ModeMismatch {
                    slug: slug.to_string(),
                    mode: tenant.mode,
                })
            }
            Reservation::Exists(tenant) => Ok(Reserved::Existing(tenant)),
        }
    }

    /// Runs the remaining creation steps of a reserved tenant.
    pub async fn complete(&self, tenant: Tenant) -> Result<CreateOutcome, ProvisionError> {
        // Another process may be running this tenant's steps: wait for it, then
        // carry on from wherever it left the tenant.
        let lock = self.control.lock_tenant(tenant.id).await?;
        let tenant = self
            .control
            .tenant(tenant.id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownTenant(tenant.slug.to_string()))?;
        let outcome = if tenant.status == Status::Provisioning {
            self.finish_create(tenant).await.map(CreateOutcome::Created)
        } else {
            Ok(CreateOutcome::AlreadyExists(tenant))
        };
        lock.release().await?;
        outcome
    }

    async fn choose_server(&self, name: Option<&str>) -> Result<Server, ProvisionError> {
        let Some(name) = name else {
            return self
                .control
                .place()
                .await?
                .ok_or(ProvisionError::NoCapacity);
        };
        let server = self
            .control
            .server(name)
            .await?
            .ok_or_else(|| ProvisionError::UnknownServer(name.to_string()))?;
        if server.state != crate::control::ServerState::Open {
            return Err(ProvisionError::ServerDraining(name.to_string()));
        }
        if server.free_capacity() <= 0 {
            return Err(ProvisionError::NoCapacity);
        }
        Ok(server)
    }

    /// Runs the creation steps from the one the tenant recorded last.
    pub(super) async fn finish_create(&self, tenant: Tenant) -> Result<Tenant, ProvisionError> {
        let server = self.server_of(&tenant).await?;
        let first = tenant
            .step
            .and_then(|s| Step::CREATE.iter().position(|c| *c == s))
            .unwrap_or(0);
        let mut session = Session::default();
        for &step in &Step::CREATE[first..] {
            self.control.set_step(tenant.id, step).await?;
            let result = match step {
                Step::Reserve => Ok(()),
                Step::Roles => self.step_roles(&tenant, &server).await,
                Step::Storage => self.step_storage(&tenant, &server, &mut session).await,
                Step::Grants => self.step_grants(&tenant, &server, &mut session).await,
                Step::Migrate => self.step_migrate(&tenant, &server, &mut session).await,
                Step::Verify => self.step_verify(&tenant, &server).await,
                _ => unreachable!("not a creation step"),
            };
            self.record_failure(&tenant, result).await?;
            self.check_injected(step)?;
        }
        self.control
            .set_status(tenant.id, Status::Active, None)
            .await?;
        tracing::info!(tenant = %tenant.slug, mode = %tenant.mode, server = %server.name, "tenant active");
        self.control
            .tenant(tenant.id)
            .await?
            .ok_or_else(|| ProvisionError::UnknownTenant(tenant.slug.to_string()))
    }

    fn step_error(
        tenant: &Tenant,
        step: Step,
    ) -> impl Fn(tokio_postgres::Error) -> ProvisionError + '_ {
        move |e| ProvisionError::Step {
            slug: tenant.slug.to_string(),
            step,
            detail: crate::pg::describe(&e),
        }
    }

    async fn step_roles(&self, tenant: &Tenant, server: &Server) -> Result<(), ProvisionError> {
        let err = Self::step_error(tenant, Step::Roles);
        let client = self.admin.get(server).await?;
        let owner = tenant.owner_role();
        let runtime = tenant.runtime_role().to_string();
        if !role_exists(&client, &owner).await.map_err(&err)? {
            let sql = render(
                sql::OWNER_ROLE,
                &[("owner", Arg::Ident(&Ident::new(&owner)))],
            );
            client.batch_execute(&sql).await.map_err(&err)?;
        }
        if !role_exists(&client, &runtime).await.map_err(&err)? {
            let sql = render(
                sql::RUNTIME_ROLE,
                &[("runtime", Arg::Ident(&Ident::new(&runtime)))],
            );
            client.batch_execute(&sql).await.map_err(&err)?;
        }
        self.set_credentials(&client, tenant, tenant.credential_generation)
            .await
            .map_err(&err)?;
        self.set_limits(&client, tenant).await.map_err(&err)
    }

    /// Sets the runtime role's attributes and the verifier of its password at `generation`.
    pub(super) async fn set_credentials(
        &self,
        client: &Client,
        tenant: &Tenant,
        generation: i32,
    ) -> Result<(), tokio_postgres::Error> {
        let password = self.secret.tenant_password(tenant.id.0, generation);
        let verifier = Literal::new(&secret::scram_verifier(
            password.expose(),
            TENANT_SCRAM_ITERATIONS,
        ));
        let sql = render(
            sql::RUNTIME_CREDENTIALS,
            &[
                ("runtime", Arg::Ident(&Ident::new(tenant.runtime_role()))),
                ("limit", Arg::Int(i64::from(self.settings.connection_limit))),
                ("verifier", Arg::Literal(&verifier)),
            ],
        );
        client.batch_execute(&sql).await
    }

    async fn step_storage(
        &self,
        tenant: &Tenant,
        server: &Server,
        session: &mut Session,
    ) -> Result<(), ProvisionError> {
        let err = Self::step_error(tenant, Step::Storage);
        let owner = Ident::new(&tenant.owner_role());
        let runtime = Ident::new(tenant.runtime_role());
        match tenant.mode {
            Mode::Database => {
                self.ensure_template(server).await?;
                let client = self.admin.get(server).await?;
                let name = tenant.database(&self.settings.shared_db);
                let database = Ident::new(&name);
                if !database_exists(&client, &name).await.map_err(&err)? {
                    let sql = render(
                        sql::DATABASE_CREATE,
                        &[
                            ("database", Arg::Ident(&database)),
                            ("owner", Arg::Ident(&owner)),
                            (
                                "template",
                                Arg::Ident(&Ident::new(&self.settings.template_db)),
                            ),
                        ],
                    );
                    // Shared with other clones, exclusive of a template migration
                    // (a clone fails while anyone is connected to the template).
                    let key = self.template_lock_key();
                    client
                        .execute("SELECT pg_advisory_lock_shared(hashtext($1))", &[&key])
                        .await
                        .map_err(&err)?;
                    let created = client.batch_execute(&sql).await;
                    client
                        .execute("SELECT pg_advisory_unlock_shared(hashtext($1))", &[&key])
                        .await
                        .map_err(&err)?;
                    created.map_err(&err)?;
                }
                let sql = render(
                    sql::DATABASE_LOCKDOWN,
                    &[
                        ("database", Arg::Ident(&database)),
                        ("runtime", Arg::Ident(&runtime)),
                    ],
                );
                in_transaction(&client, &sql).await.map_err(&err)
            }
            Mode::Schema => {
                self.ensure_shared(server).await?;
                // The same connection then serves the grants and migrate steps.
                let client = self.inside(tenant, server, session).await?;
                let sql = render(
                    sql::SCHEMA_CREATE,
                    &[
                        ("schema", Arg::Ident(&Ident::new(&tenant.schema()))),
                        ("owner", Arg::Ident(&owner)),
                    ],
                );
                client.batch_execute(&sql).await.map_err(&err)
            }
        }
    }

    /// The admin connection inside the tenant's database (or the shared one).
    async fn inside<'s>(
        &self,
        tenant: &Tenant,
        server: &Server,
        session: &'s mut Session,
    ) -> Result<&'s mut Client, ProvisionError> {
        if session.inside.is_none() {
            session.inside = Some(match tenant.mode {
                Mode::Database => {
                    Inside::Own(admin::connect_to(server, &tenant.database("")).await?)
                }
                Mode::Schema => Inside::Pooled(
                    self.admin
                        .get_db(server, Some(&self.settings.shared_db))
                        .await?,
                ),
            });
        }
        Ok(session.inside.as_mut().expect("set above").client())
    }

    async fn step_grants(
        &self,
        tenant: &Tenant,
        server: &Server,
        session: &mut Session,
    ) -> Result<(), ProvisionError> {
        let err = Self::step_error(tenant, Step::Grants);
        let owner = Ident::new(&tenant.owner_role());
        let runtime = Ident::new(tenant.runtime_role());
        let sql = match tenant.mode {
            Mode::Database => {
                // Idempotent on a rerun: once reassigned, the template owner owns
                // nothing here and both statements do nothing.
                render(
                    sql::DATABASE_GRANTS,
                    &[
                        (
                            "template_owner",
                            Arg::Ident(&Ident::new(&self.template_owner())),
                        ),
                        ("owner", Arg::Ident(&owner)),
                        ("runtime", Arg::Ident(&runtime)),
                    ],
                )
            }
            Mode::Schema => {
                let shared = Ident::new(&self.settings.shared_db);
                let schema = Ident::new(&tenant.schema());
                let grants = render(
                    sql::SCHEMA_GRANTS,
                    &[
                        ("shared", Arg::Ident(&shared)),
                        ("schema", Arg::Ident(&schema)),
                        ("owner", Arg::Ident(&owner)),
                        ("runtime", Arg::Ident(&runtime)),
                    ],
                );
                let pin = render(
                    sql::SCHEMA_PIN,
                    &[
                        ("runtime", Arg::Ident(&runtime)),
                        ("shared", Arg::Ident(&shared)),
                        ("schema", Arg::Ident(&schema)),
                    ],
                );
                format!("{grants}\n{pin}")
            }
        };
        let client = self.inside(tenant, server, session).await?;
        in_transaction(client, &sql).await.map_err(&err)
    }

    async fn step_migrate(
        &self,
        tenant: &Tenant,
        server: &Server,
        session: &mut Session,
    ) -> Result<(), ProvisionError> {
        let schema = tenant.schema();
        let owner = tenant.owner_role();
        let latest = self.schema.latest();
        let client = self.inside(tenant, server, session).await?;
        let step_err = |detail: String| ProvisionError::Step {
            slug: tenant.slug.to_string(),
            step: Step::Migrate,
            detail,
        };
        let current = crate::migrations::current_version(client, &schema)
            .await
            .map_err(|e| step_err(e.to_string()))?;
        let version = if current >= latest {
            current
        } else {
            self.schema
                .apply(client, &owner, &schema, None)
                .await
                .map_err(|e| step_err(e.to_string()))?
        };
        // Always: a clone inherits the template's history table, and in schema
        // mode the table was just created, with default privileges for the runtime role.
        let sql = render(
            sql::HISTORY_REVOKE,
            &[
                ("schema", Arg::Ident(&Ident::new(&schema))),
                ("runtime", Arg::Ident(&Ident::new(tenant.runtime_role()))),
            ],
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| step_err(crate::pg::describe(&e)))?;
        self.control.set_schema_version(tenant.id, version).await?;
        Ok(())
    }

    /// Connects as the tenant's runtime role and checks that it is exactly who
    /// it should be, where it should be, with nothing more.
    async fn step_verify(&self, tenant: &Tenant, server: &Server) -> Result<(), ProvisionError> {
        let config = self.runtime_config(tenant, server)?;
        let client = connect(&config, &server.name)
            .await
            .map_err(|e| ProvisionError::Verify {
                slug: tenant.slug.to_string(),
                detail: format!("cannot log in as the runtime role: {e}"),
            })?;
        let row = client
            .query_one(sql::VERIFY, &[])
            .await
            .map_err(Self::step_error(tenant, Step::Verify))?;
        let expected_db = tenant.database(&self.settings.shared_db);
        let expected_role = tenant.runtime_role();
        let schemas: Vec<String> = row.get("schemas");
        let mut problems = Vec::new();
        let role: String = row.get("role");
        if role != expected_role {
            problems.push(format!("current_user is {role}, expected {expected_role}"));
        }
        let db: String = row.get("database");
        if db != expected_db {
            problems.push(format!(
                "current_database() is {db}, expected {expected_db}"
            ));
        }
        if schemas != [tenant.schema()] {
            problems.push(format!(
                "current_schemas is {schemas:?}, expected [{}]",
                tenant.schema()
            ));
        }
        for (column, what) in [
            ("privileged", "has a privileged role attribute"),
            ("can_temp", "may create temporary tables"),
            ("can_create_schema", "may create schemas"),
            ("can_create_in_schema", "may create objects in its schema"),
        ] {
            if row.get::<_, Option<bool>>(column).unwrap_or(true) {
                problems.push(format!("the runtime role {what}"));
            }
        }
        let memberships: i32 = row.get("memberships");
        if memberships != 0 {
            problems.push(format!(
                "the runtime role is a member of {memberships} role(s)"
            ));
        }
        if !problems.is_empty() {
            return Err(ProvisionError::Verify {
                slug: tenant.slug.to_string(),
                detail: problems.join("; "),
            });
        }
        Ok(())
    }

    /// Connection settings for the tenant's runtime role (password derived now,
    /// never stored), its search path pinned at connection start.
    pub fn runtime_config(
        &self,
        tenant: &Tenant,
        server: &Server,
    ) -> Result<crate::pg::PgConfig, ProvisionError> {
        let db = tenant.database(&self.settings.shared_db);
        let mut config = admin::admin_config(&server.admin_url, &server.name, Some(&db))?;
        let password = self
            .secret
            .tenant_password(tenant.id.0, tenant.credential_generation);
        config
            .user(tenant.runtime_role())
            .password(password.expose().as_bytes())
            .application_name("bulkhead");
        crate::sql::pin_search_path(&mut config, &tenant.schema());
        Ok(config)
    }
}
