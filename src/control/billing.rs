//! Billing's rows (V9): each tenant's Stripe customer, the mirror of its
//! subscriptions, the webhook events received and the plan changes billing
//! made. Everything that moves a tenant between plans happens here, in one
//! transaction with what caused it, with the tenant's row locked: two events
//! for one tenant never interleave, and a duplicate event changes nothing.
//!
//! No Stripe type is seen here: `crate::billing` reads Stripe's objects and
//! hands over [`SubscriptionRecord`]s.

use std::time::Duration;

use time::OffsetDateTime;
use tokio_postgres::Transaction;

use super::{ControlError, ControlPlane, Plan, TenantId, interval};

/// A subscription's state as Stripe gave it (an event's object, or read
/// from the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub id: String,
    pub customer: String,
    /// Stripe's spelling: `active`, `past_due`, `canceled`…
    pub status: String,
    pub price: Option<String>,
    /// Unix seconds.
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// Unix seconds.
    pub cancel_at: Option<i64>,
}

/// A subscription as mirrored, for the billing page.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubscriptionRow {
    pub id: String,
    pub status: String,
    pub price: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub current_period_end: Option<OffsetDateTime>,
    pub cancel_at_period_end: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancel_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub past_due_since: Option<OffsetDateTime>,
}

/// A webhook event, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct EventStamp<'a> {
    pub id: &'a str,
    pub type_: &'a str,
    /// Stripe's `created`, Unix seconds.
    pub created: i64,
}

/// What an event asks of the control plane.
#[derive(Debug, Clone, Copy)]
pub enum Effect<'a> {
    /// A subscription's state as of the event's `created`. `settled`: it was
    /// read from Stripe after the event arrived, so it is current and is
    /// applied whatever was before; else it is applied only if newer than
    /// what was (of two of the same second, which is newer cannot be told
    /// from them: `Recorded::Tie`).
    State {
        state: &'a SubscriptionRecord,
        settled: bool,
    },
    /// Nothing to apply: recorded as ignored, with why.
    Ignore {
        tenant: Option<TenantId>,
        why: &'a str,
    },
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Seen before: nothing changed.
    Duplicate,
    /// A state of the same second was applied before: nothing recorded; ask
    /// Stripe for the subscription and record again, settled.
    Tie,
    /// Recorded: applied (`change` if the tenant's plan moved), stale or ignored.
    Done {
        outcome: &'static str,
        tenant: Option<TenantId>,
        change: Option<i64>,
    },
}

/// A plan change billing made (or another billing notice), waiting to be
/// given to the tenant.
#[derive(Debug, Clone)]
pub struct PlanChange {
    pub id: i64,
    pub tenant: TenantId,
    pub actor: String,
    pub from: Plan,
    pub to: Plan,
    pub detail: serde_json::Value,
    pub at: OffsetDateTime,
    /// The tenant audit log's action: `billing.plan_changed`,
    /// `billing.comp_granted`, `billing.comp_ended`.
    pub action: String,
}

/// What `billing sync` changed for one tenant.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncChange {
    /// `(subscription, status before or None if new, status now)`.
    pub subscriptions: Vec<(String, Option<String>, String)>,
    /// `(before, now)` if the plan moved.
    pub plan: Option<(Plan, Plan)>,
}

impl SyncChange {
    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty() && self.plan.is_none()
    }
}

fn plan_of(text: &str) -> Result<Plan, ControlError> {
    text.parse().map_err(ControlError::Corrupt)
}

