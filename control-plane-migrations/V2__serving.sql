-- Serving: API tokens for machine clients, and NOTIFY on every change that
-- affects routing, so every running instance drops its cached entry at once.

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- SHA-256 of the token: the token itself is shown once and never stored.
    token_hash   bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);

CREATE FUNCTION bulkhead_notify_routing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'tenants' THEN
        PERFORM pg_notify('bulkhead_routing',
            'tenant:' || COALESCE(NEW.id, OLD.id)::text || ':' || COALESCE(NEW.slug, OLD.slug));
    ELSIF TG_TABLE_NAME = 'domains' THEN
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('bulkhead_routing', 'host:' || OLD.host);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('bulkhead_routing', 'host:' || NEW.host);
        END IF;
    ELSIF TG_TABLE_NAME = 'api_tokens' THEN
        PERFORM pg_notify('bulkhead_routing', 'token:' || COALESCE(NEW.id, OLD.id)::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_routing
    AFTER UPDATE OF slug, status, server, schema_version, credential_generation, plan, isolation_mode
       OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION bulkhead_notify_routing();

CREATE TRIGGER domains_routing
    AFTER INSERT OR UPDATE OR DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION bulkhead_notify_routing();

CREATE TRIGGER api_tokens_routing
    AFTER UPDATE OF revoked_at, role, tenant_id OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION bulkhead_notify_routing();
