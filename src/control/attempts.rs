//! Rate-limited attempts (log-ins, invitation acceptances, sign-ups), counted
//! before the expensive part: an attempt is admitted and recorded in one
//! transaction that holds a lock per key, so attempts sent all at once are
//! counted one after another and the limit cannot be raced.

use std::time::Duration;

use super::{ControlError, ControlPlane, TenantId, interval};

/// What is being attempted; each kind has its own counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptKind {
    Login,
    Invitation,
    Signup,
    /// An operator's log-in or enrolment step on the admin host.
    OperatorLogin,
}

impl AttemptKind {
    fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Login => "login",
            AttemptKind::Invitation => "invitation",
            AttemptKind::Signup => "signup",
            AttemptKind::OperatorLogin => "operator_login",
        }
    }

    /// The first key of the two-key advisory locks taken per counted value
    /// (the second is the value's hash); arbitrary, distinct from every other
    /// advisory lock bulkhead takes.
    fn lock_class(self, by_email: bool) -> i32 {
        let base = match self {
            AttemptKind::Login => 741_5100,
            AttemptKind::Invitation => 741_5110,
            AttemptKind::Signup => 741_5120,
            AttemptKind::OperatorLogin => 741_5130,
        };
        base + i32::from(by_email)
    }
}

/// One attempt about to be made, and the limits it must stay within.
pub struct Attempt<'a> {
    pub kind: AttemptKind,
    /// Counted per normalised e-mail too (log-in), with this limit.
    pub email: Option<(&'a str, i64)>,
    /// The client's address, with its limit.
    pub ip: (&'a str, i64),
    pub tenant: Option<TenantId>,
    /// Attempts older than this no longer count.
    pub window: Duration,
}

/// Whether an attempt may go ahead.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Recorded; `forget_attempt` with this id if it succeeds and should
    /// not count.
    Admitted(i64),
    /// Over a limit: nothing recorded; the oldest counted attempt leaves the
    /// window after this long.
    Refused(Duration),
}

impl ControlPlane {
    /// Admits and records `attempt` if it is within every limit; atomic
    /// against any number of concurrent attempts on the same keys.
    pub async fn admit_attempt(&self, attempt: &Attempt<'_>) -> Result<Admission, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let kind = attempt.kind.as_str();
        let window = interval(attempt.window);
        // Always e-mail before address, so two attempts never wait on each
        // other's locks in opposite orders.
        let mut counted = Vec::with_capacity(2);
        if let Some((email, limit)) = attempt.email {
            counted.push((true, email, limit));
        }
        counted.push((false, attempt.ip.0, attempt.ip.1));
        for (by_email, value, limit) in counted {
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                &[&attempt.kind.lock_class(by_email), &value],
            )
            .await?;
            let sql = if by_email {
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(at)), 0)::float8
                   FROM attempts WHERE kind = $1 AND email = $2
                    AND at > now() - $3::text::interval"
            } else {
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(at)), 0)::float8
                   FROM attempts WHERE kind = $1 AND ip = $2
                    AND at > now() - $3::text::interval"
            };
            let row = tx.query_one(sql, &[&kind, &value, &window]).await?;
            let (count, oldest): (i64, f64) = (row.get(0), row.get(1));
            if count >= limit {
                let age = Duration::from_secs_f64(oldest.max(0.0));
                let wait = attempt
                    .window
                    .saturating_sub(age)
                    .max(Duration::from_secs(1));
                return Ok(Admission::Refused(wait));
            }
        }
        let row = tx
            .query_one(
                "INSERT INTO attempts (kind, email, ip, tenant_id) VALUES ($1, $2, $3, $4)
                 RETURNING id",
                &[
                    &kind,
                    &attempt.email.map(|(e, _)| e),
                    &attempt.ip.0,
                    &attempt.tenant.map(|t| t.0),
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(Admission::Admitted(row.get(0)))
    }

    /// An admitted attempt that succeeded: it no longer counts.
    pub async fn forget_attempt(&self, id: i64) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute("DELETE FROM attempts WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    /// Drops attempts older than `window` (the longest any limit counts).
    pub async fn prune_attempts(&self, window: Duration) -> Result<u64, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM attempts WHERE at < now() - $1::text::interval",
                &[&interval(window)],
            )
            .await?)
    }
}
