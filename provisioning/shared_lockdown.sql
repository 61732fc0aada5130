-- Runs inside the shared database of schema-mode tenants: each tenant gets
-- CONNECT by name, nobody may create anything in public.
REVOKE ALL ON DATABASE {{shared}} FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
