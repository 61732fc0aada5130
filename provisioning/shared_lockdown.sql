-- Runs inside the shared database of schema-mode tenants: each tenant gets
-- CONNECT by name, nobody may create anything in public.
-- Serialised with every other change to a database's ACL ("tuple
-- concurrently updated" otherwise); runs in one transaction.
LOCK TABLE pg_catalog.pg_database IN SHARE UPDATE EXCLUSIVE MODE;
REVOKE ALL ON DATABASE {{shared}} FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
