-- Only the tenant's runtime role may connect; nobody gets TEMP. Then open it.
REVOKE ALL ON DATABASE {{database}} FROM PUBLIC;
GRANT CONNECT ON DATABASE {{database}} TO {{runtime}};
ALTER DATABASE {{database}} ALLOW_CONNECTIONS true;