impl ControlPlane {
    /// The Stripe customer a tenant pays with, if it has one.
    pub async fn billing_customer(&self, tenant: TenantId) -> Result<Option<String>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT customer_id FROM billing_customers WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Records the tenant's customer; if it already has one (a retry raced
    /// this one), that one is kept and returned.
    pub async fn add_billing_customer(
        &self,
        tenant: TenantId,
        customer: &str,
    ) -> Result<String, ControlError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO billing_customers (tenant_id, customer_id) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO NOTHING",
                &[&tenant.0, &customer],
            )
            .await?;
        let row = client
            .query_one(
                "SELECT customer_id FROM billing_customers WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Tenants billed here (all, or one), with their customers.
    pub async fn billed_tenants(
        &self,
        only: Option<TenantId>,
    ) -> Result<Vec<(TenantId, String)>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT c.tenant_id, c.customer_id FROM billing_customers c
                   JOIN tenants t ON t.id = c.tenant_id
                  WHERE t.status <> 'deleted' AND ($1::uuid IS NULL OR c.tenant_id = $1)
                  ORDER BY t.slug",
                &[&only.map(|t| t.0)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| (TenantId(r.get(0)), r.get(1)))
            .collect())
    }

    /// A tenant's subscriptions, newest state first.
    pub async fn billing_subscriptions(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<SubscriptionRow>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, status, price, current_period_end, cancel_at_period_end, cancel_at,
                        past_due_since
                   FROM billing_subscriptions WHERE tenant_id = $1
                  ORDER BY applied_created DESC, id",
                &[&tenant.0],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| SubscriptionRow {
                id: r.get(0),
                status: r.get(1),
                price: r.get(2),
                current_period_end: r.get(3),
                cancel_at_period_end: r.get(4),
                cancel_at: r.get(5),
                past_due_since: r.get(6),
            })
            .collect())
    }

    /// Records a webhook event and applies its effect, in one transaction:
    /// the event's id goes in first, under its primary key, so of the same
    /// event delivered five times at once one applies and four wait for it,
    /// then find it recorded and change nothing.
    pub async fn record_billing_event(
        &self,
        event: EventStamp<'_>,
        effect: Effect<'_>,
        grace: Duration,
    ) -> Result<Recorded, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The event goes in first (a duplicate waits here for the first to
        // commit, then finds it), with the tenant billed as the customer
        // its state names: one round trip for both.
        let customer = match effect {
            Effect::State { state, .. } => Some(state.customer.as_str()),
            Effect::Ignore { .. } => None,
        };
        let Some(fresh) = tx
            .query_opt(
                "INSERT INTO billing_events (id, type, created, outcome, tenant_id)
                 VALUES ($1, $2, $3, 'ignored',
                         (SELECT tenant_id FROM billing_customers WHERE customer_id = $4))
                 ON CONFLICT (id) DO NOTHING RETURNING tenant_id",
                &[&event.id, &event.type_, &event.created, &customer],
            )
            .await?
        else {
            return Ok(Recorded::Duplicate);
        };
        let owner: Option<uuid::Uuid> = fresh.get(0);
        let (outcome, tenant, change, detail) = match effect {
            Effect::Ignore { tenant, why } => ("ignored", tenant, None, why.to_string()),
            Effect::State { state, settled } => {
                let Some(tenant) = owner.map(TenantId) else {
                    let why = format!("no tenant is billed as customer {}", state.customer);
                    record_outcome(&tx, event.id, "ignored", None, &why).await?;
                    tx.commit().await?;
                    return Ok(Recorded::Done {
                        outcome: "ignored",
                        tenant: None,
                        change: None,
                    });
                };
                match apply_state(&tx, tenant, state, event.created, settled).await? {
                    Applying::Tie => return Ok(Recorded::Tie),
                    Applying::Stale(why) => ("stale", Some(tenant), None, why),
                    Applying::Done(_) => {
                        let detail = serde_json::json!({
                            "event": event.id,
                            "event_type": event.type_,
                            "subscription": state.id,
                            "status": state.status,
                        });
                        let change = settle_plan(&tx, tenant, grace, "stripe", detail).await?;
                        ("applied", Some(tenant), change, String::new())
                    }
                }
            }
        };
        record_outcome(&tx, event.id, outcome, tenant, &detail).await?;
        tx.commit().await?;
        Ok(Recorded::Done {
            outcome,
            tenant,
            change,
        })
    }

    /// `billing sync` for one tenant: Stripe's word on each of its
    /// subscriptions (read now, stamped `now` in Stripe's seconds) replaces
    /// the mirror's, and the plan follows. Returns what changed.
    pub async fn sync_billing(
        &self,
        tenant: TenantId,
        states: &[SubscriptionRecord],
        now: i64,
        grace: Duration,
    ) -> Result<SyncChange, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_tenant(&tx, tenant).await?;
        let mut changed = SyncChange::default();
        for state in states {
            if let Applying::Done(before) = apply_state(&tx, tenant, state, now, true).await?
                && before.as_deref() != Some(state.status.as_str())
            {
                changed
                    .subscriptions
                    .push((state.id.clone(), before, state.status.clone()));
            }
        }
        let detail =
            serde_json::json!({"reason": "billing sync", "subscriptions": changed.subscriptions});
        if let Some(id) = settle_plan(&tx, tenant, grace, "billing sync", detail).await? {
            changed.plan = Some(plan_change_plans(&tx, id).await?);
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Settles the plan of every tenant on pro whose grace period (a
    /// subscription past due for longer than `grace`) or comp has run out:
    /// free, unless something else keeps it on pro. An ended comp is
    /// forgotten, and told to the tenant. Returns the plan changes made.
    pub async fn end_billing_grace(&self, grace: Duration) -> Result<Vec<i64>, ControlError> {
        let due: Vec<(TenantId, bool)> = self
            .client()
            .await?
            .query(
                "SELECT s.tenant_id, false FROM billing_subscriptions s
                   JOIN tenants t ON t.id = s.tenant_id
                  WHERE s.status = 'past_due' AND t.plan = 'pro'
                    AND s.past_due_since + $1::text::interval <= now()
                 UNION
                 SELECT tenant_id, true FROM billing_comps WHERE until <= now()",
                &[&interval(grace)],
            )
            .await?
            .iter()
            .map(|r| (TenantId(r.get(0)), r.get(1)))
            .collect();
        let mut changes = Vec::new();
        for (tenant, comp) in due {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            lock_tenant(&tx, tenant).await?;
            let reason = if comp {
                let ended = tx
                    .query_opt(
                        "DELETE FROM billing_comps WHERE tenant_id = $1 AND until <= now()
                         RETURNING until",
                        &[&tenant.0],
                    )
                    .await?;
                match ended {
                    // Another process ended it first.
                    None => {
                        tx.commit().await?;
                        continue;
                    }
                    Some(row) => {
                        let until: OffsetDateTime = row.get(0);
                        serde_json::json!({"reason": "comp ended", "comp_until": until.unix_timestamp()})
                    }
                }
            } else {
                serde_json::json!({"reason": "payment grace period ended"})
            };
            let change = settle_plan(&tx, tenant, grace, "billing", reason.clone()).await?;
            if comp {
                notice(
                    &tx,
                    tenant,
                    change,
                    "billing",
                    "billing.comp_ended",
                    &reason,
                )
                .await?;
            }
            changes.extend(change);
            tx.commit().await?;
        }
        Ok(changes)
    }

    /// Gives `tenant` pro until `until` (replacing any comp it had), and
    /// settles its plan. Tells the tenant either way. Returns the plan
    /// change made, if it moved.
    pub async fn grant_comp(
        &self,
        tenant: TenantId,
        until: OffsetDateTime,
        reason: &str,
        by: &str,
        grace: Duration,
    ) -> Result<Option<i64>, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_tenant(&tx, tenant).await?;
        tx.execute(
            "INSERT INTO billing_comps (tenant_id, until, reason, granted_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id) DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason,
                    granted_by = EXCLUDED.granted_by, granted_at = now()",
            &[&tenant.0, &until, &reason, &by],
        )
        .await?;
        let detail =
            serde_json::json!({"reason": reason, "comp_until": until.unix_timestamp(), "by": by});
        let change = settle_plan(&tx, tenant, grace, by, detail.clone()).await?;
        notice(&tx, tenant, change, by, "billing.comp_granted", &detail).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Ends a tenant's comp now (false: it had none), and settles its plan.
    pub async fn end_comp(
        &self,
        tenant: TenantId,
        reason: &str,
        by: &str,
        grace: Duration,
    ) -> Result<bool, ControlError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_tenant(&tx, tenant).await?;
        let ended = tx
            .execute(
                "DELETE FROM billing_comps WHERE tenant_id = $1",
                &[&tenant.0],
            )
            .await?;
        if ended == 0 {
            return Ok(false);
        }
        let detail = serde_json::json!({"reason": reason, "by": by});
        let change = settle_plan(&tx, tenant, grace, by, detail.clone()).await?;
        notice(&tx, tenant, change, by, "billing.comp_ended", &detail).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A tenant's comp: until when, and why.
    pub async fn comp_of(
        &self,
        tenant: TenantId,
    ) -> Result<Option<(OffsetDateTime, String)>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT until, reason FROM billing_comps WHERE tenant_id = $1 AND until > now()",
                &[&tenant.0],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Plan changes not yet given to their tenants (of one tenant, or all),
    /// oldest first, each taken for a minute so that two processes do not
    /// give the same one at once (one that dies holding it frees it then).
    pub async fn claim_plan_changes(
        &self,
        only: Option<TenantId>,
    ) -> Result<Vec<PlanChange>, ControlError> {
        let rows = self
            .client()
            .await?
            .query(
                "UPDATE billing_plan_changes SET claimed_until = now() + interval '1 minute'
                  WHERE id IN (SELECT id FROM billing_plan_changes
                                WHERE done_at IS NULL
                                  AND (claimed_until IS NULL OR claimed_until < now())
                                  AND ($1::uuid IS NULL OR tenant_id = $1)
                                ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED)
                  RETURNING id, tenant_id, actor, from_plan, to_plan, detail, at, action",
                &[&only.map(|t| t.0)],
            )
            .await?;
        let mut changes = rows
            .iter()
            .map(|r| {
                Ok(PlanChange {
                    id: r.get(0),
                    tenant: TenantId(r.get(1)),
                    actor: r.get(2),
                    from: plan_of(r.get(3))?,
                    to: plan_of(r.get(4))?,
                    detail: r.get(5),
                    at: r.get(6),
                    action: r.get(7),
                })
            })
            .collect::<Result<Vec<_>, ControlError>>()?;
        changes.sort_by_key(|c| c.id);
        Ok(changes)
    }

    /// Marks a plan change given to its tenant.
    pub async fn plan_change_done(&self, id: i64) -> Result<(), ControlError> {
        self.client()
            .await?
            .execute(
                "UPDATE billing_plan_changes SET done_at = now(), claimed_until = NULL WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(())
    }

    /// Forgets events received more than `older_than` ago: Stripe retries a
    /// delivery for three days, so an id that old never comes again.
    pub async fn prune_billing_events(&self, older_than: Duration) -> Result<u64, ControlError> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM billing_events WHERE received_at < now() - $1::text::interval",
                &[&interval(older_than)],
            )
            .await?)
    }

    /// How a recorded event came out (for tests and operators).
    pub async fn billing_event_outcome(&self, id: &str) -> Result<Option<String>, ControlError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT outcome FROM billing_events WHERE id = $1", &[&id])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}

