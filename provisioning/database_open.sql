-- A fleet database (template, shared) is created closed, so no tenant role
-- can connect in the moment between CREATE DATABASE and the revoke of
-- PUBLIC's default CONNECT and TEMP. Revoke, then open it (superusers only
-- until the lockdown inside it and the grants per tenant). Idempotent.
-- Also reopens a tenant's database after its rename (database_close.sql).
-- Serialised with every other change to a database's ACL.
LOCK TABLE pg_catalog.pg_database IN SHARE UPDATE EXCLUSIVE MODE;
REVOKE ALL ON DATABASE {{database}} FROM PUBLIC;
ALTER DATABASE {{database}} ALLOW_CONNECTIONS true;
