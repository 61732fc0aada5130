//! Database servers: where tenants are placed, with their capacity (tenants)
//! and connection budget (serving connections).

use tokio_postgres::Row;

use super::{ControlError, ControlPlane, ServerState};
use crate::secret::Secret;

#[derive(Debug, Clone)]
pub struct Server {
    pub name: String,
    pub admin_url: Secret<String>,
    pub capacity: i32,
    pub budget: i32,
    pub state: ServerState,
    pub template_version: Option<i32>,
    /// Live (not deleted) tenants placed on it.
    pub tenants: i64,
}

impl Server {
    pub fn free_capacity(&self) -> i64 {
        i64::from(self.capacity) - self.tenants
    }
}

pub struct NewServer<'a> {
    pub name: &'a str,
    pub admin_url: &'a Secret<String>,
    pub capacity: i32,
    pub budget: i32,
}

const SELECT: &str =
    "SELECT s.name, s.admin_url, s.capacity, s.budget, s.state, s.template_version,
        (SELECT count(*) FROM tenants t WHERE t.server = s.name AND t.status <> 'deleted')
   FROM servers s";

fn server(row: &Row) -> Result<Server, ControlError> {
    let state: String = row.get(4);
    Ok(Server {
        name: row.get(0),
        admin_url: Secret::new(row.get(1)),
        capacity: row.get(2),
        budget: row.get(3),
        state: state.parse().map_err(ControlError::Corrupt)?,
        template_version: row.get(5),
        tenants: row.get(6),
    })
}

impl ControlPlane {
    /// Inserts a server; `Ok(false)` if the name is taken.
    pub async fn insert_server(&self, new: &NewServer<'_>) -> Result<bool, ControlError> {
        let n = self
            .client()
            .await?
            .execute(
                "INSERT INTO servers (name, admin_url, capacity, budget) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO NOTHING",
                &[
                    &new.name,
                    new.admin_url.expose(),
                    &new.capacity,
                    &new.budget,
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Registers (or refreshes the URL of) a server whose address may change,
    /// such as the embedded cluster, whose port is picked at each start.
    pub async fn upsert_server_url(&self, new: &NewServer<'_>) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO servers (name, admin_url, capacity, budget) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET admin_url = EXCLUDED.admin_url, updated_at = now()
                 WHERE servers.admin_url <> EXCLUDED.admin_url",
                &[
                    &new.name,
                    new.admin_url.expose(),
                    &new.capacity,
                    &new.budget,
                ],
            )
            .await?;
        Ok(())
    }

    pub async fn servers(&self) -> Result<Vec<Server>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(&format!("{SELECT} ORDER BY s.name"), &[])
            .await?;
        rows.iter().map(server).collect()
    }

    pub async fn server(&self, name: &str) -> Result<Option<Server>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(&format!("{SELECT} WHERE s.name = $1"), &[&name])
            .await?;
        row.as_ref().map(server).transpose()
    }

    /// The open server with the most free capacity, if any has room.
    pub async fn place(&self) -> Result<Option<Server>, ControlError> {
        Ok(self
            .servers()
            .await?
            .into_iter()
            .filter(|s| s.state == ServerState::Open && s.free_capacity() > 0)
            .max_by_key(|s| (s.free_capacity(), std::cmp::Reverse(s.name.clone()))))
    }

    pub async fn set_server_state(
        &self,
        name: &str,
        state: ServerState,
    ) -> Result<bool, ControlError> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE servers SET state = $2, updated_at = now() WHERE name = $1",
                &[&name, &state.as_str()],
            )
            .await?;
        Ok(n == 1)
    }

    pub async fn set_template_version(&self, name: &str, version: i32) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE servers SET template_version = $2, updated_at = now() WHERE name = $1",
                &[&name, &version],
            )
            .await?;
        Ok(())
    }
}
