-- The only role a tenant's requests ever use. Member of no role, owner of
-- nothing: it gets CONNECT on its own database (or USAGE on its own schema)
-- and DML on its own tables, and nothing else.
CREATE ROLE {{runtime}} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
