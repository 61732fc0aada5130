-- Only the tenant's runtime role may connect; nobody gets TEMP. Then open it.
-- Serialised with server_lockdown.sql, which may update the same row.
LOCK TABLE pg_catalog.pg_database IN SHARE UPDATE EXCLUSIVE MODE;
REVOKE ALL ON DATABASE {{database}} FROM PUBLIC;
GRANT CONNECT ON DATABASE {{database}} TO {{runtime}};
ALTER DATABASE {{database}} ALLOW_CONNECTIONS true;
