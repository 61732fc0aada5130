-- The fleet's truth: database servers, tenants, their host names, the
-- platform audit log, and the record of every fleet migration run.

CREATE TABLE servers (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    -- A superuser URL. Never printed or logged; `server list` masks it.
    admin_url   text NOT NULL,
    capacity    integer NOT NULL DEFAULT 1000 CHECK (capacity > 0),
    budget      integer NOT NULL DEFAULT 80 CHECK (budget > 0),
    state       text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'draining')),
    -- Tenant schema version of this server's template database; NULL until it exists.
    template_version integer,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id                    uuid PRIMARY KEY,
    slug                  text NOT NULL CHECK (slug ~ '^[a-z][a-z0-9-]{1,30}[a-z0-9]$'),
    display_name          text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    plan                  text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro')),
    status                text NOT NULL CHECK (status IN (
                              'provisioning', 'active', 'suspended', 'migrating',
                              'migration_failed', 'deleting', 'deleted')),
    isolation_mode        text NOT NULL CHECK (isolation_mode IN ('database', 'schema')),
    server                text NOT NULL REFERENCES servers (name),
    schema_version        integer NOT NULL DEFAULT 0,
    -- The step about to run (recorded before it is acted on), NULL when at rest.
    step                  text CHECK (step IN (
                              'reserve', 'roles', 'storage', 'grants', 'migrate', 'verify',
                              'export', 'drop', 'tombstone')),
    credential_generation integer NOT NULL DEFAULT 1 CHECK (credential_generation > 0),
    last_error            text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    deleted_at            timestamptz,
    -- A deleted tenant's slug may be taken again only after this moment.
    slug_reusable_at      timestamptz,
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);

-- One live tenant per slug; tombstones keep theirs until slug_reusable_at.
CREATE UNIQUE INDEX tenants_live_slug ON tenants (slug) WHERE status <> 'deleted';
CREATE INDEX tenants_slug ON tenants (slug);
CREATE INDEX tenants_server ON tenants (server) WHERE status <> 'deleted';
CREATE INDEX tenants_unsettled ON tenants (status) WHERE status IN ('provisioning', 'deleting');

CREATE TABLE domains (
    host               text PRIMARY KEY CHECK (length(host) BETWEEN 1 AND 253),
    tenant_id          uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    verification_token text NOT NULL,
    verified_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX domains_tenant ON domains (tenant_id);

CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    tenant_id  uuid REFERENCES tenants (id) ON DELETE SET NULL,
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, at);

CREATE TABLE migration_runs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state          text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'interrupted')),
    target_version integer NOT NULL,
    holder         text NOT NULL,
    params         jsonb NOT NULL DEFAULT '{}',
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz
);

CREATE TABLE migration_results (
    run_id       bigint NOT NULL REFERENCES migration_runs (id) ON DELETE CASCADE,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state        text NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'skipped')),
    from_version integer NOT NULL,
    to_version   integer,
    error        text,
    started_at   timestamptz,
    finished_at  timestamptz,
    PRIMARY KEY (run_id, tenant_id)
);
CREATE INDEX migration_results_state ON migration_results (run_id, state);
