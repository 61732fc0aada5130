-- Owns every object of one tenant. Nobody logs in as it: migrations reach it
-- with SET ROLE from an admin session.
CREATE ROLE {{owner}} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
