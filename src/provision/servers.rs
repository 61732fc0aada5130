//! Registering database servers: every admin URL is checked (reachable, a
//! superuser) before it is recorded, and never printed. A server off this
//! machine is reached over verified TLS unless its URL says otherwise.

use serde_json::json;

use super::admin::{admin_config, connect};
use super::{ProvisionError, Provisioner};
use crate::control::{NewServer, ServerState};
use crate::pg::SslMode;
use crate::secret::Secret;

pub struct AddServer {
    pub name: String,
    pub admin_url: Secret<String>,
    pub capacity: i32,
    pub budget: i32,
}

impl Provisioner {
    pub async fn add_server(&self, add: &AddServer) -> Result<(), ProvisionError> {
        let valid_name = add.name.len() <= 63
            && add.name.starts_with(|c: char| c.is_ascii_lowercase())
            && add
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !valid_name {
            return Err(ProvisionError::BadServerName(add.name.clone()));
        }
        for (what, value) in [("capacity", add.capacity), ("budget", add.budget)] {
            if value <= 0 {
                return Err(ProvisionError::BadValue {
                    what,
                    detail: format!("{value} (must be a positive number)"),
                });
            }
        }
        if self.control.server(&add.name).await?.is_some() {
            return Err(ProvisionError::ServerExists(add.name.clone()));
        }
        let admin_url = with_default_tls(&add.admin_url, &add.name)?;
        let config = admin_config(&admin_url, &add.name, None)?;
        let client = connect(&config, &add.name).await?;
        let superuser: bool = client
            .query_one(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| ProvisionError::ServerUnreachable {
                server: add.name.clone(),
                detail: crate::pg::describe(&e),
            })?
            .get(0);
        if !superuser {
            return Err(ProvisionError::NotSuperuser(add.name.clone()));
        }
        lockdown(&client, &add.name).await?;
        let inserted = self
            .control
            .insert_server(&NewServer {
                name: &add.name,
                admin_url: &admin_url,
                capacity: add.capacity,
                budget: add.budget,
            })
            .await?;
        if !inserted {
            return Err(ProvisionError::ServerExists(add.name.clone()));
        }
        self.control
            .audit(
                &self.settings.actor,
                "server.add",
                None,
                json!({"server": add.name, "capacity": add.capacity, "budget": add.budget,
                       "sslmode": config.ssl_mode().as_str()}),
            )
            .await?;
        Ok(())
    }

    /// Takes PUBLIC's CONNECT and TEMP away on every database of a server.
    pub async fn lockdown_server(&self, name: &str) -> Result<(), ProvisionError> {
        let client = self.admin_of(name).await?;
        lockdown(&client, name).await
    }

    /// An admin connection to the `postgres` database of server `name`.
    pub(crate) async fn admin_of(
        &self,
        name: &str,
    ) -> Result<deadpool_postgres::Object, ProvisionError> {
        let server = self
            .control
            .server(name)
            .await?
            .ok_or_else(|| ProvisionError::UnknownServer(name.to_string()))?;
        self.admin.get(&server).await
    }

    /// Stops placing new tenants on a server; its tenants stay where they are.
    pub async fn drain_server(&self, name: &str) -> Result<(), ProvisionError> {
        if !self
            .control
            .set_server_state(name, ServerState::Draining)
            .await?
        {
            return Err(ProvisionError::UnknownServer(name.to_string()));
        }
        self.control
            .audit(
                &self.settings.actor,
                "server.drain",
                None,
                json!({"server": name}),
            )
            .await?;
        Ok(())
    }
}

/// The URL to record: one naming a host off this machine and no `sslmode`
/// gets `sslmode=verify-full` written in, so that every later connection
/// (admin and tenant alike) verifies the server; a local one is left as it is.
fn with_default_tls(url: &Secret<String>, server: &str) -> Result<Secret<String>, ProvisionError> {
    let bad = |detail: String| ProvisionError::BadAdminUrl {
        server: server.to_string(),
        detail,
    };
    let (rest, tls) = crate::pg::split_tls(url.expose()).map_err(|e| bad(e.to_string()))?;
    let config: tokio_postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
    if tls.mode.is_some() || crate::pg::is_local(&config) {
        return Ok(url.clone());
    }
    Ok(Secret::new(crate::pg::with_ssl_mode(
        url.expose(),
        SslMode::VerifyFull,
    )))
}

async fn lockdown(client: &tokio_postgres::Client, server: &str) -> Result<(), ProvisionError> {
    client
        .batch_execute(super::sql::SERVER_LOCKDOWN)
        .await
        .map_err(|e| ProvisionError::ServerUnreachable {
            server: server.to_string(),
            detail: crate::pg::describe(&e),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(url: &str) -> String {
        with_default_tls(&Secret::new(url.to_string()), "s")
            .expect("valid")
            .expose()
            .clone()
    }

    #[test]
    fn a_server_off_this_machine_gets_verify_full_unless_its_url_says_otherwise() {
        assert_eq!(
            recorded("postgres://a:pw@db.example/postgres"),
            "postgres://a:pw@db.example/postgres?sslmode=verify-full"
        );
        assert_eq!(
            recorded("postgres://a:pw@10.1.2.3/postgres?sslrootcert=/ca.pem"),
            "postgres://a:pw@10.1.2.3/postgres?sslrootcert=/ca.pem&sslmode=verify-full"
        );
        for kept in [
            "postgres://a:pw@db.example/postgres?sslmode=require",
            "postgres://a:pw@db.example/postgres?sslmode=disable",
            "postgres://a:pw@db.example/postgres?sslrootcert=system",
            "postgres://a:pw@127.0.0.1:5432/postgres",
            "postgres://a:pw@localhost/postgres",
            "host=/var/run/postgresql user=a",
        ] {
            assert_eq!(recorded(kept), kept);
        }
        let err = with_default_tls(&Secret::new("postgres://h/x?sslmode=strict".into()), "s")
            .expect_err("refused");
        assert!(
            err.to_string().contains("unknown sslmode `strict`"),
            "{err}"
        );
    }
}
