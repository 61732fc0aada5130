-- Owns the template's objects; every clone hands them to its tenant's owner.
CREATE ROLE {{template_owner}} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