enum Applying {
    /// Applied; the status it had before (`None`: new).
    Done(Option<String>),
    /// Older than what was applied, or the subscription has ended.
    Stale(String),
    Tie,
}

/// Locks the tenant's row against other billing changes. `NO KEY UPDATE`,
/// the lock `UPDATE tenants SET plan` takes anyway: a plain `FOR UPDATE`
/// would wait on the `KEY SHARE` lock every transaction that recorded an
/// event naming the tenant already holds (its foreign key), and two such
/// transactions would deadlock.
async fn lock_tenant(tx: &Transaction<'_>, tenant: TenantId) -> Result<(), ControlError> {
    tx.execute(
        "SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
        &[&tenant.0],
    )
    .await?;
    Ok(())
}

/// Writes `state` into the mirror unless what it holds is newer, or final.
async fn apply_state(
    tx: &Transaction<'_>,
    tenant: TenantId,
    state: &SubscriptionRecord,
    created: i64,
    settled: bool,
) -> Result<Applying, ControlError> {
    // The tenant's row locked first (every change to its billing takes it,
    // so two never interleave), then the subscription read by a statement
    // of its own: under READ COMMITTED a statement that waited for the
    // lock still reads other tables as of its start, before the
    // transaction it waited for committed, so one statement doing both
    // would read the state that transaction replaced.
    lock_tenant(tx, tenant).await?;
    let held: Option<(uuid::Uuid, String, i64)> = tx
        .query_opt(
            "SELECT tenant_id, status, applied_created FROM billing_subscriptions WHERE id = $1",
            &[&state.id],
        )
        .await?
        .map(|row| (row.get(0), row.get(1), row.get(2)));
    let before = match held {
        Some((owner, status, applied)) => {
            if owner != tenant.0 {
                return Ok(Applying::Stale(format!(
                    "subscription {} belongs to another tenant",
                    state.id
                )));
            }
            // An event's own state must be newer than the one applied; one
            // read from Stripe after the event arrived (`settled`) is the
            // state as of now, so it is applied whatever was (stamped no
            // older than what was).
            if !settled {
                // Stripe never revives a canceled subscription: a late
                // event saying otherwise is from before the end.
                if status == "canceled" {
                    return Ok(Applying::Stale(format!(
                        "subscription {} has ended",
                        state.id
                    )));
                }
                if created < applied {
                    return Ok(Applying::Stale(format!(
                        "a newer state (of {applied}) was applied"
                    )));
                }
                if created == applied {
                    return Ok(Applying::Tie);
                }
            }
            Some(status)
        }
        None => None,
    };
    tx.execute(
        "INSERT INTO billing_subscriptions AS s
                (id, tenant_id, status, price, current_period_end, cancel_at_period_end,
                 cancel_at, past_due_since, applied_created)
         VALUES ($1, $2, $3, $4, to_timestamp($5::bigint), $6, to_timestamp($7::bigint),
                 CASE WHEN $3 = 'past_due' THEN now() END, $8)
         ON CONFLICT (id) DO UPDATE SET
             status = EXCLUDED.status,
             price = EXCLUDED.price,
             current_period_end = EXCLUDED.current_period_end,
             cancel_at_period_end = EXCLUDED.cancel_at_period_end,
             cancel_at = EXCLUDED.cancel_at,
             past_due_since = CASE WHEN EXCLUDED.status <> 'past_due' THEN NULL
                                   ELSE coalesce(s.past_due_since, now()) END,
             applied_created = greatest(s.applied_created, EXCLUDED.applied_created),
             updated_at = now()",
        &[
            &state.id,
            &tenant.0,
            &state.status,
            &state.price,
            &state.current_period_end,
            &state.cancel_at_period_end,
            &state.cancel_at,
            &created,
        ],
    )
    .await?;
    Ok(Applying::Done(before))
}

