-- Stripe billing (src/billing/): the customer each tenant pays with, a
-- mirror of its subscriptions, every webhook event received, and the plan
-- changes still to be written into the tenants' own audit logs.
--
-- A tenant's plan (tenants.plan) stays the one truth the request path reads;
-- billing only ever changes it through tenants, so the routing NOTIFY tells
-- every instance at once. Tenants without a customer here are not billed
-- (their plan is set by an operator).

CREATE TABLE billing_customers (
    tenant_id   uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per Stripe subscription a tenant has had. `applied_created` is the
-- `created` time (Unix seconds, Stripe's clock) of the newest event whose
-- state was applied: an older event is stale; one of the same second is
-- settled by asking Stripe. Canceled is final (Stripe never revives one).
CREATE TABLE billing_subscriptions (
    id                   text PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    status               text NOT NULL CHECK (status IN ('active', 'trialing', 'past_due',
                             'unpaid', 'canceled', 'incomplete', 'incomplete_expired', 'paused')),
    price                text,
    current_period_end   timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    cancel_at            timestamptz,
    -- Since when it has been past due (kept while it stays so): the grace
    -- period runs from here.
    past_due_since       timestamptz,
    applied_created      bigint NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_subscriptions_tenant ON billing_subscriptions (tenant_id);
CREATE INDEX billing_subscriptions_past_due ON billing_subscriptions (past_due_since)
    WHERE status = 'past_due';

-- Every signed event received, keyed by Stripe's id: inserted in the same
-- transaction as the change it makes, so a duplicate changes nothing.
CREATE TABLE billing_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    created     bigint NOT NULL,
    tenant_id   uuid REFERENCES tenants (id) ON DELETE SET NULL,
    -- applied: its state was applied; stale: an older state than the one
    -- applied; ignored: not for a tenant billed here (logged with why).
    outcome     text NOT NULL CHECK (outcome IN ('applied', 'stale', 'ignored')),
    detail      text NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Plan changes made by billing, in the transaction that made them; each is
-- then given to the tenant (its runtime role's session limits, a row in its
-- own audit log) and marked done. Whatever is not done (a crash, the
-- tenant's server away) is done by the next pass of `serve`.
CREATE TABLE billing_plan_changes (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    actor     text NOT NULL,
    from_plan text NOT NULL,
    to_plan   text NOT NULL,
    detail    jsonb NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    -- Taken by one process for a minute while it gives the change.
    claimed_until timestamptz,
    done_at   timestamptz
);
CREATE INDEX billing_plan_changes_pending ON billing_plan_changes (id) WHERE done_at IS NULL;
