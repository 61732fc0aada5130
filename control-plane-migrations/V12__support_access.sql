-- Break-glass: the only way the vendor's staff (operators) see a tenant's
-- data. Each access is a grant, asked for with a reason and a duration,
-- that the tenant's own rule may refuse or make wait for an owner's
-- approval, and that read-write access makes wait for a second operator's.
-- Every grant and every request under it is written to the platform audit
-- log and to the tenant's own.

-- A tenant's rule for its data and the vendor's staff. No row: `allowed`.
CREATE TABLE support_access_policies (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    policy     text NOT NULL CHECK (policy IN ('allowed', 'ask_first', 'never')),
    changed_by text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- A grant is live from `starts_at` (set when the last approval it needs
-- arrives, or at once when it needs none) until `ends_at`, unless ended
-- early (`ended_at`: revoked, or denied before it began). One still
-- waiting for approval lapses a day after it was asked for.
CREATE TABLE access_grants (
    id                   uuid PRIMARY KEY,
    tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    operator_id          uuid NOT NULL REFERENCES operators (id),
    mode                 text NOT NULL CHECK (mode IN ('read_only', 'read_write')),
    reason               text NOT NULL CHECK (length(reason) BETWEEN 20 AND 500),
    minutes              integer NOT NULL CHECK (minutes BETWEEN 1 AND 60),
    requested_at         timestamptz NOT NULL DEFAULT now(),
    -- The tenant's rule was `ask_first` when it was asked for.
    needs_owner          boolean NOT NULL,
    owner_approved_by    text,
    owner_approved_at    timestamptz,
    -- Read-write: a second operator must approve.
    needs_operator       boolean NOT NULL,
    operator_approved_by uuid REFERENCES operators (id),
    operator_approved_at timestamptz,
    starts_at            timestamptz,
    ends_at              timestamptz,
    ended_at             timestamptz,
    ended_by             text,
    ended_how            text CHECK (ended_how IN ('revoked', 'denied')),
    CHECK (needs_operator = (mode = 'read_write')),
    -- Never the asker's own approval.
    CHECK (operator_approved_by IS DISTINCT FROM operator_id),
    CHECK ((starts_at IS NULL) = (ends_at IS NULL)),
    CHECK ((ended_at IS NULL) = (ended_how IS NULL))
);
CREATE INDEX access_grants_tenant ON access_grants (tenant_id, requested_at DESC);
CREATE INDEX access_grants_operator ON access_grants (operator_id, tenant_id, ends_at);
