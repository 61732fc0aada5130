-- Runs inside the tenant's new database, as admin, in one transaction.
-- 1. The cloned objects belong to the template owner: hand them to the tenant's
--    owner role, then drop every privilege the template owner kept here.
REASSIGN OWNED BY {{template_owner}} TO {{owner}};
DROP OWNED BY {{template_owner}};
-- 2. public belongs to the tenant's owner role (it is NOINHERIT, so owning the
--    database alone would not let its migrations create anything there);
--    nobody else may create in it; the runtime role may use it.
ALTER SCHEMA public OWNER TO {{owner}};
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {{runtime}};
-- 3. DML on today's tables and, through default privileges, on every table the
--    owner role creates in later migrations.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {{runtime}};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {{runtime}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {{runtime}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO {{runtime}};
