-- A fleet database (template, shared) is created closed, so no tenant role
-- can connect in the moment between CREATE DATABASE and the revoke of
-- PUBLIC's default CONNECT and TEMP. Revoke, then open it (superusers only
-- until the lockdown inside it and the grants per tenant). Idempotent.
-- Serialised with every other change to a database's ACL.
SELECT pg_advisory_xact_lock(7415003);
REVOKE ALL ON DATABASE {{database}} FROM PUBLIC;
ALTER DATABASE {{database}} ALLOW_CONNECTIONS true;