/// Sets the (locked) tenant's plan to what billing says: pro while a comp
/// lasts or a subscription is active or trialing, or past due within
/// `grace`; else free. A move is recorded as a plan change (its id
/// returned) for the tenant to be told.
async fn settle_plan(
    tx: &Transaction<'_>,
    tenant: TenantId,
    grace: Duration,
    actor: &str,
    detail: serde_json::Value,
) -> Result<Option<i64>, ControlError> {
    let row = tx
        .query_one(
            "SELECT t.plan,
                    coalesce(bool_or(s.status IN ('active', 'trialing')
                                     OR (s.status = 'past_due'
                                         AND s.past_due_since + $2::text::interval > now())), false)
                    OR EXISTS (SELECT 1 FROM billing_comps c WHERE c.tenant_id = t.id AND c.until > now())
               FROM tenants t LEFT JOIN billing_subscriptions s ON s.tenant_id = t.id
              WHERE t.id = $1 GROUP BY t.id, t.plan",
            &[&tenant.0, &interval(grace)],
        )
        .await?;
    let from = plan_of(row.get(0))?;
    let to = if row.get(1) { Plan::Pro } else { Plan::Free };
    if from == to {
        return Ok(None);
    }
    tx.execute(
        "UPDATE tenants SET plan = $2, updated_at = now() WHERE id = $1",
        &[&tenant.0, &to.as_str()],
    )
    .await?;
    let id = tx
        .query_one(
            "INSERT INTO billing_plan_changes (tenant_id, actor, from_plan, to_plan, detail)
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&tenant.0, &actor, &from.as_str(), &to.as_str(), &detail],
        )
        .await?
        .get(0);
    Ok(Some(id))
}

