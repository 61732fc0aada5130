-- Runs inside the shared database, as admin, in one transaction.
-- Concurrent GRANTs on one database row fail with "tuple concurrently
-- updated": serialise them (the lock server_lockdown.sql takes).
LOCK TABLE pg_catalog.pg_database IN SHARE UPDATE EXCLUSIVE MODE;
GRANT CONNECT ON DATABASE {{shared}} TO {{runtime}};
REVOKE ALL ON SCHEMA {{schema}} FROM PUBLIC;
GRANT USAGE ON SCHEMA {{schema}} TO {{runtime}};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {{schema}} TO {{runtime}};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {{schema}} TO {{runtime}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA {{schema}}
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {{runtime}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA {{schema}}
    GRANT USAGE, SELECT ON SEQUENCES TO {{runtime}};
