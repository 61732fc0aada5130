//! Users in the control plane: one account per person (its e-mail, name and
//! password hash), whatever tenants it belongs to.

use serde::Serialize;
use uuid::Uuid;

use super::{ControlError, ControlPlane};

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    #[serde(skip)]
    pub password_hash: String,
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash";

fn user(row: &tokio_postgres::Row) -> User {
    User {
        id: row.get(0),
        email: row.get(1),
        display_name: row.get(2),
        password_hash: row.get(3),
    }
}

impl ControlPlane {
    /// `None` if the e-mail is taken.
    pub async fn insert_user(
        &self,
        email: &str,
        display_name: &str,
        password_hash: &str,
    ) -> Result<Option<User>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "INSERT INTO users (id, email, display_name, password_hash)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (email) DO NOTHING
                     RETURNING {USER_COLUMNS}"
                ),
                &[&Uuid::new_v4(), &email, &display_name, &password_hash],
            )
            .await?;
        Ok(row.as_ref().map(user))
    }

    /// Removes a user nothing refers to yet (a sign-up that could not finish).
    pub async fn discard_user(&self, id: Uuid) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute("DELETE FROM users WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"),
                &[&email],
            )
            .await?;
        Ok(row.as_ref().map(user))
    }

    pub async fn set_password_hash(&self, user: Uuid, hash: &str) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
                &[&user, &hash],
            )
            .await?;
        Ok(())
    }
}
