//! Platform operators in the control plane: the vendor's staff (not tenant
//! users), their one-time enrolment links, TOTP steps used, recovery codes
//! (their sessions: `operator_sessions`). Only hashes of tokens, sessions and codes are kept, and
//! never the TOTP secret itself (a seed the master secret turns into it).

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ControlError, ControlPlane, Email, interval};

/// How long an enrolment link is good for.
pub const ENROLMENT_TTL: Duration = Duration::from_secs(72 * 3600);

/// What an operator may do on the admin host: `support` reads (and, later,
/// breaks glass read-only); `admin` also changes things.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    Support,
    Admin,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OperatorRole::Support => "support",
            OperatorRole::Admin => "admin",
        }
    }
}

impl std::fmt::Display for OperatorRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OperatorRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "support" => Ok(OperatorRole::Support),
            "admin" => Ok(OperatorRole::Admin),
            _ => Err(format!(
                "unknown operator role `{s}` (expected support or admin)"
            )),
        }
    }
}

/// An operator as listed: never its password hash or TOTP seed.
#[derive(Debug, Clone, Serialize)]
pub struct Operator {
    pub id: Uuid,
    pub email: String,
    pub role: OperatorRole,
    #[serde(with = "time::serde::rfc3339::option")]
    pub enrolled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a log-in checks an operator's credentials against.
pub struct OperatorSecrets {
    pub operator: Operator,
    pub password_hash: Option<String>,
    pub totp_seed: Option<Vec<u8>>,
}

pub(super) const COLUMNS: &str =
    "o.id, o.email, o.role, o.enrolled_at, o.disabled_at, o.created_at";

pub(super) fn operator(row: &tokio_postgres::Row) -> Result<Operator, ControlError> {
    let role: &str = row.get(2);
    Ok(Operator {
        id: row.get(0),
        email: row.get(1),
        role: role.parse().map_err(ControlError::Corrupt)?,
        enrolled_at: row.get(3),
        disabled_at: row.get(4),
        created_at: row.get(5),
    })
}

impl ControlPlane {
    /// A new operator, not enrolled, with an enrolment link (`token_hash`);
    /// `None` if the e-mail is taken.
    pub async fn insert_operator(
        &self,
        email: &Email,
        role: OperatorRole,
        token_hash: &[u8],
    ) -> Result<Option<Operator>, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!(
                    "INSERT INTO operators AS o (id, email, role) VALUES ($1, $2, $3)
                     ON CONFLICT (email) DO NOTHING RETURNING {COLUMNS}"
                ),
                &[&Uuid::new_v4(), &email.as_str(), &role.as_str()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let op = operator(&row)?;
        insert_enrolment(&tx, op.id, token_hash).await?;
        tx.commit().await?;
        Ok(Some(op))
    }

