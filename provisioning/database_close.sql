-- Before a tenant's database is renamed: nobody (superusers included) may
-- connect to it, so that once its sessions are terminated none comes back
-- (PostgreSQL renames a database only while nobody is connected to it).
-- database_open.sql opens it again under its new name.
LOCK TABLE pg_catalog.pg_database IN SHARE UPDATE EXCLUSIVE MODE;
ALTER DATABASE {{database}} ALLOW_CONNECTIONS false;