/// A billing notice for the tenant's audit log, through the same outbox as
/// plan changes: one row per action, so if the action moved the plan
/// (`change`), that change's row is named for the action instead.
async fn notice(
    tx: &Transaction<'_>,
    tenant: TenantId,
    change: Option<i64>,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
) -> Result<(), ControlError> {
    if let Some(id) = change {
        tx.execute(
            "UPDATE billing_plan_changes SET action = $2 WHERE id = $1",
            &[&id, &action],
        )
        .await?;
        return Ok(());
    }
    tx.execute(
        "INSERT INTO billing_plan_changes (tenant_id, actor, from_plan, to_plan, detail, action)
         SELECT id, $2, plan, plan, $3, $4 FROM tenants WHERE id = $1",
        &[&tenant.0, &actor, detail, &action],
    )
    .await?;
    Ok(())
}

async fn plan_change_plans(tx: &Transaction<'_>, id: i64) -> Result<(Plan, Plan), ControlError> {
    let row = tx
        .query_one(
            "SELECT from_plan, to_plan FROM billing_plan_changes WHERE id = $1",
            &[&id],
        )
        .await?;
    Ok((plan_of(row.get(0))?, plan_of(row.get(1))?))
}

async fn record_outcome(
    tx: &Transaction<'_>,
    id: &str,
    outcome: &str,
    tenant: Option<TenantId>,
    detail: &str,
) -> Result<(), ControlError> {
    tx.execute(
        "UPDATE billing_events SET outcome = $2, tenant_id = $3, detail = $4 WHERE id = $1",
        &[&id, &outcome, &tenant.map(|t| t.0), &detail],
    )
    .await?;
    Ok(())
}
