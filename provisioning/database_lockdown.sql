-- Only the tenant's runtime role may connect; nobody gets TEMP. Then open it.
-- Serialised with server_lockdown.sql, which may update the same row.
SELECT pg_advisory_xact_lock(7415003);
REVOKE ALL ON DATABASE {{database}} FROM PUBLIC;
GRANT CONNECT ON DATABASE {{database}} TO {{runtime}};
ALTER DATABASE {{database}} ALLOW_CONNECTIONS true;
