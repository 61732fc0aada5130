-- Runs inside the shared database of schema-mode tenants: each tenant gets
-- CONNECT by name, nobody may create anything in public.
-- Serialised with every other change to a database's ACL ("tuple
-- concurrently updated" otherwise); runs in one transaction.
SELECT pg_advisory_xact_lock(7415003);
REVOKE ALL ON DATABASE {{shared}} FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
