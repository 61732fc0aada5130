-- Pro given without a subscription ("comped") by an operator, until a time;
-- it ends by itself (serve's billing sweep settles the plan then). While it
-- lasts the tenant is on pro whatever its subscription says.
CREATE TABLE billing_comps (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    until      timestamptz NOT NULL,
    reason     text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    granted_by text NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_comps_until ON billing_comps (until);

-- The outbox to tenants' audit logs carries other billing notices than
-- plan changes (a comp granted or ended, with or without a plan move).
ALTER TABLE billing_plan_changes
    ADD COLUMN action text NOT NULL DEFAULT 'billing.plan_changed';