    /// Every operator, oldest first.
    pub async fn operators(&self) -> Result<Vec<Operator>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!("SELECT {COLUMNS} FROM operators o ORDER BY o.created_at, o.email"),
                &[],
            )
            .await?;
        rows.iter().map(operator).collect()
    }

    pub async fn operator_secrets(
        &self,
        email: &Email,
    ) -> Result<Option<OperatorSecrets>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {COLUMNS}, o.password_hash, o.totp_seed FROM operators o
                      WHERE o.email = $1"
                ),
                &[&email.as_str()],
            )
            .await?;
        row.map(|r| {
            Ok(OperatorSecrets {
                operator: operator(&r)?,
                password_hash: r.get(6),
                totp_seed: r.get(7),
            })
        })
        .transpose()
    }

    /// Disables an operator and ends its sessions and enrolment links;
    /// `None` if there is no such operator.
    pub async fn disable_operator(&self, email: &Email) -> Result<Option<Operator>, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE operators o
                        SET disabled_at = coalesce(disabled_at, now()), updated_at = now()
                      WHERE email = $1 RETURNING {COLUMNS}"
                ),
                &[&email.as_str()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let op = operator(&row)?;
        end_everything(&tx, op.id).await?;
        tx.commit().await?;
        Ok(Some(op))
    }

    /// Lifts a disable (`dev`'s demo operator only: an operator disabled
    /// is re-enrolled by `reset-mfa` after this).
    pub async fn enable_operator(&self, email: &Email) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE operators SET disabled_at = NULL, updated_at = now() WHERE email = $1",
                &[&email.as_str()],
            )
            .await?;
        Ok(())
    }

    /// Voids an operator's second factor (TOTP seed, recovery codes), ends
    /// its sessions and old links, and gives it a new enrolment link.
    pub async fn reset_operator_mfa(
        &self,
        email: &Email,
        token_hash: &[u8],
    ) -> Result<Option<Operator>, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE operators o
                        SET totp_seed = NULL, enrolled_at = NULL, updated_at = now()
                      WHERE email = $1 RETURNING {COLUMNS}"
                ),
                &[&email.as_str()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let op = operator(&row)?;
        end_everything(&tx, op.id).await?;
        tx.execute(
            "DELETE FROM operator_recovery_codes WHERE operator_id = $1",
            &[&op.id],
        )
        .await?;
        insert_enrolment(&tx, op.id, token_hash).await?;
        tx.commit().await?;
        Ok(Some(op))
    }

    /// The operator an unused, unexpired enrolment link is for (if it is
    /// not disabled): checked before any password is hashed.
    pub async fn enrolment(&self, token_hash: &[u8]) -> Result<Option<Operator>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM operator_enrolments e
                       JOIN operators o ON o.id = e.operator_id
                      WHERE e.token_hash = $1 AND e.used_at IS NULL AND e.expires_at > now()
                        AND o.disabled_at IS NULL"
                ),
                &[&token_hash],
            )
            .await?;
        row.as_ref().map(operator).transpose()
    }

    /// Uses an enrolment link once: sets the password, a fresh TOTP seed and
    /// recovery codes (the old ones void), not yet enrolled. `false` if the
    /// link was used (or went) meanwhile.
    pub async fn begin_enrolment(
        &self,
        token_hash: &[u8],
        password_hash: &str,
        seed: &[u8],
        recovery_hashes: &[[u8; 32]],
    ) -> Result<bool, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE operator_enrolments e SET used_at = now()
                   FROM operators o
                  WHERE e.token_hash = $1 AND e.used_at IS NULL AND e.expires_at > now()
                    AND o.id = e.operator_id AND o.disabled_at IS NULL
                 RETURNING e.operator_id",
                &[&token_hash],
            )
            .await?
        else {
            return Ok(false);
        };
        let id: Uuid = row.get(0);
        tx.execute(
            "UPDATE operators SET password_hash = $2, totp_seed = $3, enrolled_at = NULL,
                    updated_at = now()
              WHERE id = $1",
            &[&id, &password_hash, &seed],
        )
        .await?;
        tx.execute(
            "DELETE FROM operator_recovery_codes WHERE operator_id = $1",
            &[&id],
        )
        .await?;
        for hash in recovery_hashes {
            tx.execute(
                "INSERT INTO operator_recovery_codes (operator_id, code_hash) VALUES ($1, $2)",
                &[&id, &hash.as_slice()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The operator (and its TOTP seed) whose enrolment link was used and
    /// awaits its first TOTP code.
    pub async fn pending_enrolment(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(Operator, Vec<u8>)>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "SELECT {COLUMNS}, o.totp_seed FROM operator_enrolments e
                       JOIN operators o ON o.id = e.operator_id
                      WHERE e.token_hash = $1 AND e.used_at IS NOT NULL
                        AND e.expires_at > now() AND o.disabled_at IS NULL
                        AND o.enrolled_at IS NULL AND o.totp_seed IS NOT NULL"
                ),
                &[&token_hash],
            )
            .await?;
        row.map(|r| Ok((operator(&r)?, r.get(6)))).transpose()
    }

    /// Completes an enrolment with the step of its first TOTP code (which
    /// counts as used); its links go. `false` if it was completed meanwhile.
    pub async fn complete_enrolment(
        &self,
        operator: Uuid,
        step: i64,
    ) -> Result<bool, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let done = tx
            .execute(
                "UPDATE operators SET enrolled_at = now(), totp_last_step = $2, updated_at = now()
                  WHERE id = $1 AND enrolled_at IS NULL AND disabled_at IS NULL
                    AND totp_seed IS NOT NULL",
                &[&operator, &step],
            )
            .await?;
        tx.execute(
            "DELETE FROM operator_enrolments WHERE operator_id = $1",
            &[&operator],
        )
        .await?;
        tx.commit().await?;
        Ok(done == 1)
    }

    /// Records a TOTP code's step as used: `false` (refuse the code) if that
    /// step or a later one was used already.
    pub async fn use_totp_step(&self, operator: Uuid, step: i64) -> Result<bool, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE operators SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
                &[&operator, &step],
            )
            .await?
            == 1)
    }

    /// Uses a recovery code if `allowed`: `false` if it is not one of the
    /// operator's, was used before, or is not allowed (the statement runs
    /// all the same, so it takes as long).
    pub async fn use_recovery_code(
        &self,
        operator: Uuid,
        code_hash: &[u8],
        allowed: bool,
    ) -> Result<bool, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE operator_recovery_codes SET used_at = now()
                  WHERE operator_id = $1 AND code_hash = $2 AND used_at IS NULL AND $3",
                &[&operator, &code_hash, &allowed],
            )
            .await?
            == 1)
    }

    /// Recovery codes the operator has left.
    pub async fn recovery_codes_left(&self, operator: Uuid) -> Result<i64, ControlError> {
        Ok(self
            .client()
            .await?
            .query_one(
                "SELECT count(*) FROM operator_recovery_codes
                  WHERE operator_id = $1 AND used_at IS NULL",
                &[&operator],
            )
            .await?
            .get(0))
    }
}

async fn insert_enrolment(
    tx: &tokio_postgres::Transaction<'_>,
    operator: Uuid,
    token_hash: &[u8],
) -> Result<(), ControlError> {
    tx.execute(
        "INSERT INTO operator_enrolments (token_hash, operator_id, expires_at)
         VALUES ($1, $2, now() + $3::text::interval)",
        &[&token_hash, &operator, &interval(ENROLMENT_TTL)],
    )
    .await?;
    Ok(())
}

/// Ends an operator's sessions and enrolment links.
async fn end_everything(
    tx: &tokio_postgres::Transaction<'_>,
    operator: Uuid,
) -> Result<(), ControlError> {
    tx.execute(
        "DELETE FROM operator_sessions WHERE operator_id = $1",
        &[&operator],
    )
    .await?;
    tx.execute(
        "DELETE FROM operator_enrolments WHERE operator_id = $1",
        &[&operator],
    )
    .await?;
    Ok(())
}
