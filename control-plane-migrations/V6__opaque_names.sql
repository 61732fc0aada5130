-- Catalog names that reveal nothing: pg_roles, pg_database and pg_namespace
-- are readable by every role, so a tenant's roles, database and schema are
-- named from a random id (`t_` + 16 base32 characters) minted when it is
-- reserved, never from its slug. The slug lives only here.
--
-- Tenants made before keep their slug-derived name (`t_<slug>`) until
-- `bulkhead reconcile` renames their objects: it records the new name in
-- pg_name_next first, renames (each rename idempotent), then moves it into
-- pg_name, so a crash anywhere in between is finished by the next reconcile.

ALTER TABLE tenants ADD COLUMN pg_name text;
UPDATE tenants SET pg_name = 't_' || slug;
ALTER TABLE tenants
    ALTER COLUMN pg_name SET NOT NULL,
    ADD CONSTRAINT tenants_pg_name_check CHECK (pg_name ~ '^t_[a-z0-9-]{3,32}$'),
    ADD COLUMN pg_name_next text CHECK (pg_name_next ~ '^t_[a-z2-7]{16}$');

-- Tombstones keep the name their objects had (a reused slug's old tenants
-- all had `t_<slug>`); live tenants' names, and every name being moved to,
-- are unique.
CREATE UNIQUE INDEX tenants_live_pg_name ON tenants (pg_name) WHERE status <> 'deleted';
CREATE UNIQUE INDEX tenants_pg_name_next ON tenants (pg_name_next);

-- Routing caches hold the database name: a rename invalidates them too.
DROP TRIGGER tenants_routing ON tenants;
CREATE TRIGGER tenants_routing
    AFTER UPDATE OF slug, status, server, schema_version, credential_generation, plan,
                    isolation_mode, pg_name
       OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION bulkhead_notify_routing();
