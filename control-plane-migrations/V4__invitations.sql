-- Invitations to join a tenant: single use, expiring, only their hash stored.

CREATE TABLE invitations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       text NOT NULL CHECK (email = lower(btrim(email))),
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    -- SHA-256 of the token sent by e-mail.
    token_hash  bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  timestamptz
);
CREATE INDEX invitations_tenant ON invitations (tenant_id);

-- Per-tenant settings: a JSON object of known keys (validated by bulkhead);
-- missing keys take their defaults.
CREATE TABLE tenant_settings (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    settings   jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Tokens minted over HTTP belong to the person who minted them: they end
-- with that person's account, and are revoked when the person leaves the
-- tenant. Operator tokens (CLI) have no owner.
ALTER TABLE api_tokens ADD COLUMN created_by uuid REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX api_tokens_created_by ON api_tokens (created_by) WHERE created_by IS NOT NULL;
