-- Runs once on every server bulkhead manages (on `server add`, on each start
-- of the embedded cluster, and by `reconcile`): PostgreSQL grants PUBLIC
-- CONNECT and TEMP on every new database, so without this a tenant's runtime
-- role could connect to `postgres`, `template1` or the control plane's
-- database. Tenant databases are locked down when they are created.
DO $$
DECLARE
    d record;
BEGIN
    -- Concurrent REVOKEs on one database fail with "tuple concurrently updated".
    LOCK TABLE pg_catalog.pg_database IN SHARE UPDATE EXCLUSIVE MODE;
    FOR d IN
        SELECT datname FROM pg_database
         WHERE datacl IS NULL
            OR EXISTS (SELECT 1 FROM aclexplode(datacl) a
                        WHERE a.grantee = 0 AND a.privilege_type IN ('CONNECT', 'TEMPORARY'))
    LOOP
        EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', d.datname);
    END LOOP;
END
$$;
