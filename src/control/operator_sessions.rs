//! Operator sessions in the control plane: the SHA-256 of each
//! `bh_operator` cookie, bound to no tenant, with a short idle and an
//! absolute end; read (and marked used) on every admin request, so an
//! operator disabled or reset is out at once.

use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::operators::{COLUMNS, operator};
use super::{ControlError, ControlPlane, Operator, interval};

/// An operator session unused this long ends.
pub const OPERATOR_SESSION_IDLE: Duration = Duration::from_secs(15 * 60);
/// An operator session ends this long after log-in, used or not.
pub const OPERATOR_SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// A live operator session.
#[derive(Debug, Clone)]
pub struct OperatorSessionRow {
    pub operator: Operator,
    pub created_at: OffsetDateTime,
}

pub struct NewOperatorSession<'a> {
    pub id_hash: &'a [u8],
    pub operator: Uuid,
    pub user_agent: &'a str,
    pub ip: &'a str,
}

impl ControlPlane {
    /// Stores a new operator session (and drops the operator's dead ones).
    pub async fn insert_operator_session(
        &self,
        s: &NewOperatorSession<'_>,
    ) -> Result<(), ControlError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM operator_sessions
                  WHERE operator_id = $1
                    AND (expires_at < now() OR last_seen_at < now() - $2::text::interval)",
                &[&s.operator, &interval(OPERATOR_SESSION_IDLE)],
            )
            .await?;
        client
            .execute(
                "INSERT INTO operator_sessions (id_hash, operator_id, expires_at, user_agent, ip)
                 VALUES ($1, $2, now() + $3::text::interval, $4, $5)",
                &[
                    &s.id_hash,
                    &s.operator,
                    &interval(OPERATOR_SESSION_LIFETIME),
                    &s.user_agent,
                    &s.ip,
                ],
            )
            .await?;
        Ok(())
    }

    /// The live session with this hash (neither idle past
    /// [`OPERATOR_SESSION_IDLE`] nor past its absolute end, its operator
    /// enrolled and not disabled), marked used now.
    pub async fn touch_operator_session(
        &self,
        id_hash: &[u8],
    ) -> Result<Option<OperatorSessionRow>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "UPDATE operator_sessions s SET last_seen_at = now()
                       FROM operators o
                      WHERE s.id_hash = $1 AND o.id = s.operator_id
                        AND s.expires_at > now()
                        AND s.last_seen_at > now() - $2::text::interval
                        AND o.enrolled_at IS NOT NULL AND o.disabled_at IS NULL
                     RETURNING {COLUMNS}, s.created_at"
                ),
                &[&id_hash, &interval(OPERATOR_SESSION_IDLE)],
            )
            .await?;
        row.map(|r| {
            Ok(OperatorSessionRow {
                operator: operator(&r)?,
                created_at: r.get(6),
            })
        })
        .transpose()
    }

    pub async fn delete_operator_session(&self, id_hash: &[u8]) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM operator_sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await?;
        Ok(())
    }

    /// Drops dead operator sessions and expired enrolment links; how many
    /// sessions went.
    pub async fn prune_operator_sessions(&self) -> Result<u64, ControlError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM operator_enrolments WHERE expires_at < now()",
                &[],
            )
            .await?;
        Ok(client
            .execute(
                "DELETE FROM operator_sessions
                  WHERE expires_at < now() OR last_seen_at < now() - $1::text::interval",
                &[&interval(OPERATOR_SESSION_IDLE)],
            )
            .await?)
    }
}
